#!/usr/bin/python3
"""Integration test runner: real Prosody (and ejabberd) on loopback, the
real xmppd binary. Run with /usr/bin/python3 (slixmpp is Debian's).

    run.py --xmppd build/xmppd [-k SUBSTRING]... [--keep] [--list]
           [--server prosody|ejabberd]

--server ejabberd (or XMPPD_TEST_SERVER=ejabberd) runs the IM test
modules (IM_MODULES) against a private ejabberd instead of Prosody, each
test named with an "[ejabberd]" suffix; a test that needs Prosody itself
skips there (fixtures.only_on).

Prints "PASS name", "FAIL name: reason" (with the tail of the logs
involved) or "SKIP name: reason" per test, then "N passed, N failed" as
the last line; exits 1 if any test failed.
"""

import argparse
import importlib
import inspect
import os
import signal
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fixtures as F  # noqa: E402

TEST_TIMEOUT = 120
# The basics first; any other test_*.py follows alphabetically.
ORDER = ("test_session.py", "test_peer.py", "test_control.py",
	"test_auth.py", "test_sasl.py")
# The modules that run against either server (--server).
IM_MODULES = ("test_carbons.py", "test_disco.py", "test_extensions.py",
	"test_mam.py", "test_messages.py", "test_muc.py", "test_roster.py",
	"test_upload.py")
SERVERS = ("prosody", "ejabberd")


class Context:
	"""What a test gets: lazily started servers (one of each per run),
	fresh accounts, and xmppd/peer processes stopped after each test."""

	def __init__(self, ws, xmppd_bin, server_name="prosody"):
		self.ws = ws
		self.xmppd_bin = xmppd_bin
		self.server_name = server_name
		self._certs = None
		self._prosody = None
		self._ejabberd = None
		self._ejabberd_error = None
		self._owned = []

	@property
	def certs(self):
		if self._certs is None:
			self._certs = F.Certs(self.ws)
		return self._certs

	@property
	def prosody(self):
		if self._prosody is None:
			self._prosody = F.Prosody(self.ws, self.certs).start()
		return self._prosody

	@property
	def ejabberd(self):
		if self._ejabberd_error is not None:
			raise F.Skip(self._ejabberd_error)
		if self._ejabberd is None:
			try:
				e = F.Ejabberd(self.ws, self.certs)
				e.start()
				e.register("probe", "probe-password")
			except F.Skip as s:
				self._ejabberd_error = str(s)
				raise
			except Exception as ex:
				self._ejabberd_error = ("ejabberd could not be started: %s"
					% str(ex).strip().splitlines()[-1][:300])
				raise F.Skip(self._ejabberd_error)
			self._ejabberd = e
		return self._ejabberd

	@property
	def server(self):
		"""The server the run is against (--server): Prosody or
		ejabberd, started on first use."""
		if self.server_name == "ejabberd":
			return self.ejabberd
		return self.prosody

	def account(self, prefix, server=None):
		"""A fresh account on server (default: the run's server)."""
		return (server or self.server).new_account(prefix)

	def xmppd(self, account, conf=None, run_as=None, start=True,
			ca_file="test"):
		"""An xmppd for account, trusting the test CA unless ca_file says
		otherwise (None: no ca_file, "other": the unrelated CA)."""
		conf = dict(conf or {})
		server = dict(conf.get("server", {}))
		if "ca_file" not in server and ca_file is not None:
			server["ca_file"] = (self.certs.other_ca.cert if ca_file ==
				"other" else self.certs.ca.cert)
		conf["server"] = server
		x = F.Xmppd(self.ws, self.xmppd_bin, account, conf, run_as)
		self._owned.append(x)
		if start:
			x.start()
		return x

	def online(self, account, conf=None, events=("message", "presence",
			"state"), timeout=20):
		"""Starts xmppd for account and waits until it is online; returns
		(xmppd, a client subscribed to events)."""
		x = self.xmppd(account, conf)
		c = x.client()
		r = c.request("subscribe", events=list(events) + ["subscription"])
		if not r["ok"]:  # an xmppd without "subscription" events
			c.ok("subscribe", events=list(events))
		st = c.wait_state(("online", "auth-failed", "tls-failed"), timeout)
		F.check(st.get("state") == "online", "%s did not come online: %r"
			% (account.jid, st))
		return x, c

	def peer(self, account):
		"""A slixmpp client for account, logged in (trusting the test
		CA)."""
		p = F.Peer(account, self.certs.ca.cert,
			self.ws.path("peer-%s.log" % account.user))
		self._owned.append(p)
		return p.wait_online()

	def subscribed_pair(self, conf=None):
		"""alice and bob online in two xmppds, each subscribed to the
		other's presence (through the raw command). Returns
		((alice account, xmppd, client), (bob ...))."""
		a, b = self.account("alice"), self.account("bob")
		ax, ac = self.online(a, conf)
		bx, bc = self.online(b, conf)
		self.subscribe_both((ac, a.jid), (bc, b.jid))
		return (a, ax, ac), (b, bx, bc)

	def subscribe_both(self, one, other):
		"""Subscribes two accounts to each other's presence, each given
		as (client subscribed to presence, bare JID)."""
		(ac, aj), (bc, bj) = one, other
		for (c1, j1), (c2, j2) in (((ac, aj), (bc, bj)),
				((bc, bj), (ac, aj))):
			c1.ok("raw", xml="<presence to='%s' type='subscribe'/>" % j2)
			self._wait_request_seen(c1, j1, c2)
			c2.ok("raw", xml="<presence to='%s' type='subscribed'/>" % j1)
		# Once both directions are approved, each side receives the
		# other's current presence: proof that the subscription holds.
		for c, other in ((ac, bj), (bc, aj)):
			c.wait_event(lambda e: e.get("event") == "presence"
				and e.get("from", "").startswith(other + "/")
				and e.get("type") in (None, "available"), 10,
				"available presence of %s after subscribing" % other)

	@staticmethod
	def _wait_request_seen(requester, requester_jid, contact):
		"""Approving must not overtake the request on its way through
		the server: wait until the contact's xmppd reports the request,
		or else until an IQ round trip of the requester proves the
		server has processed it."""
		def is_request(e):
			return (e.get("event") in ("presence", "subscription")
				and e.get("from", "").split("/")[0] == requester_jid
				and "subscribe" in (e.get("type"), e.get("action")))
		try:
			contact.wait_event(is_request, 5, "subscription request")
		except F.TestFailure:
			requester.ok("iq", type="get",
				payload="<ping xmlns='urn:xmpp:ping'/>")

	def finish_test(self):
		"""Stops what the test started; returns their log files."""
		logs = []
		for o in reversed(self._owned):
			try:
				o.stop()
			except Exception as e:
				print("cleanup: %s" % e)
			logs.append(o.log if isinstance(o, F.Xmppd) else o.log_path)
		self._owned = []
		return logs


def collect(patterns, server_name="prosody"):
	"""(name, function) for every test_* function of every test_*.py
	module here (only IM_MODULES against ejabberd, their names
	suffixed "[ejabberd]"), in file and source order, filtered by -k."""
	here = os.path.dirname(os.path.abspath(__file__))
	files = [fn for fn in os.listdir(here)
		if fn.startswith("test_") and fn.endswith(".py")
		and (server_name == "prosody" or fn in IM_MODULES)]
	suffix = "" if server_name == "prosody" else "[%s]" % server_name
	first = {m: i for i, m in enumerate(ORDER)}
	files.sort(key=lambda fn: (first.get(fn, len(first)), fn))
	tests = []
	for fn in files:
		mod = importlib.import_module(fn[:-3])
		funcs = [(f.__code__.co_firstlineno, n, f) for n, f in
			inspect.getmembers(mod, inspect.isfunction)
			if n.startswith("test_") and f.__module__ == mod.__name__]
		for _, name, f in sorted(funcs):
			full = "%s.%s%s" % (fn[:-3], name, suffix)
			if not patterns or any(p in full for p in patterns):
				tests.append((full, f))
	return tests


def on_alarm(signum, frame):
	raise F.TestFailure("test took longer than %ds" % TEST_TIMEOUT)


def main():
	ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
	ap.add_argument("--xmppd", default=None, help="the xmppd binary")
	ap.add_argument("-k", action="append", default=[],
		help="run only tests whose name contains this (repeatable)")
	ap.add_argument("--keep", action="store_true",
		help="keep the temporary directory")
	ap.add_argument("--list", action="store_true", help="list tests")
	ap.add_argument("--server", choices=SERVERS,
		default=os.environ.get("XMPPD_TEST_SERVER") or "prosody",
		help="the server of the IM tests (default prosody, or "
		"$XMPPD_TEST_SERVER); ejabberd runs only the IM modules")
	args = ap.parse_args()
	tests = collect(args.k, args.server)
	if args.list:
		for name, _ in tests:
			print(name)
		return 0
	binary = args.xmppd
	if binary is None:
		here = os.path.dirname(os.path.abspath(__file__))
		binary = os.path.join(here, "..", "..", "build", "xmppd")
	binary = os.path.abspath(binary)
	if not os.access(binary, os.X_OK):
		print("no xmppd binary at %s (use --xmppd)" % binary)
		print("0 passed, 1 failed")
		return 1
	ws = F.Workspace(keep=args.keep)
	if args.keep:
		print("workspace: %s" % ws.root)
	ctx = Context(ws, binary, args.server)
	signal.signal(signal.SIGALRM, on_alarm)
	signal.signal(signal.SIGTERM, lambda s, f: sys.exit(1))
	passed = failed = skipped = 0
	started = time.monotonic()
	try:
		for name, fn in tests:
			t0 = time.monotonic()
			signal.alarm(TEST_TIMEOUT)
			try:
				fn(ctx)
				result, reason = "PASS", None
			except F.Skip as e:
				result, reason = "SKIP", str(e)
			except F.TestFailure as e:
				result, reason = "FAIL", str(e)
			except Exception as e:
				result = "FAIL"
				reason = "%s: %s\n%s" % (type(e).__name__, e,
					traceback.format_exc().rstrip())
			finally:
				signal.alarm(0)
			logs = ctx.finish_test()
			dt = time.monotonic() - t0
			if result == "PASS":
				passed += 1
				print("PASS %s (%.1fs)" % (name, dt))
			elif result == "SKIP":
				skipped += 1
				print("SKIP %s: %s" % (name, reason))
			else:
				failed += 1
				print("FAIL %s: %s" % (name, reason))
				for log in logs:
					print("---- tail of %s" % log)
					print(F.tail(log, 25))
				print("----")
			sys.stdout.flush()
	finally:
		ws.cleanup()
	print("%d skipped; %.0fs in all" % (skipped, time.monotonic() - started))
	print("%d passed, %d failed" % (passed, failed))
	return 1 if failed else 0


if __name__ == "__main__":
	sys.exit(main())
