#!/usr/bin/python3
"""Connection benchmarks of xmppd on loopback against a private Prosody
(the integration-test fixtures): cold connect, stream resumption after a
cut connection, and what the fault tests lost or duplicated. Prints a
table. Not a test: nothing here passes or fails. See bench/README.

    /usr/bin/python3 bench/connect.py --xmppd BUILD/xmppd [-n 20]
        [--no-nagle] [--faults | --results FILE] [--keep]
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
IT = os.path.join(HERE, "..", "tests", "integration")
sys.path.insert(0, IT)

import fixtures as F  # noqa: E402
from proxy import Proxy  # noqa: E402


def stamped_until(client, pred, timeout, what):
	"""Reads lines from client until pred(obj); returns (arrival time,
	obj). Lines before it are dropped."""
	deadline = time.monotonic() + timeout
	while True:
		left = deadline - time.monotonic()
		if left <= 0:
			raise F.TestFailure("no %s within %.0fs" % (what, timeout))
		try:
			obj = client.read(left)
		except F.ReadTimeout:
			continue
		t = time.monotonic()
		if pred(obj):
			return t, obj


def state_is(*names):
	return lambda o: o.get("event") == "state" and o.get("state") in names


def command(client, cmd, **args):
	"""Sends a request without waiting; returns the send time."""
	client.next_id += 1
	req = {"cmd": cmd, "id": "bench-%d" % client.next_id}
	req.update(args)
	t = time.monotonic()
	client.send_line(json.dumps(req))
	return t


def start_xmppd(ws, binary, certs, account, conf):
	conf = dict(conf)
	server = dict(conf.get("server", {}))
	server.setdefault("ca_file", certs.ca.cert)
	conf["server"] = server
	conf.setdefault("log", {"level": "info", "xml": "no"})
	x = F.Xmppd(ws, binary, account, conf).start()
	c = x.client()
	c.ok("subscribe", events=["state"])
	if c.ok("status").get("state") != "online":
		stamped_until(c, state_is("online"), 20, "online")
	return x, c


def bench_cold(ws, binary, certs, prosody, n):
	"""reconnect command -> state online, stream management off: TCP,
	STARTTLS, SCRAM, bind, initial presence. Returns (from the command,
	from the "connecting" event) in seconds."""
	a = prosody.new_account("cold")
	x, c = start_xmppd(ws, binary, certs, a,
		{"server": {"stream_management": "no"}})
	total, proto = [], []
	for _ in range(n):
		t0 = command(c, "reconnect")
		t1, _ = stamped_until(c, state_is("connecting"), 10, "connecting")
		t2, ev = stamped_until(c, state_is("online", "resumed",
			"auth-failed", "tls-failed"), 20, "online")
		F.check(ev["state"] == "online", "cold connect gave %r" % ev)
		total.append(t2 - t0)
		proto.append(t2 - t1)
	x.stop()
	return total, proto


def bench_resume(ws, binary, certs, prosody, n, manual):
	"""Proxy cut -> state resumed. manual: a reconnect command right after
	the cut (no backoff wait); else the daemon's own retry, with
	reconnect_max = 1 (a wait of 0.5-1 s is part of the figure)."""
	proxy = Proxy((prosody.host, prosody.port)).start()
	try:
		a = prosody.new_account("resume")
		x, c = start_xmppd(ws, binary, certs, a, {"server": {
			"host": "127.0.0.1", "port": proxy.port, "reconnect_max": 1}})
		times = []
		for _ in range(n):
			t0 = time.monotonic()
			F.check(proxy.cut() == 1, "nothing to cut")
			if manual:
				command(c, "reconnect")
			t1, ev = stamped_until(c, state_is("online", "resumed",
				"auth-failed", "tls-failed"), 20, "resumed")
			F.check(ev["state"] == "resumed", "after a cut: %r" % ev)
			times.append(t1 - t0)
		x.stop()
		return times
	finally:
		proxy.stop()


def run_fault_tests(binary, results):
	"""Runs the fault tests with XMPPD_FAULT_RESULTS=results."""
	env = dict(os.environ, XMPPD_FAULT_RESULTS=results)
	r = subprocess.run([F.PYTHON, os.path.join(IT, "run.py"), "--xmppd",
		binary, "-k", "test_faults"], env=env, stdout=subprocess.PIPE,
		stderr=subprocess.STDOUT, text=True, timeout=1800)
	lines = r.stdout.strip().splitlines()
	return lines[-1] if lines else "(no output)"


def pct(values, p):
	"""Nearest-rank percentile."""
	s = sorted(values)
	return s[max(0, math.ceil(p / 100.0 * len(s)) - 1)]


def ms(v):
	return "%.1f ms" % (v * 1000)


def print_timings(rows):
	print("%-46s %4s %10s %10s %10s %10s" % ("measure", "n", "median",
		"p90", "min", "max"))
	for name, v in rows:
		print("%-46s %4d %10s %10s %10s %10s" % (name, len(v),
			ms(pct(v, 50)), ms(pct(v, 90)), ms(min(v)), ms(max(v))))


def print_faults(path):
	try:
		with open(path) as f:
			recs = [json.loads(line) for line in f if line.strip()]
	except OSError as e:
		print("no fault results: %s" % e)
		return
	print("%-24s %6s %8s %6s %10s %8s %6s %7s" % ("fault run", "sent",
		"received", "lost", "duplicated", "in order", "acked", "expired"))
	for r in recs:
		print("%-24s %6d %8d %6d %10d %8s %6d %7d" % (r["test"], r["sent"],
			r["received"], r["lost"], r["duplicated"],
			"yes" if r["in_order"] else "NO", r["acked"], r["expired"]))


def main():
	ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
	ap.add_argument("--xmppd", required=True, help="the xmppd binary")
	ap.add_argument("-n", type=int, default=20, help="repetitions")
	g = ap.add_mutually_exclusive_group()
	g.add_argument("--faults", action="store_true",
		help="also run the fault tests (about 2 minutes) and count "
		"lost and duplicated messages")
	g.add_argument("--results", help="read fault-test results from this "
		"file (XMPPD_FAULT_RESULTS of an earlier run)")
	ap.add_argument("--no-nagle", action="store_true",
		help="run Prosody with network_settings = { nagle = false } "
		"(its default leaves Nagle on, which costs one delayed ACK, "
		"about 40 ms, per login on loopback)")
	ap.add_argument("--keep", action="store_true",
		help="keep the temporary directory")
	args = ap.parse_args()
	binary = os.path.abspath(args.xmppd)
	ws = F.Workspace(keep=args.keep)
	try:
		certs = F.Certs(ws)
		prosody = F.Prosody(ws, certs, "network_settings = { nagle = false }"
			if args.no_nagle else "").start()
		cold, cold_proto = bench_cold(ws, binary, certs, prosody, args.n)
		manual = bench_resume(ws, binary, certs, prosody, args.n, True)
		auto = bench_resume(ws, binary, certs, prosody, args.n, False)
	finally:
		ws.cleanup()
	print("xmppd %s, Prosody on loopback (Nagle %s), %d runs each" % (
		binary, "off" if args.no_nagle else "on", args.n))
	print()
	print_timings([
		("cold connect: reconnect cmd -> online", cold),
		("cold connect: connecting -> online", cold_proto),
		("resume: cut + reconnect cmd -> resumed", manual),
		("resume: cut -> resumed (own retry, max 1 s)", auto),
	])
	results = args.results
	if args.faults:
		fd, results = tempfile.mkstemp(prefix="xmppd-faults-",
			suffix=".jsonl")
		os.close(fd)
		print()
		print("fault tests: %s" % run_fault_tests(binary, results))
	if results:
		print()
		print_faults(results)
		if args.faults:
			os.unlink(results)
	return 0


if __name__ == "__main__":
	sys.exit(main())
