
e-19acme⌠Бо╙*test0Pрversion = 3