
e-8acmeˆâÏª*test0:	v-1Ji-1PÚ
agent-1billing