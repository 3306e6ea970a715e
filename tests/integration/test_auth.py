"""Failures that must stop the daemon's login attempts: a wrong password,
a server certificate nobody vouches for."""

import re
import time

from fixtures import check, sasl_auths, wait_until

FINAL = ("online", "auth-failed", "tls-failed")
QUIET_SECONDS = 4


def start_watching(ctx, account, **kw):
	x = ctx.xmppd(account, **kw)
	c = x.client()
	c.ok("subscribe", events=["state"])
	return x, c


def test_wrong_password_stops(ctx):
	a = ctx.account("alice")
	offset = ctx.prosody.log_offset()
	x, c = start_watching(ctx, a, conf={"account": {"password": "wrong-"
		+ a.password}})
	st = c.wait_state(FINAL, 20)
	check(st.get("state") == "auth-failed", "state %r, not auth-failed: %r"
		% (st.get("state"), st))
	# No further attempts: watch the server for a few seconds.
	time.sleep(QUIET_SECONDS)
	log = ctx.prosody.log_since(offset)
	auths = sasl_auths(log, a.user)
	connects = log.count("Client connected")
	check(len(auths) == 1, "%d SASL attempts for %s, not 1: %s"
		% (len(auths), a.user, [m for m, _ in auths]))
	check(connects == 1, "%d connections in %ds, not 1" % (connects,
		QUIET_SECONDS))
	check(x.running(), "xmppd exited after the auth failure")
	st = c.ok("status")
	check(st.get("state") == "auth-failed", "state became %r" % st.get("state"))


def check_tls_failed(ctx, ca_file):
	a = ctx.account("alice")
	x, c = start_watching(ctx, a, ca_file=ca_file)
	st = c.wait_state(FINAL, 20)
	check(st.get("state") == "tls-failed", "state %r, not tls-failed: %r"
		% (st.get("state"), st))
	reason = st.get("reason") or c.ok("status").get("reason") or ""
	check(re.search(r"issuer|trust|signer|unknown ca|authority", reason,
		re.I), "reason %r does not say the issuer is not trusted" % reason)
	log = ctx.prosody.session_log(a.jid + "/xmppd")
	check(not log, "a session was bound despite the untrusted certificate")


def test_unknown_ca_system_trust(ctx):
	check_tls_failed(ctx, None)


def test_unknown_ca_other_ca_file(ctx):
	check_tls_failed(ctx, "other")


def test_direct_tls(ctx):
	"""tls = direct against Prosody's direct-TLS port (XEP-0368)."""
	a = ctx.account("alice")
	x, c = ctx.online(a, conf={"server": {"tls": "direct",
		"port": ctx.prosody.tls_port}})
	wait_until(lambda: ctx.prosody.session_log(c.ok("status")["jid"]), 5,
		what="Prosody session over direct TLS")
