
e-7acme‡âÏª*test0:	v-1Ji-1PÒ
billingbilling"ar