"""Configuration reload (SIGHUP) and the downgrade protection that
remembers an account's SCRAM across runs."""

import os
import re
import signal
import socket
import ssl
import threading

from fixtures import Account, check, free_port, wait_until

FINAL = ("online", "auth-failed", "tls-failed")


def rewrite_password(x, password):
	with open(x.config) as f:
		text = f.read()
	text = re.sub(r"(?m)^password = .*$", "password = " + password, text)
	with open(x.config, "w") as f:
		f.write(text)


def test_sighup_retries_after_auth_failed(ctx):
	a = ctx.account("alice")
	x = ctx.xmppd(a, conf={"account": {"password": "wrong-" + a.password}})
	c = x.client()
	c.ok("subscribe", events=["state"])
	st = c.wait_state(FINAL, 20)
	check(st.get("state") == "auth-failed", "state %r" % st)
	rewrite_password(x, a.password)
	os.kill(x.proc.pid, signal.SIGHUP)
	st = c.wait_state(("online",), 20)
	check(c.ok("status").get("jid") == a.jid + "/xmppd", "not bound after reload")


def test_sighup_with_a_broken_file_changes_nothing(ctx):
	a = ctx.account("alice")
	x = ctx.xmppd(a)
	c = x.client()
	c.ok("subscribe", events=["state"])
	c.wait_state(("online",), 20)
	with open(x.config, "a") as f:
		f.write("[server]\nport = not-a-port\n")
	seen = len(c.events)
	os.kill(x.proc.pid, signal.SIGHUP)
	# The signal is handled when xmppd's loop gets to it, which may be
	# after a status request sent at once: wait for the reload's verdict
	# before judging its effect (or a reload that did change something
	# would still pass).
	wait_until(lambda: "keeping the configuration in use" in x.log_text(),
		10, 0.05, "a log line saying the configuration was kept")
	check(x.running(), "xmppd exited on a broken reload")
	st = c.ok("status")
	check(st.get("state") == "online", "state after a broken reload: %r" % st)
	moved = [e for e in c.events[seen:] if e.get("event") == "state"]
	check(not moved, "the state moved on a broken reload: %r" % moved)


class PlainOnlyServer:
	"""Speaks just enough XMPP to offer STARTTLS and then only PLAIN, and
	records whether the client tries to authenticate."""

	def __init__(self, certs):
		self.port = free_port()
		self.auth = None
		self.sock = socket.socket()
		self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
		self.sock.bind(("127.0.0.1", self.port))
		self.sock.listen(4)
		self.sock.settimeout(20)
		self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
		self.tls.load_cert_chain(certs.cert, certs.key)
		self.thread = threading.Thread(target=self._serve, daemon=True)
		self.thread.start()

	def _read_until(self, conn, token):
		data = b""
		while token not in data:
			chunk = conn.recv(4096)
			if not chunk:
				raise EOFError(data)
			data += chunk
		return data

	def _header(self):
		return (b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
			b"xmlns:stream='http://etherx.jabber.org/streams' id='x1' "
			b"from='localhost' version='1.0'>")

	def _serve(self):
		try:
			conn, _ = self.sock.accept()
			conn.settimeout(20)
			self._read_until(conn, b"<stream:stream")
			conn.sendall(self._header() + b"<stream:features><starttls "
				b"xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
				b"</stream:features>")
			self._read_until(conn, b"<starttls")
			conn.sendall(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
			tls = self.tls.wrap_socket(conn, server_side=True)
			self._read_until(tls, b"<stream:stream")
			tls.sendall(self._header() + b"<stream:features><mechanisms "
				b"xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN"
				b"</mechanism></mechanisms></stream:features>")
			data = b""
			while b"<auth" not in data and b"</stream:stream>" not in data:
				chunk = tls.recv(4096)
				if not chunk:
					break
				data += chunk
			self.auth = b"<auth" in data
			tls.sendall(b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
				b"<not-authorized/></failure></stream:stream>")
			tls.close()
		except (OSError, EOFError):
			pass

	def close(self):
		self.sock.close()
		self.thread.join(5)


def run_against_plain_only(ctx, a, state_home):
	srv = PlainOnlyServer(ctx.certs)
	ctx.ws.defer(srv.close)
	x = ctx.xmppd(a, conf={"server": {"host": "127.0.0.1", "port": srv.port},
		"store": {"dir": state_home}})
	c = x.client()
	c.ok("subscribe", events=["state"])
	st = c.wait_state(("auth-failed",), 20)
	srv.thread.join(10)
	x.stop()
	return srv.auth, st


def test_plain_refused_after_scram(ctx):
	a = ctx.account("alice")
	state_home = ctx.ws.mkdir("state-" + a.user, 0o700)
	x = ctx.xmppd(a, conf={"store": {"dir": state_home}})
	c = x.client()
	c.ok("subscribe", events=["state"])
	c.wait_state(("online",), 20)
	mech = c.ok("status").get("mechanism", "")
	check(mech.startswith("SCRAM-"), "logged in with %r" % mech)
	x.stop()
	check(os.path.exists(os.path.join(state_home, a.jid + ".scram")),
		"no SCRAM marker in the state directory")
	auth, st = run_against_plain_only(ctx, a, state_home)
	check(auth is False, "xmppd sent <auth> to a PLAIN-only server after SCRAM")
	reason = st.get("reason") or ""
	check("downgrade" in reason, "reason %r does not name the downgrade" % reason)


def test_plain_used_when_scram_never_seen(ctx):
	a = Account(ctx.prosody, "plainonly", "pw")
	state_home = ctx.ws.mkdir("state-plainonly", 0o700)
	auth, st = run_against_plain_only(ctx, a, state_home)
	check(auth is True, "xmppd did not try PLAIN with a fresh account")
