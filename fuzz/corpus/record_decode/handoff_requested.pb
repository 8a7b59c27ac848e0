
e-11acme▀Бо╙*test0:	v-1Ji-1PР$
bot-1billing"disputes invoice