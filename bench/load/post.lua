-- wrk script: POST a message (form-encoded) with Basic auth.
wrk.method = "POST"
wrk.body = "Body=Hello%2C+world%21&From=loadtest"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
