"""A scripted fake XMPP server for hostile-peer tests: direct TLS on a
free port of 127.0.0.1 with the test CA's localhost certificate, SASL
PLAIN, resource binding, and minimal answers to xmppd's own IQs. Then a
test sends whatever bytes it likes and reads what xmppd writes back.

	srv = FakeServer(certs).start()
	acct = srv.account()          # an Account-like object for Xmppd
	x = ctx.xmppd(acct, conf=srv.conf())
	conn = srv.accept()           # one xmppd connection, logged in
	conn.send(b"<message .../>")
	conn.read_until(b"</stream:stream>")
	conn.close(); srv.stop()

Everything runs in the test's thread: nothing is read from xmppd unless
the test asks (pump, read_until), and while reading, requests xmppd
sends are answered (answer_iq). Reads are bounded in time and size.
"""

import base64
import re
import select
import socket
import ssl
import time

from fixtures import DOMAIN, TestFailure, check

NS_STREAMS = "http://etherx.jabber.org/streams"
HEADER = ("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
	"xmlns:stream='%s' id='fake-%%d' from='%s' version='1.0'>"
	% (NS_STREAMS, DOMAIN))
MAX_READ = 4 << 20

ATTR_RE = re.compile(r"""([\w:-]+)\s*=\s*(?:'([^']*)'|"([^"]*)")""")
IQ_RE = re.compile(rb"<iq\b([^>]*)>")


def attrs(text):
	"""The attributes of one start tag's text, as a dict."""
	if isinstance(text, bytes):
		text = text.decode("utf-8", "replace")
	return {m.group(1): m.group(2) if m.group(2) is not None
		else m.group(3) for m in ATTR_RE.finditer(text)}


class FakeAccount:
	"""What fixtures.Xmppd needs of an account and its server."""

	def __init__(self, server, user, password):
		self.server = server
		self.user = user
		self.password = password
		self.jid = "%s@%s" % (user, DOMAIN)


class Conn:
	"""One connection from xmppd, TLS up."""

	def __init__(self, server, sock, num):
		self.server = server
		self.sock = sock
		self.num = num
		self.buf = b""		# read, not yet consumed by read_until
		self.seen = b""	# everything read, for checks (bounded)
		self.closed = False
		self.jid = None
		self.answered = set()
		self.online = False	# answer_iqs only once bound
		self.resumed_tried = False	# xmppd asked to resume (refused)

	# ---- bytes ----

	def send(self, data):
		"""Writes data (bytes or str) whole; False if xmppd hung up."""
		if isinstance(data, str):
			data = data.encode()
		try:
			self.sock.sendall(data)
			return True
		except OSError:
			# xmppd hung up; what it wrote before may still be read.
			return False

	def _read_once(self, timeout):
		"""Reads what is there within timeout into buf; False at EOF."""
		if self.closed:
			return False
		if self.sock.pending() == 0:
			r, _, _ = select.select([self.sock], [], [], max(0, timeout))
			if not r:
				return True
		try:
			chunk = self.sock.recv(65536)
		except ssl.SSLWantReadError:
			return True
		except (OSError, ssl.SSLError):
			chunk = b""
		if not chunk:
			self.closed = True
			return False
		self.buf += chunk
		if len(self.seen) < MAX_READ:
			self.seen += chunk
		check(len(self.buf) <= MAX_READ, "fake server: xmppd wrote over "
			"%d bytes unread" % MAX_READ)
		self.answer_iqs()
		return True

	def read_until(self, token, timeout=10):
		"""Reads until token (bytes or a compiled regex) is in what was
		read since the last call; returns that text up to and including
		the token and keeps the rest."""
		deadline = time.monotonic() + timeout
		while True:
			if isinstance(token, bytes):
				i = self.buf.find(token)
				end = i + len(token) if i >= 0 else -1
			else:
				m = token.search(self.buf)
				end = m.end() if m else -1
			if end >= 0:
				out, self.buf = self.buf[:end], self.buf[end:]
				return out
			left = deadline - time.monotonic()
			if left <= 0:
				raise TestFailure("fake server: no %r from xmppd within "
					"%.1fs; got %r" % (token, timeout, self.buf[-600:]))
			if not self._read_once(left):
				raise TestFailure("fake server: xmppd closed before %r; "
					"got %r" % (token, self.buf[-600:]))

	def pump(self, seconds):
		"""Reads (and answers IQs) for a while, at least once (pump(0)
		takes what is there); False if xmppd hung up."""
		deadline = time.monotonic() + seconds
		while True:
			if not self._read_once(max(0, deadline - time.monotonic())):
				return False
			if time.monotonic() >= deadline:
				return True

	def wait_closed(self, timeout=10):
		"""Reads until xmppd closes the connection."""
		deadline = time.monotonic() + timeout
		while self._read_once(deadline - time.monotonic()):
			if time.monotonic() >= deadline:
				raise TestFailure("fake server: xmppd kept connection %d "
					"open" % self.num)

	def close(self):
		try:
			self.sock.close()
		except OSError:
			pass
		self.closed = True

	# ---- IQs xmppd sends once online ----

	def answer_iqs(self):
		"""Answers every request to the server or the account that
		xmppd sent: an empty result, an empty roster, a complete
		archive query. Requests to anyone else wait for the test."""
		if not self.online:
			return
		for m in IQ_RE.finditer(self.buf):
			a = attrs(m.group(1))
			iid = a.get("id")
			if a.get("type") not in ("get", "set") or iid in self.answered:
				continue
			to = a.get("to")
			if to not in (None, DOMAIN) and to.split("/")[0] != \
					self.server.user_jid:
				continue
			self.answered.add(iid)
			tail = self.buf[m.end():m.end() + 200]
			if b"jabber:iq:roster" in tail:
				body = "<query xmlns='jabber:iq:roster'/>"
			else:
				body = ""
			if b"urn:xmpp:mam:2" in tail:
				body = ("<fin xmlns='urn:xmpp:mam:2' complete='true'/>")
			frm = " from='%s'" % to if to else ""
			self.send("<iq type='result' id='%s'%s>%s</iq>" % (iid, frm,
				body))

	def pending_iq(self, pred, timeout=10):
		"""The attributes and text of the next request xmppd sends that
		pred(attrs, rest of the buffer) accepts."""
		deadline = time.monotonic() + timeout
		while True:
			for m in IQ_RE.finditer(self.buf):
				a = attrs(m.group(1))
				if a.get("id") not in self.answered and pred(a,
						self.buf[m.end():]):
					self.answered.add(a.get("id"))
					return a
			left = deadline - time.monotonic()
			check(left > 0, "fake server: no such iq from xmppd: %r"
				% self.buf[-600:])
			if not self._read_once(left):
				raise TestFailure("fake server: xmppd closed while an iq "
					"was awaited")

	# ---- negotiation ----

	def login(self, sm=False, timeout=10):
		"""Stream, PLAIN, bind (a resumption is refused first), and with
		sm stream management enabled (<r/> is never answered); returns
		the bound full JID."""
		self.read_until(b"<stream:stream", timeout)
		self.read_until(b">", timeout)
		self.send(HEADER % (self.num * 2) + "<stream:features>"
			"<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
			"<mechanism>PLAIN</mechanism></mechanisms></stream:features>")
		auth = self.read_until(b"</auth>", timeout).decode()
		payload = re.search(r">([^<]*)</auth>", auth).group(1)
		want = "\0%s\0%s" % (self.server.username, self.server.password)
		check(base64.b64decode(payload).decode() == want,
			"fake server: wrong PLAIN credentials")
		self.send("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
		self.read_until(b"<stream:stream", timeout)
		self.read_until(b">", timeout)
		self.send(HEADER % (self.num * 2 + 1) + "<stream:features>"
			"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
			+ ("<sm xmlns='urn:xmpp:sm:3'/>" if sm else "")
			+ "</stream:features>")
		bind = self.read_until(re.compile(rb"<resume\b[^>]*>|</iq>"),
			timeout)
		if b"<resume" in bind:
			# Every session is new here.
			self.resumed_tried = True
			self.send("<failed xmlns='urn:xmpp:sm:3'><item-not-found "
				"xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>")
			bind = self.read_until(b"</iq>", timeout)
		iid = attrs(IQ_RE.search(bind).group(1))["id"]
		self.answered.add(iid)
		self.jid = self.server.user_jid + "/xmppd"
		self.send("<iq type='result' id='%s'><bind xmlns='urn:ietf:params:"
			"xml:ns:xmpp-bind'><jid>%s</jid></bind></iq>" % (iid, self.jid))
		if sm:
			self.read_until(b"<enable", timeout)
			self.read_until(b">", timeout)
			self.send("<enabled xmlns='urn:xmpp:sm:3' id='sm-%d' "
				"resume='true'/>" % self.num)
		self.online = True
		return self.jid


class FakeServer:
	"""The listening side: direct TLS, one account."""

	def __init__(self, certs, log_path, user="hostile", password="fake-pw"):
		"""log_path: where stop() writes what xmppd sent."""
		self.certs = certs
		self.log_path = log_path
		self.username = user
		self.password = password
		self.user_jid = "%s@%s" % (user, DOMAIN)
		self.host = "127.0.0.1"
		self.lsock = None
		self.port = None
		self.count = 0
		self.conns = []
		self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
		self.ctx.load_cert_chain(certs.cert, certs.key)

	def start(self, rcvbuf=None):
		"""Listens; rcvbuf sets SO_RCVBUF of the connections (small: a
		server that reads slowly fills up sooner)."""
		self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
		self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
		if rcvbuf is not None:
			self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
		self.lsock.bind((self.host, 0))
		self.lsock.listen(8)
		self.port = self.lsock.getsockname()[1]
		return self

	def account(self):
		return FakeAccount(self, self.username, self.password)

	def conf(self, **sections):
		"""xmppd configuration for this server (plus sections)."""
		conf = {"server": {"host": self.host, "port": self.port,
			"tls": "direct"}}
		for sec, keys in sections.items():
			conf.setdefault(sec, {}).update(keys)
		return conf

	def accept(self, timeout=15, login=True, sm=False):
		"""The next connection from xmppd, TLS up (and logged in)."""
		r, _, _ = select.select([self.lsock], [], [], timeout)
		check(r, "fake server: xmppd did not connect within %.0fs" % timeout)
		raw, _ = self.lsock.accept()
		raw.settimeout(timeout)
		self.count += 1
		try:
			sock = self.ctx.wrap_socket(raw, server_side=True)
		except (OSError, ssl.SSLError) as e:
			raw.close()
			raise TestFailure("fake server: TLS handshake: %s" % e)
		sock.settimeout(timeout)
		conn = Conn(self, sock, self.count)
		self.conns.append(conn)
		if login:
			conn.login(sm=sm, timeout=timeout)
		return conn

	def stop(self):
		"""Closes every connection (xmppd sees EOF at once rather than
		waiting for our </stream:stream>) and keeps a transcript."""
		with open(self.log_path, "ab") as f:
			for c in self.conns:
				f.write(b"---- connection %d from xmppd:\n" % c.num)
				f.write(c.seen[-200000:] + b"\n")
				c.close()
		if self.lsock is not None:
			self.lsock.close()
			self.lsock = None
