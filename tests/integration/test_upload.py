"""HTTP File Upload (XEP-0363) against Prosody's mod_http_file_share or
ejabberd's mod_http_upload:
xmppd finds the service after login and hands out slots; the test does
the HTTP PUT and GET itself, as a local program would with curl."""

import os
import urllib.error
import urllib.request

from fixtures import Prosody, check, only_on, wait_until

NS_UPLOAD = "urn:xmpp:http:upload:0"
SERVICE = "upload.localhost"


def service_known(c):
	"""Polls status until discovery has found the upload service."""
	def known():
		return c.ok("status").get("upload")
	return wait_until(known, 10, 0.1, "an upload service in status")


def http(method, url, data=None, headers=None):
	"""(status, body) of one HTTP request; errors are statuses too."""
	req = urllib.request.Request(url, data=data, method=method,
		headers=headers or {})
	try:
		with urllib.request.urlopen(req, timeout=10) as r:
			return r.status, r.read(1 << 21)
	except urllib.error.HTTPError as e:
		return e.code, e.read(1 << 16)


def test_upload_service_in_status(ctx):
	a = ctx.account("alice")
	x, c = ctx.online(a)
	up = service_known(c)
	check(up.get("service") == SERVICE, "upload service %r" % up)
	limit = type(ctx.server).UPLOAD_LIMIT
	check(up.get("max_file_size") == limit,
		"max_file_size %r, the service says %d" % (up, limit))
	r = c.ok("disco", to=SERVICE)
	check(NS_UPLOAD in r["features"], "service features %r" % r)
	# Found through the server's items, then the items' disco#info.
	log = x.log_text()
	check("http://jabber.org/protocol/disco#items" in log,
		"xmppd's log shows no disco#items request")


def test_upload_slot_put_and_get(ctx):
	a = ctx.account("alice")
	x, c = ctx.online(a)
	service_known(c)
	data = os.urandom(3000) + "é ünïcode\n".encode()
	r = c.ok("upload-slot", filename="report é.bin", size=len(data),
		content_type="application/octet-stream")
	base = "http://127.0.0.1:%d/" % ctx.server.http_port
	for k in ("put", "get"):
		check(r.get(k, "").startswith(base), "%s URL %r" % (k, r))
	headers = r.get("headers") or {}
	check(set(headers) <= {"Authorization", "Cookie", "Expires"},
		"headers beyond the allowed ones: %r" % headers)
	if ctx.server_name == "prosody":
		# Prosody's slots carry an Authorization header (ejabberd's a
		# secret in the URL): without it the PUT is refused.
		check(headers.get("Authorization"), "no Authorization header in %r"
			% r)
		status, _ = http("PUT", r["put"], data,
			{"Content-Type": "application/octet-stream"})
		check(status == 401, "PUT without Authorization gave %d" % status)
	put_headers = dict(headers, **{"Content-Type": "application/octet-stream"})
	status, _ = http("PUT", r["put"], data, put_headers)
	check(status in (200, 201), "PUT gave %d" % status)
	status, body = http("GET", r["get"])
	check(status == 200, "GET gave %d" % status)
	check(body == data, "GET returned %d bytes, not the %d put" % (len(body),
		len(data)))
	# The GET URL is what goes into a message.
	m = c.ok("send", to=a.jid, body=r["get"])
	check(m.get("msg_id"), "send of the URL: %r" % m)


def test_upload_slot_redacted_in_console(ctx):
	"""The slot's credentials reach the client that asked, but neither
	the XML console (xml events) nor the log's XML trace."""
	only_on(ctx, "prosody", "ejabberd's slots carry no header to redact "
		"(their secret is in the URL)")
	a = ctx.account("alice")
	x, c = ctx.online(a)
	service_known(c)
	console = x.client()
	console.ok("subscribe", events=["xml"])
	r = c.ok("upload-slot", filename="secret.txt", size=10)
	secret = r["headers"]["Authorization"].split()[-1]
	ev = console.wait_event(lambda e: e.get("event") == "xml"
		and e.get("dir") == "in" and "<put " in e.get("xml", ""), 10,
		"the slot in the console")
	check(secret not in ev["xml"] and "[redacted]" in ev["xml"],
		"the console shows the slot as %r" % ev["xml"])
	check(r["put"] in ev["xml"].replace("&amp;", "&"),
		"the console leaves out the put URL: %r" % ev["xml"])
	check(secret not in x.log_text(), "the Authorization value is in "
		"xmppd's log")


def test_upload_too_large_and_bad_requests(ctx):
	a = ctx.account("alice")
	x, c = ctx.online(a)
	service_known(c)
	limit = type(ctx.server).UPLOAD_LIMIT
	r = c.request("upload-slot", filename="big.iso", size=limit + 1)
	check(r["ok"] is False and r["error"]["condition"] == "not-acceptable",
		"too large: %r" % r)
	# Exactly the limit is still fine.
	r = c.ok("upload-slot", filename="edge.bin", size=limit)
	check(r["put"] and r["get"], "slot at the limit: %r" % r)
	for args, cond in (({"filename": "x"}, "bad-request"),
			({"filename": "", "size": 1}, "bad-request"),
			({"filename": "x", "size": -1}, "bad-request"),
			({"filename": "x", "size": "1"}, "bad-request"),
			({"filename": "a/b", "size": 1}, "bad-request")):
		r = c.request("upload-slot", **args)
		check(r["ok"] is False and r["error"]["condition"] == cond,
			"upload-slot %r: %r" % (args, r))


def test_upload_without_a_service(ctx):
	"""A Prosody without an upload component: the command says so."""
	only_on(ctx, "prosody", "one run of it is enough")
	bare = Prosody(ctx.ws, ctx.certs, upload=False).start()
	a = ctx.account("alice", bare)
	x, c = ctx.online(a)
	wait_until(lambda: x.log_text().count("upload: the server lists no "
		"upload service") > 0, 15, 0.1, "the end of the upload search")
	check("upload" not in c.ok("status"), "status shows a service")
	r = c.request("upload-slot", filename="x.txt", size=10)
	check(r["ok"] is False and r["error"]["condition"] ==
		"feature-not-implemented", "no service: %r" % r)
