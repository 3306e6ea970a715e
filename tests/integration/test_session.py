"""Online session against Prosody: status, messages both ways, presence,
clean shutdown on SIGTERM."""

import time

from fixtures import check


def is_message(body):
	return lambda e: e.get("event") == "message" and e.get("body") == body


def presence_from(jid, **want):
	def pred(e):
		if e.get("event") != "presence" or e.get("from") != jid:
			return False
		return all(e.get(k) == v for k, v in want.items())
	return pred


def test_status_reports_bound_jid(ctx):
	a = ctx.account("alice")
	x, c = ctx.online(a)
	st = c.ok("status")
	check(st.get("state") == "online", "state %r, not online" % st.get("state"))
	jid = st.get("jid", "")
	check(jid == a.jid + "/xmppd", "status jid %r, not the bound %s/xmppd"
		% (jid, a.jid))
	log = ctx.prosody.log_since(0)
	check("Resource bound: %s" % jid in log,
		"Prosody never bound %s" % jid)
	# A new client's greeting says the same.
	g = x.client().greeting
	check(g.get("version") == 1, "greeting version %r" % g.get("version"))
	check(g.get("state") == "online" and g.get("jid") == jid,
		"greeting %r does not say online as %s" % (g, jid))
	check(isinstance(g.get("seq"), int), "greeting has no integer seq")


def test_message_both_ways(ctx):
	a, b = ctx.account("alice"), ctx.account("bob")
	ax, ac = ctx.online(a)
	bx, bc = ctx.online(b)
	a_full = ac.ok("status")["jid"]
	b_full = bc.ok("status")["jid"]

	body = "hello bob \u263a <&> from alice %f" % time.time()
	r = ac.ok("send", to=b.jid, body=body)
	check(r.get("msg_id"), "send reply has no msg_id: %r" % r)
	ev = bc.wait_event(is_message(body), 10, "alice's message at bob")
	check(ev.get("from") == a_full, "from %r, not alice's full JID %s"
		% (ev.get("from"), a_full))
	check(ev.get("to", "").split("/")[0] == b.jid, "to %r" % ev.get("to"))
	check(ev.get("type") == "chat", "type %r, not chat" % ev.get("type"))
	check(isinstance(ev.get("seq"), int) and "id" not in ev,
		"event needs an integer seq and no id: %r" % ev)

	body2 = "and back to alice %f" % time.time()
	bc.ok("send", to=a_full, body=body2, type="normal")
	ev = ac.wait_event(is_message(body2), 10, "bob's message at alice")
	check(ev.get("from") == b_full, "from %r, not bob's full JID %s"
		% (ev.get("from"), b_full))
	check(ev.get("type") == "normal", "type %r, not normal" % ev.get("type"))


def test_presence_reaches_contact(ctx):
	(a, ax, ac), (b, bx, bc) = ctx.subscribed_pair()
	a_full = ac.ok("status")["jid"]
	ac.ok("presence", show="away", status="in a meeting", priority=5)
	ev = bc.wait_event(presence_from(a_full, show="away",
		status="in a meeting"), 10, "alice's away presence at bob")
	check(ev.get("type") in (None, "available"), "type %r" % ev.get("type"))
	ac.ok("presence", show="dnd", status="focus")
	bc.wait_event(presence_from(a_full, show="dnd", status="focus"), 10,
		"alice's dnd presence at bob")


def test_sigterm_clean_exit(ctx):
	(a, ax, ac), (b, bx, bc) = ctx.subscribed_pair()
	a_full = ac.ok("status")["jid"]
	rc, took = ax.stop(timeout=8)
	check(rc == 0, "xmppd exited with %r after SIGTERM, not 0" % rc)
	check(took < 5, "xmppd took %.1fs to exit after SIGTERM" % took)
	bc.wait_event(presence_from(a_full, type="unavailable"), 10,
		"alice's unavailable presence at bob")
	# Prosody's view: alice's own session sent unavailable presence and
	# closed the stream (a cut connection would hibernate under smacks).
	lines = ctx.prosody.session_log(a_full)
	check(lines, "no Prosody session found for %s" % a_full)
	check(any("RECV: <presence" in ln and "unavailable" in ln
		for ln in lines), "xmppd sent no unavailable presence")
	check(any("Received </stream:stream>" in ln for ln in lines),
		"xmppd did not close its stream (no </stream:stream>)")
