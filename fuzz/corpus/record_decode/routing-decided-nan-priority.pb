
e-4acme„âÏª*test0:
c-1Bcnv-1Ji-1PÊ‰billin'*billing09ÿÿÿÿÿÿÿÿBagent-1JZPXbW
€âÏª„éÏªbilling.dispute"he*gold2€ øú8Bagent-1J
accountbusinessPX