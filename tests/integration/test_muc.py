"""Group chat against the server's MUC service (conference.localhost):
joins and their errors, groupchat messages with room and nick, occupant
events, subjects, invitations, kicks, leaves, self-pings and the rejoin
after a fresh session. alice and bob each run an xmppd."""

import itertools
import os
import re

from fixtures import check, only_on, wait_until

EVENTS = ("message", "presence", "state", "muc")
_rooms = itertools.count(1)


def new_room(prefix="room"):
	"""A room name not used before in this run."""
	return "%s-%d-%d@conference.localhost" % (prefix, os.getpid(),
		next(_rooms))


def muc_event(room, **want):
	def pred(e):
		if e.get("event") != "muc" or e.get("room") != room:
			return False
		return all(e.get(k) == v for k, v in want.items())
	return pred


def two_in_room(ctx, conf=None):
	"""alice creates a room, bob joins it; returns the room and the
	(account, xmppd, client) of each."""
	a, b = ctx.account("alice"), ctx.account("bob")
	ax, ac = ctx.online(a, conf, EVENTS)
	bx, bc = ctx.online(b, None, EVENTS)
	room = new_room()
	r = ac.ok("muc-join", room=room, nick="alice")
	check(r.get("room") == room and r.get("nick") == "alice",
		"join reply %r" % r)
	check(r.get("created") is True, "a new room is not marked created: %r" % r)
	check(r.get("affiliation") == "owner" and r.get("role") == "moderator",
		"the creator is not owner/moderator: %r" % r)
	r = bc.ok("muc-join", room=room, nick="bob")
	check(r.get("role") == "participant" and r.get("affiliation") == "none",
		"bob's join reply %r" % r)
	ac.wait_event(muc_event(room, action="join", nick="bob"), 10,
		"bob's join at alice")
	return room, (a, ax, ac), (b, bx, bc)


def test_groupchat_message_with_room_and_nick(ctx):
	room, (a, ax, ac), (b, bx, bc) = two_in_room(ctx)
	# bob saw alice already there when he joined, and himself.
	bc.wait_event(muc_event(room, action="join", nick="alice"), 10,
		"alice listed at bob's join")
	ev = bc.wait_event(muc_event(room, action="join", nick="bob"), 10,
		"bob's own join")
	check(ev.get("self") is True, "own join not flagged self: %r" % ev)

	ac.ok("send", to=room, type="groupchat", body="hello room")
	ev = bc.wait_event(lambda e: e.get("event") == "message"
		and e.get("body") == "hello room", 10, "alice's groupchat at bob")
	check(ev.get("room") == room and ev.get("nick") == "alice",
		"room/nick %r/%r" % (ev.get("room"), ev.get("nick")))
	check(ev.get("type") == "groupchat", "type %r" % ev.get("type"))
	check(ev.get("from") == room + "/alice", "from %r" % ev.get("from"))
	check("self" not in ev, "bob's copy flagged self: %r" % ev)
	ev = ac.wait_event(lambda e: e.get("event") == "message"
		and e.get("body") == "hello room", 10, "alice's reflection")
	check(ev.get("self") is True and ev.get("room") == room,
		"the reflection is not flagged self: %r" % ev)

	rooms = bc.ok("muc-rooms")["rooms"]
	check(len(rooms) == 1 and rooms[0]["room"] == room, "rooms %r" % rooms)
	check(rooms[0]["state"] == "joined" and rooms[0]["nick"] == "bob",
		"room entry %r" % rooms[0])
	nicks = sorted(o["nick"] for o in rooms[0]["occupants"])
	check(nicks == ["alice", "bob"], "occupants %r" % nicks)
	alice = [o for o in rooms[0]["occupants"] if o["nick"] == "alice"][0]
	check(alice.get("role") == "moderator", "alice's entry %r" % alice)
	r = bc.request("muc-rooms", room="nowhere@conference.localhost")
	check(r["ok"] is False and r["error"]["condition"] == "item-not-found",
		"muc-rooms for an unknown room: %r" % r)


def test_subject_and_occupant_changes(ctx):
	room, (a, ax, ac), (b, bx, bc) = two_in_room(ctx)
	ac.ok("send", to=room, type="groupchat", subject="release day")
	ev = bc.wait_event(muc_event(room, action="subject",
		subject="release day"), 10, "the subject at bob")
	check(ev.get("subject") == "release day" and ev.get("nick") == "alice",
		"subject event %r" % ev)
	check(bc.ok("muc-rooms", room=room)["rooms"][0].get("subject")
		== "release day", "muc-rooms lacks the subject")
	# The subject is no message event.
	check(not any(e.get("event") == "message" and e.get("subject")
		for e in bc.events), "the subject came as a message too")
	# bob goes away in the room: a change; then a nick change.
	bc.ok("raw", xml="<presence to='%s/bob'><show>away</show></presence>"
		% room)
	ev = ac.wait_event(muc_event(room, action="change", nick="bob"), 10,
		"bob's change at alice")
	check(ev.get("show") == "away", "change event %r" % ev)
	bc.ok("raw", xml="<presence to='%s/robert'/>" % room)
	ev = ac.wait_event(muc_event(room, action="nick", nick="bob"), 10,
		"bob's nick change at alice")
	check(ev.get("new_nick") == "robert", "nick event %r" % ev)
	ev = bc.wait_event(muc_event(room, action="nick", nick="bob"), 10,
		"bob's own nick change")
	check(ev.get("self") is True, "own nick change not self: %r" % ev)
	r = bc.ok("muc-rooms", room=room)["rooms"][0]
	check(r["nick"] == "robert", "bob's nick now %r" % r["nick"])
	nicks = sorted(o["nick"] for o in
		ac.ok("muc-rooms", room=room)["rooms"][0]["occupants"])
	check(nicks == ["alice", "robert"], "alice's occupants %r" % nicks)


def test_own_presence_and_caps_reach_rooms(ctx):
	"""The join carries our caps (XEP-0115) and status; a change of our
	own presence goes to the rooms we are in (XEP-0045 7.7)."""
	log_start = ctx.server.log_offset()
	room, (a, ax, ac), (b, bx, bc) = two_in_room(ctx)
	to_room = re.compile(r"RECV: <presence [^>]*to=.%s/alice.[^>]*>"
		r"[^\n]*<x [^>]*http://jabber.org/protocol/muc['\"][^\n]*"
		% re.escape(room))
	def join():
		return [ln for ln in ctx.server.traffic(log_start).splitlines()
			if to_room.search(ln)]
	lines = wait_until(join, 5, 0.1, "alice's join presence at the server")
	check("http://jabber.org/protocol/caps" in lines[0],
		"the join presence has no caps: %s" % lines[0])
	ac.ok("presence", show="dnd", status="in a meeting")
	ev = bc.wait_event(muc_event(room, action="change", nick="alice"), 10,
		"alice's change at bob")
	check(ev.get("show") == "dnd" and ev.get("status") == "in a meeting",
		"change event %r" % ev)
	occ = [o for o in bc.ok("muc-rooms", room=room)["rooms"][0]["occupants"]
		if o["nick"] == "alice"]
	check(occ and occ[0].get("show") == "dnd", "alice's entry %r" % occ)
	# A directed presence is not ours to spread.
	ac.ok("presence", to=b.jid, show="away")
	ac.ok("presence", status="back")
	ev = bc.wait_event(muc_event(room, action="change", nick="alice"), 10,
		"alice available again, at bob")
	check(ev.get("show") is None and ev.get("status") == "back",
		"after available: %r" % ev)
	check(not any(muc_event(room, action="change", nick="alice")(e)
		for e in bc.events), "the directed presence reached the room: %r"
		% bc.events)


def test_no_receipt_in_rooms(ctx):
	"""A receipt request in a groupchat message is never answered: the
	whole room would learn who is online (XEP-0184 5.3)."""
	log_start = ctx.server.log_offset()
	room, (a, ax, ac), (b, bx, bc) = two_in_room(ctx)
	bc.ok("raw", xml="<message to='%s' type='groupchat' id='gc-r1'><body>"
		"anyone?</body><request xmlns='urn:xmpp:receipts'/></message>" % room)
	ac.wait_event(lambda e: e.get("event") == "message"
		and e.get("body") == "anyone?", 10, "bob's groupchat at alice")
	# alice's next stanza leaves after any receipt she would have sent.
	ac.ok("raw", xml="<message to='%s'><body>marker-r1</body></message>"
		% a.jid)
	wait_until(lambda: "marker-r1" in ctx.server.traffic(log_start), 5,
		0.1, "alice's marker at the server")
	sent = [ln for ln in ctx.server.traffic(log_start).splitlines()
		if "RECV: <message" in ln and "<received" in ln]
	check(not sent, "a receipt went out for a groupchat message: %r" % sent)


def test_nick_conflict_is_a_clear_error(ctx):
	a, b = ctx.account("alice"), ctx.account("bob")
	ax, ac = ctx.online(a, None, EVENTS)
	bx, bc = ctx.online(b, None, EVENTS)
	room = new_room()
	ac.ok("muc-join", room=room, nick="sam")
	r = bc.request("muc-join", room=room, nick="sam")
	check(r["ok"] is False, "a second 'sam' was let in: %r" % r)
	check(r["error"]["condition"] == "conflict", "condition %r"
		% r["error"])
	check("already in use" in r["error"]["text"], "text %r"
		% r["error"]["text"])
	check(bc.ok("muc-rooms")["rooms"] == [], "the failed room is listed")
	# Bad arguments never reach the network.
	r = bc.request("muc-join", room=room + "/x", nick="sam")
	check(r["ok"] is False and r["error"]["condition"] == "bad-request",
		"a full JID as room: %r" % r)
	r = bc.request("muc-join", room=room)
	check(r["ok"] is False and r["error"]["condition"] == "bad-request",
		"no nick: %r" % r)


def configure(client, room, fields):
	"""Submits the room configuration form with fields (var -> value)."""
	xs = "".join("<field var='%s'><value>%s</value></field>" % kv
		for kv in fields.items())
	client.ok("iq", to=room, type="set", payload=(
		"<query xmlns='http://jabber.org/protocol/muc#owner'>"
		"<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'>"
		"<value>http://jabber.org/protocol/muc#roomconfig</value></field>"
		"%s</x></query>" % xs))


def test_password_and_members_only_rooms(ctx):
	a, b = ctx.account("alice"), ctx.account("bob")
	ax, ac = ctx.online(a, None, EVENTS)
	bx, bc = ctx.online(b, None, EVENTS)
	room = new_room("secret")
	ac.ok("muc-join", room=room, nick="alice")
	configure(ac, room, {"muc#roomconfig_passwordprotectedroom": "1",
		"muc#roomconfig_roomsecret": "s3cret"})
	r = bc.request("muc-join", room=room, nick="bob")
	check(r["ok"] is False and r["error"]["condition"] == "not-authorized",
		"join without the password: %r" % r)
	check("password" in r["error"]["text"], "text %r" % r["error"]["text"])
	r = bc.request("muc-join", room=room, nick="bob", password="wrong")
	check(r["ok"] is False and r["error"]["condition"] == "not-authorized",
		"join with a wrong password: %r" % r)
	bc.ok("muc-join", room=room, nick="bob", password="s3cret")

	room2 = new_room("members")
	ac.ok("muc-join", room=room2, nick="alice")
	configure(ac, room2, {"muc#roomconfig_membersonly": "1"})
	r = bc.request("muc-join", room=room2, nick="bob")
	check(r["ok"] is False and
		r["error"]["condition"] == "registration-required",
		"join of a members-only room: %r" % r)


def test_invitations(ctx):
	a, b = ctx.account("alice"), ctx.account("bob")
	ax, ac = ctx.online(a, None, EVENTS)
	bx, bc = ctx.online(b, None, EVENTS)
	room = new_room()
	ac.ok("muc-join", room=room, nick="alice")
	a_full = ac.ok("status")["jid"]
	# XEP-0249, direct.
	ac.ok("raw", xml="<message to='%s'><x xmlns='jabber:x:conference' "
		"jid='%s' reason='come in' password='pw'/></message>" % (b.jid, room))
	ev = bc.wait_event(muc_event(room, action="invite"), 10,
		"the direct invitation")
	check(ev.get("from") == a_full and ev.get("reason") == "come in"
		and ev.get("password") == "pw", "direct invite event %r" % ev)
	# XEP-0045 7.8.2, mediated by the room.
	ac.ok("raw", xml="<message to='%s'><x xmlns='http://jabber.org/"
		"protocol/muc#user'><invite to='%s'><reason>join us</reason>"
		"</invite></x></message>" % (room, b.jid))
	ev = bc.wait_event(muc_event(room, action="invite"), 10,
		"the mediated invitation")
	# The inviter as the room shows it: real JID, or occupant JID in a
	# semi-anonymous room (Prosody's default).
	check(ev.get("from") in (a_full, a.jid, room + "/alice"), "from %r"
		% ev.get("from"))
	check(ev.get("reason") == "join us", "reason %r" % ev.get("reason"))
	check(not any(e.get("event") == "message" for e in bc.events),
		"an invitation also came as a message: %r" % bc.events)
	# Accepting is joining.
	bc.ok("muc-join", room=room, nick="bob")
	ac.wait_event(muc_event(room, action="join", nick="bob"), 10,
		"bob's join after the invitation")


def test_leave_and_kick(ctx):
	room, (a, ax, ac), (b, bx, bc) = two_in_room(ctx)
	r = bc.ok("muc-leave", room=room)
	check(r.get("room") == room, "leave reply %r" % r)
	check(bc.ok("muc-rooms")["rooms"] == [], "the room is still listed")
	ac.wait_event(muc_event(room, action="leave", nick="bob"), 10,
		"bob's leave at alice")
	r = bc.request("muc-leave", room=room)
	check(r["ok"] is False and r["error"]["condition"] == "item-not-found",
		"leaving a room we are not in: %r" % r)
	# Back in, then kicked by the moderator.
	bc.ok("muc-join", room=room, nick="bob")
	ac.ok("iq", to=room, type="set", payload="<query xmlns='http://jabber."
		"org/protocol/muc#admin'><item nick='bob' role='none'><reason>"
		"enough</reason></item></query>")
	ev = bc.wait_event(muc_event(room, action="kicked", nick="bob"), 10,
		"bob's kick at bob")
	check(ev.get("self") is True and ev.get("reason") == "enough",
		"kick event %r" % ev)
	check(bc.ok("muc-rooms")["rooms"] == [], "kicked, yet still listed")
	ac.wait_event(muc_event(room, action="kicked", nick="bob"), 10,
		"bob's kick at alice")


def test_rejoin_after_fresh_session(ctx):
	room, (a, ax, ac), (b, bx, bc) = two_in_room(ctx,
		{"server": {"stream_management": "no"}})
	del ac.events[:]
	ac.ok("reconnect")
	ac.wait_event(lambda e: e.get("event") == "state"
		and e.get("state") == "online", 20, "alice online again")
	ev = ac.wait_event(muc_event(room, action="rejoin"), 10,
		"alice's rejoin")
	check(ev.get("nick") == "alice", "rejoin event %r" % ev)
	bc.wait_event(muc_event(room, action="leave", nick="alice"), 15,
		"alice's old session leaving, at bob")
	bc.wait_event(muc_event(room, action="join", nick="alice"), 15,
		"alice joining again, at bob")
	ac.wait_event(muc_event(room, action="join", nick="alice", self=True),
		10, "alice's own join again")
	r = ac.ok("muc-rooms", room=room)["rooms"][0]
	check(r["state"] == "joined", "alice's room state %r" % r["state"])
	bc.ok("send", to=room, type="groupchat", body="welcome back")
	ac.wait_event(lambda e: e.get("event") == "message"
		and e.get("body") == "welcome back" and e.get("room") == room, 10,
		"bob's message after the rejoin")


def test_self_ping_keeps_a_live_room(ctx):
	a = ctx.account("alice")
	ax, ac = ctx.online(a, {"muc": {"self_ping": 1}}, EVENTS)
	room = new_room()
	ac.ok("muc-join", room=room, nick="alice")
	full = ac.ok("status")["jid"]
	off = ctx.server.log_offset()

	def pings():
		log = ctx.server.traffic(off)
		return log.count("to='%s/alice'" % room) + log.count(
			'to="%s/alice"' % room)
	from fixtures import wait_until
	wait_until(lambda: pings() >= 2, 10, 0.2, "two self-pings at Prosody")
	check(not any(muc_event(room, action="rejoin")(e) for e in ac.events),
		"a live room was rejoined")
	check(full, "no JID")


def prosody_lua(ctx, code):
	"""Runs Lua inside the test Prosody (mod_admin_shell); its output."""
	import subprocess
	from fixtures import Skip
	r = subprocess.run(["prosodyctl", "--config", ctx.prosody.config,
		"shell", ">" + code], stdin=subprocess.DEVNULL,
		stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
		timeout=20)
	if r.returncode != 0:
		raise Skip("prosodyctl shell failed: %s" % r.stdout.strip()[-300:])
	return r.stdout


def test_self_ping_rejoins_after_a_silent_drop(ctx):
	only_on(ctx, "prosody", "its admin shell makes the room forget alice")
	room, (a, ax, ac), (b, bx, bc) = two_in_room(ctx,
		{"muc": {"self_ping": 1}})
	a_full = ac.ok("status")["jid"]
	del ac.events[:]
	del bc.events[:]
	# The room forgets alice's session without telling anyone, as after
	# a MUC server restart or a lost server-to-server link.
	prosody_lua(ctx, "local r = prosody.hosts['conference.localhost']"
		".modules.muc.get_room_from_jid('%s'); r._jid_nick['%s'] = nil;"
		" r._occupants['%s/alice'] = nil" % (room, a_full, room))
	ev = ac.wait_event(muc_event(room, action="rejoin"), 15,
		"alice's rejoin after the self-ping failed")
	check(ev.get("reason") in ("not-acceptable", "item-not-found"),
		"rejoin reason %r" % ev.get("reason"))
	ac.wait_event(muc_event(room, action="join", nick="alice", self=True),
		10, "alice's own join again")
	# bob never saw her go: to him it is a presence update.
	bc.wait_event(muc_event(room, nick="alice"), 10,
		"alice's presence again, at bob")
	bc.ok("send", to=room, type="groupchat", body="seen again")
	ac.wait_event(lambda e: e.get("event") == "message"
		and e.get("body") == "seen again", 10, "a message after the rejoin")
