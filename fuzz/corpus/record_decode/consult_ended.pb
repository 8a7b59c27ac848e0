
e-16acmeâÏª*test0:	v-1Ji-1Pò
agent-1agent-2