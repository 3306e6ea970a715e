"""Rich messages against the server: receipts (XEP-0184), chat states
(XEP-0085), error replies as failed sends, xml:lang alternatives, message
types, corrections (XEP-0308), /me (XEP-0245), delay (XEP-0203)."""

import re
import time

from fixtures import check, wait_until


def message_with(**want):
	def pred(e):
		return e.get("event") == "message" and all(e.get(k) == v
			for k, v in want.items())
	return pred


def sent_status(msg_id, status):
	return lambda e: (e.get("event") == "sent" and e.get("msg_id") == msg_id
		and e.get("status") == status)


def pair(ctx, events=("message", "sent", "chatstate"), subscribed=False):
	"""alice and bob online in two xmppds (subscribed to each other's
	presence if subscribed); returns their clients and full JIDs:
	(ac, a_full, bc, b_full)."""
	a, b = ctx.account("alice"), ctx.account("bob")
	ax, ac = ctx.online(a)
	bx, bc = ctx.online(b)
	if subscribed:
		ctx.subscribe_both((ac, a.jid), (bc, b.jid))
	for c in (ac, bc):
		c.ok("subscribe", events=list(events))
	return ac, ac.ok("status")["jid"], bc, bc.ok("status")["jid"], (ax, bx)


def no_event(client, pred):
	"""No collected event satisfies pred."""
	return not any(pred(e) for e in client.events)


def test_receipt_round_trip(ctx):
	log_start = ctx.server.log_offset()
	ac, a_full, bc, b_full, (ax, bx) = pair(ctx, subscribed=True)
	body = "receipt please %f" % time.time()
	r = ac.ok("send", to=b_full, body=body, receipt=True)
	mid = r["msg_id"]
	ev = bc.wait_event(message_with(body=body), 10, "alice's message at bob")
	check(ev.get("msg_id") == mid, "msg_id %r, not %r" % (ev.get("msg_id"),
		mid))
	# bob's xmppd answers by itself; alice learns it was delivered.
	ac.wait_event(sent_status(mid, "delivered"), 10, "delivered for " + mid)
	# The receipt has an origin-id, as everything xmppd sends.
	wait_until(lambda: re.search(r"RECV: <message[^\n]*<received [^\n]*"
		r"%s[^\n]*<origin-id [^>]*urn:xmpp:sid:0" % mid,
		ctx.server.traffic(log_start)), 5, 0.1, "the receipt's origin-id")
	# (Prosody writes attributes in no fixed order.)
	wait_until(lambda: re.search(r"RECV: <message[^\n]*<request "
		r"[^>]*urn:xmpp:receipts", ctx.server.traffic(log_start)), 5, 0.1,
		"a receipt request in the server's log")
	# Without receipt:true nothing is asked and nothing is delivered.
	r2 = ac.ok("send", to=b_full, body=body + " again")
	bc.wait_event(message_with(body=body + " again"), 10, "second message")
	ac.ok("iq", type="get", to=b_full, payload="<ping xmlns='urn:xmpp:ping'/>")
	check(no_event(ac, sent_status(r2["msg_id"], "delivered")),
		"delivered without a receipt request")
	# A receipt can only be asked for a message with a body.
	bad = ac.request("send", to=b_full, subject="s", receipt=True)
	check(not bad["ok"] and bad["error"]["condition"] == "bad-request",
		"receipt without body accepted: %r" % bad)
	bad = ac.request("send", to=b_full, body="x", receipt="yes")
	check(not bad["ok"] and bad["error"]["condition"] == "bad-request",
		"receipt as a string accepted: %r" % bad)


def test_no_receipt_for_strangers(ctx):
	"""A receipt would tell anyone that we are online: xmppd answers
	only those who may see its presence anyway (bob, who is not
	subscribed to alice, gets none), and never a groupchat message."""
	ac, a_full, bc, b_full, (ax, bx) = pair(ctx)
	body = "are you there? %f" % time.time()
	mid = bc.ok("send", to=a_full, body=body, receipt=True)["msg_id"]
	ac.wait_event(message_with(body=body), 10, "bob's message at alice")
	# alice's answer to the ping leaves after any receipt she would send.
	bc.ok("iq", type="get", to=a_full, payload="<ping xmlns='urn:xmpp:ping'/>")
	bc.ok("iq", type="get", payload="<ping xmlns='urn:xmpp:ping'/>")
	check(no_event(bc, sent_status(mid, "delivered")),
		"alice sent a receipt to a stranger")
	check("no receipt for '%s'" % mid in ax.log_text(),
		"xmppd did not say why it sent no receipt")
	# Once bob is subscribed to alice, the next request is answered.
	ctx.subscribe_both((ac, ax.account.jid), (bc, bx.account.jid))
	mid = bc.ok("send", to=a_full, body=body + " now", receipt=True)["msg_id"]
	bc.wait_event(sent_status(mid, "delivered"), 10, "delivered to a contact")


def test_receipt_only_from_recipient(ctx):
	a, b, c = ctx.account("alice"), ctx.account("bob"), ctx.account("carol")
	ax, ac = ctx.online(a)
	cx, cc = ctx.online(c)
	ac.ok("subscribe", events=["sent", "message"])
	a_full = ac.ok("status")["jid"]
	peer = ctx.peer(b)  # slixmpp: does not answer receipts
	body = "to the peer %f" % time.time()
	mid = ac.ok("send", to=peer.jid, body=body, receipt=True)["msg_id"]
	peer.wait_event(lambda e: e.get("event") == "message"
		and e.get("body") == body, 10, "alice's message at the peer")
	# carol claims bob received it.
	cc.ok("raw", xml="<message to='%s'><received xmlns='urn:xmpp:receipts'"
		" id='%s'/></message>" % (a_full, mid))
	cc.ok("send", to=a_full, body="after the fake receipt")
	ac.wait_event(message_with(body="after the fake receipt"), 10,
		"carol's message after her fake receipt")
	check(no_event(ac, sent_status(mid, "delivered")),
		"a receipt from a third party counted as delivered")


def test_chatstates_both_ways(ctx):
	log_start = ctx.server.log_offset()
	ac, a_full, bc, b_full, _ = pair(ctx)
	ac.ok("chatstate", to=b_full, state="composing")
	ev = bc.wait_event(lambda e: e.get("event") == "chatstate"
		and e.get("from") == a_full, 10, "alice's chat state at bob")
	check(ev.get("state") == "composing", "state %r" % ev.get("state"))
	body = "typed it %f" % time.time()
	ac.ok("send", to=b_full, body=body, chatstate="active")
	ev = bc.wait_event(lambda e: e.get("event") == "chatstate"
		and e.get("from") == a_full, 10, "second chat state")
	check(ev.get("state") == "active", "state %r, not active"
		% ev.get("state"))
	bc.wait_event(message_with(body=body), 10, "the message itself")
	check(no_event(bc, lambda e: e.get("event") == "message"),
		"a bare chat state became a message event: %r" % bc.events)
	# The standalone one was marked not to be stored.
	wait_until(lambda: "urn:xmpp:hints" in ctx.server.traffic(log_start), 5, 0.1,
		"the standalone chat state's no-store hint")

	bc.ok("chatstate", to=a_full, state="paused")
	ev = ac.wait_event(lambda e: e.get("event") == "chatstate"
		and e.get("from") == b_full, 10, "bob's chat state at alice")
	check(ev.get("state") == "paused", "state %r" % ev.get("state"))
	bad = ac.request("chatstate", to=b_full, state="sleeping")
	check(not bad["ok"] and bad["error"]["condition"] == "bad-request",
		"bad state accepted: %r" % bad)


def test_error_reply_is_failed_send(ctx):
	ac, a_full, bc, b_full, _ = pair(ctx)
	r = ac.ok("send", to="nobody_%d@localhost" % int(time.time() * 1000),
		body="anyone there?")
	ev = ac.wait_event(sent_status(r["msg_id"], "failed"), 10,
		"failed for a message to a non-existent user")
	check(ev.get("condition") in ("service-unavailable", "item-not-found"),
		"condition %r" % ev.get("condition"))
	# It is a sent event, not a message event.
	ac.ok("iq", type="get", payload="<ping xmlns='urn:xmpp:ping'/>")
	check(no_event(ac, lambda e: e.get("event") == "message"
		and e.get("type") == "error"), "the error also came as a message")
	# An error that is no reply to us stays a message event.
	bc.ok("raw", xml="<message to='%s' type='error' id='not-ours'>"
		"<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:"
		"ns:xmpp-stanzas'/></error></message>" % a_full)
	ev = ac.wait_event(message_with(type="error", msg_id="not-ours"), 10,
		"an unrelated error message")
	check(ev.get("error") == "item-not-found", "error %r" % ev.get("error"))
	# bob cannot fail a message alice sent to someone else.
	r = ac.ok("send", to=b_full, body="fine")
	bc.wait_event(message_with(body="fine"), 10, "bob's copy")
	ac.wait_event(sent_status(r["msg_id"], "acked"), 10, "acked")
	r2 = ac.ok("send", to="carol@localhost", body="secret")
	bc.ok("raw", xml="<message to='%s' type='error' id='%s'><error "
		"type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:"
		"xmpp-stanzas'/></error></message>" % (a_full, r2["msg_id"]))
	ac.wait_event(message_with(type="error", msg_id=r2["msg_id"]), 10,
		"bob's error, published as a message")
	check(no_event(ac, lambda e: e.get("event") == "sent"
		and e.get("status") == "failed"
		and e.get("msg_id") == r2["msg_id"]
		and e.get("condition") == "item-not-found"),
		"bob's error failed a message to carol")


def test_lang_alternatives(ctx):
	ac, a_full, bc, b_full, _ = pair(ctx)
	bc.ok("raw", xml="<message to='%s' type='chat' xml:lang='en' id='l1'>"
		"<body>Hello</body><body xml:lang='de'>Hallo</body>"
		"<body xml:lang='fr'>Bonjour</body></message>" % a_full)
	ev = ac.wait_event(message_with(msg_id="l1"), 10, "message l1")
	check(ev.get("body") == "Hello", "body %r" % ev.get("body"))
	check(ev.get("bodies") == {"en": "Hello", "de": "Hallo",
		"fr": "Bonjour"}, "bodies %r" % ev.get("bodies"))
	check(ev.get("lang") == "en", "lang %r" % ev.get("lang"))
	bc.ok("raw", xml="<message to='%s' type='chat' xml:lang='de' id='l2'>"
		"<body xml:lang='en'>Hello</body><body xml:lang='de'>Hallo</body>"
		"</message>" % a_full)
	ev = ac.wait_event(message_with(msg_id="l2"), 10, "message l2")
	check(ev.get("body") == "Hallo", "body %r, not the stanza's language"
		% ev.get("body"))
	bc.ok("raw", xml="<message to='%s' type='chat' id='l3'>"
		"<body xml:lang='it'>Ciao</body><body xml:lang='es'>Hola</body>"
		"</message>" % a_full)
	ev = ac.wait_event(message_with(msg_id="l3"), 10, "message l3")
	check(ev.get("body") == "Ciao", "body %r, not the first" % ev.get("body"))
	bc.ok("send", to=a_full, body="single", lang="en")
	ev = ac.wait_event(message_with(body="single"), 10, "single body")
	check("bodies" not in ev, "bodies for a single body: %r" % ev)
	check(ev.get("lang") == "en", "send lang not carried: %r" % ev)


def test_types_subject_thread(ctx):
	ac, a_full, bc, b_full, _ = pair(ctx)
	for t in ("chat", "normal", "headline"):
		bc.ok("send", to=a_full, type=t, body="type " + t,
			subject="subj " + t, thread="th-" + t)
		ev = ac.wait_event(message_with(body="type " + t), 10, t)
		check(ev.get("type") == t and ev.get("subject") == "subj " + t
			and ev.get("thread") == "th-" + t, "%s message: %r" % (t, ev))
	bc.ok("send", to=a_full, subject="only a subject")
	ev = ac.wait_event(message_with(subject="only a subject"), 10,
		"subject-only message")
	check("body" not in ev, "body in a subject-only message: %r" % ev)


def test_correction_me_delay(ctx):
	ac, a_full, bc, b_full, _ = pair(ctx)
	r = bc.ok("send", to=a_full, body="helo")
	bc.ok("raw", xml="<message to='%s' type='chat' id='fix1'><body>hello"
		"</body><replace xmlns='urn:xmpp:message-correct:0' id='%s'/>"
		"</message>" % (a_full, r["msg_id"]))
	ev = ac.wait_event(message_with(msg_id="fix1"), 10, "the correction")
	check(ev.get("replace") == r["msg_id"] and ev.get("body") == "hello",
		"correction not flagged: %r" % ev)
	first = ac.wait_event(message_with(body="helo"), 10, "the original")
	check("replace" not in first, "original flagged: %r" % first)
	bc.ok("send", to=a_full, body="/me waves")
	ev = ac.wait_event(message_with(body="/me waves"), 10, "the /me")
	check(ev.get("me") is True, "/me not flagged: %r" % ev)
	bc.ok("send", to=a_full, body="/meaning of life")
	ev = ac.wait_event(message_with(body="/meaning of life"), 10, "not /me")
	check("me" not in ev, "'/meaning' flagged as /me: %r" % ev)
	bc.ok("raw", xml="<message to='%s' type='chat' id='late'><body>old"
		"</body><delay xmlns='urn:xmpp:delay' stamp='2002-09-10T23:08:25Z'"
		" from='localhost'/></message>" % a_full)
	ev = ac.wait_event(message_with(msg_id="late"), 10, "delayed message")
	check(ev.get("delay") == "2002-09-10T23:08:25Z"
		and ev.get("delay_from") == "localhost", "delay: %r" % ev)


def test_disco_advertises_receipts_and_chatstates(ctx):
	ac, a_full, bc, b_full, _ = pair(ctx)
	r = bc.ok("iq", type="get", to=a_full,
		payload="<query xmlns='http://jabber.org/protocol/disco#info'/>")
	for ns in ("urn:xmpp:receipts", "http://jabber.org/protocol/chatstates"):
		check("var=\"%s\"" % ns in r["xml"] or "var='%s'" % ns in r["xml"],
			"disco#info lacks %s: %s" % (ns, r["xml"]))
