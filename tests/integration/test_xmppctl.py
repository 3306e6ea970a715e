"""xmppctl, the companion command, and contrib/xmppd-notify: the real
binaries against a real xmppd on a private Prosody. xmppctl is found
beside the xmppd binary (BUILD/ctl/xmppctl), or at $XMPPCTL."""

import json
import os
import shlex
import signal
import socket
import subprocess
import threading
import time

import fixtures as F
from fixtures import check

ROOT = os.path.normpath(os.path.join(F.HERE, "..", ".."))
NOTIFY = os.path.join(ROOT, "contrib", "xmppd-notify")


def xmppctl_bin(ctx):
	path = os.environ.get("XMPPCTL") or os.path.join(
		os.path.dirname(ctx.xmppd_bin), "ctl", "xmppctl")
	check(os.access(path, os.X_OK), "no xmppctl binary at %s (build it, "
		"or set XMPPCTL)" % path)
	return path


class Result:
	"""What a finished xmppctl run left: rc, out, err (str)."""

	def __init__(self, proc):
		self.rc = proc.returncode
		self.out = proc.stdout.decode("utf-8", "replace")
		self.err = proc.stderr.decode("utf-8", "replace")

	def __repr__(self):
		return "<xmppctl rc=%d out=%r err=%r>" % (self.rc, self.out[-600:],
			self.err[-600:])


def ctl(ctx, x, *args, stdin=b"", env=None, timeout=40):
	"""Runs xmppctl --socket (x's socket) args; x may be a socket path."""
	sock = x if x is None or isinstance(x, str) else x.socket
	cmd = [xmppctl_bin(ctx)]
	if sock is not None:
		cmd += ["--socket", sock]
	p = subprocess.run(cmd + list(args), input=stdin, env=env,
		stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
	r = Result(p)
	check("Sanitizer" not in r.err and "runtime error" not in r.err,
		"xmppctl %s: %s" % (" ".join(args), r.err[-3000:]))
	return r


def ok(ctx, x, *args, **kw):
	r = ctl(ctx, x, *args, **kw)
	check(r.rc == 0, "xmppctl %s failed: %r" % (" ".join(args), r))
	return r


class Background:
	"""A process whose stdout is read line by line (xmppctl listen, the
	notifier); stopped by the runner after the test."""

	def __init__(self, ctx, cmd, env=None, name="xmppctl"):
		self.log_path = ctx.ws.path("%s-%d.err" % (name, id(self)))
		self.err = open(self.log_path, "ab")
		self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
			stdout=subprocess.PIPE, stderr=self.err, env=env,
			start_new_session=True)
		self.reader = F.LineReader(self.proc.stdout.fileno())
		ctx._owned.append(self)

	def line(self, timeout=10):
		"""The next line of output (str); fails at EOF or timeout."""
		ln = self.reader.readline(timeout)
		check(ln is not None, "%s exited (%s) before writing a line: %s"
			% (self.proc.args[:3], self.proc.poll(), F.tail(self.log_path, 5)))
		return ln.decode("utf-8")

	def lines_until(self, pred, timeout=10, skip_sync=True):
		"""Lines up to the first that satisfies pred (included)."""
		deadline = time.monotonic() + timeout
		got = []
		while True:
			left = deadline - time.monotonic()
			check(left > 0, "no such line within %.0fs; got %r" % (timeout,
				got[-10:]))
			ln = self.line(left)
			if skip_sync and "sync-" in ln:
				continue
			got.append(ln)
			if pred(ln):
				return got

	def wait(self, timeout=15):
		return self.proc.wait(timeout)

	def stop(self):
		if self.proc.poll() is None:
			F.stop_process(self.proc, timeout=5)
		self.proc.stdout.close()
		self.err.close()


def listen(ctx, x, *args, env=None):
	return Background(ctx, [xmppctl_bin(ctx), "--socket", x.socket,
		"listen"] + list(args), env=env)


def pair(ctx):
	"""alice and bob online, each in an xmppd of their own:
	(a, ax, ac, b, bx, bc)."""
	a, b = ctx.account("alice"), ctx.account("bob")
	ax, ac = ctx.online(a)
	bx, bc = ctx.online(b)
	return a, ax, ac, b, bx, bc


def deliver(bc, ac, to, body):
	"""bob sends body to alice; returns the message event alice got."""
	bc.ok("send", to=to, body=body)
	return ac.wait_event(lambda e: e.get("event") == "message"
		and e.get("body") == body, 10, "message %r at alice" % body[:40])


def sync(lst, bc, to, timeout=20):
	"""Sends bob's "sync-N" messages until the listener shows one: from
	then on it is subscribed. Later sync lines are skipped by
	lines_until."""
	deadline = time.monotonic() + timeout
	n = 0
	while True:
		n += 1
		bc.ok("send", to=to, body="sync-%d" % n)
		try:
			ln = lst.line(0.5)
			if "sync-" in ln:
				return
		except F.ReadTimeout:
			pass
		check(time.monotonic() < deadline, "the listener showed none of %d "
			"sync messages" % n)


def seq_of_now(x):
	"""The seq of the last event xmppd published (the greeting's)."""
	c = x.client()
	try:
		return c.greeting["seq"]
	finally:
		c.close()


# ---- status, socket ----

def test_status_human_and_json(ctx):
	a = ctx.account("alice")
	x, c = ctx.online(a)
	r = ok(ctx, x, "status")
	lines = r.out.splitlines()
	check("state: online" in lines, "no 'state: online' in %r" % r.out)
	check("jid: %s/xmppd" % a.jid in lines, "no bound jid in %r" % r.out)
	check(r.err == "", "stderr %r" % r.err)
	r = ok(ctx, x, "--json", "status")
	lines = r.out.splitlines()
	check(len(lines) == 1, "--json printed %d lines" % len(lines))
	st = json.loads(lines[0])
	check(st.get("ok") is True and st.get("state") == "online"
		and st.get("jid") == a.jid + "/xmppd", "reply %r" % st)
	# --json after the command works the same.
	st2 = json.loads(ok(ctx, x, "status", "--json").out)
	check(st2.get("state") == "online", "status --json: %r" % st2)


def test_default_socket_path(ctx):
	"""Without --socket: $XMPPD_SOCKET, else the daemon's own default
	$XDG_RUNTIME_DIR/xmppd/xmppd.sock."""
	a = ctx.account("alice")
	rt = ctx.ws.mkdir("runtime", 0o700)
	path = os.path.join(rt, "xmppd", "xmppd.sock")
	x = ctx.xmppd(a, {"control": {"socket": path}}, start=False)
	x.socket = path
	x.start()
	env = dict(os.environ, XDG_RUNTIME_DIR=rt)
	env.pop("XMPPD_SOCKET", None)
	r = ctl(ctx, None, "--json", "status", env=env)
	check(r.rc == 0 and json.loads(r.out)["ok"], "default path: %r" % r)
	env = dict(os.environ, XMPPD_SOCKET=x.socket, XDG_RUNTIME_DIR="/nonexistent")
	r = ctl(ctx, None, "status", env=env)
	check(r.rc == 0, "XMPPD_SOCKET: %r" % r)


# ---- send ----

def test_send_text(ctx):
	a, ax, ac, b, bx, bc = pair(ctx)
	body = "hello from xmppctl \u263a <&> %f" % time.time()
	r = ok(ctx, ax, "send", b.jid, body)
	msg_id = r.out.strip()
	check(msg_id and "\n" not in msg_id, "send printed %r, not a msg_id"
		% r.out)
	ev = bc.wait_event(lambda e: e.get("event") == "message"
		and e.get("body") == body, 10, "the message at bob")
	check(ev.get("from", "").startswith(a.jid + "/"), "from %r" % ev)
	# Several operands are one text, joined by spaces.
	ok(ctx, ax, "send", b.jid, "two", "words")
	bc.wait_event(lambda e: e.get("body") == "two words", 10, "two words")
	# --json prints the reply.
	r = ok(ctx, ax, "--json", "send", b.jid, "as json")
	rep = json.loads(r.out)
	check(rep["ok"] is True and rep.get("msg_id"), "reply %r" % rep)


def test_send_stdin(ctx):
	a, ax, ac, b, bx, bc = pair(ctx)
	text = "line one\n  line two \u00e9\n\ttabbed $(not run)\n"
	ok(ctx, ax, "send", b.jid, stdin=text.encode())
	ev = bc.wait_event(lambda e: e.get("body", "").startswith("line one"),
		10, "the stdin message at bob")
	check(ev["body"] == text.rstrip("\n"), "body %r, not %r" % (ev["body"],
		text.rstrip("\n")))
	ok(ctx, ax, "send", b.jid, "-", stdin=b"from dash\n\n")
	bc.wait_event(lambda e: e.get("body") == "from dash", 10, "'-' message")
	# Bounded: more than 1 MiB is refused before anything is sent.
	r = ctl(ctx, ax, "send", b.jid, stdin=b"x" * ((1 << 20) + 1))
	check(r.rc == 1 and "longer than" in r.err, "oversized stdin: %r" % r)
	r = ctl(ctx, ax, "send", b.jid, stdin=b"\xff\xfe not utf-8")
	check(r.rc == 1 and "UTF-8" in r.err, "invalid UTF-8: %r" % r)


def test_send_wait_acked(ctx):
	a, ax, ac, b, bx, bc = pair(ctx)
	ac.ok("subscribe", events=["sent"])
	r = ok(ctx, ax, "send", "--wait", b.jid, "wait for the ack")
	msg_id = r.out.strip()
	# Independently: xmppd published acked for that id.
	ac.wait_event(lambda e: e.get("event") == "sent"
		and e.get("msg_id") == msg_id and e.get("status") == "acked", 10,
		"acked for %s" % msg_id)
	r = ok(ctx, ax, "--json", "send", "--wait", b.jid, "json wait")
	lines = [json.loads(ln) for ln in r.out.splitlines()]
	check(len(lines) == 2, "--json --wait printed %r" % r.out)
	check(lines[0]["ok"] is True, "reply %r" % lines[0])
	check(lines[1].get("event") == "sent" and lines[1].get("status") == "acked"
		and lines[1].get("msg_id") == lines[0]["msg_id"], "event %r"
		% lines[1])


def test_send_wait_times_out_offline(ctx):
	"""Offline, nothing can be acked: --wait gives up with exit 1 after
	--timeout, and says the message stays queued."""
	a = ctx.account("alice")
	x = ctx.xmppd(a, {"server": {"port": str(F.free_port())}})
	t0 = time.monotonic()
	r = ctl(ctx, x, "--timeout", "1.5", "send", "--wait",
		"nobody@localhost", "queued")
	took = time.monotonic() - t0
	check(r.rc == 1 and "remote-server-timeout" in r.err, "offline: %r" % r)
	check(r.out.strip() != "", "no msg_id printed: %r" % r)
	check(1.2 < took < 10, "gave up after %.1fs, not about 1.5s" % took)


# ---- listen ----

def test_listen_prints_messages(ctx):
	a, ax, ac, b, bx, bc = pair(ctx)
	lst = listen(ctx, ax)
	sync(lst, bc, a.jid)
	deliver(bc, ac, a.jid, "first")
	deliver(bc, ac, a.jid, "second\nhas two lines")
	got = lst.lines_until(lambda ln: ln == "\thas two lines")
	prefix = "%s/" % b.jid
	check(len(got) == 3, "listen printed %r" % got)
	check(got[0].startswith(prefix) and got[0].endswith(": first"),
		"line %r is not 'FROM: first'" % got[0])
	check(got[1].startswith(prefix) and got[1].endswith(": second"),
		"line %r" % got[1])


def test_listen_json(ctx):
	a, ax, ac, b, bx, bc = pair(ctx)
	since = seq_of_now(ax)
	lst = listen(ctx, ax, "--json", "--since", str(since))
	ev = deliver(bc, ac, a.jid, "json \"quoted\" body")
	got = json.loads(lst.lines_until(lambda ln: "quoted" in ln)[-1])
	check(got == ev, "listen --json printed %r, the event was %r" % (got, ev))


def test_listen_from_filters(ctx):
	a, ax, ac, b, bx, bc = pair(ctx)
	c = ctx.account("carol")
	cx, cc = ctx.online(c)
	since = seq_of_now(ax)
	lst = listen(ctx, ax, "--from", b.jid, "--since", str(since))
	deliver(cc, ac, a.jid, "from carol")
	deliver(bc, ac, a.jid, "from bob")
	got = lst.lines_until(lambda ln: ln.endswith(": from bob"))
	check(len(got) == 1, "--from %s let through %r" % (b.jid, got))
	r = ctl(ctx, ax, "listen", "--from", "@bad@jid")
	check(r.rc == 1 and "invalid-jid" in r.err, "bad --from: %r" % r)


def test_listen_since_replays(ctx):
	a, ax, ac, b, bx, bc = pair(ctx)
	evs = [deliver(bc, ac, a.jid, "missed %d" % i) for i in range(3)]
	lst = listen(ctx, ax, "--since", str(evs[0]["seq"] - 1))
	got = lst.lines_until(lambda ln: ln.endswith(": missed 2"))
	check([ln.split(": ", 1)[1] for ln in got] == ["missed 0", "missed 1",
		"missed 2"], "replay %r" % got)
	lst = listen(ctx, ax, "--json", "--since", str(evs[0]["seq"]))
	got = lst.lines_until(lambda ln: "missed 2" in ln)
	check([json.loads(ln)["seq"] for ln in got] == [evs[1]["seq"],
		evs[2]["seq"]], "since %d replayed %r" % (evs[0]["seq"], got))
	# Live after the replay, with no gap at the seam.
	deliver(bc, ac, a.jid, "live after replay")
	lst.lines_until(lambda ln: "live after replay" in ln)


DUMP = r"""
import json, os, sys, time
out = sys.argv[1]
seq = os.environ.get("XMPP_SEQ")
with open(out + ".order", "a") as f:
	f.write("start %s\n" % seq)
env = {k: v for k, v in os.environ.items() if k.startswith("XMPP_")}
with open(out, "a") as f:
	f.write(json.dumps({"argv": sys.argv[1:], "env": env}) + "\n")
time.sleep(0.3)
with open(out + ".order", "a") as f:
	f.write("end %s\n" % seq)
"""


def test_listen_exec_no_injection(ctx):
	a, ax, ac, b, bx, bc = pair(ctx)
	d = ctx.ws.mkdir("exec")
	dump = os.path.join(d, "dump.py")
	with open(dump, "w") as f:
		f.write(DUMP)
	out = os.path.join(d, "calls")
	pwned = [os.path.join(d, "pwned%d" % i) for i in range(5)]
	evil = ("$(touch %s) `touch %s` '; touch %s; ' \"; touch %s; \" "
		"$HOME ${PATH} \\ & | ; < > * ?\nsecond line; touch %s\n\tend"
		% tuple(pwned))
	since = seq_of_now(ax)
	cmd = "%s %s %s" % (F.PYTHON, shlex.quote(dump), shlex.quote(out))
	env = dict(os.environ, XMPP_SUBJECT="inherited, must not leak")
	lst = Background(ctx, [xmppctl_bin(ctx), "--socket", ax.socket, "listen",
		"--since", str(since), "--exec", cmd], env=env)
	e1 = deliver(bc, ac, a.jid, evil)
	e2 = deliver(bc, ac, a.jid, "plain")

	def order():
		try:
			with open(out + ".order") as f:
				return f.read().split("\n")[:-1]
		except OSError:
			return []
	F.wait_until(lambda: len(order()) == 4, 15, 0.05, "two runs")
	check(order() == ["start %d" % e1["seq"], "end %d" % e1["seq"],
		"start %d" % e2["seq"], "end %d" % e2["seq"]],
		"runs overlapped or came out of order: %r" % order())
	with open(out) as f:
		calls = [json.loads(ln) for ln in f]
	check(len(calls) == 2, "%d runs" % len(calls))
	for call, ev in zip(calls, (e1, e2)):
		env = call["env"]
		check(call["argv"] == [out], "argv %r" % call["argv"])
		check(env.get("XMPP_BODY") == ev["body"], "XMPP_BODY %r, not %r"
			% (env.get("XMPP_BODY"), ev["body"]))
		for var, field in (("XMPP_FROM", "from"), ("XMPP_TO", "to"),
				("XMPP_TYPE", "type"), ("XMPP_MSG_ID", "msg_id")):
			check(env.get(var) == ev.get(field), "%s %r, event %s %r"
				% (var, env.get(var), field, ev.get(field)))
		check(env.get("XMPP_SEQ") == str(ev["seq"]), "XMPP_SEQ %r"
			% env.get("XMPP_SEQ"))
		check("XMPP_SUBJECT" not in env, "XMPP_SUBJECT leaked: %r"
			% env.get("XMPP_SUBJECT"))
	for p in pwned:
		check(not os.path.exists(p), "the body ran a command: %s exists" % p)


def test_listen_exits_3_when_daemon_stops(ctx):
	a, ax, ac, b, bx, bc = pair(ctx)
	since = seq_of_now(ax)
	lst = listen(ctx, ax, "--since", str(since))
	ev = deliver(bc, ac, a.jid, "before the stop")
	lst.lines_until(lambda ln: ln.endswith(": before the stop"))
	ax.stop()
	rc = lst.wait(10)
	check(rc == 3, "listen exited %r, not 3, when xmppd stopped" % rc)
	err = F.tail(lst.log_path, 5)
	check("--since" in err and str(ev["seq"]) in err,
		"no resume hint with the last seq %d: %r" % (ev["seq"], err))


# ---- roster, presence, join, raw, history ----

def test_roster(ctx):
	(a, ax, ac), (b, bx, bc) = ctx.subscribed_pair()
	ac.ok("roster-set", jid=b.jid, name="Bob B", groups=["Friends", "Work"])
	F.wait_until(lambda: any(i.get("name") == "Bob B" for i in
		ac.ok("roster")["items"]), 10, 0.1, "the roster push")
	r = ok(ctx, ax, "roster")
	rows = [ln.split("\t") for ln in r.out.splitlines()]
	check(any(row[:3] == [b.jid, "both", "Bob B"] and len(row) == 4
		and sorted(row[3].split(",")) == ["Friends", "Work"] for row in rows),
		"roster printed %r" % r.out)
	rep = json.loads(ok(ctx, ax, "--json", "roster").out)
	check(any(i["jid"] == b.jid and i["subscription"] == "both"
		for i in rep["items"]), "roster --json %r" % rep)


def test_presence(ctx):
	(a, ax, ac), (b, bx, bc) = ctx.subscribed_pair()
	a_full = ac.ok("status")["jid"]
	r = ok(ctx, ax, "presence", "away", "out", "for", "lunch")
	check(r.out == "", "presence printed %r" % r.out)
	bc.wait_event(lambda e: e.get("event") == "presence"
		and e.get("from") == a_full and e.get("show") == "away"
		and e.get("status") == "out for lunch", 10, "away at bob")
	ok(ctx, ax, "presence", "--priority", "5", "dnd")
	bc.wait_event(lambda e: e.get("event") == "presence"
		and e.get("from") == a_full and e.get("show") == "dnd"
		and e.get("priority") == 5 and "status" not in e, 10, "dnd at bob")
	ok(ctx, ax, "presence", "available")
	bc.wait_event(lambda e: e.get("event") == "presence"
		and e.get("from") == a_full and "show" not in e
		and e.get("type") in (None, "available"), 10, "available at bob")
	r = ctl(ctx, ax, "presence", "sleeping")
	check(r.rc == 2 and "usage:" in r.err, "bad show: %r" % r)


def test_join(ctx):
	a = ctx.account("alice")
	x, c = ctx.online(a)
	room = "xmppctl-%d@conference.localhost" % os.getpid()
	r = ok(ctx, x, "join", room, "alice")
	check(r.out.startswith("joined %s as alice" % room), "join printed %r"
		% r.out)
	rooms = c.ok("muc-rooms")["rooms"]
	check(any(rm["room"] == room and rm["state"] == "joined" for rm in rooms),
		"not in the room: %r" % rooms)
	rep = json.loads(ok(ctx, x, "--json", "join", room, "alice").out)
	check(rep["ok"] is True and rep["room"] == room, "join --json %r" % rep)
	r = ctl(ctx, x, "join", room)
	check(r.rc == 2, "join without NICK: %r" % r)


def test_raw(ctx):
	a = ctx.account("alice")
	x, c = ctx.online(a)
	r = ok(ctx, x, "raw", '{"cmd":"status","id":"mine"}')
	rep = json.loads(r.out)
	check(rep["id"] == "mine" and rep["ok"] is True
		and rep["state"] == "online", "raw reply %r" % rep)
	r = ctl(ctx, x, "raw", '{"cmd":"presences"}')
	check(r.rc == 0 and json.loads(r.out)["ok"] is True, "raw %r" % r)
	r = ctl(ctx, x, "raw", '{"cmd":"sned"}')
	check(r.rc == 1 and json.loads(r.out)["error"]["condition"] ==
		"unknown-command", "raw unknown command: %r" % r)
	check(r.err.startswith("xmppctl: unknown-command: "), "stderr %r" % r.err)
	r = ctl(ctx, x, "raw", "not json")
	check(r.rc == 2, "raw with bad JSON: %r" % r)


def test_history(ctx):
	a, ax, ac, b, bx, bc = pair(ctx)
	e1 = deliver(bc, ac, a.jid, "history one")
	deliver(bc, ac, a.jid, "history two")
	r = ok(ctx, ax, "history", "--with", b.jid, "--max", "10")
	lines = r.out.splitlines()
	for body in ("history one", "history two"):
		check(any(ln.endswith(": " + body) and b.jid in ln for ln in lines),
			"history does not show %r: %r" % (body, r.out))
	rep = json.loads(ok(ctx, ax, "--json", "history", "--with", b.jid).out)
	check(rep["ok"] is True, "history --json %r" % rep)
	# --since needs a daemon with a message log; without one its error
	# is printed as it came.
	r = ctl(ctx, ax, "history", "--since", str(e1["seq"]))
	if r.rc == 0:
		check("history two" in r.out and "history one" not in r.out,
			"history --since %d: %r" % (e1["seq"], r.out))
	else:
		check(r.rc == 1 and r.err.startswith("xmppctl: ") and ": " in
			r.err[9:], "history --since failed without a reason: %r" % r)
	r = ctl(ctx, ax, "history", "--max", "ten")
	check(r.rc == 2, "--max ten: %r" % r)


# ---- exit status ----

class FakeDaemon:
	"""A Unix socket that plays a broken xmppd: behave(conn) is called per
	connection in a thread."""

	def __init__(self, ctx, behave, listen=True):
		self.path = os.path.join(ctx.ws.mkdir("fake", 0o700), "s.sock")
		self.sock = socket.socket(socket.AF_UNIX)
		self.sock.bind(self.path)
		if listen:
			self.sock.listen(4)
			threading.Thread(target=self._serve, args=(behave,),
				daemon=True).start()
		ctx.ws.defer(self.sock.close)

	def _serve(self, behave):
		while True:
			try:
				conn, _ = self.sock.accept()
			except OSError:
				return
			with conn:
				try:
					behave(conn)
				except OSError:
					pass


HELLO = b'{"event":"hello","version":1,"daemon":"fake","state":"online","seq":7}\n'


def test_exit_codes(ctx):
	a = ctx.account("alice")
	x, c = ctx.online(a)
	# 1: the daemon refused the request.
	r = ctl(ctx, x, "send", "not a jid@@", "hi")
	check(r.rc == 1 and r.err.startswith("xmppctl: invalid-jid"),
		"invalid JID: %r" % r)
	# 2: usage.
	for args in ((), ("bogus",), ("send",), ("status", "extra"),
			("listen", "--since", "-1"), ("--timeout", "0", "status"),
			("status", "--no-such-option")):
		r = ctl(ctx, x, *args)
		check(r.rc == 2 and "usage:" in r.err, "%r: %r" % (args, r))
	check(ok(ctx, x, "--help").out.startswith("usage:"), "--help")
	# 3: nobody there, or refused.
	missing = ctx.ws.path("no-such.sock")
	r = ctl(ctx, missing, "status")
	check(r.rc == 3 and missing in r.err, "missing socket: %r" % r)
	dead = FakeDaemon(ctx, None, listen=False)
	r = ctl(ctx, dead.path, "status")
	check(r.rc == 3, "refused: %r" % r)


def test_exit_codes_fake_daemon(ctx):
	"""Closed connections give 3; a daemon that breaks the protocol, or
	does not answer within --timeout, gives 1."""
	def close_at_once(conn):
		pass

	def close_after_request(conn):
		conn.sendall(HELLO)
		conn.recv(65536)

	def garbage(conn):
		conn.sendall(b"this is not json\n")

	def too_slow(conn):
		conn.sendall(HELLO + b'{"event":"error","condition":"too-slow",'
			b'"text":"output not read fast enough"}\n')

	def silent(conn):
		conn.sendall(HELLO)
		time.sleep(3)

	def wrong_version(conn):
		conn.sendall(HELLO.replace(b'"version":1', b'"version":2'))

	def refuses(conn):
		conn.sendall(b'{"ok":false,"error":{"condition":"not-authorized",'
			b'"text":"uid 1 may not use this socket"}}\n')

	for behave, rc, what in ((close_at_once, 3, "closed the connection"),
			(close_after_request, 3, "closed the connection"),
			(too_slow, 3, "too-slow: output not read fast enough"),
			(refuses, 3, "not-authorized: uid 1"),
			(garbage, 1, "not a JSON object"),
			(wrong_version, 1, "protocol version 2"),
			(silent, 1, "timed out")):
		fake = FakeDaemon(ctx, behave)
		r = ctl(ctx, fake.path, "--timeout", "1", "status")
		check(r.rc == rc and what in r.err, "%s: want %d and %r, got %r"
			% (behave.__name__, rc, what, r))


# ---- contrib/xmppd-notify ----

FAKE_NOTIFY_SEND = """#!/bin/sh
# Records its arguments, one JSON array per call.
exec %s -c 'import json, sys
with open(sys.argv[1], "a") as f:
	f.write(json.dumps(sys.argv[2:]) + "\\n")' %s "$@"
"""


def test_notifier_shows_what_it_missed(ctx):
	a, ax, ac, b, bx, bc = pair(ctx)
	d = ctx.ws.mkdir("notify")
	bindir = os.path.join(d, "bin")
	os.mkdir(bindir)
	record = os.path.join(d, "notifications")
	with open(os.path.join(bindir, "notify-send"), "w") as f:
		f.write(FAKE_NOTIFY_SEND % (F.PYTHON, shlex.quote(record)))
	os.chmod(os.path.join(bindir, "notify-send"), 0o755)
	os.symlink(xmppctl_bin(ctx), os.path.join(bindir, "xmppctl"))
	state = os.path.join(d, "state")
	seqfile = os.path.join(state, "xmppd", "notify.seq")
	env = dict(os.environ, PATH=bindir + ":" + os.environ["PATH"],
		XDG_STATE_HOME=state, XMPPD_SOCKET=ax.socket, XMPPD_NOTIFY_RETRY="1")
	env.pop("XMPPCTL", None)
	env.pop("NOTIFY_SEND", None)

	def shown():
		try:
			with open(record) as f:
				return [json.loads(ln) for ln in f]
		except OSError:
			return []

	def saved():
		try:
			with open(seqfile) as f:
				return f.read()
		except OSError:
			return None

	def bodies():
		return [n[-1] for n in shown() if not n[-1].startswith("sync-")]

	def start():
		return Background(ctx, ["/bin/sh", NOTIFY], env=env, name="notify")

	n = start()
	# The first start has no saved seq: it begins with what comes next.
	k = 0
	while not shown():
		k += 1
		check(k < 40, "the notifier showed none of the sync messages")
		bc.ok("send", to=a.jid, body="sync-%d" % k)
		try:
			F.wait_until(shown, 0.5, 0.05, "a notification")
		except F.TestFailure:
			pass
	m1 = deliver(bc, ac, a.jid, "one: $(touch %s/pwned)" % d)
	m2 = deliver(bc, ac, a.jid, "-two")
	F.wait_until(lambda: saved() == "%d\n" % m2["seq"], 15, 0.05,
		"notify.seq to hold %d" % m2["seq"])
	check(bodies() == [m1["body"], m2["body"]], "shown %r" % shown())
	b_full = m1["from"]
	check(shown()[-1] == ["--", "XMPP: %s" % b_full, "-two"],
		"notify-send arguments %r" % shown()[-1])
	n.stop()
	check(n.proc.returncode is not None, "notifier still running")
	F.wait_until(lambda: not listeners(ax), 5, 0.05,
		"the notifier's xmppctl to be gone")
	# While it is down.
	m3 = deliver(bc, ac, a.jid, "three, while the notifier was down")
	start()
	F.wait_until(lambda: saved() == "%d\n" % m3["seq"], 15, 0.05,
		"notify.seq to hold %d" % m3["seq"])
	check(bodies() == [m1["body"], m2["body"], m3["body"]],
		"after the restart: %r" % bodies())
	check(not os.path.exists(os.path.join(d, "pwned")), "a body ran a command")


def listeners(x):
	"""Command lines of processes whose arguments name x's socket."""
	out = []
	for pid in os.listdir("/proc"):
		if not pid.isdigit():
			continue
		try:
			with open("/proc/%s/cmdline" % pid, "rb") as f:
				argv = f.read().decode("utf-8", "replace").split("\0")
			with open("/proc/%s/environ" % pid, "rb") as f:
				envs = f.read().decode("utf-8", "replace").split("\0")
		except OSError:
			continue
		if "XMPPD_SOCKET=%s" % x.socket in envs and "listen" in argv:
			out.append(argv)
	return out
