"""Extensions outside the daemon, against the run's server: IQ handlers
registered over the socket (iq-handle, iq events, iq-reply, timeouts,
a handler that goes away, conflicts), "stanza" events filtered by
namespace, and the XML console ("xml" events, SASL redacted)."""

import base64
import time
import xml.etree.ElementTree as ET

from fixtures import check
from test_disco import CAPS_NODE, caps_ver

ECHO = "urn:example:echo"
EXT = "urn:example:ext"


def is_iq(ns):
	return lambda e: e.get("event") == "iq" and e.get("ns") == ns


def pair(ctx, alice_conf=None):
	"""alice and bob online in two xmppds: (ax, ac, a_full, bx, bc)."""
	a, b = ctx.account("alice"), ctx.account("bob")
	ax, ac = ctx.online(a, alice_conf)
	bx, bc = ctx.online(b)
	return ax, ac, ac.ok("status")["jid"], bx, bc


def echo_request(bc, to, text="hi", wait=15, timeout=None):
	"""bob's iq get of <q xmlns=ECHO>text</q> to alice; its reply."""
	args = {"type": "get", "to": to,
		"payload": "<q xmlns='%s'>%s</q>" % (ECHO, text)}
	if timeout is not None:
		args["timeout"] = timeout
	return bc.request("iq", wait, **args)


def send_echo(bc, to, text="hi"):
	"""Sends bob's request without waiting for its reply; the request id."""
	rid = bc.next_id
	bc.next_id += 1
	bc.send_line('{"cmd":"iq","id":%d,"type":"get","to":"%s",'
		'"payload":"<q xmlns=\'%s\'>%s</q>"}' % (rid, to, ECHO, text))
	return rid


def reply_to(client, rid, wait=15):
	r = client.next_reply(wait)
	check(r.get("id") == rid, "reply %r is not to request %d" % (r, rid))
	return r


def test_iq_handler_answers(ctx):
	ax, ac, a_full, bx, bc = pair(ctx)
	h = ax.client()
	r = h.ok("iq-handle", ns=ECHO)
	check(r.get("handled") == [ECHO], "handled: %r" % r)
	rid = send_echo(bc, a_full, "hi")
	ev = h.wait_event(is_iq(ECHO), 10, "the echo request at the handler")
	check(ev.get("type") == "get", "type %r" % ev)
	check(ev.get("from", "").split("/")[0] == bx.account.jid,
		"from %r is not bob" % ev.get("from"))
	q = ET.fromstring(ev["xml"])
	check(q.tag == "{%s}q" % ECHO and q.text == "hi", "xml %r" % ev["xml"])
	check("seq" not in ev or isinstance(ev["seq"], int), "seq %r" % ev)
	# Only the handler's client hears it, even one subscribed to "*".
	check(not any(e.get("event") == "iq" for e in ac.events),
		"another client got the iq event: %r" % ac.events)
	h.ok("iq-reply", iq_id=ev["iq_id"], type="result",
		payload="<q xmlns='%s'>echo: hi</q>" % ECHO)
	r = reply_to(bc, rid)
	check(r["ok"] is True and r.get("type") == "result", "bob got %r" % r)
	reply = ET.fromstring(r["xml"])
	q = reply.find("{%s}q" % ECHO)
	check(q is not None and q.text == "echo: hi", "payload lost: %r"
		% r["xml"])
	# A second answer is refused.
	again = h.request("iq-reply", iq_id=ev["iq_id"], type="result")
	check(not again["ok"] and again["error"]["condition"] == "item-not-found",
		"second answer accepted: %r" % again)


def test_iq_handler_error_reply(ctx):
	ax, ac, a_full, bx, bc = pair(ctx)
	h = ax.client()
	h.ok("iq-handle", ns=ECHO)
	rid = send_echo(bc, a_full, "no")
	ev = h.wait_event(is_iq(ECHO), 10, "the request at the handler")
	bad = h.request("iq-reply", iq_id=ev["iq_id"], type="error")
	check(not bad["ok"] and bad["error"]["condition"] == "bad-request",
		"error without condition: %r" % bad)
	bad = h.request("iq-reply", iq_id=ev["iq_id"], type="error",
		condition="no-such-condition")
	check(not bad["ok"], "unknown condition accepted: %r" % bad)
	bad = h.request("iq-reply", iq_id=ev["iq_id"], type="result",
		payload="<unclosed")
	check(not bad["ok"] and bad["error"]["condition"] == "bad-request",
		"broken payload accepted: %r" % bad)
	# The request is still waiting after the refusals.
	h.ok("iq-reply", iq_id=ev["iq_id"], type="error", condition="not-allowed",
		text="echo refuses 'no'")
	r = reply_to(bc, rid)
	check(r["ok"] is False and r["error"]["condition"] == "not-allowed",
		"bob got %r" % r)
	check("echo refuses" in r["error"].get("text", ""), "text lost: %r" % r)
	err = next((e for e in ET.fromstring(r["xml"])
		if e.tag.split("}")[-1] == "error"), None)
	check(err is not None and err.get("type") == "cancel", "error type: %r"
		% r["xml"])


def test_iq_handler_timeout(ctx):
	ax, ac, a_full, bx, bc = pair(ctx, {"limits": {"iq_timeout": 2}})
	h = ax.client()
	h.ok("iq-handle", ns=ECHO)
	start = time.monotonic()
	rid = send_echo(bc, a_full, "silence")
	ev = h.wait_event(is_iq(ECHO), 10, "the request at the handler")
	r = reply_to(bc, rid, 20)
	took = time.monotonic() - start
	check(r["ok"] is False and r["error"]["condition"] ==
		"service-unavailable", "bob got %r" % r)
	check(1.5 <= took < 15, "the timeout came after %.1fs" % took)
	late = h.request("iq-reply", iq_id=ev["iq_id"], type="result")
	check(not late["ok"] and late["error"]["condition"] == "item-not-found",
		"a late answer was accepted: %r" % late)


def test_iq_handler_goes_away(ctx):
	ax, ac, a_full, bx, bc = pair(ctx)
	h = ax.client()
	h.ok("iq-handle", ns=ECHO)
	rid = send_echo(bc, a_full, "pending")
	h.wait_event(is_iq(ECHO), 10, "the request at the handler")
	start = time.monotonic()
	h.close()
	# The pending request is answered at once, not after iq_timeout (30s).
	r = reply_to(bc, rid, 10)
	check(r["ok"] is False and r["error"]["condition"] ==
		"service-unavailable", "bob got %r" % r)
	check(time.monotonic() - start < 5, "the answer took %.1fs"
		% (time.monotonic() - start))
	# The namespace is free again: the next request fails fast ...
	start = time.monotonic()
	r = echo_request(bc, a_full, "next", wait=10)
	check(r["ok"] is False and r["error"]["condition"] ==
		"service-unavailable", "bob got %r" % r)
	check(time.monotonic() - start < 5, "the refusal took %.1fs"
		% (time.monotonic() - start))
	# ... and another client may take it.
	h2 = ax.client()
	h2.ok("iq-handle", ns=ECHO)


def test_iq_handle_conflict_and_unhandle(ctx):
	ax, ac, a_full, bx, bc = pair(ctx)
	h1, h2 = ax.client(), ax.client()
	h1.ok("iq-handle", ns=ECHO)
	h1.ok("iq-handle", ns=ECHO)  # the holder may say it again
	r = h2.request("iq-handle", ns=ECHO)
	check(not r["ok"] and r["error"]["condition"] == "conflict",
		"second registration: %r" % r)
	r = h2.request("iq-unhandle", ns=ECHO)
	check(not r["ok"] and r["error"]["condition"] == "item-not-found",
		"unhandle by a stranger: %r" % r)
	# A reply with someone else's iq_id is refused without a trace.
	rid = send_echo(bc, a_full, "who")
	ev = h1.wait_event(is_iq(ECHO), 10, "the request at h1")
	r = h2.request("iq-reply", iq_id=ev["iq_id"], type="result")
	check(not r["ok"] and r["error"]["condition"] == "item-not-found",
		"foreign answer accepted: %r" % r)
	h1.ok("iq-reply", iq_id=ev["iq_id"], type="result")
	check(reply_to(bc, rid)["ok"] is True, "bob's request failed")
	r = h1.ok("iq-unhandle", ns=ECHO)
	check(r.get("handled") == [], "still handled: %r" % r)
	h2.ok("iq-handle", ns=ECHO)
	rid = send_echo(bc, a_full, "h2")
	h2.wait_event(is_iq(ECHO), 10, "the request at h2")
	check(not any(e.get("event") == "iq" for e in h1.events),
		"h1 still gets requests: %r" % h1.events)


def test_unhandled_namespace_and_builtins(ctx):
	ax, ac, a_full, bx, bc = pair(ctx)
	h = ax.client()
	h.ok("iq-handle", ns=ECHO)
	r = bc.request("iq", type="get", to=a_full,
		payload="<q xmlns='urn:example:nobody'/>")
	check(r["ok"] is False and r["error"]["condition"] ==
		"service-unavailable", "unhandled namespace: %r" % r)
	# A built-in namespace cannot be taken over: its row comes first.
	h.ok("iq-handle", ns="urn:xmpp:ping")
	r = bc.request("iq", type="get", to=a_full,
		payload="<ping xmlns='urn:xmpp:ping'/>")
	check(r["ok"] is True, "ping not answered by xmppd: %r" % r)
	check(not any(e.get("event") == "iq" for e in h.events),
		"a built-in request reached the handler: %r" % h.events)


def test_stanza_events_by_namespace(ctx):
	ax, ac, a_full, bx, bc = pair(ctx)
	with_ns, other_ns, no_filter = ax.client(), ax.client(), ax.client()
	with_ns.ok("subscribe", events=["stanza"], ns=[EXT])
	other_ns.ok("subscribe", events=["stanza"], ns=["urn:example:other"])
	no_filter.ok("subscribe", events=["stanza", "message"])
	marker = "ext %f" % time.time()
	bc.ok("raw", xml="<message to='%s' type='chat'><body>%s</body>"
		"<x xmlns='%s' a='1'/></message>" % (a_full, marker, EXT))
	ev = with_ns.wait_event(lambda e: e.get("event") == "stanza"
		and marker in e.get("xml", ""), 10, "the stanza event")
	check(ev.get("kind") == "message" and ev.get("type") == "chat",
		"kind/type %r" % ev)
	check(EXT in ev.get("ns", []), "ns %r" % ev.get("ns"))
	check(ev.get("from", "").split("/")[0] == bx.account.jid, "from %r" % ev)
	st = ET.fromstring(ev["xml"])
	check(st.find("{%s}x" % EXT) is not None, "no <x/> in %r" % ev["xml"])
	no_filter.wait_event(lambda e: e.get("event") == "stanza"
		and marker in e.get("xml", ""), 10, "the unfiltered stanza event")
	# The message event is still published as before.
	no_filter.wait_event(lambda e: e.get("event") == "message"
		and e.get("body") == marker, 10, "the message event")
	# A plain message does not pass the filter; an IQ round trip later,
	# the other-namespace client has seen nothing.
	bc.ok("send", to=a_full, body="plain " + marker)
	no_filter.wait_event(lambda e: e.get("event") == "stanza"
		and ("plain " + marker) in e.get("xml", ""), 10, "the plain stanza")
	with_ns.ok("status")
	other_ns.ok("status")
	check(not any(e.get("event") == "stanza" for e in other_ns.events),
		"other namespace got %r" % other_ns.events)
	check(not any("plain " in e.get("xml", "") for e in with_ns.events),
		"filtered client got the plain message: %r" % with_ns.events)
	# A presence with an extension comes as kind presence.
	bc.ok("raw", xml="<presence to='%s'><x xmlns='%s'>p</x></presence>"
		% (a_full, EXT))
	ev = with_ns.wait_event(lambda e: e.get("event") == "stanza"
		and e.get("kind") == "presence", 10, "the presence stanza event")
	check(EXT in ev["ns"], "presence ns %r" % ev)
	# Stanza events are not kept for replay.
	late = ax.client()
	late.ok("subscribe", events=["stanza"], since=0)
	late.ok("status")
	check(not any(e.get("event") == "stanza" for e in late.events),
		"stanza events replayed: %r" % late.events)


def test_xml_console_and_redaction(ctx):
	a = ctx.account("alice")
	# The log trace is off: the console is switched on by the subscriber.
	ax, ac = ctx.online(a, {"log": {"xml": "no"}})
	con = ax.client()
	con.ok("subscribe", events=["xml", "state"])
	con.ok("iq", type="get", payload="<ping xmlns='urn:xmpp:ping'/>")
	out = con.wait_event(lambda e: e.get("event") == "xml"
		and e.get("dir") == "out" and "urn:xmpp:ping" in e.get("xml", ""),
		10, "the ping going out")
	con.wait_event(lambda e: e.get("event") == "xml" and e.get("dir") == "in"
		and "type='result'" in e.get("xml", "").replace('"', "'"), 10,
		"the ping's result coming in")
	check(isinstance(out.get("seq"), int), "xml event without seq: %r" % out)
	con.ok("reconnect")
	con.wait_event(lambda e: e.get("event") == "state"
		and e.get("state") in ("online", "resumed"), 30, "back online")
	xmls = [e for e in con.events if e.get("event") == "xml"]
	text = "\n".join(e["xml"] for e in xmls)
	check("<auth" in text or "<resume" in text, "no login in the console")
	pw = a.password
	for secret in (pw, base64.b64encode(pw.encode()).decode(),
			base64.b64encode(("\0%s\0%s" % (a.user, pw)).encode()).decode()):
		check(secret not in text, "a secret in the console")
	for e in xmls:
		x = e["xml"]
		if x.startswith(("<auth", "<response", "<challenge", "<success")) \
				and "xmpp-sasl" in x and not x.endswith("/>"):
			check("[redacted]" in x, "SASL payload shown: %r" % x[:200])
	check(any(e["dir"] == "in" for e in xmls) and
		any(e["dir"] == "out" for e in xmls), "one direction missing")
	# Not kept for replay, and nothing after unsubscribing.
	late = ax.client()
	upto = late.ok("subscribe", events=["xml"], since=0)["seq"]
	late.ok("status")
	# Live traffic may follow the subscription; a replay is older.
	replayed = [e for e in late.events if e.get("event") == "xml"
		and e.get("seq", upto + 1) <= upto]
	check(not replayed, "xml events replayed: %r" % replayed[:3])
	late.close()
	con.ok("unsubscribe", events=["xml"])
	con.events.clear()
	con.ok("iq", type="get", payload="<ping xmlns='urn:xmpp:ping'/>")
	check(not any(e.get("event") == "xml" for e in con.events),
		"xml events after unsubscribing")
	# The console never wrote to the log, whose xml trace is off.
	check("SEND <" not in ax.log_text(), "the console wrote to the log")


def test_handlers_split_by_type(ctx):
	"""One client takes the get requests of a namespace, another the set
	requests; overlapping registrations are refused."""
	ax, ac, a_full, bx, bc = pair(ctx)
	getter, setter = ax.client(), ax.client()
	r = getter.ok("iq-handle", ns=ECHO, type="get")
	check(r.get("handled") == [{"ns": ECHO, "type": "get"}], "handled %r" % r)
	r = setter.request("iq-handle", ns=ECHO)
	check(r["ok"] is False and r["error"]["condition"] == "conflict",
		"an overlapping registration was accepted: %r" % r)
	setter.ok("iq-handle", ns=ECHO, type="set")
	bc.send_line('{"cmd":"iq","id":901,"type":"set","to":"%s",'
		'"payload":"<q xmlns=\'%s\'>s</q>"}' % (a_full, ECHO))
	ev = setter.wait_event(is_iq(ECHO), 10, "the set request at the set handler")
	check(ev.get("type") == "set", "type %r" % ev)
	check(not any(e.get("event") == "iq" for e in getter.events),
		"the get handler saw a set request")
	setter.ok("iq-reply", iq_id=ev["iq_id"], type="result")
	check(reply_to(bc, 901)["ok"] is True, "bob's set failed")
	rid = send_echo(bc, a_full, "g")
	ev = getter.wait_event(is_iq(ECHO), 10, "the get request at the get handler")
	getter.ok("iq-reply", iq_id=ev["iq_id"], type="result")
	check(reply_to(bc, rid)["ok"] is True, "bob's get failed")
	r = setter.request("iq-unhandle", ns=ECHO)
	check(r["ok"] is False, "unhandle without the type matched %r" % r)
	r = setter.ok("iq-unhandle", ns=ECHO, type="set")
	check(r.get("handled") == [], "still handled %r" % r)


def test_handled_namespace_advertised_and_in_caps(ctx):
	"""A namespace taken with iq-handle is a feature of ours: disco#info
	lists it, and the caps hash in a fresh presence says so; it goes
	again with its handler."""
	(a, ax, ac), (b, bx, bc) = ctx.subscribed_pair()
	a_full = ac.ok("status")["jid"]
	before = bc.ok("disco", to=a_full)
	check(ECHO not in before["features"], "echo listed before: %r" % before)
	old_ver = caps_ver(before)

	def presence_with_ver(pred):
		return lambda e: (e.get("event") == "presence"
			and e.get("from") == a_full and "caps" in e
			and pred(e["caps"]["ver"]))
	h = ax.client()
	h.ok("iq-handle", ns=ECHO, type="get")
	ev = bc.wait_event(presence_with_ver(lambda v: v != old_ver), 10,
		"alice's presence with new caps")
	check(ev["caps"]["node"] == CAPS_NODE, "caps %r" % ev["caps"])
	info = bc.ok("disco", to=a_full)
	check(ECHO in info["features"], "echo not listed: %r" % info)
	check(caps_ver(info) == ev["caps"]["ver"], "caps ver %s, disco#info "
		"hashes to %s" % (ev["caps"]["ver"], caps_ver(info)))
	r = bc.ok("disco", to=a_full, node="%s#%s" % (CAPS_NODE,
		ev["caps"]["ver"]))
	check(ECHO in r["features"], "the caps node lacks echo: %r" % r)
	check(ECHO in ac.ok("status")["client_features"], "status lacks echo")
	# A second registration of the namespace changes nothing.
	h.ok("iq-handle", ns=ECHO, type="set")
	# The handler goes: so do the feature and the new hash.
	h.close()
	bc.wait_event(presence_with_ver(lambda v: v == old_ver), 10,
		"alice's presence with the old caps again")
	check(ECHO not in bc.ok("disco", to=a_full)["features"],
		"echo still listed after its handler left")
