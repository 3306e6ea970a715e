"""The control socket: who may connect, and how bad requests are answered
while the daemon carries on."""

import json
import os
import socket
import stat
import subprocess

from fixtures import PYTHON, IpcClient, Skip, TestFailure, check


def test_socket_modes(ctx):
	a = ctx.account("alice")
	x = ctx.xmppd(a)
	d = os.stat(x.socket_dir)
	s = os.stat(x.socket)
	check(stat.S_ISSOCK(s.st_mode), "%s is not a socket" % x.socket)
	check(stat.S_IMODE(s.st_mode) == 0o600, "socket mode %o, not 600"
		% stat.S_IMODE(s.st_mode))
	check(stat.S_IMODE(d.st_mode) == 0o700, "socket directory mode %o, "
		"not 700" % stat.S_IMODE(d.st_mode))


# Run as the daemon's own user: connect and print the first line.
PEEK = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
print(s.makefile("rb").readline().decode().strip())
"""


def test_other_uid_refused(ctx):
	if os.geteuid() != 0:
		raise Skip("needs root to run xmppd as another user (nobody)")
	a = ctx.account("alice")
	x = ctx.xmppd(a, run_as="nobody")
	c = IpcClient(x.socket, timeout=5, greeting=False)
	try:
		c.send_line('{"cmd":"status","id":1}')
	except OSError:
		pass  # already closed on us
	lines = []
	try:
		while True:
			line = c.reader.readline(3)
			if line is None:
				break
			lines.append(line)
	except TestFailure:
		raise TestFailure("connection from root (uid 0) was left open by "
			"xmppd running as nobody; it sent %r" % lines)
	except OSError:
		pass  # reset: refused
	for line in lines:
		check(b'"hello"' not in line and b'"ok":true' not in line
			and b'"ok": true' not in line,
			"a client of another uid was served: %r" % line)
	check(x.running(), "xmppd exited after refusing a client")
	# The owner itself is served: the refusal was about the uid.
	r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup",
		"--clear-groups", PYTHON, "-c", PEEK, x.socket],
		stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
		timeout=20)
	check(r.returncode == 0 and '"hello"' in r.stdout,
		"the owner (nobody) got no greeting: %r" % r.stdout[-500:])


def test_unknown_command(ctx):
	a = ctx.account("alice")
	x = ctx.xmppd(a)
	c = x.client()
	r = c.request("sned", body="x")
	check(r["ok"] is False, "unknown command accepted: %r" % r)
	check(r.get("error", {}).get("condition") == "unknown-command",
		"condition %r, not unknown-command" % r.get("error"))
	check(isinstance(r["error"].get("text"), str), "error without text")
	c.send_line('{"cmd":"sned","id":{"a":[1,"b"]}}')
	r = c.next_reply()
	check(r.get("id") == {"a": [1, "b"]}, "id not echoed verbatim: %r" % r)
	check(c.ok("status")["state"], "status after unknown command")


def test_invalid_json(ctx):
	a = ctx.account("alice")
	x = ctx.xmppd(a)
	c = x.client()
	for bad in ('{"cmd": "status", ', "not json at all", "[1, 2]", '"str"',
			"{\"cmd\": \"status\"} trailing", '{"id": 5}', '{"cmd": 7}',
			b'{"cmd":"status","x":"\xff\xfe"}'):
		c.send_line(bad)
		r = c.next_reply()
		check(r.get("ok") is False, "%r got %r" % (bad, r))
		cond = r.get("error", {}).get("condition")
		check(cond in ("bad-request", "unknown-command")
			if bad == '{"cmd": 7}' else cond == "bad-request",
			"%r: condition %r, not bad-request" % (bad, cond))
	check(c.ok("status")["state"], "status after invalid JSON")


def test_line_too_long(ctx):
	a = ctx.account("alice")
	x = ctx.xmppd(a)
	bystander = x.client()
	c = x.client()
	body = "a" * ((1 << 20) + 4096)
	line = json.dumps({"cmd": "send", "id": 1, "to": a.jid, "body": body})
	try:
		c.send_line(line)
	except OSError:
		pass  # the daemon may stop reading or hang up once it answered
	r = c.next_reply(10)
	check(r.get("ok") is False, "an over-long line got %r" % r)
	check(r.get("error", {}).get("condition") == "line-too-long",
		"condition %r, not line-too-long" % r.get("error"))
	# The client may go on or may have been disconnected; the daemon and
	# its other clients carry on in any case.
	try:
		c.send_line('{"cmd":"status","id":2}')
		r = c.next_reply(5)
		check(r.get("id") == 2 and r.get("ok") is True,
			"after line-too-long: %r" % r)
	except OSError:
		pass
	except TestFailure as e:
		if "closed" not in str(e):
			raise
	check(x.running(), "xmppd exited")
	check(bystander.ok("status")["state"], "bystander after line-too-long")
	check(x.client().ok("status")["state"], "new client after line-too-long")


def test_quit_command(ctx):
	a = ctx.account("alice")
	x, c = ctx.online(a)
	c.ok("quit")
	try:
		rc = x.proc.wait(timeout=5)
	except subprocess.TimeoutExpired:
		raise TestFailure("xmppd still running 5s after quit")
	check(rc == 0, "exit status %r after quit" % rc)
	check(not os.path.exists(x.socket), "socket left behind after quit")
	try:
		with socket.socket(socket.AF_UNIX) as s:
			s.connect(x.socket)
		raise TestFailure("something still listens on the socket")
	except OSError:
		pass
