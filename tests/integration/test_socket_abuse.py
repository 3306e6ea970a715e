"""Hostile and careless local programs on the control socket (issue 6):
a subscriber that never reads, a thousand clients at once, a 10 MiB
line, clients that come and go in a tight loop, descriptor exhaustion.
xmppd is logged in to the fake server of fakeserver.py where events are
needed; the socket works the same without a server."""

import json
import os
import resource
import select
import socket
import time

import fixtures as F
from fakeserver import FakeServer
from fixtures import IpcClient, LineReader, check, wait_until


def daemon(ctx, conf=None, wrapper=None):
	"""(fake server, xmppd logged in to it, the connection, a client that
	stays): online, so that no connection attempts come and go among
	the descriptors the tests count."""
	srv = FakeServer(ctx.certs, os.path.join(ctx.ws.mkdir("fake"),
		"transcript.log")).start()
	x = ctx.xmppd(srv.account(), srv.conf(**(conf or {})), start=False)
	ctx._owned.append(srv)
	env = {"ASAN_OPTIONS": F.small_quarantine()}
	if wrapper:
		old = os.environ.get("XMPPD_WRAPPER")
		env["XMPPD_WRAPPER"] = " ".join(wrapper + ([old] if old else []))
	with F.environ(**env):
		x.start()
	conn = srv.accept()
	c = x.client()
	c.ok("subscribe", events=["state"])
	c.wait_state(("online",), 10)
	return srv, x, conn, c


class Lines:
	"""Fast line reading from a socket (the fixtures' reader copies its
	buffer for each line)."""

	def __init__(self, sock):
		self.sock = sock
		self.lines = []
		self.tail = b""

	def next(self, timeout):
		deadline = time.monotonic() + timeout
		while not self.lines:
			left = deadline - time.monotonic()
			check(left > 0, "no line within %.0fs" % timeout)
			r, _, _ = select.select([self.sock], [], [], left)
			if not r:
				continue
			data = self.sock.recv(1 << 20)
			check(data, "xmppd closed the subscriber's connection")
			parts = (self.tail + data).split(b"\n")
			self.tail = parts.pop()
			self.lines.extend(reversed(parts))
		return self.lines.pop()


class LogTail:
	"""Counts a text in what a log file gains from now on."""

	def __init__(self, path):
		self.f = open(path, "rb")
		self.f.seek(0, os.SEEK_END)
		self.tail = b""
		self.n = 0

	def count(self, text):
		"""How often text appeared so far (one text per LogTail)."""
		data = self.tail + self.f.read()
		key = text.encode()
		self.n += data.count(key)
		# Too short to hold a match, long enough to start one.
		self.tail = data[max(0, len(data) - len(key) + 1):]
		return self.n

	def close(self):
		self.f.close()


def raise_nofile(n):
	"""Lets this process hold n descriptors (within the hard limit)."""
	soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
	want = min(n, hard) if hard != resource.RLIM_INFINITY else n
	if soft < want:
		resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
	if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < n:
		raise F.Skip("the hard limit allows fewer than %d descriptors" % n)


def still_fine(x):
	"""xmppd runs and answers a new client."""
	check(x.running(), "xmppd died")
	c = x.client()
	check(c.ok("status").get("state"), "no state in status")
	c.close()


def stuck_client(path):
	"""A subscriber with a tiny receive buffer that does not read."""
	s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
	s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
	s.connect(path)
	s.sendall(b'{"cmd":"subscribe","id":1,"events":["message"]}\n')
	return s


def read_rest(s, timeout):
	"""Everything s receives until EOF."""
	data = b""
	deadline = time.monotonic() + timeout
	while True:
		r, _, _ = select.select([s], [], [], deadline - time.monotonic())
		check(r, "the daemon did not hang up")
		chunk = s.recv(1 << 16)
		if not chunk:
			return data
		data += chunk


def whole_lines(data):
	"""The JSON objects of data's newline-terminated lines; a partial
	line at the end (cut by the hang-up) is not a line."""
	return [json.loads(line) for line in data.split(b"\n")[:-1]]


def test_subscriber_that_never_reads(ctx):
	srv, x, conn, c0 = daemon(ctx, {"control": {"max_output": "1M"}})
	pid = x.proc.pid
	# Two that do not read: one never, one only once it is dropped.
	never = stuck_client(x.socket)
	late = stuck_client(x.socket)
	late_data = b""
	good = x.client()
	good.ok("subscribe", events=["message"])
	log = LogTail(x.log)
	before = F.proc_status(pid)
	n, per, pad = 10000, 500, "x" * 1000
	lines = Lines(good.sock)
	t0 = time.monotonic()
	for first in range(0, n, per):
		# A batch at a time, read by the good subscriber as it comes.
		check(conn.send("".join("<message from='bob@localhost/r' to='%s' "
			"type='chat' id='flood%d'><body>%d %s</body></message>"
			% (conn.jid, i, i, pad) for i in range(first, first + per))),
			"xmppd hung up")
		for i in range(first, first + per):
			ev = json.loads(lines.next(10))
			check(ev.get("event") == "message" and ev.get("msg_id")
				== "flood%d" % i, "event %d is %r" % (i, ev))
		conn.pump(0)
		if log.count("dropping it") >= 2:
			late.setblocking(False)
			try:
				while True:
					chunk = late.recv(1 << 16)
					late_data += chunk
					if not chunk:
						break
			except BlockingIOError:
				pass
	dt = time.monotonic() - t0
	after = F.proc_status(pid)
	print("    %d events in %.1fs; VmHWM %d -> %d KiB, VmRSS %d KiB" % (n, dt,
		before["VmHWM"], after["VmHWM"], after["VmRSS"]))
	wait_until(lambda: log.count("dropping it") >= 2, 10, 0.05,
		"xmppd to drop the clients that do not read")
	# The late one read as soon as it was dropped: whole lines, the last
	# one says why, then the daemon hung up.
	late.setblocking(True)
	got = whole_lines(late_data + read_rest(late, 10))
	check(got and got[-1].get("event") == "error"
		and got[-1].get("condition") == "too-slow",
		"the late reader's last line is %r" % (got[-1:],))
	check(sum(1 for e in got if e.get("event") == "message") < n,
		"the late reader got everything")
	# The other one is gone too, with what fitted in its socket.
	got = whole_lines(read_rest(never, 10))
	check(sum(1 for e in got if e.get("event") == "message") < n,
		"the stuck reader got everything")
	# All of it queued for the two would be over 20 MiB more; what the
	# queues may hold (1 MiB each), the event ring and the store's cache
	# come to about 10 MiB.
	grew = after["VmHWM"] - before["VmHWM"]
	check(grew < F.rss_bound_kib(pid, 16 << 10), "peak RSS grew by %d KiB"
		% grew)
	never.close()
	late.close()
	log.close()
	still_fine(x)


def test_thousand_clients(ctx):
	raise_nofile(1200)
	srv, x, conn, c0 = daemon(ctx)
	pid = x.proc.pid
	base = F.proc_fds(pid)
	clients = []
	try:
		for i in range(1000):
			clients.append(IpcClient(x.socket, timeout=10))
		check(F.proc_fds(pid) >= base + 1000, "xmppd holds %d descriptors, not "
			"%d or more" % (F.proc_fds(pid), base + 1000))
		for i, c in enumerate(clients):
			c.send_line(json.dumps({"cmd": "status", "id": i}))
		for i, c in enumerate(clients):
			r = c.next_reply()
			check(r.get("id") == i and r.get("ok") is True,
				"client %d: %r" % (i, r))
	finally:
		for c in clients:
			c.close()
	wait_until(lambda: F.proc_fds(pid) <= base, 10, 0.05,
		"xmppd to close the thousand connections")
	still_fine(x)


def test_ten_mib_line(ctx):
	srv, x, conn, c0 = daemon(ctx)
	pid = x.proc.pid
	before = F.proc_status(pid)
	c = x.client()
	c.sock.sendall(b'{"cmd":"status","id":"' + b"x" * (10 << 20) + b'"}\n')
	r = c.next_reply()
	check(r.get("ok") is False and r["error"]["condition"] ==
		"line-too-long", "reply %r" % r)
	# The rest of the long line is skipped; the connection goes on.
	st = c.ok("status")
	check(st.get("state"), "status %r" % st)
	grew = F.proc_status(pid)["VmHWM"] - before["VmHWM"]
	check(grew < F.rss_bound_kib(pid, 6 << 10), "peak RSS grew by %d KiB "
		"for a 10 MiB line" % grew)
	c.close()
	still_fine(x)


def test_connect_and_vanish(ctx):
	srv, x, conn, c0 = daemon(ctx)
	pid = x.proc.pid
	base = F.proc_fds(pid)
	for i in range(1500):
		s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
		s.connect(x.socket)
		if i % 3 == 1:
			s.sendall(b'{"cmd":"status","id":1}\n{"cmd":"pro')
		elif i % 3 == 2:
			s.sendall(b'{"cmd":"protocol","id":1}\n' * 3)
			s.shutdown(socket.SHUT_WR)
		s.close()
	check(c0.ok("status").get("state"), "the first client lost its "
		"service")
	wait_until(lambda: F.proc_fds(pid) <= base, 10, 0.05,
		"xmppd's descriptors back to %d" % base)
	still_fine(x)


def test_descriptor_exhaustion(ctx):
	limit = 48
	srv, x, conn, c0 = daemon(ctx, wrapper=["prlimit", "--nofile=%d:%d"
		% (limit, limit), "--"])
	pid = x.proc.pid
	if F.under_valgrind(pid):
		# valgrind keeps descriptors of its own at the top of the limit
		# and closes what accept() returns there: clients see EOF.
		raise F.Skip("descriptor exhaustion is not valgrind's to judge")
	free = limit - F.proc_fds(pid)
	waiting = []
	try:
		# More than the daemon can take: the first ones get a hello.
		for i in range(free + 10):
			s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
			s.settimeout(5)
			s.connect(x.socket)
			waiting.append(s)
		wait_until(lambda: "ipc: accept; pausing" in x.log_text(), 10,
			0.05, "xmppd to pause accepting")
		served = greeted(waiting)
		check(0 < len(served) < len(waiting), "%d of %d served"
			% (len(served), len(waiting)))
		# Out of descriptors with clients waiting: no busy loop.
		t0, cpu0 = time.monotonic(), F.proc_cpu_seconds(pid)
		time.sleep(1.0)
		used = F.proc_cpu_seconds(pid) - cpu0
		print("    out of descriptors: %.2fs CPU in %.2fs, %d served, "
			"%d waiting" % (used, time.monotonic() - t0, len(served),
				len(waiting) - len(served)))
		check(used < 0.3, "xmppd used %.2fs of CPU in a second" % used)
		# Room again: the ones waiting are served.
		for s in served:
			s.close()
		rest = [s for s in waiting if s not in served]
		for s in rest:
			check(hello_within(s, 5), "a waiting client was never served")
			s.sendall(b'{"cmd":"status","id":7}\n')
		for s in rest:
			r = LineReader(s.fileno()).readline(5)
			check(r and json.loads(r).get("id") == 7, "status: %r" % r)
	finally:
		for s in waiting:
			s.close()
	still_fine(x)


def greeted(socks):
	"""The sockets that have their greeting by the time no more come
	for 0.3 s; each greeting is read."""
	done = []
	while True:
		r, _, _ = select.select([s for s in socks if s not in done], [], [],
			0.3)
		if not r:
			return done
		for s in r:
			check(hello_within(s, 1), "no greeting but something else")
			done.append(s)


def hello_within(s, timeout):
	"""Whether the daemon's greeting arrives on s within timeout."""
	s.settimeout(timeout)
	try:
		data = s.recv(4096, socket.MSG_PEEK)
	except socket.timeout:
		return False
	if b"\n" in data:
		s.recv(data.index(b"\n") + 1)
	return b'"hello"' in data
