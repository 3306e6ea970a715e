"""Faults between xmppd and the server: Prosody restarted, the TCP
connection cut or gone silent, the server unreachable; the outbox, the
reconnect command, stream management on and off, expiry; and TLS that
must not be trusted (wrong name, expired, pin mismatch) or that a pin
alone vouches for.

alice's xmppd reaches Prosody through a proxy the test controls
(proxy.py); bob's xmppd connects directly. Nothing accepted may be lost
and nothing may be delivered twice: bob's subscriber must see alice's
numbered messages exactly once and in order, and every send that got ok
must end "acked".

With XMPPD_FAULT_RESULTS set to a file, each run of messages appends a
JSON line (sent, received, lost, duplicated...) there: bench/connect.py
reads it.
"""

import base64
import collections
import hashlib
import json
import os
import re
import socket
import ssl
import subprocess
import threading
import time

import fixtures as F
from fixtures import check, sasl_auths, wait_until
from proxy import Proxy

N = 1000
IN_FLIGHT = 100		# faults strike with at most this many unacked
ACK_TIMEOUT = 60
QUIET_SECONDS = 4
FINAL = ("online", "auth-failed", "tls-failed")


def body(i):
	"""The body of message i (0-based): "msg 0001" ..."""
	return "msg %04d" % (i + 1)


def own(ctx, obj):
	"""Has the runner stop obj (stop(), log_path) after the test."""
	ctx._owned.append(obj)
	return obj


class Watcher:
	"""Events of one xmppd, read by a thread as they come and stamped
	with their arrival time (time.monotonic()), so a test can tell when
	something happened while it was busy sending."""

	def __init__(self, xmppd, events, name, log_path):
		self.name = name
		self.log_path = log_path
		self.client = xmppd.client()
		self.client.ok("subscribe", events=list(events))
		self.cond = threading.Condition()
		now = time.monotonic()
		self.t0 = now
		self.events = [(now, e) for e in self.client.events]
		self.client.events = []
		self.ended = None
		self._stop = False
		self._thread = threading.Thread(target=self._run, name=name,
			daemon=True)
		self._thread.start()

	def _run(self):
		while not self._stop:
			try:
				line = self.client.reader.readline(0.2)
			except F.ReadTimeout:
				continue
			except Exception as e:
				self._end(repr(e))
				return
			if line is None:
				self._end("control socket closed")
				return
			try:
				ev = json.loads(line)
			except ValueError:
				ev = {"event": "(not JSON)", "line": line[:300].decode(
					"utf-8", "replace")}
			with self.cond:
				self.events.append((time.monotonic(), ev))
				self.cond.notify_all()

	def _end(self, why):
		with self.cond:
			self.ended = why
			self.cond.notify_all()

	def mark(self):
		"""The index of the next event, for wait(after=...)."""
		with self.cond:
			return len(self.events)

	def select(self, pred, after=0):
		"""(time, event) pairs from index after on that satisfy pred."""
		with self.cond:
			return [(t, e) for t, e in self.events[after:] if pred(e)]

	def wait(self, pred, timeout, what, after=0):
		"""The first (time, event) from index after on satisfying pred."""
		deadline = time.monotonic() + timeout
		with self.cond:
			while True:
				for t, e in self.events[after:]:
					if pred(e):
						return t, e
				left = deadline - time.monotonic()
				if left <= 0 or self.ended:
					recent = [e for _, e in self.events[-8:]]
					raise F.TestFailure("%s: no %s within %.1fs%s; last "
						"events: %s" % (self.name, what, timeout,
						" (%s)" % self.ended if self.ended else "",
						json.dumps(recent)[:1500]))
				self.cond.wait(min(left, 0.5))

	def wait_for(self, fn, timeout, what):
		"""Until fn() is true, checked as events come in."""
		deadline = time.monotonic() + timeout
		with self.cond:
			while not fn():
				left = deadline - time.monotonic()
				if left <= 0:
					raise F.TestFailure("%s: timed out after %.1fs waiting "
						"for %s" % (self.name, timeout, what))
				self.cond.wait(min(left, 0.2))

	def stop(self):
		self._stop = True
		self._thread.join(2)
		self.client.close()
		with open(self.log_path, "w") as f:
			for t, e in list(self.events):
				f.write("%8.3f %s\n" % (t - self.t0, json.dumps(e)))


def is_state(*names):
	return lambda e: e.get("event") == "state" and e.get("state") in names


def is_sent(status, ids=None):
	return lambda e: (e.get("event") == "sent" and e.get("status") == status
		and (ids is None or e.get("msg_id") in ids))


class Rig:
	"""alice's xmppd through a proxy, bob's directly, both online and
	watched by threads; a control-socket client of alice's that sends."""

	def __init__(self, ctx, alice_conf=None, bob_conf=None):
		self.ctx = ctx
		prosody = ctx.prosody
		self.proxy = own(ctx, Proxy((prosody.host, prosody.port),
			log_path=ctx.ws.mkdir("proxy") + "/proxy.log").start())
		self.a, self.b = ctx.account("alice"), ctx.account("bob")
		conf = {"server": {"host": "127.0.0.1", "port": self.proxy.port},
			"delivery": {"queue": 2 * N}}
		for sec, keys in (alice_conf or {}).items():
			conf.setdefault(sec, {}).update(keys)
		self.ax = ctx.xmppd(self.a, conf)
		self.aw = own(ctx, Watcher(self.ax, ("state", "sent"), "alice",
			os.path.join(self.ax.dir, "events.log")))
		self.bx = ctx.xmppd(self.b, bob_conf)
		self.bw = own(ctx, Watcher(self.bx, ("state", "message"), "bob",
			os.path.join(self.bx.dir, "events.log")))
		self.sender = self.ax.client()
		self.bob_client = self.bx.client()
		for c, w in ((self.sender, self.aw), (self.bob_client, self.bw)):
			st = c.ok("status")
			if st.get("state") != "online":
				t, e = w.wait(is_state(*FINAL), 20, "state online")
				check(e["state"] == "online", "%s did not come online: %r"
					% (w.name, e))
		self.ids = []
		self.bodies = []

	# alice's side

	def send(self, text):
		r = self.sender.request("send", to=self.b.jid, body=text)
		check(r.get("ok") is True, "send of %r refused: %r" % (text, r))
		check(r.get("msg_id"), "send reply without msg_id: %r" % r)
		self.ids.append(r["msg_id"])
		self.bodies.append(text)
		return r["msg_id"]

	def state(self):
		return self.sender.ok("status").get("state")

	def acked_ids(self):
		return {e["msg_id"] for _, e in self.aw.select(is_sent("acked"))}

	def wait_flowing(self, sent, timeout=30):
		"""Until alice is online with at most IN_FLIGHT of the sent
		messages unacknowledged: a fault then strikes a working stream
		with messages in flight."""
		want = max(0, sent - IN_FLIGHT)

		def flowing():
			return (self.state() == "online"
				and len(self.acked_ids() & set(self.ids)) >= want)
		wait_until(flowing, timeout, 0.05, "alice online with %d of %d "
			"messages acked" % (want, sent))

	def run(self, faults, n=N):
		"""Sends n numbered messages to bob's bare JID; faults[i]() runs
		before message i."""
		for i in range(n):
			if i in faults:
				faults[i]()
			self.send(body(i))

	# bob's side

	def received(self, after=0):
		"""Bodies of alice's messages bob's subscriber got, in order."""
		return [e.get("body") for _, e in self.bw.select(
			lambda e: e.get("event") == "message"
			and e.get("from", "").split("/")[0] == self.a.jid, after)]

	def finish(self, label, expect_acks=True, excuse=None):
		"""A last marker message, then: bob got every body exactly once
		and in order, and (expect_acks) every accepted message was
		acked and none expired. excuse(missing bodies) may return those
		of them the server provably lost itself: they are not expected."""
		marker = "end of run %s" % label
		self.send(marker)
		try:
			self.bw.wait(lambda e: e.get("event") == "message"
				and e.get("body") == marker, ACK_TIMEOUT,
				"the end marker at bob")
			got = self.received()
			expected = self.bodies
			if excuse:
				seen = set(got)
				lost = excuse([b for b in self.bodies if b not in seen])
				expected = [b for b in self.bodies if b not in lost]
			check(got == expected, "bob's messages are wrong: %s"
				% describe(expected, got))
			if not expect_acks:
				return
			ids = set(self.ids)
			self.aw.wait_for(lambda: ids <= self.acked_ids(), ACK_TIMEOUT,
				"acks of all %d accepted messages" % len(ids))
			expired = self.aw.select(is_sent("expired", ids))
			check(not expired, "%d messages reported expired: %s"
				% (len(expired), [e for _, e in expired[:5]]))
		finally:
			report(label, self.bodies, self.received(), self)


def describe(expected, got):
	"""What differs between two body sequences, briefly."""
	counts = collections.Counter(got)
	want = set(expected)
	missing = [b for b in expected if counts[b] == 0]
	dups = sorted(b for b, c in counts.items() if c > 1)
	extra = sorted(b for b in counts if b not in want)
	first = next((i for i, (x, y) in enumerate(zip(expected, got))
		if x != y), min(len(expected), len(got)))
	return ("received %d of %d; %d missing %s; %d duplicated %s; %d "
		"unexpected %s; first difference at position %d (expected %r, "
		"got %r)" % (len(got), len(expected), len(missing), missing[:10],
		len(dups), dups[:10], len(extra), extra[:5], first,
		expected[first] if first < len(expected) else None,
		got[first] if first < len(got) else None))


def report(label, expected, got, rig):
	"""Appends the run's numbers to $XMPPD_FAULT_RESULTS, if set."""
	path = os.environ.get("XMPPD_FAULT_RESULTS")
	if not path:
		return
	counts = collections.Counter(got)
	ids = set(rig.ids)
	rec = {"test": label, "sent": len(expected), "received": len(got),
		"lost": sum(1 for b in expected if counts[b] == 0),
		"duplicated": sum(c - 1 for c in counts.values() if c > 1),
		"in_order": got == expected,
		"acked": len(rig.acked_ids() & ids),
		"expired": len(rig.aw.select(is_sent("expired", ids)))}
	with open(path, "a") as f:
		f.write(json.dumps(rec) + "\n")


# Faults while 1,000 messages flow ----------------------------------------


def test_prosody_restart(ctx):
	"""Prosody stopped mid-run, 100 messages accepted while it is down,
	then started again on the same ports and data: both xmppds
	reconnect; bob gets everything once."""
	rig = Rig(ctx)
	marks = {}

	def stop():
		rig.wait_flowing(500)
		marks["a"], marks["b"] = rig.aw.mark(), rig.bw.mark()
		ctx.prosody.kill()

	def start():
		rig.aw.wait(is_state("offline"), 10, "alice offline after the "
			"server stopped", marks["a"])
		ctx.prosody.start()

	try:
		rig.run({500: stop, 600: start})
	finally:
		if not ctx.prosody.running():  # for the tests that follow
			ctx.prosody.start()
	rig.aw.wait(is_state("online", "resumed"), 30, "alice back online",
		marks["a"])
	rig.bw.wait(is_state("online", "resumed"), 30, "bob back online",
		marks["b"])
	rig.finish("prosody_restart",
		excuse=lambda missing: lost_in_shutdown(ctx.prosody, rig, missing))


# Prosody 0.12.3 runs its SIGTERM handler wherever the Lua VM is (a
# debug hook), even inside the "stanzas/in" filters of a stanza from
# alice: mod_smacks has already counted it (its filter comes first),
# then the shutdown stores that count for the session ("server-stopping")
# and closes it, and the rest of the chain discards the stanza ("Discarding
# data received from resting session"). After the restart, <failed h=.../>
# acknowledges that message, so xmppd rightly drops it from its outbox,
# yet it was never delivered nor archived. Seen in 2 of 19 loaded runs.
def lost_in_shutdown(prosody, rig, missing):
	"""Of the missing bodies, those Prosody itself lost in its shutdown:
	at most one, discarded by Prosody as received by a closed session and
	found nowhere in its data (archives, offline store). Anything else
	missing stays a failure."""
	if not missing:
		return set()
	log = prosody.log_since(0)
	data = ""
	for root, _, files in os.walk(os.path.join(prosody.dir, "data")):
		for name in files:
			path = os.path.join(root, name)
			if not os.path.isfile(path):  # prosody.sock
				continue
			with open(path, "rb") as f:
				data += f.read().decode("utf-8", "replace")
	lost = set()
	for b in missing:
		raw = rig.ids[rig.bodies.index(b)]
		mid = re.escape(raw)
		# "RECV:" is logged by a filter after mod_smacks' count.
		if (re.search(r"\tRECV: <message [^>]*\bid='%s'" % mid, log)
				and re.search(r"Discarding data received from resting "
				r"session: <message [^>]*\bid='%s'" % mid, log)
				and raw not in data):
			lost.add(b)
	if len(lost) > 1:
		return set()
	for b in lost:
		print("note: %r acked by Prosody but discarded in its shutdown "
			"(Prosody's loss, not xmppd's)" % b)
	return lost


# Prosody 0.12.3 resumes a session into the old connection's XML parser:
# when the old connection died with half a stanza parsed, the resumed
# stream is closed as not-well-formed or, worse, swallows everything
# after it (an unclosed element) without a word. The scheduled cuts
# therefore drain first (proxy.cut(drain=...)): xmppd's bytes stop, the
# server works through what it got (answering xmppd's ack requests) until
# it has been quiet, with nothing left unread in its socket, for DRAIN
# seconds, then both sides are reset, with xmppd's latest messages
# unacknowledged. (Silence alone was not enough: on a loaded machine
# Prosody was seen quiet for 0.58 s with 29 KB still unread; the reset
# then left it mid-stanza and the resumed stream died, not-well-formed.) test_cut_mid_stanza and
# test_resume_into_broken_session cover the abrupt case.
DRAIN = 0.3


def test_connection_cuts(ctx):
	"""The TCP connection reset at messages 200, 500 and 800 with
	messages in flight: each time xmppd resumes the stream and re-sends
	what the server had not acknowledged."""
	rig = Rig(ctx)
	cuts = []

	def cut(i):
		def fn():
			if cuts:
				check_resumed(rig, cuts[-1])
			rig.wait_flowing(i)
			mark = rig.aw.mark()
			n = rig.proxy.cut(drain=DRAIN)
			check(n >= 1, "no connection to cut at message %d" % i)
			cuts.append(mark)
		return fn

	rig.run({i: cut(i) for i in (200, 500, 800)})
	check_resumed(rig, cuts[-1])
	rig.finish("connection_cuts")


def test_resume_rounds(ctx):
	"""Twelve rounds of: 300 messages, a (drained) cut, an immediate
	reconnect command, 300 more; each round must end resumed with all
	600 acked within 10 s. The acks are read by a plain subscriber that
	reads only while it waits for them (as a simple script would), so
	that "sent" events pile up in xmppd while the messages go out: that
	must hold nothing up. Then bob must have got everything once.

	This test was skipped for a while as "Prosody stops writing to some
	resumed sessions". The cause was ours: xmppd told the server it was
	inactive (XEP-0352) while no client listened for messages, and
	Prosody's mod_csi_simple then holds back every write, acks included.
	xmppd now stays active while sent messages wait for acks."""
	rig = Rig(ctx)
	acks = rig.ax.client()
	acks.ok("subscribe", events=["sent", "state"])
	acked = set()
	for rnd in range(12):
		start = len(rig.ids)
		for i in range(300):
			rig.send("round %d msg %03d" % (rnd, i))
		check(rig.proxy.cut(drain=DRAIN) >= 1, "nothing to cut")
		rig.sender.ok("reconnect")
		for i in range(300, 600):
			rig.send("round %d msg %03d" % (rnd, i))
		ids = set(rig.ids[start:])
		states = []
		deadline = time.monotonic() + 10
		while not ids <= acked:
			left = deadline - time.monotonic()
			try:
				check(left > 0, "timeout")
				ev = acks.read(left)
			except F.TestFailure:
				raise F.TestFailure("round %d: %d of %d messages acked "
					"within 10 s; states: %s" % (rnd, len(ids & acked),
					len(ids), states))
			if ev.get("event") == "state":
				states.append(ev.get("state"))
			elif ev.get("status") == "acked":
				acked.add(ev.get("msg_id"))
		check("resumed" in states and "online" not in states,
			"round %d: states %s, not a resumption" % (rnd, states))
	rig.finish("resume_rounds")


def test_cut_mid_stanza(ctx):
	"""Six abrupt resets in the middle of a burst, each followed at once
	by a reconnect command, so that xmppd resumes right away: with
	Prosody 0.12.3 (see DRAIN above) a resumed stream may then be closed
	as not-well-formed, or silently swallow all that follows, acks
	included. xmppd must notice a stream that leaves its ack requests
	unanswered (keepalive_timeout = 3 here), start a session that works
	and deliver everything exactly once."""
	rig = Rig(ctx, {"server": {"keepalive": 5, "keepalive_timeout": 3}})
	marks = []

	def cut(i):
		def fn():
			rig.wait_flowing(i)
			marks.append(rig.aw.mark())
			check(rig.proxy.cut() >= 1, "nothing to cut at %d" % i)
			rig.sender.ok("reconnect")
		return fn

	rig.run({i: cut(i) for i in (150, 300, 450, 600, 750, 900)})
	rig.finish("cut_mid_stanza")


STREAM_TO = ("<?xml version='1.0'?><stream:stream to='localhost' "
	"version='1.0' xmlns='jabber:client' "
	"xmlns:stream='http://etherx.jabber.org/streams'>").encode()


def read_until(conn, pattern, timeout=10, limit=1 << 20):
	"""Bytes from conn until pattern (a bytes regex) matches."""
	conn.settimeout(timeout)
	data = b""
	while not re.search(pattern, data):
		chunk = conn.recv(65536)
		if not chunk:
			raise EOFError("closed before %r: %r" % (pattern, data[-300:]))
		data += chunk
		check(len(data) < limit, "too much data waiting for %r" % pattern)
	return data


def raw_login(server, cafile, account):
	"""A hand-made client stream: STARTTLS, SASL PLAIN, restarted;
	returns the TLS socket, ready for <resume/> or <bind/>."""
	raw = socket.create_connection((server.host, server.port), timeout=10)
	raw.sendall(STREAM_TO)
	read_until(raw, rb"</stream:features>")
	raw.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	read_until(raw, rb"<proceed")
	conn = ssl.create_default_context(cafile=cafile).wrap_socket(raw,
		server_hostname=F.DOMAIN)
	conn.sendall(STREAM_TO)
	read_until(conn, rb"</stream:features>")
	token = base64.b64encode(("\0%s\0%s" % (account.user,
		account.password)).encode()).decode()
	conn.sendall(("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
		"mechanism='PLAIN'>%s</auth>" % token).encode())
	read_until(conn, rb"<success")
	conn.sendall(STREAM_TO)
	read_until(conn, rb"</stream:features>")
	return conn


def test_resume_into_broken_session(ctx):
	"""A server session that takes a resumption and then ignores all
	that follows: Prosody 0.12.3 does exactly that when the connection
	it lost ended inside a stanza (see DRAIN). Made deterministic: while
	xmppd's connection is silent, the test takes the session over with
	<resume/> on a stream of its own, leaves half a stanza in it and
	hangs up. xmppd then resumes into a stream that never acks. It must
	notice (keepalive 5 s, keepalive_timeout 3 s), stop resuming that
	session, log in afresh and deliver everything once, in 30 s."""
	rig = Rig(ctx, {"server": {"keepalive": 5, "keepalive_timeout": 3}})
	for i in range(50):
		rig.send(body(i))
	rig.aw.wait_for(lambda: set(rig.ids) <= rig.acked_ids(), 20,
		"acks of the first 50 messages")
	old = rig.proxy.connections
	rig.proxy.blackhole()
	log = rig.ax.log_text()
	sm_id = re.findall(r"RECV <enabled [^>]*\bid=['\"]([^'\"]+)", log)
	check(sm_id, "no <enabled id=...> in xmppd's XML log")
	h = re.findall(r"SEND <a xmlns='urn:xmpp:sm:3' h='(\d+)'", log)
	conn = raw_login(ctx.prosody, ctx.certs.ca.cert, rig.a)
	conn.sendall(("<resume xmlns='urn:xmpp:sm:3' previd='%s' h='%s'/>"
		% (sm_id[-1], h[-1] if h else "0")).encode())
	got = read_until(conn, rb"<(resumed|failed)\b[^>]*>")
	check(b"<resumed" in got, "the test could not take the session "
		"over: %r" % got[-300:])
	conn.sendall(("<message to='%s' type='chat'><body>half a sta"
		% rig.b.jid).encode())
	# A clean TCP close after the half stanza: Prosody reads it all,
	# then hibernates the session with its parser inside <body>.
	conn.shutdown(socket.SHUT_WR)
	try:
		while conn.recv(65536):
			pass
	except (OSError, ssl.SSLError):
		pass
	conn.close()
	mark = rig.aw.mark()
	rig.proxy.cut(upto=old)
	rig.proxy.restore()
	t0 = time.monotonic()
	for i in range(50, 150):
		rig.send(body(i))
	ids = set(rig.ids)
	try:
		rig.aw.wait_for(lambda: ids <= rig.acked_ids(), 30,
			"acks of the 100 messages sent into the broken session")
	except F.TestFailure as e:
		raise F.TestFailure("%s; %d acked; states since: %s" % (e,
			len(ids & rig.acked_ids()), [(e.get("state"),
			e.get("reason")) for _, e in rig.aw.select(is_state("online",
			"resumed", "offline"), mark)]))
	rig.finish("resume_into_broken_session")
	check(time.monotonic() - t0 < 45, "recovery took %.0fs"
		% (time.monotonic() - t0))


def check_resumed(rig, mark, timeout=20):
	"""After a cut at mark: offline, then resumed (not a new session)."""
	rig.aw.wait(is_state("offline"), timeout, "offline after the cut", mark)
	t, e = rig.aw.wait(is_state("online", "resumed"), timeout,
		"back online after the cut", mark)
	check(e["state"] == "resumed", "after a cut the stream was not "
		"resumed: %r" % e)


def test_black_hole(ctx):
	"""The connection goes silent both ways (sockets open) at message
	400; 50 messages go into it. With keepalive = 5 and keepalive_timeout
	= 3, xmppd must call it dead (offline) within 5 + 3 s (+1.5 s) of
	the silence starting; then the path is restored."""
	keepalive, timeout = 5, 3
	rig = Rig(ctx, {"server": {"keepalive": keepalive,
		"keepalive_timeout": timeout}})
	marks = {}

	def silence():
		rig.wait_flowing(400)
		marks["a"] = rig.aw.mark()
		marks["conns"] = rig.proxy.connections
		marks["t0"] = time.monotonic()
		rig.proxy.blackhole()

	def detect():
		limit = keepalive + timeout + 1.5
		t, e = rig.aw.wait(is_state("offline"), limit + 10,
			"offline after the black hole", marks["a"])
		took = t - marks["t0"]
		check(took <= limit, "a silent connection was called dead after "
			"%.1fs, not within %.1fs (keepalive %d + %d)" % (took, limit,
			keepalive, timeout))
		early = rig.aw.select(is_state("online", "resumed"), marks["a"])
		check(not [x for x in early if x[0] < t], "came back online "
			"during the black hole: %r" % early)
		# The silent connection never recovers: what xmppd wrote into
		# it is lost, as on a real path that died (and the server's
		# parser stays at a stanza boundary). Attempts made during the
		# black hole go through once it ends.
		rig.proxy.cut(upto=marks["conns"])
		rig.proxy.restore()

	rig.run({400: silence, 450: detect})
	rig.aw.wait(is_state("online", "resumed"), 30, "back online after "
		"the black hole", marks["a"])
	rig.finish("black_hole")


def test_unreachable_backoff(ctx):
	"""The server unreachable (every connection reset at once) with
	reconnect_max = 4 until xmppd has tried 4 times: the waits start at
	about 1 s, grow, and never exceed the cap; then everything is
	delivered. A busy machine can only make waits longer, so the growth
	is checked with lower bounds measured at the proxy (a retry never
	comes early), and the cap with the waits xmppd announces (retry_in,
	whole seconds rounded up) plus a bound on the measured ones."""
	cap, tries = 4, 4
	rig = Rig(ctx, {"server": {"reconnect_max": cap}})
	marks = {}

	def tried():
		return [t for t in list(rig.proxy.accept_times) if t > marks["t0"]]

	def down():
		rig.wait_flowing(300)
		marks["a"] = rig.aw.mark()
		marks["t0"] = time.monotonic()
		rig.proxy.refuse(True)
		rig.proxy.cut(drain=DRAIN)

	def up():
		wait_until(lambda: len(tried()) >= tries, 60, 0.02,
			"%d connection attempts during the outage" % tries)
		rig.proxy.refuse(False)
		marks["t1"] = time.monotonic()

	rig.run({300: down, 350: up})
	t0, t1 = marks["t0"], marks["t1"]
	attempts = [t for t in tried() if t < t1]
	gaps = [b - a for a, b in zip([t0] + attempts, attempts)]
	offline = [e for t, e in rig.aw.select(is_state("offline"), marks["a"])
		if t < t1]
	retry_in = [e.get("retry_in") for e in offline]
	seen = "attempts after %s s; retry_in %s" % (
		["%.2f" % g for g in gaps], retry_in)
	check(offline, "no offline state event during the outage")
	check(all(isinstance(r, int) for r in retry_in), "offline events "
		"without an integer retry_in: %s" % offline[:4])
	check(retry_in[0] <= 1, "the first retry announced in %ds, not about "
		"1 s: %s" % (retry_in[0], seen))
	check(max(retry_in) <= cap, "retry_in above reconnect_max %d: %s"
		% (cap, seen))
	# The delay before retry i is at least half of min(2^i s, cap): a
	# retry storm, or waits that do not grow, fall below these.
	least = [min(2 ** i, cap) / 2 - 0.05 for i in range(len(gaps))]
	early = [(i, g, m) for i, (g, m) in enumerate(zip(gaps, least)) if g < m]
	check(not early, "retries came early (attempt, wait, least): %s; %s"
		% (early, seen))
	check(max(gaps) <= cap + 3.0, "a wait longer than reconnect_max %d "
		"(+3 s for a busy machine): %s" % (cap, seen))
	# Reconnected within a capped wait of the server coming back.
	t, e = rig.aw.wait(is_state("online", "resumed"), cap + 10,
		"back online after the outage", marks["a"])
	check(t - t1 <= cap + 3.0, "online %.1fs after the server came back, "
		"more than reconnect_max %d (+3 s)" % (t - t1, cap))
	rig.finish("unreachable_backoff")


# The outbox and the reconnect command ------------------------------------


def test_offline_sends_queued(ctx):
	"""Sends while offline are accepted (ok, sent queued), counted in
	status, and delivered once after the reconnect."""
	rig = Rig(ctx)
	mark = rig.aw.mark()
	rig.proxy.refuse(True)
	rig.proxy.cut()
	rig.aw.wait(is_state("offline"), 10, "offline after the cut", mark)
	queued = [rig.send("offline %d" % i) for i in range(10)]
	rig.aw.wait_for(lambda: set(queued) <= {e["msg_id"] for _, e in
		rig.aw.select(is_sent("queued"))}, 10, "sent queued for each")
	st = rig.sender.ok("status")
	check(st.get("state") != "online", "status online during the outage")
	check(st.get("outbox") == 10, "status outbox %r, not 10" %
		st.get("outbox"))
	check(not rig.received(), "bob got messages while alice was offline")
	check(not rig.aw.select(is_sent("acked", set(queued))),
		"acked while offline")
	rig.proxy.refuse(False)
	rig.aw.wait(is_state("online", "resumed"), 20, "back online", mark)
	rig.finish("offline_sends_queued")
	wait_until(lambda: rig.sender.ok("status").get("outbox") == 0, 10,
		what="an empty outbox")


def test_reconnect_command_resumes(ctx):
	"""A reconnect command right after a cut resumes the stream."""
	rig = Rig(ctx)
	for i in range(20):
		rig.send(body(i))
	rig.aw.wait_for(lambda: set(rig.ids) <= rig.acked_ids(), 20,
		"acks of the first 20 messages")
	mark = rig.aw.mark()
	rig.proxy.cut()
	rig.sender.ok("reconnect")
	t, e = rig.aw.wait(is_state("online", "resumed", "auth-failed",
		"tls-failed"), 15, "the stream back after reconnect", mark)
	check(e["state"] == "resumed", "reconnect after a cut gave %r, not a "
		"resumed stream" % e)
	for i in range(20, 40):
		rig.send(body(i))
	rig.finish("reconnect_command")


def test_status_sm(ctx):
	"""status says sm true against Prosody (which offers XEP-0198)."""
	a = ctx.account("alice")
	x, c = ctx.online(a)
	st = c.ok("status")
	check(st.get("sm") is True, "status sm %r against Prosody, not true: "
		"%r" % (st.get("sm"), st))
	check(st.get("outbox") == 0, "status outbox %r, not 0" %
		st.get("outbox"))


def test_sm_disabled(ctx):
	"""stream_management = no: status says sm false, xmppd never sends
	<enable/>, and messages still flow (exactly once, in order)."""
	rig = Rig(ctx, {"server": {"stream_management": "no"}})
	st = rig.sender.ok("status")
	check(st.get("sm") is False, "status sm %r with stream_management = "
		"no" % st.get("sm"))
	lines = ctx.prosody.session_log(st["jid"])
	check(lines, "no Prosody session for %s" % st["jid"])
	check(not [ln for ln in lines if "RECV: <enable" in ln
		or "RECV: <resume" in ln], "xmppd enabled stream management "
		"though configured not to")
	for i in range(100):
		rig.send(body(i))
	rig.finish("sm_disabled", expect_acks=False)


def test_max_age_expired(ctx):
	"""max_age = 1: messages queued while the server is unreachable for
	more than 1 s, then a failed resumption (Prosody restarted), come out
	as expired, not sent."""
	rig = Rig(ctx, {"delivery": {"max_age": 1}})
	rig.send("before the outage")
	rig.bw.wait(lambda e: e.get("body") == "before the outage", 10,
		"the first message at bob")
	amark, bmark = rig.aw.mark(), rig.bw.mark()
	rig.proxy.refuse(True)
	rig.proxy.cut()
	rig.aw.wait(is_state("offline"), 10, "offline after the cut", amark)
	stale = ["stale %d" % i for i in range(5)]
	stale_ids = {rig.send(s) for s in stale}
	queued_at = time.monotonic()
	rig.bodies = rig.bodies[:1]	# these must not arrive
	rig.ids = rig.ids[:1]
	try:
		ctx.prosody.restart()		# no session left to resume
	finally:
		if not ctx.prosody.running():
			ctx.prosody.start()
	wait_until(lambda: time.monotonic() - queued_at > 1.5, 5,
		what="max_age to pass")
	rig.proxy.refuse(False)
	t, e = rig.aw.wait(is_state("online", "resumed"), 20, "back online",
		amark)
	check(e["state"] == "online", "a new session was expected after "
		"Prosody's restart, got %r" % e)
	rig.aw.wait_for(lambda: stale_ids <= {e["msg_id"] for _, e in
		rig.aw.select(is_sent("expired"), amark)}, 20,
		"sent expired for the 5 stale messages")
	acked = rig.aw.select(is_sent("acked", stale_ids))
	check(not acked, "expired messages were also acked: %r" % acked)
	rig.bw.wait(is_state("online", "resumed"), 30, "bob back online", bmark)
	rig.finish("max_age_expired")
	got = rig.received()
	check(not set(stale) & set(got), "expired messages reached bob: %s"
		% sorted(set(stale) & set(got)))


# TLS that must not be trusted ---------------------------------------------


def openssl_cert(ctx, name, san, expired=False):
	"""A certificate signed by the test CA with the given SAN, valid now
	or (expired) only on 1-2 January 2020: returns (cert, key)."""
	ca = ctx.certs.ca
	d = ctx.ws.mkdir("certs-" + name, 0o755)
	key, csr, cert, ext = (os.path.join(d, n) for n in ("key.pem",
		"req.csr", "cert.pem", "ext.cnf"))
	with open(ext, "w") as f:
		f.write("subjectAltName=%s\n"
			"basicConstraints=critical,CA:FALSE\n"
			"keyUsage=critical,digitalSignature,keyEncipherment\n"
			"extendedKeyUsage=serverAuth\n" % san)
	F.run(["openssl", "req", "-new", "-newkey", "ec",
		"-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
		"-keyout", key, "-out", csr, "-subj", "/CN=%s" % name])
	if not expired:
		F.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca.cert,
			"-CAkey", ca.key, "-CAcreateserial", "-out", cert, "-days", "2",
			"-extfile", ext])
		return cert, key
	# openssl x509 cannot set past dates in 3.0; openssl ca can.
	cnf = os.path.join(d, "ca.cnf")
	with open(os.path.join(d, "index.txt"), "w"):
		pass
	with open(os.path.join(d, "serial"), "w") as f:
		f.write("%016x\n" % int.from_bytes(os.urandom(7), "big"))
	with open(cnf, "w") as f:
		f.write("[ca]\ndefault_ca = t\n[t]\ndatabase = {d}/index.txt\n"
			"new_certs_dir = {d}\nserial = {d}/serial\ndefault_md = sha256\n"
			"policy = p\nunique_subject = no\n[p]\ncommonName = supplied\n"
			.format(d=d))
	F.run(["openssl", "ca", "-batch", "-config", cnf, "-cert", ca.cert,
		"-keyfile", ca.key, "-in", csr, "-out", cert, "-notext",
		"-startdate", "20200101000000Z", "-enddate", "20200102000000Z",
		"-extfile", ext])
	return cert, key


def spki_pin(cert):
	"""sha256/BASE64 of the certificate's SubjectPublicKeyInfo, as
	openssl x509 -pubkey | openssl pkey -pubin -outform der | openssl
	dgst -sha256 -binary | base64 computes it."""
	pub = subprocess.run(["openssl", "x509", "-in", cert, "-pubkey",
		"-noout"], stdout=subprocess.PIPE, check=True).stdout
	der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"],
		input=pub, stdout=subprocess.PIPE, check=True).stdout
	return "sha256/" + base64.b64encode(hashlib.sha256(der).digest()).decode()


STREAM_HEADER = ("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
	"xmlns:stream='http://etherx.jabber.org/streams' id='stub%d' "
	"from='localhost' version='1.0'>")


class TlsStub:
	"""Just enough of an XMPP server to offer STARTTLS and present a
	given certificate. After TLS it offers SASL, so a client that
	wrongly trusts the certificate is caught sending <auth>. Serves one
	connection at a time, each bounded in time and size."""

	def __init__(self, cert, key, log_path):
		self.log_path = log_path
		self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
		self.tls.load_cert_chain(cert, key)
		self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
		self.sock.bind(("127.0.0.1", 0))
		self.sock.listen(8)
		self.sock.settimeout(0.2)
		self.port = self.sock.getsockname()[1]
		self.connections = 0
		self.handshakes = 0	# TLS handshakes the client completed
		self.after_tls = b""	# all a client sent over TLS
		self.notes = []
		self._stop = False
		self._thread = threading.Thread(target=self._serve, daemon=True)
		self._thread.start()

	def _serve(self):
		while not self._stop:
			try:
				conn, _ = self.sock.accept()
			except socket.timeout:
				continue
			except OSError:
				return
			self.connections += 1
			try:
				self._session(conn)
			except Exception as e:
				self.notes.append("connection %d: %r" % (self.connections, e))
			finally:
				conn.close()

	@staticmethod
	def _read_until(conn, pattern, limit=65536):
		data = b""
		while not re.search(pattern, data):
			chunk = conn.recv(4096)
			if not chunk:
				raise EOFError("closed before %r: %r" % (pattern, data[-200:]))
			data += chunk
			if len(data) > limit:
				raise EOFError("too much data")
		return data

	def _session(self, conn):
		conn.settimeout(5)
		n = self.connections
		self._read_until(conn, rb"<stream:stream[^>]*>")
		conn.sendall((STREAM_HEADER % n + "<stream:features><starttls "
			"xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
			"</stream:features>").encode())
		self._read_until(conn, rb"<starttls[^>]*>")
		conn.sendall(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
		tls = self.tls.wrap_socket(conn, server_side=True)
		self.handshakes += 1
		self.notes.append("connection %d: TLS handshake completed" % n)
		data = self._read_until(tls, rb"<stream:stream[^>]*>")
		self.after_tls += data
		tls.sendall((STREAM_HEADER % n + "<stream:features><mechanisms "
			"xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1"
			"</mechanism><mechanism>PLAIN</mechanism></mechanisms>"
			"</stream:features>").encode())
		try:
			self.after_tls += self._read_until(tls, rb"<auth[^>]*>")
		except (OSError, EOFError):
			pass

	def stop(self):
		self._stop = True
		self.sock.close()
		self._thread.join(6)
		with open(self.log_path, "a") as f:
			f.write("%d connections, %d TLS handshakes\n%s\n%r\n" % (
				self.connections, self.handshakes, "\n".join(self.notes),
				self.after_tls[:2000]))


def check_stub_rejected(ctx, cert, key, reason_re, what):
	"""xmppd against a TlsStub presenting cert: tls-failed with a
	reason matching reason_re, one connection, no TLS session, no auth."""
	stub = own(ctx, TlsStub(cert, key, ctx.ws.mkdir("stub") + "/stub.log"))
	a = ctx.account("alice")
	x = ctx.xmppd(a, {"server": {"host": "127.0.0.1", "port": stub.port}})
	c = x.client()
	c.ok("subscribe", events=["state"])
	st = c.wait_state(FINAL, 20)
	check(st.get("state") == "tls-failed", "%s: state %r, not tls-failed: "
		"%r" % (what, st.get("state"), st))
	reason = st.get("reason") or c.ok("status").get("reason") or ""
	check(re.search(reason_re, reason, re.I), "%s: reason %r does not say "
		"so" % (what, reason))
	time.sleep(QUIET_SECONDS)  # watching for retries: nothing may come
	check(stub.connections == 1, "%s: %d connections in %ds, not 1"
		% (what, stub.connections, QUIET_SECONDS))
	check(stub.handshakes == 0 and b"<auth" not in stub.after_tls,
		"%s: xmppd completed the TLS handshake (%d) or sent %r" % (what,
		stub.handshakes, stub.after_tls[:300]))
	check(c.ok("status").get("state") == "tls-failed", "state moved on")
	check(x.running(), "xmppd exited")


def test_tls_wrong_name(ctx):
	"""A certificate from the trusted CA, but for another name."""
	cert, key = openssl_cert(ctx, "wrong.example", "DNS:wrong.example")
	check_stub_rejected(ctx, cert, key, r"name|owner|match",
		"a certificate for wrong.example")


def test_tls_expired(ctx):
	"""A certificate for localhost from the trusted CA, expired in 2020."""
	cert, key = openssl_cert(ctx, "localhost", "DNS:localhost,"
		"IP:127.0.0.1", expired=True)
	check_stub_rejected(ctx, cert, key, r"expired",
		"an expired certificate")


def test_tls_pin_mismatch(ctx):
	"""A pin that is not Prosody's key: tls-failed even though the CA
	file vouches for the certificate; no login, no retries."""
	a = ctx.account("alice")
	offset = ctx.prosody.log_offset()
	pin = spki_pin(ctx.certs.other_cert)
	x = ctx.xmppd(a, {"server": {"pin": pin}})
	c = x.client()
	c.ok("subscribe", events=["state"])
	st = c.wait_state(FINAL, 20)
	check(st.get("state") == "tls-failed", "state %r, not tls-failed: %r"
		% (st.get("state"), st))
	reason = st.get("reason") or c.ok("status").get("reason") or ""
	check(re.search(r"pin", reason, re.I), "reason %r does not mention "
		"the pin" % reason)
	time.sleep(QUIET_SECONDS)  # watching for retries: nothing may come
	log = ctx.prosody.log_since(offset)
	check(not sasl_auths(log, a.user), "xmppd tried to log in: %s"
		% sasl_auths(log, a.user))
	connects = log.count("Client connected")
	check(connects == 1, "%d connections in %ds, not 1" % (connects,
		QUIET_SECONDS))
	check(c.ok("status").get("state") == "tls-failed", "state moved on")


def test_tls_pin_only(ctx):
	"""The right pin and no ca_file at all (the test CA is in no trust
	store): xmppd connects."""
	a = ctx.account("alice")
	x = ctx.xmppd(a, {"server": {"pin": spki_pin(ctx.certs.cert)}},
		ca_file=None)
	c = x.client()
	c.ok("subscribe", events=["state"])
	st = c.wait_state(FINAL, 20)
	check(st.get("state") == "online", "with the right pin: %r" % st)
