
e-2acme‚âÏª*test0:
c-1Bcnv-1Ji-1Pº
c-2wrong mergeagent-1