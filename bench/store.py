#!/usr/bin/python3
"""The durable store's cost: sends per second accepted through the
control socket with the store ([store] enabled = yes, each ok after its
commit) and without it (enabled = no), and the database size per
100,000 messages.

No server is needed: xmppd is pointed at a closed port on loopback, so
it stays offline and every accepted message waits in the outbox (and,
with the store, in the database: its outbox row and its message log
row). Two ways of sending:

  pipelined   one client writes N send requests as fast as it can while
              a second thread reads the replies (a bulk script)
  sequential  one request, wait for its reply, the next (xmppctl send in
              a loop, minus the process start)

    /usr/bin/python3 bench/store.py --xmppd build/xmppd [-n 100000]
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time


def free_port():
	with socket.socket() as s:
		s.bind(("127.0.0.1", 0))
		return s.getsockname()[1]


def write_config(d, enabled, n, fsync=True):
	path = os.path.join(d, "xmppd.conf")
	with open(path, "w") as f:
		f.write("""[account]
jid = bench@localhost
password = unused

[server]
host = 127.0.0.1
port = %d
reconnect_max = 300

[control]
socket = %s/xmppd.sock

[log]
level = warn

[delivery]
queue = %d
max_age = 0

[store]
path = %s/bench.db
enabled = %s
fsync = %s
""" % (free_port(), d, n + 10, d, "yes" if enabled else "no",
			"yes" if fsync else "no"))
	os.chmod(path, 0o600)
	return path


def start(binary, d, conf):
	env = dict(os.environ, HOME=d)
	proc = subprocess.Popen([binary, "-c", conf], stdout=subprocess.DEVNULL,
		stderr=open(os.path.join(d, "xmppd.log"), "ab"), env=env)
	sock = os.path.join(d, "xmppd.sock")
	for _ in range(500):
		if os.path.exists(sock):
			try:
				s = socket.socket(socket.AF_UNIX)
				s.connect(sock)
				s.makefile("rb").readline()  # hello
				return proc, s
			except OSError:
				pass
		time.sleep(0.01)
	proc.kill()
	sys.exit("xmppd did not start; see %s/xmppd.log" % d)


def request(i, prefix):
	return (json.dumps({"cmd": "send", "id": i, "to": "peer@localhost",
		"body": "%s message number %06d, about fifty bytes" % (prefix, i)})
		+ "\n").encode()


def pipelined(s, n):
	f = s.makefile("rb")
	got = [0, 0]

	def read():
		for _ in range(n):
			r = json.loads(f.readline())
			got[0 if r.get("ok") else 1] += 1
	t = threading.Thread(target=read)
	t0 = time.monotonic()
	t.start()
	batch = []
	for i in range(n):
		batch.append(request(i, "p"))
		if len(batch) == 64:
			s.sendall(b"".join(batch))
			batch = []
	s.sendall(b"".join(batch))
	t.join()
	return time.monotonic() - t0, got


def sequential(s, n):
	f = s.makefile("rb")
	got = [0, 0]
	t0 = time.monotonic()
	for i in range(n):
		s.sendall(request(i, "s"))
		r = json.loads(f.readline())
		got[0 if r.get("ok") else 1] += 1
	return time.monotonic() - t0, got


def db_bytes(d):
	total = 0
	for name in ("bench.db", "bench.db-wal"):
		try:
			total += os.path.getsize(os.path.join(d, name))
		except OSError:
			pass
	return total


def run(binary, enabled, fsync, n, seq_n, keep):
	d = tempfile.mkdtemp(prefix="xmppd-bench-store-")
	try:
		conf = write_config(d, enabled, n + seq_n, fsync)
		proc, s = start(binary, d, conf)
		secs, got = pipelined(s, n)
		size = db_bytes(d)
		s2 = socket.socket(socket.AF_UNIX)
		s2.connect(os.path.join(d, "xmppd.sock"))
		s2.makefile("rb").readline()
		ssecs, sgot = sequential(s2, seq_n)
		proc.terminate()
		proc.wait(30)
		return {"pipelined": n / secs, "ok": got[0], "refused": got[1],
			"sequential": seq_n / ssecs, "seq_ok": sgot[0],
			"size": size, "size_after": db_bytes(d)}
	finally:
		if keep:
			print("kept", d)
		else:
			shutil.rmtree(d, ignore_errors=True)


def main():
	ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
	ap.add_argument("--xmppd", default="build/xmppd")
	ap.add_argument("-n", type=int, default=100000,
		help="pipelined sends (default 100000)")
	ap.add_argument("--sequential", type=int, default=2000,
		help="sequential sends (default 2000)")
	ap.add_argument("--keep", action="store_true")
	a = ap.parse_args()
	print("%d pipelined sends, %d sequential, xmppd offline (outbox only)"
		% (a.n, a.sequential))
	print("%-22s %14s %14s %s" % ("", "pipelined/s", "sequential/s",
		"database"))
	for enabled, fsync, label in ((False, False, "store off (memory)"),
			(True, True, "store on, fsync = yes"),
			(True, False, "store on, fsync = no")):
		r = run(a.xmppd, enabled, fsync, a.n, a.sequential, a.keep)
		size = ("%.1f MB (%.1f MB per 100,000)" % (r["size"] / 1e6,
			r["size"] / 1e6 * 100000 / a.n)) if enabled else "-"
		print("%-22s %14.0f %14.0f %s" % (label, r["pipelined"],
			r["sequential"], size))
		if r["refused"] or r["ok"] != a.n or r["seq_ok"] != a.sequential:
			print("  (%d refused!)" % (r["refused"] + a.sequential -
				r["seq_ok"]))


if __name__ == "__main__":
	main()
