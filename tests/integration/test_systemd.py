"""systemd integration through the real binary: sd_notify readiness,
STATUS=, watchdog, reload and stop against a real NOTIFY_SOCKET listener
(a datagram socket of the test's own, which is all sd_notify(3) needs);
socket activation with Debian's systemd-socket-activate; journald
priority prefixes; the unit files (systemd-analyze verify) and what
`meson install` puts in place.

systemd-socket-activate, run as root here, binds the socket itself with
the default mode (0644 after the umask, not the unit's SocketMode=0600)
and execs xmppd in its own place on the first connection, so the pid it
was started with is xmppd's. Once xmppd exits nobody listens on the
socket any more (systemd itself would keep listening); the socket file
stays, which is what the test checks.
"""

import json
import os
import platform
import re
import select
import shutil
import signal
import socket
import subprocess
import time

import fixtures as F
from fixtures import LineReader, Skip, check, free_port, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.normpath(os.path.join(HERE, "..", ".."))

# The number of sendmsg(2) in /proc/PID/syscall, to see xmppd blocked
# sending a notification.
SENDMSG = {"x86_64": 46, "aarch64": 211}

SD_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS",
	"LISTEN_PID", "LISTEN_FDNAMES", "JOURNAL_STREAM")


class NotifySocket:
	"""What systemd listens on for sd_notify: a datagram socket. Each
	message is a dict of its KEY=VALUE lines; all are kept in order."""

	def __init__(self, ws):
		d = ws.mkdir("notify", 0o700)
		self.path = os.path.join(d, "notify.sock")
		self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
		self.sock.bind(self.path)
		ws.defer(self.sock.close)
		self.messages = []	# (monotonic time, dict)
		self._next = 0		# the first message wait() has not returned

	def _receive(self, timeout):
		r, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
		if not r:
			return False
		data = self.sock.recv(65536)
		fields = {}
		for line in data.decode("utf-8").split("\n"):
			if line:
				k, sep, v = line.partition("=")
				check(sep == "=", "notification line without '=': %r" % data)
				fields[k] = v
		self.messages.append((time.monotonic(), fields))
		return True

	def wait(self, pred, timeout=10, what="notification"):
		"""The first message after the last one returned that satisfies
		pred (a dict -> bool)."""
		deadline = time.monotonic() + timeout
		while True:
			while self._next < len(self.messages):
				m = self.messages[self._next][1]
				self._next += 1
				if pred(m):
					return m
			left = deadline - time.monotonic()
			check(left > 0, "no %s within %.1fs; got %s" % (what, timeout,
				json.dumps([m for _, m in self.messages])[-1500:]))
			self._receive(left)

	def has(self, key, value=None):
		return lambda m: key in m and (value is None or m[key] == value)

	def statuses(self):
		return [m["STATUS"] for _, m in self.messages if "STATUS" in m]

	def index(self, pred):
		for i, (_, m) in enumerate(self.messages):
			if pred(m):
				return i
		return None


def launch(x, env=None, argv=None, stdin=None):
	"""Starts xmppd for the fixture x (made with start=False) with env
	added to a clean environment; argv, if given, comes before the
	binary (a wrapper that execs it). ctx stops it after the test."""
	cmd = list(argv or []) + [x.binary, "-c", x.config, "-v"]
	e = dict(os.environ, HOME=x.dir)
	for k in SD_ENV + ("XDG_RUNTIME_DIR",):
		e.pop(k, None)
	e.update(env or {})
	with open(x.log, "ab") as err:
		x.proc = subprocess.Popen(cmd, stdin=stdin or subprocess.DEVNULL,
			stdout=err, stderr=err, cwd=x.dir, env=e, start_new_session=True)
	x.ws.defer(x.stop)
	return x


def blocked_in_sendmsg(pid):
	"""True while pid sleeps inside sendmsg(2)."""
	nr = SENDMSG.get(platform.machine())
	if nr is None:
		raise Skip("no sendmsg number for %s" % platform.machine())
	try:
		with open("/proc/%d/syscall" % pid) as f:
			fields = f.read().split()
	except OSError as e:
		raise Skip("cannot read /proc/PID/syscall: %s" % e)
	return bool(fields) and fields[0] == str(nr)


def fill_queue(path):
	"""Fills the receive queue of the datagram socket at path, so the
	next sender blocks until the test reads. Returns the number sent."""
	s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
	n = 0
	try:
		while n < 10000:
			s.sendto(b"FILLER=1", socket.MSG_DONTWAIT, path)
			n += 1
	except BlockingIOError:
		pass
	finally:
		s.close()
	check(n > 0, "could not fill the notify socket's queue")
	return n


def greeting_on(path, timeout=5):
	"""Connects to path and returns the first JSON line."""
	s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
	s.settimeout(timeout)
	try:
		s.connect(path)
		line = LineReader(s.fileno()).readline(timeout)
	finally:
		s.close()
	check(line is not None, "no greeting on %s" % path)
	return json.loads(line)


def test_ready_only_once_the_socket_listens(ctx):
	a = ctx.account("alice")
	n = NotifySocket(ctx.ws)
	# With the queue full, xmppd blocks in its first notification
	# (READY=1, no watchdog here); caught there, it must already accept
	# connections on its control socket.
	fillers = fill_queue(n.path)
	x = launch(ctx.xmppd(a, start=False), {"NOTIFY_SOCKET": n.path})
	wait_until(lambda: x.proc.poll() is not None or
		blocked_in_sendmsg(x.proc.pid), 10, 0.01,
		"xmppd blocked sending its first notification")
	check(x.proc.poll() is None, "xmppd exited: %s" % F.tail(x.log, 10))
	early = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
	try:
		early.connect(x.socket)
	except OSError as e:
		raise F.TestFailure("READY=1 was on its way before the control "
			"socket accepted connections: %s" % e)
	for _ in range(fillers):
		n.wait(n.has("FILLER"), 5, "filler")
	first = n.wait(lambda m: True, 10, "the first notification")
	check(first == {"READY": "1"}, "first notification %r, not READY=1"
		% first)
	reader = LineReader(early.fileno())
	hello = json.loads(reader.readline(10))
	early.close()
	check(hello.get("event") == "hello", "greeting %r" % hello)
	check(hello.get("state") != "online", "READY=1 came only once online")
	online = "online as %s/xmppd" % a.jid
	n.wait(n.has("STATUS", online), 20, "STATUS=" + online)
	st = n.statuses()
	check("connecting" in st and st.index("connecting") < st.index(online),
		"STATUS lines %r" % st)
	check(n.index(n.has("READY")) < n.index(n.has("STATUS")),
		"a STATUS came before READY: %r" % n.messages)


def test_status_says_why_it_is_offline(ctx):
	a = ctx.account("alice")
	n = NotifySocket(ctx.ws)
	x = ctx.xmppd(a, conf={"server": {"port": free_port()}}, start=False)
	launch(x, {"NOTIFY_SOCKET": n.path})
	n.wait(n.has("READY", "1"), 10, "READY=1")
	m = n.wait(lambda m: m.get("STATUS", "").startswith("offline"), 10,
		"STATUS=offline")
	check(re.fullmatch(r"offline: .*connection refused.*, retry in \d+ s",
		m["STATUS"]), "offline status %r" % m["STATUS"])
	check(n.statuses()[0] == "connecting", "statuses %r" % n.statuses())


def test_status_says_auth_failed(ctx):
	a = ctx.account("alice")
	n = NotifySocket(ctx.ws)
	x = ctx.xmppd(a, conf={"account": {"password": "wrong-" + a.password}},
		start=False)
	launch(x, {"NOTIFY_SOCKET": n.path})
	m = n.wait(lambda m: m.get("STATUS", "").startswith("auth-failed"), 20,
		"STATUS=auth-failed")
	check(m["STATUS"].startswith("auth-failed: "), "status %r" % m["STATUS"])
	check("\n" not in m["STATUS"], "status spans lines")


def test_watchdog_pings_at_half_the_interval(ctx):
	a = ctx.account("alice")
	n = NotifySocket(ctx.ws)
	x = ctx.xmppd(a, start=False)
	# The wrapper execs xmppd, so WATCHDOG_PID names xmppd itself, as
	# systemd sets it.
	launch(x, {"NOTIFY_SOCKET": n.path, "WATCHDOG_USEC": "2000000"},
		["/bin/sh", "-c", 'export WATCHDOG_PID=$$; exec "$@"', "sh"])
	n.wait(n.has("WATCHDOG", "1"), 10, "the first WATCHDOG=1")
	deadline = time.monotonic() + 2.5
	for i in range(2):
		n.wait(n.has("WATCHDOG", "1"), deadline - time.monotonic(),
			"two more WATCHDOG=1 within 2.5 s")
	check(n.index(n.has("READY")) is not None, "no READY=1")
	pings = [t for t, m in n.messages if m.get("WATCHDOG") == "1"]
	gaps = [b - a for a, b in zip(pings, pings[1:])]
	# Every 1 s for a 2 s watchdog; a ping per full interval would be
	# 2 s apart and too late for systemd.
	check(all(0.4 < g < 1.8 for g in gaps), "ping gaps %r" % gaps)


def test_no_watchdog_pings_for_another_pid(ctx):
	a = ctx.account("alice")
	n = NotifySocket(ctx.ws)
	x = ctx.xmppd(a, start=False)
	launch(x, {"NOTIFY_SOCKET": n.path, "WATCHDOG_USEC": "400000",
		"WATCHDOG_PID": str(os.getpid())})
	n.wait(n.has("READY"), 10, "READY=1")
	# Pings every 200 ms were it to ping: 1.5 s leaves no doubt.
	end = time.monotonic() + 1.5
	while time.monotonic() < end:
		n._receive(end - time.monotonic())
	check(n.index(n.has("WATCHDOG")) is None,
		"WATCHDOG=1 for a watchdog meant for another process")


def test_reload_and_stop(ctx):
	a = ctx.account("alice")
	n = NotifySocket(ctx.ws)
	x = launch(ctx.xmppd(a, start=False), {"NOTIFY_SOCKET": n.path})
	n.wait(n.has("READY"), 10, "READY=1")
	n.wait(lambda m: m.get("STATUS", "").startswith("online as "), 20,
		"STATUS=online")
	for broken in (False, True):
		if broken:
			with open(x.config, "a") as f:
				f.write("[server]\nport = not-a-port\n")
		os.kill(x.proc.pid, signal.SIGHUP)
		m = n.wait(n.has("RELOADING", "1"), 10, "RELOADING=1")
		now = time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6
		check(abs(int(m.get("MONOTONIC_USEC", "0")) - now) < 10e6,
			"MONOTONIC_USEC %r, now %d" % (m.get("MONOTONIC_USEC"), now))
		# Also after a file with an error: systemd must not be left
		# waiting for the reload to end.
		n.wait(n.has("READY", "1"), 10, "READY=1 after the reload")
	check(x.running(), "xmppd exited on reload")
	os.kill(x.proc.pid, signal.SIGTERM)
	n.wait(n.has("STOPPING", "1"), 10, "STOPPING=1")
	check(x.proc.wait(10) == 0, "exit status %r" % x.proc.returncode)
	check("stopping" in n.statuses(), "statuses %r" % n.statuses())


def test_stopping_after_quit_command(ctx):
	a = ctx.account("alice")
	n = NotifySocket(ctx.ws)
	x = launch(ctx.xmppd(a, start=False), {"NOTIFY_SOCKET": n.path})
	n.wait(n.has("READY"), 10, "READY=1")
	c = x.client()
	c.ok("quit")
	n.wait(n.has("STOPPING", "1"), 10, "STOPPING=1")
	check(x.proc.wait(10) == 0, "exit status %r" % x.proc.returncode)


def socket_activate(x, listen):
	"""x started through systemd-socket-activate, listening on each path
	of listen; it execs xmppd on the first connection."""
	tool = shutil.which("systemd-socket-activate")
	if tool is None:
		raise Skip("systemd-socket-activate is not installed (Debian: "
			"systemd)")
	argv = [tool]
	for p in listen:
		argv += ["-l", p]
	launch(x, argv=argv)
	wait_until(lambda: x.proc.poll() is not None or
		all(os.path.exists(p) for p in listen), 10, 0.02,
		"systemd-socket-activate's sockets")
	check(x.proc.poll() is None, "systemd-socket-activate exited: %s"
		% F.tail(x.log, 10))
	return x


def as_nobody(path):
	"""What a process of uid nobody reads after connecting to path."""
	code = ("import socket,sys\n"
		"s=socket.socket(socket.AF_UNIX)\ns.settimeout(5)\n"
		"s.connect(sys.argv[1])\nd=b''\n"
		"while b'\\n' not in d:\n"
		"  c=s.recv(4096)\n  if not c: break\n  d+=c\n"
		"sys.stdout.write(d.decode())\n")
	r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup",
		"--clear-groups", F.PYTHON, "-c", code, path],
		stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
		timeout=15)
	return r.stdout


def test_socket_activation(ctx):
	a = ctx.account("alice")
	x = ctx.xmppd(a, start=False)
	d = ctx.ws.mkdir("activated", 0o700)
	path = os.path.join(d, "xmppd.sock")
	socket_activate(x, [path])
	check("xmppd" not in open("/proc/%d/comm" % x.proc.pid).read(),
		"xmppd ran before any connection")
	c = F.IpcClient(path, timeout=10)
	check(c.greeting.get("jid") == a.jid, "greeting %r" % c.greeting)
	check(open("/proc/%d/comm" % x.proc.pid).read().strip() == "xmppd",
		"the activated process is not xmppd")
	check(not os.path.exists(x.socket),
		"xmppd made its own socket besides the one passed")
	c.ok("subscribe", events=["state"])
	st = c.wait_state(("online",), 20)
	check(c.ok("status").get("jid") == a.jid + "/xmppd", "status %r" % st)
	c.close()
	# The peer-uid check applies to a socket handed over as well.
	if os.geteuid() == 0:
		os.chmod(d, 0o711)
		os.chmod(path, 0o666)
		out = as_nobody(path)
		check('"not-authorized"' in out, "a process of uid nobody was "
			"not refused: %r" % out)
	rc, _ = x.stop()
	check(rc == 0, "exit status %r" % rc)
	check(os.path.exists(path), "xmppd removed the socket systemd owns")
	check("socket activation" in x.log_text(), "nothing logged about "
		"socket activation")


def test_socket_activation_refuses_two_sockets(ctx):
	a = ctx.account("alice")
	x = ctx.xmppd(a, start=False)
	d = ctx.ws.mkdir("activated", 0o700)
	paths = [os.path.join(d, "one.sock"), os.path.join(d, "two.sock")]
	socket_activate(x, paths)
	s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
	s.connect(paths[0])
	s.close()
	try:
		rc = x.proc.wait(10)
	except subprocess.TimeoutExpired:
		raise F.TestFailure("xmppd serves while given two sockets")
	check(rc == 1, "exit status %r" % rc)
	check("2 sockets passed" in x.log_text(), "no reason logged: %s"
		% F.tail(x.log, 5))


def test_journal_priority_prefixes(ctx):
	a = ctx.account("alice")
	x = ctx.xmppd(a, conf={"server": {"port": free_port()}}, start=False)
	launch(x, {"JOURNAL_STREAM": "8:12345"})
	wait_until(lambda: "-> offline" in x.log_text(), 10, 0.05,
		"the offline state in the log")
	x.stop()
	lines = [ln for ln in x.log_text().splitlines() if ln]
	bad = [ln for ln in lines if not re.match(r"<[0-7]>\[[\w.-]+:\d+\] ", ln)]
	check(not bad, "lines without a priority prefix: %r" % bad[:5])
	prios = {ln[1] for ln in lines}
	# info (state changes), warning (connection refused), debug (-v)
	check({"4", "6", "7"} <= prios, "priorities seen: %r" % sorted(prios))
	check(any(re.match(r"<4>.*cannot connect", ln) for ln in lines),
		"the refused connection is not a warning: %r" % lines[-5:])


def build_dir(ctx):
	d = os.path.dirname(ctx.xmppd_bin)
	if not os.path.isdir(os.path.join(d, "meson-private")):
		raise Skip("%s is not a meson build directory" % d)
	return d


def test_units_verify(ctx):
	b = build_dir(ctx)
	unit = os.path.join(b, "xmppd.service")
	if not os.path.exists(unit):
		raise Skip("built without systemd: no units")
	if shutil.which("systemd-analyze") is None:
		raise Skip("systemd-analyze is not installed")
	d = ctx.ws.mkdir("units", 0o755)
	with open(unit) as f:
		text = f.read()
	m = re.search(r"(?m)^ExecStart=(\S+)$", text)
	check(m and os.path.isabs(m.group(1)) and m.group(1).endswith("/xmppd"),
		"ExecStart %r" % (m and m.group(1)))
	# verify checks that ExecStart exists: point it at the built binary.
	with open(os.path.join(d, "xmppd.service"), "w") as f:
		f.write(text.replace(m.group(0), "ExecStart=" + ctx.xmppd_bin))
	shutil.copy(os.path.join(SOURCE, "contrib", "systemd", "xmppd.socket"), d)
	rt = ctx.ws.mkdir("runtime", 0o700)
	r = subprocess.run(["systemd-analyze", "verify", "--user", "--man=no",
		"xmppd.service", "xmppd.socket"], cwd=d, stdout=subprocess.PIPE,
		stderr=subprocess.STDOUT, text=True, timeout=60,
		env=dict(os.environ, XDG_RUNTIME_DIR=rt))
	check(r.returncode == 0 and r.stdout.strip() == "",
		"systemd-analyze verify (%d): %s" % (r.returncode, r.stdout))
	for key in ("Type=notify", "WatchdogSec=", "ExecReload=", "NoNewPrivileges=yes"):
		check(key in text, "xmppd.service has no %s" % key)


def test_meson_install(ctx):
	b = build_dir(ctx)
	if shutil.which("meson") is None:
		raise Skip("meson is not installed")
	installed = json.loads(F.run(["meson", "introspect", "--installed", b]))
	dests = {os.path.basename(k): v for k, v in installed.items()}
	want = ["xmppd", "xmppd.conf.example"]
	if os.path.exists(os.path.join(b, "xmppd.service")):
		want += ["xmppd.service", "xmppd.socket"]
	if os.path.exists(os.path.join(b, "man", "xmppd.1")):
		want += ["xmppd.1", "xmppd.conf.5", "xmppd-ipc.7"]
	missing = [w for w in want if w not in dests]
	check(not missing, "not installed: %r (%r)" % (missing, installed))
	stage = ctx.ws.mkdir("stage", 0o755)
	F.run(["meson", "install", "-C", b, "--no-rebuild", "--destdir", stage])
	for w in want:
		check(os.path.isfile(stage + dests[w]), "%s not at %s" % (w, dests[w]))
	out = F.run([stage + dests["xmppd"], "--version"])
	check(re.fullmatch(r"xmppd \d+\.\d+\.\d+\S*\n", out), "--version %r" % out)
	if "xmppd.service" in dests:
		check(os.path.dirname(dests["xmppd.service"]).endswith(
			"/lib/systemd/user"), "units in %s" % dests["xmppd.service"])
		with open(stage + dests["xmppd.service"]) as f:
			check("ExecStart=%s\n" % dests["xmppd"] in f.read(),
				"ExecStart is not the installed %s" % dests["xmppd"])
