
e-10acme┼Бо╙*test0:	v-1Ji-1PЙ%
agent-1	retention"wants to cancel