"""Discovery and answers against the run's server: features in status (XEP-0030),
the disco command, caps (XEP-0115), ping both ways (XEP-0199), time
(XEP-0202) and version (XEP-0092) answered, blocking (XEP-0191) and
client state (XEP-0352)."""

import base64
import datetime
import hashlib
import re
import time
import xml.etree.ElementTree as ET

from fixtures import TestFailure, check, wait_until

CAPS_NODE = "https://xmppd.invalid"
NS_INFO = "http://jabber.org/protocol/disco#info"


def features_known(c, want):
	"""Polls status until discovery has found every feature in want."""
	def known():
		st = c.ok("status")
		return st if want <= set(st.get("features", [])) else None
	return wait_until(known, 10, 0.1, "features %s in status" % sorted(want))


def caps_ver(info):
	"""XEP-0115 5.1 for a disco reply without forms, as the test
	computes it independently of xmppd."""
	ids = sorted("%s/%s/%s/%s" % (i["category"], i["type"], i.get("lang", ""),
		i.get("name", "")) for i in info["identities"])
	s = "".join(x + "<" for x in ids + sorted(info["features"]))
	return base64.b64encode(hashlib.sha1(s.encode()).digest()).decode()


def is_block(action):
	return lambda e: e.get("event") == "block" and e.get("action") == action


def is_message(body):
	return lambda e: e.get("event") == "message" and e.get("body") == body


def test_status_features_are_the_servers(ctx):
	a = ctx.account("alice")
	x, c = ctx.online(a)
	st = features_known(c, {"urn:xmpp:ping", "urn:xmpp:blocking",
		"urn:xmpp:carbons:2", "urn:xmpp:mam:2"})
	ours = set(st.get("client_features", []))
	for f in ("urn:xmpp:ping", NS_INFO, "jabber:iq:version", "urn:xmpp:time",
			"http://jabber.org/protocol/caps"):
		check(f in ours, "client_features lack %s: %r" % (f, sorted(ours)))
	# The server was asked once, the account once.
	log = x.log_text()
	check(log.count("<query xmlns='%s'/>" % NS_INFO) >= 2 or
		log.count('<query xmlns="%s"/>' % NS_INFO) >= 2,
		"xmppd's log shows no two disco#info requests")


def test_disco_server_account_and_items(ctx):
	a = ctx.account("alice")
	x, c = ctx.online(a)
	r = c.ok("disco")
	check({"category": "server", "type": "im"} in [
		{"category": i["category"], "type": i["type"]}
		for i in r["identities"]], "no server/im identity: %r" % r)
	check("urn:xmpp:ping" in r["features"], "server features %r" % r)
	r = c.ok("disco", to=a.jid)
	check("urn:xmpp:mam:2" in r["features"], "account features %r" % r)
	r = c.ok("disco", items=True)
	check(isinstance(r.get("items"), list), "no items list: %r" % r)
	check(all("jid" in i for i in r["items"]), "item without jid: %r" % r)
	check("features" not in r, "items reply with features: %r" % r)
	# A node the server does not have is a stanza error, passed on.
	r = c.request("disco", node="no-such-node-%d" % time.time())
	check(r["ok"] is False and r["error"]["condition"] in
		("item-not-found", "feature-not-implemented", "service-unavailable"),
		"unknown node: %r" % r)
	r = c.request("disco", to="nowhere.invalid")
	check(r["ok"] is False, "disco of a missing domain succeeded: %r" % r)


def test_disco_of_us_and_caps_node(ctx):
	(a, ax, ac), (b, bx, bc) = ctx.subscribed_pair()
	a_full = ac.ok("status")["jid"]
	info = bc.ok("disco", to=a_full)
	check({"category": "client", "type": "bot", "name": "xmppd"} in
		info["identities"], "identities %r" % info["identities"])
	for f in ("urn:xmpp:time", "jabber:x:conference", "urn:xmpp:sid:0",
			"http://jabber.org/protocol/muc"):
		check(f in info["features"], "%s not in features %r" % (f, info))
	ver = caps_ver(info)
	r = bc.ok("disco", to=a_full, node="%s#%s" % (CAPS_NODE, ver))
	check(sorted(r["features"]) == sorted(info["features"]),
		"node#ver features %r differ from %r" % (r["features"],
			info["features"]))
	r = bc.request("disco", to=a_full, node="%s#AAAA" % CAPS_NODE)
	check(r["ok"] is False and r["error"]["condition"] == "item-not-found",
		"a stale ver: %r" % r)
	# disco#items of a client: none, but answered.
	r = bc.ok("disco", to=a_full, items=True)
	check(r["items"] == [], "items %r" % r)


def test_caps_in_presence(ctx):
	(a, ax, ac), (b, bx, bc) = ctx.subscribed_pair()
	a_full = ac.ok("status")["jid"]
	info = bc.ok("disco", to=a_full)
	ver = caps_ver(info)
	def caps_presences():
		return [ln for ln in ctx.server.session_log(a_full)
			if "RECV: <presence" in ln
			and "http://jabber.org/protocol/caps" in ln]
	try:
		wait_until(caps_presences, 5, 0.1, "a presence with caps")
	except TestFailure:
		pass
	lines = ctx.server.session_log(a_full)
	caps = caps_presences()
	check(caps, "alice's presence carries no caps: %s" % [
		ln for ln in lines if "RECV: <presence" in ln][:3])
	for ln in caps:
		m = re.search(r"ver=['\"]([^'\"]+)['\"]", ln)
		check(m and m.group(1) == ver, "caps ver %r, computed %s"
			% (m and m.group(1), ver))
		check("hash='sha-1'" in ln or 'hash="sha-1"' in ln, "hash: %s" % ln)
		check(CAPS_NODE in ln, "node: %s" % ln)


def test_ping_server_and_contact(ctx):
	(a, ax, ac), (b, bx, bc) = ctx.subscribed_pair()
	b_full = bc.ok("status")["jid"]
	r = ac.ok("ping")
	check(isinstance(r.get("rtt_ms"), int) and r["rtt_ms"] >= 0,
		"ping reply %r" % r)
	check("error" not in r, "the server's ping failed: %r" % r)
	r = ac.ok("ping", to=b_full)
	check(isinstance(r.get("rtt_ms"), int) and "error" not in r,
		"bob's ping %r" % r)
	# A resource that is not there: the server answers for it.
	r = ac.request("ping", to=b.jid + "/gone")
	check(r["ok"] is False and r["error"]["condition"] ==
		"service-unavailable", "ping of a missing resource: %r" % r)


def iq_reply_xml(r):
	check(r["ok"] is True and "xml" in r, "iq failed: %r" % r)
	return ET.fromstring(r["xml"])


def test_time_and_version_answered(ctx):
	(a, ax, ac), (b, bx, bc) = ctx.subscribed_pair()
	a_full = ac.ok("status")["jid"]
	r = bc.request("iq", to=a_full, type="get",
		payload="<time xmlns='urn:xmpp:time'/>")
	el = iq_reply_xml(r).find("{urn:xmpp:time}time")
	check(el is not None, "no <time/> in %r" % r)
	tzo = el.findtext("{urn:xmpp:time}tzo")
	utc = el.findtext("{urn:xmpp:time}utc")
	check(tzo and re.fullmatch(r"[+-]\d\d:\d\d", tzo), "tzo %r" % tzo)
	check(utc and utc.endswith("Z"), "utc %r" % utc)
	when = datetime.datetime.strptime(utc[:19], "%Y-%m-%dT%H:%M:%S").replace(
		tzinfo=datetime.timezone.utc)
	skew = abs((datetime.datetime.now(datetime.timezone.utc) - when)
		.total_seconds())
	check(skew < 60, "utc %s is %ds off" % (utc, skew))
	r = bc.request("iq", to=a_full, type="get",
		payload="<query xmlns='jabber:iq:version'/>")
	q = iq_reply_xml(r).find("{jabber:iq:version}query")
	check(q is not None and q.findtext("{jabber:iq:version}name") == "xmppd",
		"version reply %r" % r)
	# The server's own time (mod_time), through the generic iq command.
	r = ac.request("iq", to="localhost", type="get",
		payload="<time xmlns='urn:xmpp:time'/>")
	check(iq_reply_xml(r).find("{urn:xmpp:time}time") is not None,
		"server time %r" % r)


def test_block_and_unblock(ctx):
	a, b = ctx.account("alice"), ctx.account("bob")
	ax, ac = ctx.online(a, events=("message", "state", "block"))
	bx, bc = ctx.online(b, events=("message", "state", "sent"))
	features_known(ac, {"urn:xmpp:blocking"})
	check(ac.ok("blocklist")["jids"] == [], "a new account blocks someone")
	ac.ok("block", jid=b.jid)
	ev = ac.wait_event(is_block("block"), 10, "block event")
	check(ev["jids"] == [b.jid], "block event %r" % ev)
	check(ac.ok("blocklist")["jids"] == [b.jid], "blocklist after block")
	# Blocking again changes nothing: no second event.
	ac.ok("block", jids=[b.jid])

	blocked = "you should not see this %f" % time.time()
	mid = bc.ok("send", to=a.jid, body=blocked)["msg_id"]
	# Accepted is not yet at the server: unblock only once it has it
	# (acked, or refused by alice's server with an error).
	bc.wait_event(lambda e: e.get("event") == "sent" and e.get("msg_id") == mid
		and e.get("status") in ("acked", "failed"), 10,
		"the server's answer to bob's message")
	ac.ok("unblock", jid=b.jid)
	ev = ac.wait_event(is_block("unblock"), 10, "unblock event")
	check(ev["jids"] == [b.jid], "unblock event %r" % ev)
	check(not [e for e in ac.events if e.get("event") == "block"],
		"a repeated block was announced: %r" % ac.events)
	seen = "after unblocking %f" % time.time()
	bc.ok("send", to=a.jid, body=seen)
	ac.wait_event(is_message(seen), 10, "bob's message after unblocking")
	check(not [e for e in ac.events if is_message(blocked)(e)],
		"a message from a blocked contact arrived")
	check(ac.ok("blocklist")["jids"] == [], "blocklist after unblock")

	# Unblocking with no JID unblocks everyone.
	ac.ok("block", jids=["m1@localhost", "m2@localhost"])
	ev = ac.wait_event(is_block("block"), 10, "block event for two")
	check(sorted(ev["jids"]) == ["m1@localhost", "m2@localhost"], "%r" % ev)
	ac.ok("unblock")
	ev = ac.wait_event(is_block("unblock"), 10, "unblock-all event")
	check(ev.get("all") is True and sorted(ev["jids"]) ==
		["m1@localhost", "m2@localhost"], "unblock all: %r" % ev)
	check(ac.ok("blocklist")["jids"] == [], "blocklist after unblock all")
	r = ac.request("block", jids=["not a jid@@"])
	check(r["ok"] is False and r["error"]["condition"] == "invalid-jid",
		"bad JID: %r" % r)


def test_block_push_and_spoof(ctx):
	a, b = ctx.account("alice"), ctx.account("bob")
	ax, ac = ctx.online(a, events=("message", "state", "block"))
	features_known(ac, {"urn:xmpp:blocking"})
	ac.ok("blocklist")  # asked once: the server now pushes to us
	bx, bc = ctx.online(b)
	a_full = ac.ok("status")["jid"]
	# bob pretends to be alice's server: ignored, not answered.
	r = bc.request("iq", to=a_full, type="set", timeout=2,
		payload="<block xmlns='urn:xmpp:blocking'>"
		"<item jid='spoofed@localhost'/></block>")
	check(r["ok"] is False, "alice answered a spoofed push: %r" % r)
	# A block made past the block command (as another resource would):
	# only the server's push tells xmppd about it.
	ac.ok("iq", type="set", payload="<block xmlns='urn:xmpp:blocking'>"
		"<item jid='real@localhost'/></block>")
	ev = ac.wait_event(is_block("block"), 10, "pushed block event")
	check(ev["jids"] == ["real@localhost"], "the first block event is %r"
		% ev)
	check(ac.ok("blocklist")["jids"] == ["real@localhost"],
		"blocklist after the push")
	log = ax.log_text()
	check("spoofed@localhost" not in str(ac.ok("blocklist")),
		"the spoofed push changed the list")
	check("not our account" in log, "the spoofed push was not logged")


def csi_states(ctx, full_jid):
	"""The client states alice's session sent, in order, per Prosody."""
	out = []
	for ln in ctx.server.session_log(full_jid):
		m = re.search(r"RECV: <(active|inactive)\b[^>]*urn:xmpp:csi:0",
			ln)
		if m:
			out.append(m.group(1))
	return out


def test_client_state_follows_message_subscribers(ctx):
	a = ctx.account("alice")
	x = ctx.xmppd(a)
	c = x.client()
	c.ok("subscribe", events=["state"])
	c.wait_state(("online",))
	full = c.ok("status")["jid"]
	wait_until(lambda: csi_states(ctx, full)[-1:] == ["inactive"], 10, 0.1,
		"<inactive/> with no message subscriber")
	check(c.ok("status").get("csi") == "inactive", "status csi")
	c.ok("subscribe", events=["message"])
	wait_until(lambda: csi_states(ctx, full)[-1:] == ["active"], 10, 0.1,
		"<active/> once a client subscribes to messages")
	check(c.ok("status").get("csi") == "active", "status csi")
	# The subscriber goes away: inactive again.
	c.close()
	wait_until(lambda: csi_states(ctx, full)[-1:] == ["inactive"], 10, 0.1,
		"<inactive/> after the subscriber left")
	states = csi_states(ctx, full)
	check(states == ["inactive", "active", "inactive"],
		"states sent: %r (each once)" % states)
	if ctx.server_name != "prosody":
		return  # only Prosody's log shows what it holds back
	# Prosody's session is really inactive: it holds back bob's presence
	# (unimportant). Right after a flush (an ack, say) Prosody waits for
	# the socket to drain before holding again, so bob may need to try
	# more than once.
	b = ctx.account("bob")
	bx, bc = ctx.online(b)
	def held():
		return any("Holding buffer" in ln
			for ln in ctx.server.session_log(full))
	for i in range(20):
		bc.ok("raw", xml="<presence to='%s'><status>%d</status></presence>"
			% (full, i))
		try:
			wait_until(held, 1, 0.05, "Prosody holding bob's presence")
			break
		except TestFailure:
			continue
	check(held(), "Prosody never held a stanza for the inactive session")
