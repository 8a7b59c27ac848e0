
e-1acmeâÏª*test0:
c-1Bcnv-1Ji-1P²
c-2same personagent-1