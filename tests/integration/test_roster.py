"""Roster, subscriptions and the presence table against the run's server
(RFC 6121 sections 2-4, XEP-0237 roster versioning), with two xmppds."""

import re

from fixtures import Skip, check, wait_until

EVENTS = ("message", "presence", "state", "roster", "subscription")


def ev_is(name, **want):
	def pred(e):
		return e.get("event") == name and all(e.get(k) == v
			for k, v in want.items())
	return pred


def roster_item(client, jid):
	"""The item for jid in client's roster, or None."""
	r = client.ok("roster")
	check(isinstance(r.get("items"), list), "roster has no items: %r" % r)
	found = [it for it in r["items"] if it.get("jid") == jid]
	return found[0] if found else None


def events_named(client, name):
	return [e for e in client.events if e.get("event") == name]


def two_online(ctx, conf=None):
	a, b = ctx.account("alice"), ctx.account("bob")
	ax, ac = ctx.online(a, conf, events=EVENTS)
	bx, bc = ctx.online(b, conf, events=EVENTS)
	return (a, ax, ac), (b, bx, bc)


def test_subscribe_approve_presence_table(ctx):
	(a, ax, ac), (b, bx, bc) = two_online(ctx)
	b_full = bc.ok("status")["jid"]

	# alice asks; bob's subscriber sees a subscription event (not a
	# presence event) and the request stays pending until answered.
	ac.ok("subscription", jid=b.jid, action="request", status="hi bob")
	ev = bc.wait_event(ev_is("subscription", type="subscribe"), 10,
		"alice's subscription request at bob")
	check(ev.get("from") == a.jid, "request from %r, not %s"
		% (ev.get("from"), a.jid))
	check(ev.get("status") == "hi bob", "request status %r"
		% ev.get("status"))
	check(not [e for e in events_named(bc, "presence")
		if e.get("type") == "subscribe"],
		"a subscription request was published as a presence event")
	pend = bc.ok("subscriptions").get("pending")
	check(pend == [{"jid": a.jid, "status": "hi bob"}],
		"bob's pending requests: %r" % pend)
	check(bc.ok("status").get("pending") == 1, "status does not count "
		"the pending request")
	# alice's own roster shows the request as asked.
	ac.wait_event(lambda e: e.get("event") == "roster"
		and e.get("jid") == b.jid and e.get("ask") == "subscribe", 10,
		"alice's roster push with ask=subscribe")

	bc.ok("subscription", jid=a.jid, action="approve")
	check(bc.ok("subscriptions").get("pending") == [],
		"the approved request is still pending")
	ev = ac.wait_event(lambda e: e.get("event") == "roster"
		and e.get("jid") == b.jid
		and e.get("subscription") in ("to", "both"), 10,
		"alice's roster push after bob's approval")
	check(ev.get("groups") == [], "groups %r" % ev.get("groups"))
	ac.wait_event(ev_is("subscription", type="subscribed", **{"from": b.jid}),
		10, "subscribed at alice")
	item = roster_item(ac, b.jid)
	check(item is not None and item["subscription"] in ("to", "both"),
		"alice's roster item for bob: %r" % item)

	# bob's presence reaches alice and lands in her presence table.
	bc.ok("presence", show="away", status="at lunch", priority=3)
	ac.wait_event(lambda e: e.get("event") == "presence"
		and e.get("from") == b_full and e.get("show") == "away", 10,
		"bob's away presence at alice")
	table = ac.ok("presences")["presences"]
	mine = [p for p in table if p["jid"] == b_full]
	check(len(mine) == 1, "presences has no single entry for %s: %r"
		% (b_full, table))
	p = mine[0]
	check(p.get("show") == "away" and p.get("status") == "at lunch"
		and p.get("priority") == 3, "bob's entry %r" % p)
	only = ac.ok("presences", jid=b.jid)["presences"]
	check([e["jid"] for e in only] == [b_full], "filtered presences %r"
		% only)
	check(ac.ok("presences", jid="nobody@localhost")["presences"] == [],
		"a filter for another JID lists something")

	# bob goes offline: his unavailable presence clears the entry.
	bx.stop()
	ac.wait_event(lambda e: e.get("event") == "presence"
		and e.get("from") == b_full and e.get("type") == "unavailable", 10,
		"bob's unavailable presence at alice")
	left = [e for e in ac.ok("presences")["presences"]
		if e["jid"] == b_full]
	check(left == [], "bob is still in the presence table: %r" % left)


def test_deny_and_cancelled_request(ctx):
	(a, ax, ac), (b, bx, bc) = two_online(ctx)
	ac.ok("subscription", jid=b.jid, action="request")
	bc.wait_event(ev_is("subscription", type="subscribe", **{"from": a.jid}),
		10, "request at bob")
	bc.ok("subscription", jid=a.jid, action="deny")
	check(bc.ok("subscriptions")["pending"] == [], "denied still pending")
	ac.wait_event(ev_is("subscription", type="unsubscribed",
		**{"from": b.jid}), 10, "the refusal at alice")

	# A request its sender withdraws is no longer pending.
	if ctx.server_name == "ejabberd":
		# ejabberd 23.01 drops the withdrawal (an unsubscribe while the
		# request is pending) instead of delivering it: nothing tells
		# alice's xmppd.
		return
	bc.ok("subscription", jid=a.jid, action="request")
	ac.wait_event(ev_is("subscription", type="subscribe", **{"from": b.jid}),
		10, "bob's request at alice")
	check(len(ac.ok("subscriptions")["pending"]) == 1, "not pending")
	bc.ok("subscription", jid=a.jid, action="unsubscribe")
	ac.wait_event(ev_is("subscription", type="unsubscribe",
		**{"from": b.jid}), 10, "bob's withdrawal at alice")
	check(ac.ok("subscriptions")["pending"] == [],
		"a withdrawn request is still pending")


def test_preapproval(ctx):
	(a, ax, ac), (b, bx, bc) = two_online(ctx)
	# Prosody offers urn:xmpp:features:pre-approval; ejabberd 23.01
	# does not, and xmppd says so.
	r = ac.request("subscription", jid=b.jid, action="preapprove")
	if ctx.server_name != "prosody" and not r["ok"] and \
			r["error"]["condition"] == "feature-not-implemented":
		raise Skip("%s offers no subscription pre-approval" % ctx.server_name)
	check(r["ok"], "preapprove: %r" % r)
	bc.ok("subscription", jid=a.jid, action="request")
	# The server answers for alice: bob is subscribed at once and alice
	# never has a request to answer.
	bc.wait_event(ev_is("subscription", type="subscribed", **{"from": a.jid}),
		10, "the pre-approved subscription at bob")
	ac.wait_event(lambda e: e.get("event") == "roster"
		and e.get("jid") == b.jid and e.get("subscription") == "from", 10,
		"alice's roster push with subscription from")
	check(ac.ok("subscriptions")["pending"] == [],
		"a pre-approved request is pending")
	check(not events_named(ac, "subscription"),
		"alice got a subscription event: %r" % events_named(ac, "subscription"))


def roster_gets(log):
	"""(id, ver) of the roster gets in a Prosody log excerpt (ver None
	for a get without one)."""
	out = []
	# Prosody writes attributes in no fixed order.
	for m in re.finditer(r"RECV: <iq([^>]*)>\s*<query([^>]*)/>", log):
		if not re.search(r"xmlns=['\"]jabber:iq:roster['\"]", m.group(2)):
			continue
		i = re.search(r"\bid=['\"]([^'\"]*)['\"]", m.group(1))
		v = re.search(r"\bver=['\"]([^'\"]*)['\"]", m.group(2))
		out.append((i.group(1) if i else None, v.group(1) if v else None))
	return out


def empty_result(log, iq_id):
	"""Did Prosody answer iq_id with a result without payload?"""
	for m in re.finditer(r"SEND: (<iq[^>]*/>)", log):
		if re.search(r"\bid=['\"]%s['\"]" % re.escape(iq_id), m.group(1)):
			return "type='result'" in m.group(1) \
				or 'type="result"' in m.group(1)
	return False


def test_roster_set_versioning_remove(ctx):
	a = ctx.account("alice")
	# No stream management: the reconnect below is a fresh session,
	# which fetches the roster again.
	off = ctx.server.log_offset()
	ax, ac = ctx.online(a, {"server": {"stream_management": "no"}},
		events=EVENTS)
	gets = wait_until(lambda: roster_gets(ctx.server.traffic(off)), 10,
		what="the first roster get")
	check([v for _, v in gets] == [""],
		"the first login did not ask with ver='': %r" % gets)
	check(ac.ok("roster")["items"] == [], "a new account has items")

	carol = "carol@localhost"
	ac.ok("roster-set", jid=carol, name="Carol", groups=["Friends", "Work"])
	ev = ac.wait_event(ev_is("roster", jid=carol), 10, "roster push for carol")
	check(ev.get("name") == "Carol" and sorted(ev.get("groups", []))
		== ["Friends", "Work"] and ev.get("subscription") == "none",
		"push %r" % ev)
	r = ac.ok("roster")
	ver = r.get("ver")
	check(ver, "no roster version after a push: %r" % r)
	item = roster_item(ac, carol)
	check(item is not None and item.get("name") == "Carol"
		and sorted(item["groups"]) == ["Friends", "Work"],
		"carol's item %r" % item)

	# A fresh session sends the version held; Prosody answers with an
	# empty result and the roster stays as it was.
	off = ctx.server.log_offset()
	ac.events = []
	ac.ok("reconnect")
	ac.wait_event(ev_is("state", state="online"), 20, "online again")
	gets = wait_until(lambda: roster_gets(ctx.server.traffic(off)), 10,
		what="the fresh session's roster get")
	check([v for _, v in gets] == [ver],
		"the fresh session's roster gets %r, not with ver %r" % (gets, ver))
	wait_until(lambda: empty_result(ctx.server.traffic(off), gets[0][0]),
		10, what="Prosody's empty result to the versioned get")
	wait_until(lambda: "roster: unchanged since version '%s'" % ver
		in ax.log_text(), 10,
		what="xmppd taking the empty result as unchanged")
	r = ac.ok("roster")
	check(r.get("ver") == ver and roster_item(ac, carol) is not None,
		"the roster after the versioned fetch: %r" % r)

	# The server's refusal comes back as the reply's condition (Prosody
	# refuses the own JID; ejabberd 23.01 takes it).
	if ctx.server_name == "prosody":
		r = ac.request("roster-set", jid=a.jid, name="me")
		check(r["ok"] is False and r["error"]["condition"] == "not-allowed",
			"adding oneself: %r" % r)
	r = ac.request("roster-set", jid=carol, groups="Friends")
	check(r["ok"] is False and r["error"]["condition"] == "bad-request",
		"groups as a string: %r" % r)
	r = ac.request("roster-set", jid=carol, groups=["ok", 3])
	check(r["ok"] is False and r["error"]["condition"] == "bad-request",
		"a group that is not a string: %r" % r)

	ac.ok("roster-remove", jid=carol)
	ac.wait_event(ev_is("roster", jid=carol, subscription="remove"), 10,
		"the removal push")
	check(roster_item(ac, carol) is None, "carol is still in the roster")
	check(ac.ok("roster").get("ver") != ver, "the version did not move")


def test_foreign_roster_push_ignored(ctx):
	(a, ax, ac), (b, bx, bc) = two_online(ctx)
	a_full = ac.ok("status")["jid"]
	b_full = bc.ok("status")["jid"]
	before = ac.ok("roster")
	push = ("<query xmlns='jabber:iq:roster'><item jid='mallory@localhost' "
		"name='Mallory' subscription='both'/></query>")
	# bob pushes to alice's full JID: alice refuses it (the reply proves
	# she handled it), publishes nothing and keeps her roster.
	r = bc.request("iq", to=a_full, type="set", payload=push)
	check(r["ok"] is False and r["error"]["condition"]
		== "service-unavailable", "alice's answer to bob's push: %r" % r)
	after = ac.ok("roster")
	check(after.get("items") == before.get("items"),
		"a foreign push changed the roster: %r" % after)
	check(not events_named(ac, "roster"), "a foreign push was published: %r"
		% events_named(ac, "roster"))
	check("ignoring a roster push from '%s'" % b_full in ax.log_text(),
		"xmppd did not log the refused push")
	# bob's raw send of the same push (no reply awaited) is ignored too.
	bc.ok("raw", xml="<iq type='set' id='evil2' to='%s'>%s</iq>"
		% (a_full, push))
	bc.ok("iq", to=a_full, type="get",
		payload="<ping xmlns='urn:xmpp:ping'/>")
	check(roster_item(ac, "mallory@localhost") is None,
		"mallory got into the roster")
	check(not events_named(ac, "roster"), "a foreign push was published")


def test_own_presence_outlives_the_session(ctx):
	"""The presence set with the command is the initial presence of the
	next fresh session, not the configuration's."""
	(a, ax, ac), (b, bx, bc) = ctx.subscribed_pair(
		{"server": {"stream_management": "no"}})
	b_full = bc.ok("status")["jid"]
	bc.ok("presence", show="xa", status="gone fishing")
	ac.wait_event(lambda e: e.get("event") == "presence"
		and e.get("from") == b_full and e.get("show") == "xa", 10,
		"bob's xa at alice")
	del ac.events[:]
	bc.ok("reconnect")
	ac.wait_event(lambda e: e.get("event") == "presence"
		and e.get("from") == b_full and e.get("type") == "unavailable", 15,
		"bob's old session going")
	ev = ac.wait_event(lambda e: e.get("event") == "presence"
		and e.get("from") == b_full and e.get("type") is None, 15,
		"bob's new session's presence")
	check(ev.get("show") == "xa" and ev.get("status") == "gone fishing",
		"the new session's presence %r" % ev)
