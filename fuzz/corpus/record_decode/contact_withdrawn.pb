
e-5acme┘Бо╙*test0:
c-1Bcnv-1Ji-1PЗ	
billing