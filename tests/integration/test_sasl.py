"""SCRAM with and without channel binding, checked on the servers' side.

Both servers implement only tls-unique, which GnuTLS gives only under
TLS 1.2 (LIBRARY-FACTS.md): with TLS 1.2 forced xmppd must use a -PLUS
mechanism; under the default TLS 1.3 it must log in without one."""

import re
import ssl

from fixtures import check, probe_mechanisms, sasl_auths, wait_until

TLS12 = "NORMAL:-VERS-ALL:+VERS-TLS1.2"
PLUS = ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS")
NO_PLUS = ("SCRAM-SHA-256", "SCRAM-SHA-1")


def check_status_mechanism(c, mech):
	st = c.ok("status")
	if "mechanism" in st:
		check(st["mechanism"] == mech, "status says mechanism %r, the "
			"server saw %s" % (st["mechanism"], mech))


def prosody_login(ctx, priority, allowed, gs2):
	server = ctx.prosody
	a = ctx.account("alice")
	offset = server.log_offset()
	conf = {"server": {"tls_priority": priority}} if priority else None
	x, c = ctx.online(a, conf)
	auths = sasl_auths(server.log_since(offset), a.user)
	check(len(auths) == 1, "%d <auth> attempts, not 1: %r" % (len(auths),
		[m for m, _ in auths]))
	mech, payload = auths[0]
	check(mech in allowed, "logged in with %s, not one of %s"
		% (mech, "/".join(allowed)))
	check(payload.startswith(gs2), "gs2 header %r, not %r" % (
		payload.split("n=")[0], gs2))
	check_status_mechanism(c, mech)


def test_prosody_tls12_scram_plus(ctx):
	tls, offered = probe_mechanisms(ctx.prosody.host, ctx.prosody.port,
		ctx.certs.ca.cert, ssl.TLSVersion.TLSv1_2)
	check("SCRAM-SHA-256-PLUS" in offered, "fixture: Prosody offers no "
		"-PLUS under %s: %s" % (tls, offered))
	prosody_login(ctx, TLS12, PLUS, "p=tls-unique,,")


def test_prosody_tls13_no_plus(ctx):
	prosody_login(ctx, None, NO_PLUS, "n,,")


def ejabberd_login(ctx, priority, allowed):
	server = ctx.ejabberd
	a = ctx.account("alice", server)
	offset = server.log_offset()
	conf = {"server": {"tls_priority": priority}} if priority else None
	x, c = ctx.online(a, conf)
	pat = re.compile(r"(Accepted|Failed) c2s (\S+) authentication for "
		"%s@" % re.escape(a.user))
	found = wait_until(lambda: pat.findall(server.log_since(offset)), 10,
		what="ejabberd's authentication log line")
	check(len(found) == 1 and found[0][0] == "Accepted",
		"ejabberd saw %r, not one accepted login" % found)
	mech = found[0][1]
	check(mech in allowed, "logged in with %s, not one of %s"
		% (mech, "/".join(allowed)))
	check_status_mechanism(c, mech)


def test_ejabberd_tls12_scram_plus(ctx):
	ejabberd_login(ctx, TLS12, PLUS)


def test_ejabberd_tls13_no_plus(ctx):
	ejabberd_login(ctx, None, NO_PLUS)


def test_ejabberd_message_round_trip(ctx):
	"""A plain round trip on ejabberd too: two xmppds, one message."""
	server = ctx.ejabberd
	a, b = ctx.account("alice", server), ctx.account("bob", server)
	ax, ac = ctx.online(a)
	bx, bc = ctx.online(b)
	a_full = ac.ok("status")["jid"]
	ac.ok("send", to=b.jid, body="over ejabberd")
	ev = bc.wait_event(lambda e: e.get("event") == "message"
		and e.get("body") == "over ejabberd", 10, "message via ejabberd")
	check(ev.get("from") == a_full, "from %r" % ev.get("from"))
