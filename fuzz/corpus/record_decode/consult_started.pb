
e-15acmeâÏª*test0:	v-1Ji-1Pê
agent-1agent-2