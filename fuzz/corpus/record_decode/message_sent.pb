
e-5acme┘Бо╙*test0:	v-1Ji-1PбFagent-1в╘в°в∙в²"-
s3://bucket/a.pdfapplication/pdfa.pdf (