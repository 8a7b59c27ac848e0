
e-13acmeâÏª*test0:	v-1Ji-1P‚agent-1