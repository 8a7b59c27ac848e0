
e-9acme‰âÏª*test0:	v-1Ji-1Pâ	
agent-1