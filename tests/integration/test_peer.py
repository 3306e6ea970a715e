"""slixmpp (an independent client) as the peer of xmppd, and IQs."""

import time

from fixtures import check


def alice_and_peer(ctx):
	"""alice online in xmppd and bob in slixmpp: (alice's client,
	alice's full JID, the peer)."""
	a, b = ctx.account("alice"), ctx.account("bob")
	ax, ac = ctx.online(a)
	return ac, ac.ok("status")["jid"], ctx.peer(b)


def test_slixmpp_to_xmppd(ctx):
	ac, a_full, peer = alice_and_peer(ctx)
	body = "from slixmpp %f" % time.time()
	peer.command(op="send", to=a_full.split("/")[0], body=body)
	ev = ac.wait_event(lambda e: e.get("event") == "message"
		and e.get("body") == body, 10, "slixmpp's message")
	check(ev.get("from") == peer.jid, "from %r, not %s" % (ev.get("from"),
		peer.jid))


def test_xmppd_to_slixmpp(ctx):
	ac, a_full, peer = alice_and_peer(ctx)
	body = "to slixmpp \u00e9\u00e8 <b>&amp; %f" % time.time()
	ac.ok("send", to=peer.jid, body=body)
	ev = peer.wait_event(lambda e: e.get("event") == "message"
		and e.get("body") == body, 10)
	check(ev.get("from") == a_full, "from %r, not %s" % (ev.get("from"),
		a_full))
	check(ev.get("type") == "chat", "type %r" % ev.get("type"))


def test_disco_info_answered(ctx):
	ac, a_full, peer = alice_and_peer(ctx)
	peer.command(op="disco", to=a_full)
	ev = peer.wait_event(lambda e: e.get("event") == "disco", 15)
	check(ev.get("ok"), "disco#info to xmppd failed: %r" % ev)
	kinds = [(i[0], i[1]) for i in ev["identities"]]
	check(("client", "bot") in kinds, "identities %r lack client/bot"
		% ev["identities"])
	for f in ("http://jabber.org/protocol/disco#info", "urn:xmpp:ping"):
		check(f in ev["features"], "feature %s missing: %r"
			% (f, ev["features"]))


def test_ping_answered(ctx):
	ac, a_full, peer = alice_and_peer(ctx)
	peer.command(op="ping", to=a_full)
	ev = peer.wait_event(lambda e: e.get("event") == "ping", 15)
	check(ev.get("ok"), "ping to xmppd failed: %r" % ev)


def test_unknown_iq_gets_error(ctx):
	"""An IQ get of a namespace xmppd does not serve is answered with
	service-unavailable, not left unanswered."""
	ac, a_full, peer = alice_and_peer(ctx)
	peer.command(op="iq", to=a_full,
		payload="<query xmlns='urn:example:nothing'/>")
	ev = peer.wait_event(lambda e: e.get("event") == "iq", 15)
	check(ev.get("type") == "error" and ev.get("error")
		== "service-unavailable", "reply %r" % ev)


def test_iq_ping_server(ctx):
	a = ctx.account("alice")
	ax, ac = ctx.online(a)
	r = ac.request("iq", type="get", payload="<ping xmlns='urn:xmpp:ping'/>")
	check(r["ok"] is True, "ping to the server failed: %r" % r)
	check(r.get("type", "result") == "result", "reply type %r"
		% r.get("type"))
	r = ac.request("iq", to="localhost", type="get",
		payload="<query xmlns='urn:example:nothing'/>", wait=15)
	check("service-unavailable" in str(r) or "feature-not-implemented"
		in str(r), "an unsupported IQ got %r" % r)
	check(r["ok"] is False or r.get("type") == "error",
		"an error reply reported as success: %r" % r)
