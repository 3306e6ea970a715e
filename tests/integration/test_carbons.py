"""Message carbons (XEP-0280) against the server: two xmppds of one account
(resources a1 and a2) and bob. Carbons are unwrapped into message events
with "carbon" set, only when our own bare JID wrapped them."""

import re
import time

from fixtures import check, wait_until


def message_with(**want):
	def pred(e):
		return e.get("event") == "message" and all(e.get(k) == v
			for k, v in want.items())
	return pred


def trio(ctx):
	"""alice on resources a1 and a2 (carbons enabled on both) and bob:
	returns (alice account, (x1, c1, full1), (x2, c2, full2),
	(bob account, bx, bc, b_full))."""
	a, b = ctx.account("alice"), ctx.account("bob")
	out = []
	for res in ("a1", "a2"):
		x, c = ctx.online(a, {"account": {"resource": res}},
			events=("message", "state", "chatstate", "sent", "presence"))
		wait_until(lambda: "carbons enabled" in x.log_text(), 10, 0.05,
			"carbons enabled on " + res)
		out.append((x, c, c.ok("status")["jid"]))
	bx, bc = ctx.online(b, events=("message", "state", "sent", "presence"))
	# bob may see alice's presence, so her xmppd answers his receipts.
	ctx.subscribe_both((out[0][1], a.jid), (bc, b.jid))
	return a, out[0], out[1], (b, bx, bc, bc.ok("status")["jid"])


def sync(client):
	"""A round trip to the server: whatever it sent this client before
	has been read once this returns."""
	client.ok("iq", type="get", payload="<ping xmlns='urn:xmpp:ping'/>")


def test_received_and_sent_carbons(ctx):
	a, (x1, c1, f1), (x2, c2, f2), (b, bx, bc, b_full) = trio(ctx)
	check(f1.endswith("/a1") and f2.endswith("/a2"), "resources %s %s"
		% (f1, f2))
	body = "to a1 %f" % time.time()
	bc.ok("send", to=f1, body=body, receipt=True)
	ev = c1.wait_event(message_with(body=body), 10, "bob's message at a1")
	check("carbon" not in ev, "direct message flagged as carbon: %r" % ev)
	ev = c2.wait_event(message_with(body=body), 10, "received carbon at a2")
	check(ev.get("carbon") == "received", "carbon %r" % ev.get("carbon"))
	check(ev.get("from") == b_full and ev.get("to") == f1,
		"received carbon from %r to %r" % (ev.get("from"), ev.get("to")))
	# a1 answered the receipt, a2 (which got only a carbon) did not.
	bc.wait_event(lambda e: e.get("event") == "sent"
		and e.get("status") == "delivered", 10, "bob's delivered")
	sync(c2)
	a2_lines = ctx.server.session_log(f2)
	check(a2_lines, "no Prosody session for %s" % f2)
	check(not any("RECV: <message" in ln and "<received" in ln
		and "urn:xmpp:receipts" in ln for ln in a2_lines),
		"a2 answered a receipt request of a carbon")

	body = "from a1 %f" % time.time()
	c1.ok("send", to=b.jid, body=body)
	bc.wait_event(message_with(body=body), 10, "a1's message at bob")
	ev = c2.wait_event(message_with(body=body), 10, "sent carbon at a2")
	check(ev.get("carbon") == "sent", "carbon %r" % ev.get("carbon"))
	check(ev.get("to") == b.jid and ev.get("from") == f1,
		"sent carbon from %r to %r" % (ev.get("from"), ev.get("to")))
	check(ev.get("msg_id"), "sent carbon without msg_id: %r" % ev)


def test_private_message_not_copied(ctx):
	log_start = ctx.server.log_offset()
	a, (x1, c1, f1), (x2, c2, f2), (b, bx, bc, b_full) = trio(ctx)
	c1.ok("send", to=b.jid, body="private one", private=True)
	bc.wait_event(message_with(body="private one"), 10, "private at bob")
	c1.ok("send", to=b.jid, body="public one")
	bc.wait_event(message_with(body="public one"), 10, "public at bob")
	c2.wait_event(message_with(body="public one", carbon="sent"), 10,
		"carbon of the public one")
	check(not any(e.get("body") == "private one" for e in c2.events),
		"a private message was copied: %r" % c2.events)
	wait_until(lambda: re.search(r"RECV: <message[^\n]*private one[^\n]*"
		r"<private [^>]*urn:xmpp:carbons:2[^\n]*<no-copy ",
		ctx.server.traffic(log_start)), 5, 0.1,
		"<private/> and <no-copy/> in what the server received")


def test_forged_carbons_ignored(ctx):
	a, (x1, c1, f1), (x2, c2, f2), (b, bx, bc, b_full) = trio(ctx)
	for kind in ("received", "sent"):
		bc.ok("raw", xml=(
			"<message to='%s' type='chat'><%s xmlns='urn:xmpp:carbons:2'>"
			"<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:"
			"client' from='%s' to='%s' type='chat'><body>forged %s</body>"
			"</message></forwarded></%s></message>")
			% (f1, kind, f1 if kind == "sent" else "carol@localhost/x",
				b.jid if kind == "sent" else f1, kind, kind))
	# Another resource of alice's own account is not the bare JID either.
	c2.ok("raw", xml=(
		"<message to='%s' type='chat'><received xmlns='urn:xmpp:carbons:2'>"
		"<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:"
		"client' from='carol@localhost/x' to='%s' type='chat'><body>"
		"forged by a2</body></message></forwarded></received></message>")
		% (f1, f1))
	bc.ok("send", to=f1, body="after the forgeries")
	c1.wait_event(message_with(body="after the forgeries"), 10,
		"bob's message after the forgeries")
	sync(c1)
	forged = [e for e in c1.events if e.get("event") == "message"
		and "forged" in (e.get("body") or "")]
	check(not forged, "forged carbons published: %r" % forged)
	log = x1.log_text()
	check(log.count("ignoring a forged carbon") >= 3,
		"no log line for each forged carbon")
