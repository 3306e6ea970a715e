"""Hostile servers (issue 6): a scripted fake server (fakeserver.py) logs
xmppd in over direct TLS, then sends what no server should. Each time
xmppd must survive, send the right stream error (read from what it
writes), log why, publish nothing it should not, and log in again."""

import json
import os
import re
import select
import socket
import ssl
import time

from fakeserver import FakeServer
import fixtures as F
from fixtures import check, wait_until

NS_STREAM_ERRORS = "urn:ietf:params:xml:ns:xmpp-streams"
STREAM_HEADER = ("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
	"xmlns:stream='http://etherx.jabber.org/streams' id='h1' "
	"from='localhost' version='1.0'>")


def start(ctx, conf=None, events=("state", "message", "roster"),
		rcvbuf=None, sm=False):
	"""A fake server and an xmppd logged in to it: (server, xmppd,
	subscribed client, connection)."""
	srv = FakeServer(ctx.certs, os.path.join(ctx.ws.mkdir("fake"),
		"transcript.log")).start(rcvbuf)
	x = ctx.xmppd(srv.account(), srv.conf(**(conf or {})), start=False)
	with F.environ(ASAN_OPTIONS=F.small_quarantine()):
		x.start()
	# Stopped first (cleanup runs in reverse): xmppd then sees EOF at
	# once instead of waiting for a closing </stream:stream>.
	ctx._owned.append(srv)
	c = x.client()
	c.ok("subscribe", events=list(events))
	conn = srv.accept(sm=sm)
	c.wait_state(("online",), 10)
	return srv, x, c, conn


def stream_error(conn, condition, timeout=10):
	"""Reads until xmppd closes its stream; checks it said condition."""
	text = conn.read_until(b"</stream:stream>", timeout).decode("utf-8",
		"replace")
	m = re.search(r"<stream:error>(.*?)</stream:error>", text, re.S)
	check(m, "xmppd closed the stream without a stream error: %r"
		% text[-400:])
	check(re.search(r"<%s\b[^>]*xmlns=['\"]%s['\"]" % (condition,
		NS_STREAM_ERRORS), m.group(1)), "stream error %r, not %s"
		% (m.group(1), condition))
	conn.wait_closed()


def back_online(srv, x, c, sm=False):
	"""xmppd logs in again by itself; returns the new connection."""
	conn = srv.accept(timeout=15, sm=sm)
	c.wait_state(("online",), 10)
	check(x.running(), "xmppd died")
	return conn


def offline_reason(c, condition):
	"""The state event that reported the stream's end names condition."""
	ev = c.wait_event(lambda e: e.get("event") == "state"
		and e.get("state") == "offline", 10, "offline state")
	check(condition in (ev.get("reason") or ""), "offline reason %r, "
		"not %s" % (ev.get("reason"), condition))


def message(frm, to, body, mid="m1", extra=""):
	return ("<message from='%s' to='%s' type='chat' id='%s'><body>%s</body>"
		"%s</message>" % (frm, to, mid, body, extra))


def marker(conn, c, text):
	"""A harmless message after the hostile one: once its event is here,
	anything the hostile one caused would have been published too."""
	conn.send(message("bob@localhost/r", conn.jid, text, "marker"))
	c.wait_event(lambda e: e.get("event") == "message"
		and e.get("body") == text, 10, "the marker message")


def log_says(x, text):
	"""Waits until xmppd's log has text (it may write the line just
	after the bytes that made the test look)."""
	wait_until(lambda: text in x.log_text(), 5, 0.05,
		"%r in xmppd's log" % text)


def no_event(c, pred, what):
	bad = [e for e in c.events if pred(e)]
	check(not bad, "%s was published: %s" % (what, json.dumps(bad)[:500]))


# ---- oversized and malformed input ----

def test_ten_mib_stanza(ctx):
	srv, x, c, conn = start(ctx)
	pid = x.proc.pid
	before = F.proc_status(pid)
	conn.send("<message from='bob@localhost/r' type='chat'><body>")
	chunk = b"A" * (64 << 10)
	sent = 0
	# Until xmppd's stream error comes: xmppd then still reads (and
	# drops) for a while, so its last words are not lost to a reset.
	while sent < 10 << 20 and b"</stream:stream>" not in conn.buf:
		if not conn.send(chunk) or not conn.pump(0):
			break
		sent += len(chunk)
	stream_error(conn, "policy-violation")
	after = F.proc_status(pid)
	grew = after["VmHWM"] - before["VmHWM"]
	print("    10 MiB stanza: %d KiB written, VmHWM %d -> %d "
		"KiB, VmRSS %d KiB" % (sent >> 10, before["VmHWM"], after["VmHWM"],
			after["VmRSS"]))
	check(grew < F.rss_bound_kib(pid, 8 << 10), "peak RSS grew by %d KiB "
		"for a 10 MiB stanza" % grew)
	offline_reason(c, "policy-violation")
	log_says(x, "stanza too large")
	back_online(srv, x, c)


def restricted(ctx, payload, why, online=True):
	"""payload online (or instead of the stream header) gets a
	restricted-xml stream error, logged with why."""
	srv, x, c, conn = start(ctx)
	if online:
		conn.send(payload)
	else:
		conn.close()
		conn = srv.accept(login=False)
		conn.read_until(b"<stream:stream")
		conn.read_until(b">")
		conn.send(payload)
	stream_error(conn, "restricted-xml")
	log_says(x, why)
	no_event(c, lambda e: e.get("event") == "message", "a message")
	back_online(srv, x, c)


def test_dtd_before_the_stream(ctx):
	restricted(ctx, "<?xml version='1.0'?><!DOCTYPE stream:stream SYSTEM "
		"'file:///etc/passwd'>" + STREAM_HEADER[21:], "DTD refused",
		online=False)


def test_billion_laughs(ctx):
	ents = "".join("<!ENTITY lol%d '%s'>" % (i, ("&lol%d;" % (i - 1)) * 10)
		for i in range(1, 10))
	restricted(ctx, "<?xml version='1.0'?><!DOCTYPE stream:stream "
		"[<!ENTITY lol0 'lol'>%s]>%s<stream:features><mechanisms xmlns="
		"'urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>&lol9;</mechanism>"
		"</mechanisms></stream:features>" % (ents, STREAM_HEADER[21:]),
		"DTD refused", online=False)


def test_entity_reference(ctx):
	restricted(ctx, message("bob@localhost/r", "hostile@localhost",
		"&amp; &xxe;"), "entity reference refused")


def test_processing_instruction(ctx):
	restricted(ctx, "<message from='bob@localhost/r'><?evil x?></message>",
		"processing instruction refused")


def test_deep_nesting(ctx):
	srv, x, c, conn = start(ctx)
	conn.send(b"<message from='bob@localhost/r'>" + b"<a>" * 100000
		+ b"</a>" * 100000 + b"</message>")
	stream_error(conn, "policy-violation")
	log_says(x, "nested too deep")
	offline_reason(c, "policy-violation")
	back_online(srv, x, c)


def test_huge_start_tags(ctx):
	"""Start tags that cost libxml2 quadratic time: refused early, and
	cheaply (a regression burns seconds of CPU on one tag, kept under
	max_stanza so that the size limit does not stop it first)."""
	srv, x, c, conn = start(ctx)
	pid = x.proc.pid
	cpu = F.proc_cpu_seconds(pid)
	attrs = "".join(" a%d='%d'" % (i, i) for i in range(60000))
	conn.send("<message from='bob@localhost/r'%s><body>x</body></message>"
		% attrs)
	stream_error(conn, "policy-violation")
	log_says(x, "too many attributes")
	conn = back_online(srv, x, c)
	decls = "".join(" xmlns:p%d='urn:x:%d'" % (i, i) for i in range(200))
	conn.send("<message from='bob@localhost/r'%s><body>x</body></message>"
		% decls)
	stream_error(conn, "policy-violation")
	log_says(x, "too many namespace declarations")
	used = F.proc_cpu_seconds(pid) - cpu
	print("    two huge start tags: %.2fs of CPU" % used)
	check(used < 2.0, "xmppd used %.1fs of CPU on two start tags" % used)
	back_online(srv, x, c)


def test_sm_ack_too_high(ctx):
	"""XEP-0198: an ack for more than was sent ends the stream with
	undefined-condition and handled-count-too-high, then xmppd logs in
	again (a resumption, if it asks for one, is refused here)."""
	srv, x, c, conn = start(ctx, sm=True)
	check(c.ok("status").get("sm") is True, "stream management is off")
	conn.send("<a xmlns='urn:xmpp:sm:3' h='4000000000'/>")
	text = conn.read_until(b"</stream:stream>").decode()
	check("<undefined-condition" in text and "<handled-count-too-high"
		in text and "h='4000000000'" in text, "stream error %r"
		% text[-400:])
	offline_reason(c, "undefined-condition")
	back_online(srv, x, c, sm=True)


def test_binary_garbage(ctx):
	srv, x, c, conn = start(ctx)
	rnd = bytes(range(256)) * 4 + os.urandom(4096)
	conn.send(b"<message from='bob@localhost/r'><body>" + rnd)
	stream_error(conn, "not-well-formed")
	offline_reason(c, "not-well-formed")
	back_online(srv, x, c)


def test_one_byte_segments(ctx):
	srv, x, c, conn = start(ctx)
	conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
	body = "split \u00e9\u263a\U0001f600 &lt;one&gt; byte at a time"
	data = message("bob@localhost/r", conn.jid, body.replace("<", "&lt;")
		.replace(">", "&gt;"), "split1",
		"<thread>t1</thread>").encode()
	for i in range(len(data)):
		# One TLS record each, in its own TCP segment (no Nagle).
		conn.send(data[i:i + 1])
	ev = c.wait_event(lambda e: e.get("event") == "message"
		and e.get("msg_id") == "split1", 10, "the split message")
	want = body.replace("&lt;", "<").replace("&gt;", ">")
	check(ev.get("body") == want, "body %r, not %r" % (ev.get("body"), want))
	check(ev.get("thread") == "t1", "thread %r" % ev.get("thread"))
	marker(conn, c, "after the split one")
	no_event(c, lambda e: e.get("msg_id") == "split1", "a second copy")
	check(not conn.closed and c.ok("status")["state"] == "online",
		"the connection did not survive")


# ---- spoofs: ignored and logged, the stream stays up ----

def carbon(frm, to, body):
	return ("<message from='%s' to='%s' type='chat'><received xmlns="
		"'urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
		"<message from='bob@localhost/r' to='hostile@localhost/phone' "
		"type='chat' xmlns='jabber:client'><body>%s</body></message>"
		"</forwarded></received></message>" % (frm, to, body))


def test_forged_carbon(ctx):
	srv, x, c, conn = start(ctx)
	conn.send(carbon("mallory@localhost/x", conn.jid, "forged"))
	# The real thing, wrapped by our own bare JID, gets through.
	conn.send(carbon("hostile@localhost", conn.jid, "genuine"))
	ev = c.wait_event(lambda e: e.get("body") == "genuine", 10,
		"the genuine carbon")
	check(ev.get("carbon") == "received", "carbon %r" % ev.get("carbon"))
	no_event(c, lambda e: e.get("body") == "forged", "the forged carbon")
	log_says(x, "ignoring a forged carbon (received) from "
		"'mallory@localhost/x'")
	check(not conn.closed, "xmppd hung up")


def test_foreign_roster_push(ctx):
	srv, x, c, conn = start(ctx)
	push = ("<iq type='set' id='%s'%s><query xmlns='jabber:iq:roster'>"
		"<item jid='%s' name='%s' subscription='none'/></query></iq>")
	conn.send(push % ("evil1", " from='mallory@localhost/x'",
		"evil@localhost", "Evil"))
	# xmppd refuses it...
	err = conn.read_until(re.compile(rb"<iq\b[^>]*id=.evil1.[^>]*>.*?</iq>",
		re.S)).decode()
	check("type=\"error\"" in err or "type='error'" in err,
		"the foreign push got %r, not an error" % err[-300:])
	# ...while the server's own push, without from, is applied.
	conn.send(push % ("good1", "", "carol@localhost", "Carol"))
	ev = c.wait_event(lambda e: e.get("event") == "roster", 10,
		"the genuine push")
	check(ev.get("jid") == "carol@localhost", "roster event %r" % ev)
	no_event(c, lambda e: e.get("event") == "roster", "a roster event "
		"for the foreign push")
	items = json.dumps(c.ok("roster"))
	check("evil@localhost" not in items and "carol@localhost" in items,
		"roster %s" % items[:400])
	log_says(x, "ignoring a roster push from 'mallory@localhost/x'")


def spoof_replies(conn, iid, to):
	"""Everything that carries iid but is not to's answer."""
	conn.send("<iq type='result' id='%s' from='mallory@localhost/x'>"
		"<query xmlns='jabber:iq:version'><name>mallory</name></query></iq>"
		% iid)
	conn.send("<iq type='result' id='%s' from='localhost'/>" % iid)
	conn.send("<iq type='result' id='%s'/>" % iid)
	# CVE-2024-46957: another stanza kind with the awaited id.
	conn.send("<message type='normal' id='%s' from='%s'><query xmlns="
		"'jabber:iq:version'><name>message</name></query><body>spoof</body>"
		"</message>" % (iid, to))
	conn.send("<presence id='%s' from='%s'/>" % (iid, to))


def test_iq_reply_spoofs(ctx):
	srv, x, c, conn = start(ctx)
	bob = "bob@localhost/r"
	want = lambda a, rest: a.get("to") == bob
	# 1. Spoofs, then the true answer: the request gets the true one.
	c.send_line(json.dumps({"cmd": "iq", "id": 1, "to": bob, "type": "get",
		"payload": "<query xmlns='jabber:iq:version'/>"}))
	iid = conn.pending_iq(want)["id"]
	spoof_replies(conn, iid, bob)
	marker(conn, c, "spoofs sent")
	conn.send("<iq type='result' id='%s' from='%s'><query xmlns="
		"'jabber:iq:version'><name>true-bob</name></query></iq>" % (iid, bob))
	r = c.next_reply()
	check(r.get("id") == 1 and r.get("ok") is True and "true-bob"
		in r.get("xml", ""), "iq reply %r, not bob's" % r)
	# 2. Spoofs alone: the request times out.
	c.send_line(json.dumps({"cmd": "iq", "id": 2, "to": bob, "type": "get",
		"timeout": 1.5, "payload": "<query xmlns='jabber:iq:version'/>"}))
	iid = conn.pending_iq(want)["id"]
	spoof_replies(conn, iid, bob)
	r = c.next_reply()
	check(r.get("id") == 2 and r.get("ok") is False
		and r["error"]["condition"] == "remote-server-timeout",
		"iq reply %r, not a timeout" % r)
	for frm in ("mallory@localhost/x", "localhost", ""):
		log_says(x, "ignoring a reply to iq '%s' from '%s'" % (iid, frm))
	check(not conn.closed, "xmppd hung up")


# ---- a server that sends requests and never reads the answers ----

def test_server_that_does_not_read(ctx):
	srv, x, c, conn = start(ctx, rcvbuf=32 << 10)
	pid = x.proc.pid
	before = F.proc_status(pid)
	# Each request gets an answer larger than itself; long ids (echoed)
	# keep the number of stanzas, and the time under valgrind, small.
	req = ("<iq type='get' id='zz%07d" + "-" * 2000 + "' from='bob@localhost/"
		"r'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	size = len(req % 0)
	cap = (24 << 20) // size
	s = conn.sock
	s.setblocking(False)
	out, sent, n = b"", 0, 0
	got, tail = 0, b""
	stalled = None
	deadline = time.monotonic() + 60
	# Write without reading until xmppd stops taking more (it must stop
	# reading rather than queue its answers without bound), or the cap.
	while (n < cap or out) and time.monotonic() < deadline:
		if not out:
			out = "".join(req % i for i in range(n, min(cap, n + 50)))
			out = out.encode()
			n = min(cap, n + 50)
		_, w, _ = select.select([], [s], [], 1.0)
		if not w:
			# Stuck: because xmppd said it stopped reading, or only slow
			# (valgrind)?
			if "the server is not reading" in x.log_text():
				stalled = sent // size
				break
			continue
		try:
			k = s.send(out[:16384])
		except ssl.SSLWantWriteError:
			continue
		out, sent = out[k:], sent + k
	after = F.proc_status(pid)
	grew = after["VmHWM"] - before["VmHWM"]
	print("    %d requests (%d KiB) written before xmppd stopped reading; "
		"VmHWM %d -> %d KiB" % (sent // size, sent >> 10, before["VmHWM"],
			after["VmHWM"]))
	check(stalled is not None, "xmppd read all %d requests without its "
		"answers being read" % cap)
	check(grew < F.rss_bound_kib(pid, 16 << 10), "peak RSS grew by %d KiB "
		"while the server did not read" % grew)
	# Now read: xmppd goes on, every request is answered, once.
	total = n
	deadline = time.monotonic() + 50
	while got < total:
		check(time.monotonic() < deadline, "%d of %d answers" % (got,
			total))
		r, w, _ = select.select([s], [s] if out else [], [], 5)
		if w and out:
			try:
				k = s.send(out[:16384])
				out = out[k:]
			except ssl.SSLWantWriteError:
				pass
		if r or s.pending():
			try:
				data = s.recv(1 << 16)
			except ssl.SSLWantReadError:
				continue
			check(data, "xmppd hung up")
			data = tail + data
			got += data.count(b"id=\"zz")
			tail = data[-16:]
			got -= tail.count(b"id=\"zz")
	check(got == total, "%d answers to %d requests" % (got, total))
	s.setblocking(True)
	check(c.ok("status")["state"] == "online", "xmppd is not online")
