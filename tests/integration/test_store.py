"""The durable store (SQLite): a send answered ok survives kill -9 of
the daemon and reaches the peer exactly once; the message log replays
what a subscriber missed (subscribe with since), also across a restart;
a corrupt database is reported and sends are refused with the reason,
while the daemon stays up."""

import json
import os
import signal
import socket
import stat
import threading
import time

import fixtures as F
from fixtures import check, wait_until

N = 1000
ONLINE = ("online", "resumed")  # a restart after a crash resumes


def message_from(jid, body=None):
	def pred(e):
		return (e.get("event") == "message"
			and e.get("from", "").split("/")[0] == jid
			and (body is None or e.get("body") == body))
	return pred


def db_path(x):
	return os.path.join(x.dir, ".local", "state", "xmppd",
		x.account.jid + ".db")


class Pusher:
	"""Writes n send requests through alice's socket as fast as it can
	(one writer thread) while reading the replies; keeps the bodies
	answered ok. The socket breaking (the daemon killed) ends both."""

	def __init__(self, path, to, n, prefix):
		self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
		self.sock.connect(path)
		self.reader = F.LineReader(self.sock.fileno())
		self.reader.readline(5)  # hello
		self.to, self.n, self.prefix = to, n, prefix
		self.ok = []
		self.refused = []
		self.lock = threading.Lock()
		self.writer = threading.Thread(target=self._write, daemon=True)

	def body(self, i):
		return "%s %04d" % (self.prefix, i)

	def start(self):
		self.writer.start()
		return self

	def _write(self):
		try:
			for i in range(self.n):
				req = {"cmd": "send", "id": i, "to": self.to,
					"body": self.body(i)}
				self.sock.sendall((json.dumps(req) + "\n").encode())
		except OSError:
			pass

	def read_all(self, timeout=60):
		"""Replies until all n came or the socket closed."""
		deadline = time.monotonic() + timeout
		while len(self.ok) + len(self.refused) < self.n:
			try:
				line = self.reader.readline(max(0.1, deadline -
					time.monotonic()))
			except F.ReadTimeout:
				raise F.TestFailure("replies stopped after %d"
					% len(self.ok))
			except OSError:
				return
			if line is None:
				return
			r = json.loads(line)
			if "id" not in r:
				continue
			with self.lock:
				(self.ok if r.get("ok") else self.refused).append(r)

	def count(self):
		with self.lock:
			return len(self.ok)


def test_kill9_loses_nothing_accepted(ctx):
	a, b = ctx.account("alice"), ctx.account("bob")
	bx, bc = ctx.online(b, events=("message", "state"))
	ax, ac = ctx.online(a, conf={"delivery": {"queue": 2 * N}},
		events=("state",))
	mode = stat.S_IMODE(os.stat(db_path(ax)).st_mode)
	check(mode == 0o600, "database mode %o, not 600" % mode)
	st = ac.ok("status")["store"]
	check(st.get("ok") is True and st.get("path") == db_path(ax),
		"store status %r" % st)
	p = Pusher(ax.socket, b.jid, N, "crash").start()
	reader = threading.Thread(target=p.read_all, daemon=True)
	reader.start()
	wait_until(lambda: p.count() >= N // 3, 60, 0.005, "a third accepted")
	os.kill(ax.proc.pid, signal.SIGKILL)
	ax.proc.wait(10)
	reader.join(10)
	accepted = {r["id"] for r in p.ok}
	check(len(accepted) >= N // 3 and not p.refused,
		"accepted %d, refused %r" % (len(accepted), p.refused[:3]))
	ac.close()
	# Started again: the outbox comes back from the store and goes out.
	ax.start()
	c = ax.client()
	c.ok("subscribe", events=["state"])
	check(c.wait_state(ONLINE, 20)["state"] in ONLINE, "not online")
	marker = "after the crash"
	c.ok("send", to=b.jid, body=marker)
	bc.wait_event(message_from(a.jid, marker), 60, "the marker at bob")
	got = [e["body"] for e in bc.events if message_from(a.jid)(e)]
	counts = {}
	for body in got:
		counts[body] = counts.get(body, 0) + 1
	missing = [i for i in sorted(accepted) if p.body(i) not in counts]
	dups = [body for body, n in counts.items() if n > 1]
	check(not missing, "%d accepted messages lost, e.g. %r" % (len(missing),
		[p.body(i) for i in missing[:5]]))
	check(not dups, "delivered twice: %r" % dups[:5])
	check("messages in the outbox from before" in ax.log_text(),
		"the restarted daemon found no outbox: the test proved nothing")


def test_corrupt_database(ctx):
	a, b = ctx.account("alice"), ctx.account("bob")
	ax = ctx.xmppd(a, start=False)
	path = db_path(ax)
	os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
	with open(path, "wb") as f:
		f.write(b"this is not a database " * 4096)
	ax.start()
	c = ax.client()
	c.ok("subscribe", events=["state"])
	st = c.ok("status")
	check(st["store"].get("ok") is False and st["store"].get("error"),
		"status does not report the broken store: %r" % st["store"])
	r = c.request("send", to=b.jid, body="into a broken store")
	check(not r["ok"] and r["error"]["condition"] == "internal-server-error"
		and "store" in r["error"]["text"], "send not refused: %r" % r)
	check(c.wait_state(ONLINE, 20)["state"] in ONLINE,
		"the daemon does not carry on")
	check(ax.running(), "xmppd died")
	check("store: cannot use" in ax.log_text(), "no clear log error")


def test_subscribe_since_after_a_burst(ctx):
	"""A subscriber drops out during a burst larger than the event ring
	(a small max_output shrinks it); subscribing again with since gives
	the rest, the older part from the message log, exactly once."""
	a, b = ctx.account("alice"), ctx.account("bob")
	n = 1000
	bx, bc = ctx.online(b, conf={"control": {"max_output": "256K"}},
		events=("state",))
	ax, ac = ctx.online(a, conf={"delivery": {"queue": 2 * n}},
		events=("state",))
	s1 = bx.client()
	s1.ok("subscribe", events=["message"])
	watch = bx.client()
	watch.ok("subscribe", events=["message"], **{"from": a.jid})
	p = Pusher(ax.socket, b.jid, n, "burst").start()
	threading.Thread(target=p.read_all, daemon=True).start()
	first = []
	while len(first) < 50:
		first.append(s1.wait_event(message_from(a.jid), 30, "burst start"))
	s1.close()
	watch.wait_event(message_from(a.jid, p.body(n - 1)), 60, "the burst end")
	s2 = bx.client()
	r = s2.ok("subscribe", events=["message"], since=first[-1]["seq"])
	check(not r.get("gap"), "gap reported: %r" % r)
	rest = [e for e in s2.events if message_from(a.jid)(e)]
	bodies = [e["body"] for e in first + rest]
	check(bodies == [p.body(i) for i in range(n)], "%d bodies, first "
		"differences: %r" % (len(bodies), [(i, x) for i, x in
		enumerate(bodies) if x != p.body(i)][:3]))
	seqs = [e["seq"] for e in first + rest]
	check(seqs == sorted(set(seqs)), "seqs not increasing")
	check(re_search(r"[1-9]\d* messages replayed from the message log",
		bx.log_text()), "nothing came from the log: the ring held it all")


def re_search(pattern, text):
	import re
	return re.search(pattern, text) is not None


def test_since_and_history_across_a_crash(ctx):
	"""bob's xmppd is killed after some messages and started again: seq
	goes on from above, subscribe since and history since answer from
	the log, and the archive catch-up republishes nothing the log holds."""
	a, b = ctx.account("alice"), ctx.account("bob")
	bx, bc = ctx.online(b, events=("message", "state"))
	ax, ac = ctx.online(a, events=("state",))
	bodies = ["before the crash %d" % i for i in range(5)]
	for body in bodies:
		ac.ok("send", to=b.jid, body=body)
	evs = [bc.wait_event(message_from(a.jid, body), 20, body)
		for body in bodies]
	top = bc.ok("status") and evs[-1]["seq"]
	time.sleep(0.3)  # let the turn's commit pass; kill -9 then loses nothing
	os.kill(bx.proc.pid, signal.SIGKILL)
	bx.proc.wait(10)
	bc.close()
	bx.start()
	c = bx.client()
	check(c.greeting["seq"] >= top, "seq went backwards: %d after %d"
		% (c.greeting["seq"], top))
	r = c.ok("subscribe", events=["message", "state"], since=evs[1]["seq"])
	replay = [e for e in c.events if e.get("event") == "message"]
	check([e["body"] for e in replay] == bodies[2:] and
		[e["seq"] for e in replay] == [e["seq"] for e in evs[2:]],
		"replay after the restart: %r" % replay)
	c.events = [e for e in c.events if e.get("event") != "message"]
	check(c.wait_state(ONLINE, 20)["state"] in ONLINE, "not online")
	h = c.ok("history", since=evs[0]["seq"], max=2)
	check([m["body"] for m in h["messages"]] == bodies[1:3] and
		not h["complete"] and h["last"] == evs[2]["seq"],
		"history since: %r" % h)
	h = c.ok("history", source="local", **{"with": a.jid})
	check([m["body"] for m in h["messages"]] == bodies, "history with: %r"
		% h)
	# alice's own log holds what she sent.
	h = ac.ok("history", source="local", **{"with": b.jid})
	check([m["body"] for m in h["messages"]] == bodies and
		all(m.get("outbound") for m in h["messages"]), "alice's log %r" % h)
	# The catch-up after the crash found them in the archive again.
	wait_until(lambda: "mam: catch-up done" in bx.log_text() or
		"mam: catch-up" in bx.log_text(), 20, 0.1, "the catch-up")
	marker = "after the restart"
	ac.ok("send", to=b.jid, body=marker)
	c.wait_event(message_from(a.jid, marker), 20, "the marker")
	again = [e for e in c.events if message_from(a.jid)(e)
		and e["body"] in bodies]
	check(not again, "republished after the restart: %r" % again)


def test_history_since_holds_a_send(ctx):
	"""A send right after event N (subscribe's seq, in the same read) is
	in history since N: an accepted message takes a seq of its own, not
	the last event's, and no two rows of the log share one."""
	a, b = ctx.account("alice"), ctx.account("bob")
	ax, ac = ctx.online(a, events=("state",))
	c = ax.client()
	seqs = []
	for i in range(3):
		body = "right after %d" % i
		c.send_line(json.dumps({"cmd": "subscribe", "id": "s%d" % i,
			"events": ["sent"]}) + "\n" + json.dumps({"cmd": "send",
			"id": "m%d" % i, "to": b.jid, "body": body}))
		r = c.next_reply()
		check(r.get("id") == "s%d" % i and r["ok"], "subscribe: %r" % r)
		check(c.next_reply().get("ok") is True, "send refused")
		h = c.ok("history", since=r["seq"])
		mine = [m for m in h["messages"] if m.get("body") == body]
		check(len(mine) == 1 and mine[0]["seq"] > r["seq"] and
			mine[0].get("outbound"), "history since %d misses the send: "
			"%r" % (r["seq"], h))
		seqs.append(mine[0]["seq"])
	h = c.ok("history", source="local", **{"with": b.jid})
	logged = [m["seq"] for m in h["messages"]]
	check(logged == seqs and len(set(logged)) == 3, "log seqs %r, sends %r"
		% (logged, seqs))


def test_roster_version_across_a_restart(ctx):
	"""The roster and its version are kept in the store: after a restart
	the login sends the version and the server answers "unchanged"."""
	a = ctx.account("alice")
	ax, ac = ctx.online(a, events=("roster", "state"))
	carol = "carol@localhost"
	ac.ok("roster-set", jid=carol, name="Carol", groups=["Friends"])
	ac.wait_event(lambda e: e.get("event") == "roster" and
		e.get("jid") == carol, 10, "the roster push")
	before = ac.ok("roster")
	check(before.get("ver"), "Prosody gave no roster version: %r" % before)
	status, _ = ax.stop()
	check(status == 0, "xmppd exited with %r" % status)
	ax.start()
	c = ax.client()
	c.ok("subscribe", events=["state"])
	check(c.wait_state(ONLINE, 20)["state"] in ONLINE, "not online")
	wait_until(lambda: "roster: unchanged since version" in ax.log_text(),
		10, 0.05, "the versioned roster request answered unchanged")
	after = c.ok("roster")
	check(after["items"] == before["items"] and after["ver"] ==
		before["ver"], "roster after the restart %r, before %r"
		% (after, before))
	check("from the store" in ax.log_text(), "not loaded from the store")


def test_retention_prunes_old_messages(ctx):
	"""Messages older than [store] retention days leave the log at start;
	since then reports the gap."""
	import sqlite3
	a, b = ctx.account("alice"), ctx.account("bob")
	bx, bc = ctx.online(b, events=("message", "state"))
	ax, ac = ctx.online(a, events=("state",))
	bodies = ["kept for a while %d" % i for i in range(4)]
	for body in bodies:
		ac.ok("send", to=b.jid, body=body)
	evs = [bc.wait_event(message_from(a.jid, body), 20, body)
		for body in bodies]
	status, _ = bx.stop()
	check(status == 0, "xmppd exited with %r" % status)
	db = sqlite3.connect(db_path(bx))
	with db:
		n = db.execute("UPDATE messages SET time = time - 400 * 86400000 "
			"WHERE seq <= ?", (evs[1]["seq"],)).rowcount
	db.close()
	check(n == 2, "aged %d rows, not 2" % n)
	bx.start()
	c = bx.client()
	h = c.ok("history", source="local", **{"with": a.jid})
	check([m["body"] for m in h["messages"]] == bodies[2:],
		"history after pruning: %r" % h)
	r = c.ok("subscribe", events=["message"], since=0)
	check(r.get("gap") is True, "no gap for pruned messages: %r" % r)
	check([e["body"] for e in c.events if e.get("event") == "message"]
		== bodies[2:], "replay after pruning: %r" % c.events)
	check("store: pruned 2 messages older than 365 days" in bx.log_text(),
		"pruning not logged")


def test_disk_full(ctx):
	"""Under a file size limit (prlimit --fsize) the database soon cannot
	grow: sends are refused with the reason, status says so, the daemon
	stays up, and bob gets exactly the messages that were accepted."""
	a, b = ctx.account("alice"), ctx.account("bob")
	bx, bc = ctx.online(b, events=("message", "state"))
	ax = ctx.xmppd(a, {"log": {"level": "info", "xml": "no"}}, start=False)
	old = os.environ.get("XMPPD_WRAPPER")
	os.environ["XMPPD_WRAPPER"] = "prlimit --fsize=%d" % (192 * 1024)
	try:
		ax.start()
	finally:
		if old is None:
			os.environ.pop("XMPPD_WRAPPER")
		else:
			os.environ["XMPPD_WRAPPER"] = old
	ac = ax.client()
	ac.ok("subscribe", events=["state"])
	check(ac.wait_state(ONLINE, 20)["state"] in ONLINE, "not online")
	accepted, refused = [], None
	for i in range(3000):
		body = "filling the disk %04d %s" % (i, "x" * 200)
		r = ac.request("send", to=b.jid, body=body)
		if not r["ok"]:
			refused = r
			break
		accepted.append(body)
	check(refused is not None, "3000 sends fit under the limit")
	check(refused["error"]["condition"] in ("internal-server-error",
		"resource-constraint") and "store" in refused["error"]["text"],
		"refusal without a reason: %r" % refused)
	# A later commit may fit again (SQLite restarts its log), so ok may
	# be true by now; the failure stays in last_error.
	st = ac.ok("status")["store"]
	check(st.get("last_error") and st["last_error"] in
		refused["error"]["text"], "status %r" % st)
	check(ax.running(), "xmppd died")
	check(len(accepted) >= 1, "nothing was accepted")
	marker = accepted[-1]
	bc.wait_event(message_from(a.jid, marker), 30, "the last accepted")
	# The refused message is never sent: a ping round trip later it has
	# not arrived either.
	ac.ok("iq", type="get", to=b.jid + "/xmppd",
		payload="<ping xmlns='urn:xmpp:ping'/>")
	got = [e["body"] for e in bc.events if message_from(a.jid)(e)]
	got.append(marker)
	check(got == accepted, "bob got %d of the %d accepted: %r"
		% (len(got), len(accepted), got[-3:]))


def test_resume_after_kill9(ctx):
	"""alice's xmppd is killed; started again, it resumes the session
	the server held (XEP-0198) instead of binding a new one, and what
	bob sent meanwhile arrives once."""
	a, b = ctx.account("alice"), ctx.account("bob")
	bx, bc = ctx.online(b, events=("message", "state"))
	ax, ac = ctx.online(a, events=("message", "state"))
	before = ["before the kill %d" % i for i in range(3)]
	for body in before:
		ac.ok("send", to=b.jid, body=body)
	for body in before:
		bc.wait_event(message_from(a.jid, body), 20, body)
	ac.ok("iq", type="get", to="localhost",
		payload="<ping xmlns='urn:xmpp:ping'/>")
	time.sleep(0.3)  # a turn's commit after the ping's answer
	os.kill(ax.proc.pid, signal.SIGKILL)
	ax.proc.wait(10)
	ac.close()
	during = ["while alice was down %d" % i for i in range(3)]
	for body in during:
		bc.ok("send", to=a.jid, body=body)
	ax.start()
	c = ax.client()
	c.ok("subscribe", events=["message", "state"])
	ev = c.wait_event(lambda e: e.get("event") == "state" and
		e.get("state") in ("resumed", "online"), 20, "online again")
	check(ev["state"] == "resumed", "bound afresh instead: %r" % ev)
	check("resumed after a restart" in ax.log_text(), "not logged")
	for body in during:
		c.wait_event(message_from(b.jid, body), 20, body)
	after = "after the resumption"
	c.ok("send", to=b.jid, body=after)
	bc.wait_event(message_from(a.jid, after), 20, after)
	bc.ok("send", to=a.jid, body=after)
	c.wait_event(message_from(b.jid, after), 20, "bob's " + after)
	again = [e for e in c.events if message_from(b.jid)(e)
		and e.get("body") in during]
	check(not again, "delivered twice: %r" % again)
	got = [e["body"] for e in bc.events if message_from(a.jid)(e)]
	check(not [x for x in got if x in before], "alice's messages came "
		"again: %r" % got)
	check(c.ok("status").get("features"), "no features after a restored "
		"resumption")
