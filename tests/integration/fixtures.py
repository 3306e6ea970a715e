"""Fixtures for the integration tests: a test CA, private Prosody and
ejabberd instances on loopback, xmppd processes and a control-socket
client. Python 3 standard library only; run with /usr/bin/python3.

Every process started here is stopped by PID, through Workspace.cleanup(),
which the runner calls in a finally block and again from atexit.
"""

import atexit
import base64
import json
import os
import pwd
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time

PYTHON = "/usr/bin/python3"
HERE = os.path.dirname(os.path.abspath(__file__))
DOMAIN = "localhost"


class Skip(Exception):
	"""A test (or fixture) cannot run here; the reason is printed."""


class TestFailure(AssertionError):
	"""A check failed."""


class ReadTimeout(TestFailure):
	"""Nothing to read within the time allowed."""


def only_on(ctx, server_name, why):
	"""Skips the test unless the run is against server_name; why says
	what the test needs of that server."""
	if ctx.server_name != server_name:
		raise Skip("needs %s: %s" % (server_name, why))


def check(cond, what):
	"""Raises TestFailure(what) unless cond holds."""
	if not cond:
		raise TestFailure(what)


def free_port():
	"""A TCP port on 127.0.0.1 that was free a moment ago."""
	with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
		s.bind(("127.0.0.1", 0))
		return s.getsockname()[1]


def port_open(host, port):
	"""True if something accepts TCP connections on host:port."""
	try:
		with socket.create_connection((host, port), timeout=0.5):
			return True
	except OSError:
		return False


def wait_until(pred, timeout, step=0.05, what="condition"):
	"""Polls pred() until it returns a true value (returned) or timeout."""
	deadline = time.monotonic() + timeout
	while True:
		v = pred()
		if v:
			return v
		if time.monotonic() >= deadline:
			raise TestFailure("timed out after %.1fs waiting for %s"
				% (timeout, what))
		time.sleep(step)


def pid_alive(pid):
	"""True while pid exists (and is not a zombie we could reap)."""
	try:
		os.kill(pid, 0)
	except ProcessLookupError:
		return False
	except PermissionError:
		return True
	try:
		with open("/proc/%d/stat" % pid) as f:
			return f.read().split(") ", 1)[1][0] != "Z"
	except OSError:
		return False


def stop_process(proc, timeout=10.0, pid=None):
	"""Stops a Popen (or a bare pid) by SIGTERM, then SIGKILL after
	timeout. Returns (exit status or None, seconds until it was gone)."""
	pid = pid if pid is not None else proc.pid
	start = time.monotonic()
	try:
		os.kill(pid, signal.SIGTERM)
	except ProcessLookupError:
		pass
	rc = None
	deadline = start + timeout
	while time.monotonic() < deadline:
		if proc is not None and proc.poll() is not None:
			rc = proc.returncode
			break
		if proc is None and not pid_alive(pid):
			break
		time.sleep(0.02)
	else:
		try:
			os.kill(pid, signal.SIGKILL)
		except ProcessLookupError:
			pass
		if proc is not None:
			proc.wait()
			rc = proc.returncode
	return rc, time.monotonic() - start


def run(cmd, **kw):
	"""Runs cmd, raising with its output if it fails."""
	r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
		stderr=subprocess.STDOUT, text=True, **kw)
	if r.returncode != 0:
		raise RuntimeError("%s exited %d: %s" % (" ".join(cmd),
			r.returncode, r.stdout.strip()[-2000:]))
	return r.stdout


def tail(path, lines=40):
	"""The last lines of a text file, or a note that it is missing."""
	try:
		with open(path, "rb") as f:
			f.seek(0, os.SEEK_END)
			size = f.tell()
			f.seek(max(0, size - 64 * 1024))
			data = f.read().decode("utf-8", "replace")
	except OSError as e:
		return "(%s: %s)" % (path, e)
	return "\n".join(data.splitlines()[-lines:])


class Workspace:
	"""A temporary directory for one run, and the cleanups that go with
	it (run last-in first-out, at the latest from atexit)."""

	def __init__(self, keep=False):
		self.root = tempfile.mkdtemp(prefix="xmppd-it-")
		# Reachable (not listable) by other users: xmppd runs as nobody
		# in one test and must reach its own directory below this one.
		os.chmod(self.root, 0o711)
		self.keep = keep
		self._cleanups = []
		self._counter = 0
		atexit.register(self.cleanup)

	def path(self, *parts):
		return os.path.join(self.root, *parts)

	def mkdir(self, name, mode=0o755):
		"""A fresh, unique directory under the workspace."""
		self._counter += 1
		d = self.path("%s-%d" % (name, self._counter))
		os.mkdir(d)
		os.chmod(d, mode)
		return d

	def defer(self, fn):
		"""Runs fn at cleanup time."""
		self._cleanups.append(fn)

	def cleanup(self):
		while self._cleanups:
			fn = self._cleanups.pop()
			try:
				fn()
			except Exception as e:  # keep cleaning up
				print("cleanup: %s" % e)
		if not self.keep and os.path.isdir(self.root):
			shutil.rmtree(self.root, ignore_errors=True)


class CA:
	"""A throwaway certificate authority made with openssl."""

	def __init__(self, directory, name):
		self.dir = directory
		self.name = name
		self.key = os.path.join(directory, name + "-ca.key")
		self.cert = os.path.join(directory, name + "-ca.pem")
		run(["openssl", "req", "-x509", "-newkey", "ec",
			"-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
			"-keyout", self.key, "-out", self.cert, "-days", "2",
			"-subj", "/O=xmppd tests/CN=%s test CA" % name,
			"-addext", "basicConstraints=critical,CA:TRUE",
			"-addext", "keyUsage=critical,keyCertSign,cRLSign"])
		os.chmod(self.cert, 0o644)

	def issue(self, cn="localhost"):
		"""A server certificate for localhost signed by this CA: returns
		(cert path, key path, combined cert+key path)."""
		base = os.path.join(self.dir, "%s-%s" % (self.name, cn))
		key, csr, cert, ext = (base + ".key", base + ".csr", base + ".pem",
			base + ".ext")
		with open(ext, "w") as f:
			f.write("subjectAltName=DNS:localhost,DNS:*.localhost,"
				"IP:127.0.0.1,IP:::1\n"
				"basicConstraints=critical,CA:FALSE\n"
				"keyUsage=critical,digitalSignature,keyEncipherment\n"
				"extendedKeyUsage=serverAuth,clientAuth\n")
		run(["openssl", "req", "-new", "-newkey", "ec",
			"-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
			"-keyout", key, "-out", csr, "-subj", "/CN=%s" % cn])
		run(["openssl", "x509", "-req", "-in", csr, "-CA", self.cert,
			"-CAkey", self.key, "-CAcreateserial", "-out", cert,
			"-days", "2", "-extfile", ext])
		combined = base + "-combined.pem"
		with open(combined, "w") as out:
			for p in (cert, key):
				with open(p) as f:
					out.write(f.read())
		for p in (cert, key, combined):
			os.chmod(p, 0o644)
		return cert, key, combined


class Certs:
	"""The test CA with a localhost server certificate, and a second,
	unrelated CA (with its own localhost certificate)."""

	def __init__(self, ws):
		d = ws.mkdir("certs", 0o755)
		self.ca = CA(d, "test")
		self.cert, self.key, self.combined = self.ca.issue()
		self.other_ca = CA(d, "other")
		(self.other_cert, self.other_key,
			self.other_combined) = self.other_ca.issue()


class Account:
	"""A throwaway account on one of the servers."""

	def __init__(self, server, user, password):
		self.server = server
		self.user = user
		self.password = password
		self.jid = "%s@%s" % (user, DOMAIN)

	def __repr__(self):
		return "<Account %s on %s>" % (self.jid, self.server.name)


def sasl_auths(log_text, user=None):
	"""The SASL <auth> elements a Prosody stanza_debug log shows
	received, as (mechanism, decoded initial response) pairs, keeping
	those whose SCRAM/PLAIN response names user (all when user is None)."""
	out = []
	for m in re.finditer(r"RECV: <auth\b([^>]*)>([^<]*)</auth>", log_text):
		mech = re.search(r"mechanism=['\"]([^'\"]+)['\"]", m.group(1))
		try:
			payload = base64.b64decode(m.group(2)).decode("utf-8",
				"replace")
		except ValueError:
			payload = ""
		if user is None or ("n=%s," % user) in payload \
				or ("\0%s\0" % user) in payload:
			out.append((mech.group(1) if mech else None, payload))
	return out


class Server:
	"""What Prosody and ejabberd fixtures share: accounts and logs."""

	name = "server"
	host = "127.0.0.1"

	def __init__(self, ws, certs):
		self.ws = ws
		self.certs = certs
		self.port = free_port()
		self.proc = None
		self._accounts = 0

	def new_account(self, prefix="user"):
		"""Registers a fresh account prefix_N with a random password."""
		self._accounts += 1
		user = "%s_%d" % (prefix, self._accounts)
		password = "pw-" + base64.urlsafe_b64encode(os.urandom(9)).decode()
		self.register(user, password)
		return Account(self, user, password)

	def log_offset(self):
		"""Where the server log ends now, for log_since()."""
		try:
			return os.path.getsize(self.log)
		except OSError:
			return 0

	def log_since(self, offset):
		"""The server log text appended after offset."""
		try:
			with open(self.log, "rb") as f:
				f.seek(offset)
				return f.read().decode("utf-8", "replace")
		except OSError:
			return ""

	def _wait_started(self, timeout):
		def up():
			if self.proc.poll() is not None:
				raise RuntimeError("%s exited %s at start:\n%s" % (
					self.name, self.proc.returncode,
					tail(self.console, 30) + "\n" + tail(self.log, 30)))
			return port_open(self.host, self.port)
		wait_until(up, timeout, 0.05, "%s on port %d" % (self.name,
			self.port))

	def stop(self):
		if self.proc is not None and self.proc.poll() is None:
			stop_process(self.proc, timeout=15)


class Prosody(Server):
	"""A private Prosody on 127.0.0.1: own config, data, pidfile, logs."""

	name = "prosody"

	# offline: a message to a bare JID that overtakes the recipient's
	# initial presence is kept and delivered with it, as on any server.
	MODULES = ("tls", "saslauth", "roster", "disco", "ping", "presence",
		"message", "iq", "offline", "smacks", "carbons", "mam", "blocklist",
		"posix", "stanza_debug", "csi_simple", "time", "version")

	# mod_http_file_share's max-file-size (bytes).
	UPLOAD_LIMIT = 1 << 20

	def __init__(self, ws, certs, extra="", upload=True):
		"""extra: Lua lines for the global section of the config, e.g.
		'network_settings = { nagle = false }'; upload: with the
		upload.localhost component."""
		super().__init__(ws, certs)
		self.dir = ws.mkdir("prosody", 0o755)
		self._deferred = False
		self.tls_port = free_port()
		# HTTP on loopback, for mod_http_file_share (XEP-0363).
		self.http_port = free_port()
		self.config = os.path.join(self.dir, "prosody.cfg.lua")
		self.log = os.path.join(self.dir, "prosody.log")
		self.console = os.path.join(self.dir, "console.log")
		self.pidfile = os.path.join(self.dir, "prosody.pid")
		data = os.path.join(self.dir, "data")
		os.mkdir(data, 0o750)
		mods = "".join('\t"%s";\n' % m for m in self.MODULES)
		lua = lambda s: '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')
		with open(self.config, "w") as f:
			f.write("""-- generated by tests/integration/fixtures.py
pidfile = {pidfile}
data_path = {data}
certificates = {certdir}
run_as_root = true
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {port} }}
c2s_direct_tls_ports = {{ {tls_port} }}
s2s_ports = {{ }}
http_ports = {{ {http_port} }}
http_interfaces = {{ "127.0.0.1" }}
http_external_url = "http://127.0.0.1:{http_port}/"
https_ports = {{ }}
modules_enabled = {{
{mods}}}
modules_disabled = {{ "s2s" }}
c2s_require_encryption = true
allow_registration = false
authentication = "internal_plain"
storage = "internal"
archive_expires_after = "1d"
default_archive_policy = true
smacks_hibernation_time = 10
{extra}
log = {{
	{{ levels = {{ min = "debug" }}, to = "file", filename = {log} }};
}}
ssl = {{ certificate = {cert}, key = {key} }}
VirtualHost "localhost"
	ssl = {{ certificate = {cert}, key = {key} }}
-- group chat; admin_shell lets a test act on a room from outside
Component "conference.localhost" "muc"
	modules_enabled = {{ "admin_shell" }}
""".format(pidfile=lua(self.pidfile), data=lua(data), port=self.port,
				tls_port=self.tls_port, mods=mods, log=lua(self.log),
				cert=lua(certs.cert), key=lua(certs.key),
				certdir=lua(os.path.dirname(certs.cert)), extra=extra,
				http_port=self.http_port))
			if upload:
				f.write("""-- HTTP File Upload (XEP-0363), served on http_port
Component "upload.localhost" "http_file_share"
	http_host = "127.0.0.1"
	http_file_share_size_limit = {upload_limit}
""".format(upload_limit=self.UPLOAD_LIMIT))

	def start(self, timeout=20):
		with open(self.console, "ab") as out:
			self.proc = subprocess.Popen(["prosody", "-F", "--config",
				self.config], stdin=subprocess.DEVNULL, stdout=out,
				stderr=subprocess.STDOUT, cwd=self.dir,
				start_new_session=True)
		if not self._deferred:
			self.ws.defer(self.stop)
			self._deferred = True
		self._wait_started(timeout)
		return self

	def kill(self, sig=signal.SIGTERM, timeout=15):
		"""Stops Prosody by PID (sig: SIGTERM, a clean shutdown, or
		SIGKILL, a crash) and waits until it is gone and its ports are
		closed. Data, config, ports and logs stay for start()."""
		if self.proc is None or self.proc.poll() is not None:
			return
		try:
			os.kill(self.proc.pid, sig)
		except ProcessLookupError:
			pass
		stop_process(self.proc, timeout)
		wait_until(lambda: not port_open(self.host, self.port), 5, 0.05,
			"prosody's port %d to close" % self.port)

	def restart(self, sig=signal.SIGTERM, timeout=20):
		"""kill(sig), then start() again on the same ports and data."""
		self.kill(sig)
		return self.start(timeout)

	def running(self):
		return self.proc is not None and self.proc.poll() is None

	def session_log(self, full_jid):
		"""The log lines of the c2s session that bound full_jid."""
		text = self.log_since(0)
		m = re.search(r"^\S+\s+\S+\s+\S+\s+(\S+)\s+debug\s+Resource bound: %s$"
			% re.escape(full_jid), text, re.M)
		if m is None:
			return []
		sid = m.group(1)
		return [ln for ln in text.splitlines()
			if ln.split(None, 4)[3:4] == [sid]]

	def traffic(self, offset=0):
		"""The stanzas the server received ("RECV: <xml>") and sent
		("SEND: <xml>") since offset, one per line after the session's
		id: Prosody's stanza_debug lines as they are."""
		return self.log_since(offset)

	def client_gone(self, offset):
		"""Has a client session ended since offset?"""
		return "Client disconnected" in self.log_since(offset)

	def mam_queries(self, offset, user):
		"""The archive queries user's sessions made since offset."""
		return [ln for ln in self.log_since(offset).splitlines()
			if "Archive query by %s " % user in ln]

	def register(self, user, password):
		run(["prosodyctl", "--config", self.config, "register", user,
			DOMAIN, password])


class Ejabberd(Server):
	"""A private ejabberd node: own ejabberd.yml and ejabberdctl.cfg,
	spool dir, node name and cookie, and an explicit Erlang distribution
	port on loopback (no epmd). Runs as the ejabberd user.

	Configured for the IM tests (run.py --server ejabberd): roster
	versioning, carbons, MAM archiving everything (Mnesia: fine for a
	few messages per account), blocking, MUC on conference.localhost,
	offline storage, stream management, CSI, caps, HTTP upload on
	upload.localhost served on http_port, and mod_http_api there for
	registering accounts from loopback. The debug log is what
	traffic() and session_log() read."""

	name = "ejabberd"

	# mod_http_upload's max_size (bytes), as Prosody's.
	UPLOAD_LIMIT = 1 << 20

	def __init__(self, ws, certs):
		super().__init__(ws, certs)
		if shutil.which("ejabberdctl") is None:
			raise Skip("ejabberd is not installed")
		try:
			ent = pwd.getpwnam("ejabberd")
		except KeyError:
			raise Skip("no ejabberd user")
		self.uid, self.gid = ent.pw_uid, ent.pw_gid
		self.dir = ws.mkdir("ejabberd", 0o755)
		self.spool = os.path.join(self.dir, "spool")
		self.logs = os.path.join(self.dir, "logs")
		for d in (self.spool, self.logs):
			os.mkdir(d, 0o750)
			os.chown(d, self.uid, self.gid)
		os.chown(self.dir, self.uid, self.gid)
		self.log = os.path.join(self.logs, "ejabberd.log")
		self.console = os.path.join(self.dir, "console.log")
		self.pidfile = os.path.join(self.logs, "ejabberd.pid")
		upload_dir = os.path.join(self.spool, "upload")
		self.http_port = free_port()
		self.dist_port = free_port()
		self.node = "xmppdtest%d@localhost" % os.getpid()
		cookie = base64.b32encode(os.urandom(15)).decode()
		self.yml = os.path.join(self.dir, "ejabberd.yml")
		self.ctlcfg = os.path.join(self.dir, "ejabberdctl.cfg")
		with open(self.yml, "w") as f:
			f.write("""# generated by tests/integration/fixtures.py
hosts:
  - localhost
# debug: the XML of every stream, which the tests read (traffic()).
loglevel: debug
log_rotate_size: infinity
# Every line of the debug log, not 500 a second.
log_burst_limit_count: 1000000
log_rotate_count: 0
certfiles:
  - "{pem}"
listen:
  -
    port: {port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 262144
    shaper: none
    access: c2s
    starttls_required: true
  -
    port: {http_port}
    ip: "127.0.0.1"
    module: ejabberd_http
    request_handlers:
      /upload: mod_http_upload
      /api: mod_http_api
auth_method: internal
auth_password_format: plain
s2s_access: none
acl:
  local:
    user_regexp: ""
  loopback:
    ip:
      - 127.0.0.0/8
access_rules:
  local:
    allow: local
  c2s:
    allow: all
api_permissions:
  "console commands":
    from:
      - ejabberd_ctl
    who: all
    what: "*"
  # Accounts over HTTP from loopback: ejabberdctl costs a VM start each.
  "loopback register":
    from:
      - mod_http_api
    who:
      ip: 127.0.0.1/8
    what:
      - register
modules:
  mod_http_api: {{}}
  mod_disco: {{}}
  mod_caps: {{}}
  mod_ping: {{}}
  mod_time: {{}}
  mod_version: {{}}
  mod_roster:
    versioning: true
  mod_stream_mgmt:
    resume_timeout: 10
  mod_carboncopy: {{}}
  mod_blocking: {{}}
  mod_privacy: {{}}
  mod_offline: {{}}
  mod_client_state: {{}}
  mod_mam:
    default: always
  mod_muc:
    host: "conference.@HOST@"
    access_create: all
    history_size: 20
  mod_http_upload:
    host: "upload.@HOST@"
    put_url: "http://127.0.0.1:{http_port}/upload"
    docroot: "{upload_dir}"
    max_size: {upload_limit}
""".format(pem=certs.combined, port=self.port,
				http_port=self.http_port, upload_dir=upload_dir,
				upload_limit=self.UPLOAD_LIMIT))
		with open(self.ctlcfg, "w") as f:
			f.write("""# generated by tests/integration/fixtures.py
ERLANG_NODE={node}
ERL_DIST_PORT={dist}
INET_DIST_INTERFACE=127.0.0.1
ERL_OPTIONS="-setcookie {cookie}"
EJABBERD_BYPASS_WARNINGS=true
EJABBERD_PID_PATH={pid}
""".format(node=self.node, dist=self.dist_port, cookie=cookie,
				pid=self.pidfile))
		with open(os.path.join(self.dir, "inetrc"), "w") as f:
			f.write("{lookup, [file, native]}.\n")
		for p in (self.yml, self.ctlcfg):
			os.chmod(p, 0o640)
			os.chown(p, 0, self.gid)

	def _ctl(self, *args, check=True, timeout=60):
		"""Runs ejabberdctl as the ejabberd user against our node."""
		cmd = ["setpriv", "--reuid=%d" % self.uid, "--regid=%d" % self.gid,
			"--init-groups", "ejabberdctl", "--config-dir", self.dir,
			"--config", self.yml, "--ctl-config", self.ctlcfg,
			"--spool", self.spool, "--logs", self.logs] + list(args)
		env = dict(os.environ, HOME=self.dir)
		if not check:
			return subprocess.Popen(cmd, env=env, cwd=self.dir,
				stdin=subprocess.DEVNULL, start_new_session=True,
				stdout=open(self.console, "ab"), stderr=subprocess.STDOUT)
		r = subprocess.run(cmd, env=env, cwd=self.dir,
			stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
			stderr=subprocess.STDOUT, text=True, timeout=timeout)
		if r.returncode != 0:
			raise RuntimeError("ejabberdctl %s exited %d: %s" % (
				" ".join(args), r.returncode, r.stdout.strip()[-1500:]))
		return r.stdout

	def start(self, timeout=60):
		# "foreground" execs erl, so the Popen pid is the beam process.
		self.proc = self._ctl("foreground", check=False)
		self.ws.defer(self.stop)
		self._wait_started(timeout)
		return self

	# "(tls|<0.497.0>) Received XML on stream = <<"...">>", at debug.
	XML_LINE = re.compile(r"^\S+ \S+ \[\w+\] (<[\d.]+>)[^(]* "
		r"\(\w+\|[^)]*\) (Received|Send) XML on stream = <<\"(.*)\""
		r"(?:/utf8)?>>$", re.M)

	ENTRY = re.compile(rb"^\d{4}-\d\d-\d\d .*?(?=\n\d{4}-\d\d-\d\d |\Z)",
		re.S | re.M)

	def _records(self, offset=0):
		"""(session, "RECV"/"SEND", xml) from the log since offset (in
		bytes), a session being the c2s process. The log is parsed once,
		as it grows (the debug log of a run is tens of MB)."""
		if not hasattr(self, "_parsed"):
			self._parsed, self._parsed_upto = [], 0
		try:
			with open(self.log, "rb") as f:
				f.seek(self._parsed_upto)
				new = f.read()
		except OSError:
			new = b""
		# Whole entries only: up to the last line that starts one.
		end = new.rfind(b"\n20")
		if end > 0:
			self._parse(new[:end], self._parsed_upto)
			self._parsed_upto += end + 1
		return [r[1:] for r in self._parsed if r[0] >= offset]

	def _parse(self, data, base):
		"""Adds the XML entries of data, which began at byte base."""
		for e in self.ENTRY.finditer(data):
			if b"XML on stream" not in e.group(0):
				continue
			text = e.group(0).decode("utf-8", "replace").replace("\n", "")
			m = self.XML_LINE.match(text)
			if m is None:
				continue
			# A long binary may be printed as <<"a",\n  "b">>.
			xml = re.sub(r'(?<!\\)",\s*"', "", m.group(3))
			xml = re.sub(r"\\(.)", r"\1", xml)
			d = "RECV" if m.group(2) == "Received" else "SEND"
			for el in self._split(m.group(1) + d, xml):
				self._parsed.append((base + e.start(), m.group(1), d, el))

	TAG = re.compile(r"<(/?)([^\s/>]+)[^>]*?(/?)>")

	def _split(self, stream, data):
		"""The top-level elements completed by data, what one stream
		read or wrote: a read holds any number of stanzas and may end
		inside one, kept for the next."""
		if not hasattr(self, "_partial"):
			self._partial = {}
		buf = self._partial.pop(stream, "") + data
		out, depth, start = [], 0, 0
		for t in self.TAG.finditer(buf):
			name = t.group(2)
			if name.startswith(("?", "!")) or name == "stream:stream":
				out.append(t.group(0))  # the header, or its end
				start = t.end()
				continue
			if depth == 0:
				start = t.start()
			if t.group(1):
				depth -= 1
			elif not t.group(3):
				depth += 1
			if depth <= 0:
				depth = 0
				out.append(buf[start:t.end()])
				start = t.end()
		if depth > 0:
			self._partial[stream] = buf[start:]
		return out

	def traffic(self, offset=0):
		"""Every stanza since offset as "session RECV: <xml>" or
		"session SEND: <xml>" lines, the shape of Prosody's log."""
		return "\n".join("%s %s: %s" % r for r in self._records(offset))

	def session_log(self, full_jid):
		"""The traffic lines of the c2s session that bound full_jid."""
		recs = self._records()
		bound = "<jid>%s</jid>" % full_jid
		sids = {sid for sid, d, xml in recs if d == "SEND" and bound in xml
			and "urn:ietf:params:xml:ns:xmpp-bind" in xml}
		return ["%s %s: %s" % (sid, d, xml) for sid, d, xml in recs
			if sid in sids]

	def client_gone(self, offset):
		"""Has a client session ended since offset?"""
		return "Closing c2s session for" in self.log_since(offset)

	def mam_queries(self, offset, user):
		"""The archive queries user's sessions made since offset."""
		recs = self._records()
		bound = "<jid>%s@%s/" % (user, DOMAIN)
		sids = {sid for sid, d, xml in recs if d == "SEND" and bound in xml
			and "urn:ietf:params:xml:ns:xmpp-bind" in xml}
		return ["%s RECV: %s" % (sid, xml) for sid, d, xml in
			self._records(offset) if sid in sids and d == "RECV"
			and re.search(r"<query [^>]*urn:xmpp:mam:2", xml)]

	def register(self, user, password):
		"""Registers through mod_http_api (fast), or ejabberdctl."""
		import urllib.request
		body = json.dumps({"user": user, "host": DOMAIN,
			"password": password}).encode()
		req = urllib.request.Request("http://127.0.0.1:%d/api/register"
			% self.http_port, data=body, method="POST",
			headers={"Content-Type": "application/json"})
		try:
			with urllib.request.urlopen(req, timeout=10) as r:
				if r.status == 200:
					return
		except OSError:
			pass
		self._ctl("register", user, DOMAIN, password)

	def stop(self):
		"""Stops the beam process (pidfile), then the ejabberdctl shell
		that waits for it; anything left in its session is killed."""
		if self.proc is None:
			return
		try:
			with open(self.pidfile) as f:
				pid = int(f.read().strip())
		except (OSError, ValueError):
			pid = None
		if pid is not None and pid_alive(pid):
			stop_process(None, timeout=20, pid=pid)
		if self.proc.poll() is None:
			try:
				os.killpg(self.proc.pid, signal.SIGTERM)
			except ProcessLookupError:
				pass
			stop_process(self.proc, timeout=5)
		self.proc = None


def probe_mechanisms(host, port, cafile, max_tls=None, timeout=10):
	"""Connects like a client, does STARTTLS (trusting cafile, capped at
	max_tls, an ssl.TLSVersion) and returns (TLS version, the SASL
	mechanisms offered). Proves what the server offers, independently
	of xmppd."""
	import ssl

	def read_until(conn, token):
		data = b""
		deadline = time.monotonic() + timeout
		while token not in data:
			check(time.monotonic() < deadline, "probe: no %r" % token)
			chunk = conn.recv(65536)
			check(chunk, "probe: connection closed before %r" % token)
			data += chunk
			check(len(data) < 1 << 20, "probe: too much data")
		return data.decode("utf-8", "replace")

	header = ("<?xml version='1.0'?><stream:stream to='%s' version='1.0' "
		"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/"
		"streams'>" % DOMAIN).encode()
	raw = socket.create_connection((host, port), timeout=timeout)
	try:
		raw.sendall(header)
		read_until(raw, b"</stream:features>")
		raw.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
		read_until(raw, b"<proceed")
		ctx = ssl.create_default_context(cafile=cafile)
		if max_tls is not None:
			ctx.maximum_version = max_tls
		conn = ctx.wrap_socket(raw, server_hostname=DOMAIN)
		raw = conn
		conn.sendall(header)
		feats = read_until(conn, b"</stream:features>")
		mechs = re.findall(r"<mechanism>([^<]+)</mechanism>", feats)
		return conn.version(), mechs
	finally:
		raw.close()


class LineReader:
	"""Bounded, timeout-aware line reading from a socket or pipe fd."""

	MAX_LINE = 8 << 20

	def __init__(self, fd):
		self.fd = fd
		self.buf = b""
		self.eof = False

	def readline(self, timeout):
		"""One line without its newline (bytes), or None at EOF; raises
		TestFailure on timeout."""
		deadline = time.monotonic() + timeout
		while b"\n" not in self.buf:
			if self.eof:
				if self.buf:
					line, self.buf = self.buf, b""
					return line
				return None
			left = deadline - time.monotonic()
			if left <= 0:
				raise ReadTimeout("no line within %.1fs" % timeout)
			r, _, _ = select.select([self.fd], [], [], left)
			if not r:
				continue
			chunk = os.read(self.fd, 65536)
			if not chunk:
				self.eof = True
			self.buf += chunk
			check(len(self.buf) <= self.MAX_LINE, "line over %d bytes"
				% self.MAX_LINE)
		line, self.buf = self.buf.split(b"\n", 1)
		return line


class EventQueue:
	"""Events kept until a test asks for them. A subclass sets .events
	and .name and reads the next event with _next_event(timeout), which
	raises ReadTimeout when none came."""

	def wait_event(self, pred, timeout=10, what="event"):
		"""The first event (collected or new) satisfying pred; it is
		removed from the collected ones."""
		deadline = time.monotonic() + timeout
		while True:
			for i, ev in enumerate(self.events):
				if pred(ev):
					return self.events.pop(i)
			left = deadline - time.monotonic()
			if left <= 0:
				raise TestFailure("%s: no %s within %.1fs; events seen: %s"
					% (self.name, what, timeout,
						json.dumps(self.events[-6:])[:1500]))
			try:
				self.events.append(self._next_event(left))
			except ReadTimeout:
				continue


class Peer(EventQueue):
	"""The slixmpp peer (peer.py) in a subprocess."""

	def __init__(self, account, cafile, log_path):
		self.account = account
		self.log_path = log_path
		self.events = []
		self.stderr = open(log_path, "ab")
		self.proc = subprocess.Popen([PYTHON, os.path.join(HERE, "peer.py"),
			account.jid, account.password, account.server.host,
			str(account.server.port), cafile], stdin=subprocess.PIPE,
			stdout=subprocess.PIPE, stderr=self.stderr,
			start_new_session=True)
		self.reader = LineReader(self.proc.stdout.fileno())
		self.jid = None
		self.name = "slixmpp peer " + account.jid

	def wait_online(self, timeout=20):
		ev = self.wait_event(lambda e: e["event"] in ("online", "failed"),
			timeout)
		check(ev["event"] == "online", "slixmpp peer login failed: %s"
			% ev.get("reason"))
		self.jid = ev["jid"]
		return self

	def command(self, **cmd):
		self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
		self.proc.stdin.flush()

	def _next_event(self, timeout):
		line = self.reader.readline(timeout)
		if line is None:
			raise TestFailure("slixmpp peer exited (%s): %s" % (
				self.proc.poll(), tail(self.log_path, 15)))
		return json.loads(line)

	def stop(self):
		if self.proc.poll() is None:
			try:
				self.command(op="quit")
			except OSError:
				pass
			try:
				self.proc.wait(timeout=3)
			except subprocess.TimeoutExpired:
				stop_process(self.proc, timeout=3)
		self.stderr.close()


class IpcClient(EventQueue):
	"""A client of xmppd's control socket (JSON lines, DESIGN.md 4).
	Events that arrive while waiting for a reply are kept in .events."""

	def __init__(self, path, timeout=5, greeting=True, trace=None):
		self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
		self.sock.settimeout(timeout)
		self.sock.connect(path)
		self.reader = LineReader(self.sock.fileno())
		self.events = []
		self.name = "xmppd client"
		self.next_id = 1
		self.trace = trace  # trace(direction, line): "->" or "<-"
		self.greeting = self.read(timeout) if greeting else None
		if greeting:
			check(self.greeting.get("event") == "hello",
				"first line is not a hello greeting: %r" % self.greeting)

	def close(self):
		self.sock.close()

	def send_line(self, data):
		"""Writes data (bytes or str) as is, plus a newline."""
		if isinstance(data, str):
			data = data.encode()
		if self.trace:
			self.trace("->", data.decode("utf-8", "replace"))
		self.sock.sendall(data + b"\n")

	def read(self, timeout=10):
		"""The next JSON object from the daemon; fails at EOF."""
		line = self.reader.readline(timeout)
		check(line is not None, "control socket closed by xmppd")
		if self.trace:
			self.trace("<-", line.decode("utf-8", "replace"))
		try:
			obj = json.loads(line)
		except ValueError:
			raise TestFailure("xmppd wrote a line that is not JSON: %r"
				% line[:300])
		check(isinstance(obj, dict), "xmppd wrote a non-object: %r"
			% line[:300])
		return obj

	def next_reply(self, timeout=10):
		"""The next line that is not an event (a reply), keeping events."""
		deadline = time.monotonic() + timeout
		while True:
			obj = self.read(max(0.01, deadline - time.monotonic()))
			if "event" in obj and "ok" not in obj:
				self.events.append(obj)
				continue
			return obj

	def request(self, cmd, wait=10, **args):
		"""Sends {"cmd":cmd,"id":N,...args} and returns its reply."""
		rid = self.next_id
		self.next_id += 1
		req = {"cmd": cmd, "id": rid}
		req.update(args)
		self.send_line(json.dumps(req))
		reply = self.next_reply(wait)
		check(reply.get("id") == rid, "reply to %s has id %r, not %r: %r"
			% (cmd, reply.get("id"), rid, reply))
		check("ok" in reply, "reply without ok: %r" % reply)
		return reply

	def ok(self, cmd, wait=10, **args):
		"""request() that fails the test unless the reply is ok."""
		reply = self.request(cmd, wait, **args)
		check(reply["ok"] is True, "%s failed: %r" % (cmd, reply))
		return reply

	def _next_event(self, timeout):
		obj = self.read(timeout)
		check("event" in obj, "unexpected reply line: %r" % obj)
		return obj

	def wait_state(self, states, timeout=20):
		"""Waits until xmppd's state is one of states (this client must
		be subscribed to "state"); returns the status reply or the state
		event that showed it."""
		st = self.ok("status")
		if st.get("state") in states:
			return st
		return self.wait_event(lambda e: e.get("event") == "state"
			and e.get("state") in states, timeout,
			"state event %s (state now %r)" % ("/".join(states),
				st.get("state")))


class Xmppd:
	"""One xmppd process for an account, with its own directory, config
	file, log file and control socket."""

	def __init__(self, ws, binary, account, conf=None, run_as=None):
		self.ws = ws
		self.binary = binary
		self.account = account
		self.run_as = run_as
		self.dir = ws.mkdir("xmppd-" + account.user, 0o755)
		self.config = os.path.join(self.dir, "xmppd.conf")
		self.log = os.path.join(self.dir, "xmppd.log")
		self.socket_dir = os.path.join(self.dir, "run")
		self.socket = os.path.join(self.socket_dir, "xmppd.sock")
		self.proc = None
		sections = {
			"account": {"jid": account.jid,
				"password": account.password, "resource": "xmppd"},
			"server": {"host": account.server.host,
				"port": str(account.server.port), "tls": "starttls"},
			"control": {"socket": self.socket},
			"log": {"level": "debug", "xml": "yes"},
		}
		for sec, keys in (conf or {}).items():
			for k, v in keys.items():
				if v is None:
					sections.setdefault(sec, {}).pop(k, None)
				else:
					sections.setdefault(sec, {})[k] = str(v)
		with open(self.config, "w") as f:
			for sec, keys in sections.items():
				f.write("[%s]\n" % sec)
				for k, v in keys.items():
					f.write("%s = %s\n" % (k, v))
				f.write("\n")
		os.chmod(self.config, 0o600)
		if run_as is not None:
			ent = pwd.getpwnam(run_as)
			os.chown(self.dir, ent.pw_uid, ent.pw_gid)
			os.chown(self.config, ent.pw_uid, ent.pw_gid)
			os.chmod(self.dir, 0o700)

	def start(self, wait=True, timeout=10):
		cmd = [self.binary, "-c", self.config, "-v"]
		# XMPPD_WRAPPER="valgrind ..." runs xmppd under that command
		# (tools/valgrind); it starts slower, so the socket gets longer.
		wrapper = shlex.split(os.environ.get("XMPPD_WRAPPER", ""))
		if wrapper:
			cmd = wrapper + cmd
			timeout *= 6
		if self.run_as is not None:
			cmd = ["setpriv", "--reuid=" + self.run_as, "--regid=nogroup",
				"--clear-groups"] + cmd
		env = dict(os.environ, HOME=self.dir)
		env.pop("XDG_RUNTIME_DIR", None)
		with open(self.log, "ab") as err:
			self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
				stdout=err, stderr=err, cwd=self.dir, env=env,
				start_new_session=True)
		self.ws.defer(self.stop)
		if wait:
			self.wait_socket(timeout)
		return self

	def wait_socket(self, timeout=10):
		def ready():
			if self.proc.poll() is not None:
				raise TestFailure("xmppd exited with %s before its socket "
					"was ready" % self.proc.returncode)
			if not os.path.exists(self.socket):
				return False
			try:
				with socket.socket(socket.AF_UNIX) as s:
					s.connect(self.socket)
				return True
			except OSError:
				return False
		wait_until(ready, timeout, 0.02, "xmppd control socket")

	def client(self, timeout=5):
		return IpcClient(self.socket, timeout)

	def running(self):
		return self.proc is not None and self.proc.poll() is None

	def stop(self, timeout=10):
		"""SIGTERM (SIGKILL after timeout); returns (status, seconds)."""
		if self.proc is None:
			return None, 0.0
		if self.proc.poll() is not None:
			return self.proc.returncode, 0.0
		return stop_process(self.proc, timeout)

	def log_text(self):
		try:
			with open(self.log, "rb") as f:
				return f.read().decode("utf-8", "replace")
		except OSError:
			return ""


def proc_status(pid):
	"""The kB values of /proc/PID/status (VmRSS, VmHWM...), as ints."""
	out = {}
	with open("/proc/%d/status" % pid) as f:
		for line in f:
			k, _, v = line.partition(":")
			if v.strip().endswith("kB"):
				out[k] = int(v.split()[0])
	return out


def proc_fds(pid):
	"""How many descriptors pid holds."""
	return len(os.listdir("/proc/%d/fd" % pid))


def proc_cpu_seconds(pid):
	"""User plus system CPU time pid has used, in seconds."""
	with open("/proc/%d/stat" % pid) as f:
		fields = f.read().rsplit(") ", 1)[1].split()
	return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sanitized(pid):
	"""Whether pid runs with AddressSanitizer or under valgrind, whose
	allocators hold freed memory back (quarantine): memory bounds of a
	test are then looser."""
	try:
		with open("/proc/%d/maps" % pid) as f:
			maps = f.read()
	except OSError:
		return False
	return "libasan" in maps or "vgpreload" in maps


def under_valgrind(pid):
	"""Whether pid runs under valgrind (XMPPD_WRAPPER, tools/valgrind)."""
	try:
		with open("/proc/%d/maps" % pid) as f:
			return "vgpreload" in f.read()
	except OSError:
		return False


def rss_bound_kib(pid, kib):
	"""kib, or four times as much under a sanitizer (sanitized())."""
	return kib * 4 if sanitized(pid) else kib


class environ:
	"""os.environ with changes (a value of None removes the variable)
	while a with block runs, e.g. for what Xmppd.start() passes on."""

	def __init__(self, **changes):
		self.changes = changes
		self.saved = {}

	def __enter__(self):
		for k, v in self.changes.items():
			self.saved[k] = os.environ.get(k)
			if v is None:
				os.environ.pop(k, None)
			else:
				os.environ[k] = v
		return self

	def __exit__(self, *exc):
		for k, v in self.saved.items():
			if v is None:
				os.environ.pop(k, None)
			else:
				os.environ[k] = v
		return False


def small_quarantine():
	"""ASAN_OPTIONS for a process whose memory a test bounds: ASan keeps
	256 MiB of freed memory from reuse by default, which a busy test
	fills; 1 MiB keeps the peak about what it is without ASan. Other
	builds ignore the variable."""
	opts = os.environ.get("ASAN_OPTIONS", "")
	return (opts + ":" if opts else "") + "quarantine_size_mb=1"
