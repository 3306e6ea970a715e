"""Finding the server through DNS SRV records (RFC 6120 3.2, XEP-0368),
with a DNS responder on loopback that the test controls; xmppd's
[server] resolver points c-ares at it."""

import socket
import struct
import threading

from fixtures import check, free_port, wait_until

T_SRV = 33


def encode_name(name):
	out = b""
	for label in name.rstrip(".").split("."):
		if label:
			out += bytes([len(label)]) + label.encode()
	return out + b"\0"


class DnsResponder:
	"""Answers SRV questions from a table {name: [(prio, weight, port,
	target)]}; other names get NXDOMAIN. Records the questions."""

	def __init__(self, records):
		self.records = records
		self.questions = []
		self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
		self.sock.bind(("127.0.0.1", 0))
		self.sock.settimeout(0.2)
		self.port = self.sock.getsockname()[1]
		self.running = True
		self.thread = threading.Thread(target=self._serve, daemon=True)
		self.thread.start()

	def _serve(self):
		while self.running:
			try:
				data, peer = self.sock.recvfrom(512)
			except socket.timeout:
				continue
			except OSError:
				return
			reply = self._answer(data)
			if reply is not None:
				self.sock.sendto(reply, peer)

	def _answer(self, q):
		if len(q) < 12:
			return None
		qid, flags, qd = struct.unpack(">HHH", q[:6])
		pos, labels = 12, []
		while pos < len(q) and q[pos] != 0:
			n = q[pos]
			labels.append(q[pos + 1:pos + 1 + n].decode("ascii", "replace"))
			pos += 1 + n
		pos += 1
		qtype = struct.unpack(">H", q[pos:pos + 2])[0]
		question = q[12:pos + 4]
		name = ".".join(labels).lower()
		self.questions.append((name, qtype))
		rrs = self.records.get(name) if qtype == T_SRV else None
		rcode = 0 if rrs is not None else 3
		answers = b""
		for prio, weight, port, target in rrs or []:
			rdata = struct.pack(">HHH", prio, weight, port) + encode_name(target)
			answers += (b"\xc0\x0c" + struct.pack(">HHIH", T_SRV, 1, 60,
				len(rdata)) + rdata)
		header = struct.pack(">HHHHHH", qid, 0x8400 | rcode, 1,
			len(rrs or []), 0, 0)
		return header + question + answers

	def close(self):
		self.running = False
		self.sock.close()
		self.thread.join(2)


def srv_xmppd(ctx, records):
	dns = DnsResponder(records)
	ctx.ws.defer(dns.close)
	a = ctx.account("alice")
	x = ctx.xmppd(a, conf={"server": {"host": None, "port": None,
		"resolver": "127.0.0.1:%d" % dns.port}})
	c = x.client()
	c.ok("subscribe", events=["state"])
	st = c.wait_state(("online", "auth-failed", "tls-failed"), 30)
	check(st.get("state") == "online", "state %r" % st)
	return x, dns


def connected_line(x):
	with open(x.log, errors="replace") as f:
		return [ln for ln in f if "connecting to " in ln]


def test_direct_tls_target_first(ctx):
	p = ctx.prosody
	x, dns = srv_xmppd(ctx, {
		"_xmpps-client._tcp.localhost": [(0, 0, p.tls_port, "localhost")],
		"_xmpp-client._tcp.localhost": [(0, 0, p.port, "localhost")],
	})
	lines = connected_line(x)
	check(lines and "port %d (direct TLS)" % p.tls_port in lines[0],
		"first attempt was %r" % lines[:1])
	names = {n for n, t in dns.questions if t == T_SRV}
	check({"_xmpps-client._tcp.localhost", "_xmpp-client._tcp.localhost"}
		<= names, "questions asked: %r" % dns.questions)


def test_priority_order_and_fallthrough(ctx):
	p = ctx.prosody
	dead = free_port()
	x, dns = srv_xmppd(ctx, {
		"_xmpp-client._tcp.localhost": [(20, 0, p.port, "localhost"),
			(10, 0, dead, "localhost")],
	})
	lines = connected_line(x)
	check(len(lines) >= 2, "expected two attempts, saw %r" % lines)
	check("port %d (STARTTLS)" % dead in lines[0], "first was %r" % lines[0])
	check("port %d (STARTTLS)" % p.port in lines[1], "second was %r" % lines[1])


def test_no_direct_tls_service(ctx):
	p = ctx.prosody
	x, dns = srv_xmppd(ctx, {
		"_xmpps-client._tcp.localhost": [(0, 0, 0, ".")],
		"_xmpp-client._tcp.localhost": [(5, 0, p.port, "localhost")],
	})
	lines = connected_line(x)
	check(lines and "(STARTTLS)" in lines[0], "first attempt %r" % lines[:1])


def test_no_records_falls_back_to_domain(ctx):
	# NXDOMAIN for both: the domain itself on port 5222. Whatever listens
	# there (nothing, on a test machine), the attempt must go to it.
	dns = DnsResponder({})
	ctx.ws.defer(dns.close)
	a = ctx.account("alice")
	x = ctx.xmppd(a, conf={"server": {"host": None, "port": None,
		"resolver": "127.0.0.1:%d" % dns.port}})
	wait_until(lambda: connected_line(x), 15, 0.05, "a connection attempt")
	lines = connected_line(x)
	check("localhost port 5222 (STARTTLS)" in lines[0], "attempt %r" % lines[0])
	names = {n for n, t in dns.questions if t == T_SRV}
	check("_xmpp-client._tcp.localhost" in names, "questions %r" % dns.questions)
