
e-2acme‚âÏª*test0:	v-1Ji-1Pª
	main-menupress 11 