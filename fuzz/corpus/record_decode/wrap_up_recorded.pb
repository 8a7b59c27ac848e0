
e-16acmeâÏª*test0:	v-1Ji-1Pš
agent-1refund