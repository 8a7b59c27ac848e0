
e-18acme’âÏª*test0Pª
agent-1