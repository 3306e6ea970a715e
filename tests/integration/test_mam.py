"""The server's message archive (XEP-0313 with XEP-0059 paging) against
Prosody or ejabberd (archiving everything by default in the fixtures): the
catch-up after a fresh session, the history command, forged results, no
catch-up after a resumption.

How the catch-up test keeps alice away deterministically: her xmppd
reaches Prosody through a proxy (proxy.py) and runs without stream
management. The proxy refuses new connections and resets the current
one; Prosody then ends her session at once (nothing to resume), which
its log shows, so bob's messages to her bare JID find no resource: they
are archived (and kept offline). Once the proxy lets her through again
her next session is fresh and must fetch exactly those messages from
the archive before her initial presence.

Prosody delivers no offline messages to a session that queried the
archive (mod_mam's message/offline/broadcast hook), and its live
messages and carbons all carry the stanza-id that moves the catch-up's
start past them, so against Prosody the catch-up finds no duplicates to
drop; a server that also delivers the offline copies (ejabberd) would
show them, and message.c's dedup keys on the archive id for them.
"""

import re
import time

from fixtures import check, wait_until
from proxy import Proxy


def own(ctx, obj):
	"""Has the runner stop obj (stop(), log_path) after the test."""
	ctx._owned.append(obj)
	return obj


def message_with(**want):
	def pred(e):
		return e.get("event") == "message" and all(e.get(k) == v
			for k, v in want.items())
	return pred


def sync(client):
	"""A round trip to the server: whatever it sent before has been read
	once this returns."""
	client.ok("iq", type="get", payload="<ping xmlns='urn:xmpp:ping'/>")


def log_has(x, text, timeout=20):
	wait_until(lambda: text in x.log_text(), timeout, 0.05,
		"%r in %s" % (text, x.log))


class Rig:
	"""alice's xmppd through a proxy (stream management as sm says), bob's
	directly; both online and subscribed to messages."""

	def __init__(self, ctx, sm=False, alice_conf=None):
		self.ctx = ctx
		server = ctx.server
		self.proxy = own(ctx, Proxy((server.host, server.port),
			log_path=ctx.ws.mkdir("proxy") + "/proxy.log").start())
		self.a, self.b = ctx.account("alice"), ctx.account("bob")
		conf = {"server": {"host": "127.0.0.1", "port": self.proxy.port,
			"stream_management": "yes" if sm else "no"}}
		for sec, keys in (alice_conf or {}).items():
			conf.setdefault(sec, {}).update(keys)
		self.ax, self.ac = ctx.online(self.a, conf,
			events=("message", "state"))
		self.bx, self.bc = ctx.online(self.b, events=("message", "sent",
			"state"))
		self.a_full = self.ac.ok("status")["jid"]
		# The first session only learns where the archive ends.
		log_has(self.ax, "mam: the last archive id is")

	def bob_sends(self, bodies, to=None):
		"""bob sends each body to alice (bare JID unless to), and waits
		until the server has taken them all."""
		ids = [self.bc.ok("send", to=to or self.a.jid, body=b)["msg_id"]
			for b in bodies]
		for i in ids:
			self.bc.wait_event(lambda e: e.get("event") == "sent"
				and e.get("msg_id") == i and e.get("status") == "acked", 10,
				"bob's message %s acked" % i)
		sync(self.bc)
		return ids

	def drop_alice(self):
		"""Cuts alice off and keeps her off; returns once Prosody has
		ended her session."""
		offset = self.ctx.server.log_offset()
		self.proxy.refuse(True)
		check(self.proxy.cut() >= 1, "no connection of alice to cut")
		self.ac.wait_event(lambda e: e.get("event") == "state"
			and e.get("state") in ("offline", "connecting"), 20,
			"alice offline")
		wait_until(lambda: self.ctx.server.client_gone(offset), 20, 0.05,
			"the server to end alice's session")

	def let_alice_back(self):
		self.proxy.refuse(False)
		self.ac.ok("reconnect")
		st = self.ac.wait_state(("online",), 30)
		check(st.get("state") == "online", "alice not back: %r" % st)


def test_catchup_after_fresh_session(ctx):
	rig = Rig(ctx)
	ac = rig.ac
	# A live message: its stanza-id is where the next catch-up starts.
	rig.bob_sends(["live one"])
	live = ac.wait_event(message_with(body="live one"), 10, "live message")
	check(live.get("stanza_id"), "live message without stanza_id: %r" % live)
	check("archive" not in live, "live message flagged archive: %r" % live)
	log_has(rig.ax, "mam: the last archive id is")

	rig.drop_alice()
	offline_bodies = ["while away #%d" % i for i in range(3)]
	rig.bob_sends(offline_bodies)
	before = len(ac.events)
	rig.let_alice_back()
	log_has(rig.ax, "mam: catch-up done")
	sync(ac)
	time.sleep(0.2)
	sync(ac)
	got = [e for e in ac.events[before:] if e.get("event") == "message"] + \
		[e for e in ac.events[:before] if e.get("event") == "message"
			and e.get("archive")]
	bodies = [e.get("body") for e in got]
	for body in offline_bodies:
		check(bodies.count(body) == 1, "%r published %d times: %r"
			% (body, bodies.count(body), got))
	for e in got:
		if e.get("body") in offline_bodies:
			check(e.get("archive") is True and e.get("stanza_id")
				and e.get("delay"), "catch-up message fields: %r" % e)
	check([b for b in bodies if b in offline_bodies] == offline_bodies,
		"out of order: %r" % bodies)
	check("live one" not in bodies, "the live message came again: %r" % got)
	# The catch-up came before the initial presence.
	log = rig.ax.log_text()
	start = log.rfind("mam: catch-up after")
	done = log.index("mam: catch-up done", start)
	check(log.find("SEND <presence", done) > done, "no initial presence "
		"after the catch-up")
	check(log.rfind("SEND <presence", 0, done) < start,
		"the initial presence went out before the catch-up")
	# And one more pass once the presence is out, for what came meanwhile.
	check(log.find("mam: catch-up of what came during the first", done) > done,
		"no second catch-up after the presence")


def bodies_of(reply):
	return [m.get("body") for m in reply["messages"]]


def test_history_and_paging(ctx):
	a, b = ctx.account("alice"), ctx.account("bob")
	ax, ac = ctx.online(a, events=("message", "state"))
	bx, bc = ctx.online(b, events=("message", "sent", "state"))
	log_has(ax, "mam: the last archive id is")
	sent = ["history %d" % i for i in range(5)]
	for body in sent:
		bc.ok("send", to=a.jid, body=body)
	live = [ac.wait_event(message_with(body=body), 10, body) for body in sent]
	r = ac.ok("history", **{"with": b.jid})
	check(bodies_of(r) == sent, "history bodies %r" % bodies_of(r))
	check(r["complete"] is True, "not complete: %r" % r)
	check([m.get("stanza_id") for m in r["messages"]] ==
		[e.get("stanza_id") for e in live], "stanza ids differ from the "
		"live ones: %r vs %r" % (r["messages"], live))
	for m in r["messages"]:
		check(m.get("from", "").startswith(b.jid + "/") and m.get("delay")
			and m.get("archive") is True and m.get("type") == "chat",
			"history item %r" % m)
	check(not any(e.get("archive") for e in ac.events), "history published "
		"events: %r" % ac.events)

	# Paging forwards with max and after.
	got, after, pages = [], None, 0
	while True:
		args = {"with": b.jid, "max": 2}
		if after is not None:
			args["after"] = after
		r = ac.ok("history", **args)
		pages += 1
		check(len(r["messages"]) <= 2, "page over max: %r" % r)
		got += bodies_of(r)
		if r["complete"]:
			break
		after = r["last"]
		check(pages < 5, "paging does not end")
	check(got == sent and pages == 3, "paged %r in %d pages" % (got, pages))
	# The last page: before "".
	r = ac.ok("history", **{"with": b.jid, "max": 2, "before": ""})
	check(bodies_of(r) == sent[-2:], "last page %r" % bodies_of(r))
	# Someone alice never talked to; a time range in the future.
	r = ac.ok("history", **{"with": "carol@localhost"})
	check(r["messages"] == [] and r["complete"] is True, "carol: %r" % r)
	r = ac.ok("history", start="2999-01-01T00:00:00Z")
	check(r["messages"] == [], "the future: %r" % r)
	r = ac.ok("history", start="2000-01-01T00:00:00Z",
		end="2999-01-01T00:00:00.5+02:00", max=500)
	check(bodies_of(r)[-5:] == sent, "a wide range: %r" % bodies_of(r))
	# Bad arguments, refused by xmppd or by the server.
	for args, cond in (({"max": 0}, "bad-request"),
			({"max": 501}, "bad-request"),
			({"start": "yesterday"}, "bad-request"),
			({"before": "x", "after": "y"}, "bad-request"),
			({"with": "@@"}, None),
			({"after": "no-such-id"}, "item-not-found")):
		if "after" in args and ctx.server_name == "ejabberd":
			continue  # ejabberd 23.01 pages from the start instead
		r = ac.request("history", **args)
		check(not r["ok"] and (cond is None or
			r["error"]["condition"] == cond), "%r: %r" % (args, r))


def test_forged_result_ignored(ctx):
	a, b = ctx.account("alice"), ctx.account("bob")
	ax, ac = ctx.online(a, events=("message", "state"))
	bx, bc = ctx.online(b, events=("message", "state"))
	log_has(ax, "mam: the last archive id is")
	a_full = ac.ok("status")["jid"]
	m = re.search(r"mam: last-id query (\S+)", ax.log_text())
	check(m, "no query id in the log")
	for qid in (m.group(1), "made-up"):
		bc.ok("raw", xml=(
			"<message to='%s'><result xmlns='urn:xmpp:mam:2' queryid='%s' "
			"id='forged-1'><forwarded xmlns='urn:xmpp:forward:0'><delay "
			"xmlns='urn:xmpp:delay' stamp='2020-01-01T00:00:00Z'/><message "
			"xmlns='jabber:client' from='carol@localhost/x' to='%s' "
			"type='chat'><body>forged history</body></message></forwarded>"
			"</result></message>") % (a_full, qid, a.jid))
	bc.ok("send", to=a_full, body="after the forgery")
	ac.wait_event(message_with(body="after the forgery"), 10,
		"bob's message after the forgery")
	sync(ac)
	forged = [e for e in ac.events if e.get("event") == "message"
		and "forged" in (e.get("body") or "")]
	check(not forged, "a forged archive result was published: %r" % forged)
	check(ax.log_text().count("ignoring a forged archive result") == 2,
		"no log line for each forged result")


def test_no_catchup_after_resumption(ctx):
	rig = Rig(ctx, sm=True)
	user = rig.a.user
	check(len(ctx.server.mam_queries(0, user)) == 1,
		"the first session did not ask the archive once")
	rig.bob_sends(["before the cut"])
	rig.ac.wait_event(message_with(body="before the cut"), 10, "live")
	offset = ctx.server.log_offset()
	mark = len(rig.ax.log_text())
	check(rig.proxy.cut() >= 1, "no connection to cut")
	st = rig.ac.wait_event(lambda e: e.get("event") == "state"
		and e.get("state") in ("online", "resumed"), 30, "back online")
	check(st["state"] == "resumed", "not resumed: %r" % st)
	rig.bob_sends(["after the cut"])
	rig.ac.wait_event(message_with(body="after the cut"), 10, "live again")
	sync(rig.ac)
	check(ctx.server.mam_queries(offset, user) == [],
		"the archive was asked after a resumption")
	check("] mam: " not in rig.ax.log_text()[mark:],
		"xmppd's archive code ran after a resumption")


def test_catch_up_after_the_daemon_was_stopped(ctx):
	"""The last archive id survives a restart (the state directory), so
	messages sent while alice's xmppd was not running come from the
	archive when it starts again, each published once."""
	a, b = ctx.account("alice"), ctx.account("bob")
	ax, ac = ctx.online(a, events=("message", "state"))
	bx, bc = ctx.online(b, events=("message", "sent", "state"))
	log_has(ax, "mam: the last archive id is")
	first = "before the stop %f" % time.time()
	bc.ok("send", to=a.jid, body=first)
	first_seq = ac.wait_event(message_with(body=first), 10,
		"the live message")["seq"]
	sync(ac)
	offset = ctx.server.log_offset()
	status, _ = ax.stop()
	check(status == 0, "xmppd exited with %r" % status)
	wait_until(lambda: ctx.server.client_gone(offset), 20, 0.05,
		"the server to end alice's session")
	bodies = ["while stopped %d %f" % (i, time.time()) for i in range(3)]
	for body in bodies:
		mid = bc.ok("send", to=a.jid, body=body)["msg_id"]
		bc.wait_event(lambda e, mid=mid: e.get("event") == "sent"
			and e.get("msg_id") == mid and e.get("status") == "acked", 10,
			"ack of %s" % body)
	ax.start()
	ac = ax.client()
	ac.ok("subscribe", events=["message", "state"], since=0)
	ac.wait_state(("online",), 20)
	for body in bodies:
		ac.wait_event(message_with(body=body), 20, "%r after the restart" % body)
	sync(ac)
	time.sleep(0.5)
	# wait_event took one of each; anything left is a duplicate.
	rest = [e.get("body") for e in ac.events if e.get("event") == "message"]
	check(not [b for b in rest if b in bodies], "published twice: %r" % rest)
	# since=0 replays it from the message log under its own seq; it must
	# not come again as a new event.
	again = [e for e in ac.events if e.get("event") == "message" and
		e.get("body") == first and e.get("seq") != first_seq]
	check(not again, "the message from before the stop came again: %r"
		% again)
	with open(ax.log, errors="replace") as f:
		log = f.read()
	check("mam: catch-up after" in log, "no catch-up after the restart")
