#!/usr/bin/python3
"""Opening the store: how long xmppd takes from exec to ready (the
control socket's greeting, which comes after the store is open, as
systemd's READY=1 does) with a message log of N rows, and how long the
schema 2 -> 3 migration takes.

The databases are written by this script through the schema (Python's
sqlite3): realistic rows, four in five inbound from one of 200 contacts
with a stanza-id (XEP-0359) and an origin key, one in five outbound,
bodies of 20-200 bytes, event lines as xmppd writes them. They are
made once per size in the work directory (--dir, kept) and copied
before each run, so every run opens the same file. The page cache is
warm (the copy was just written): a cold start after a reboot reads
the file from the disk as well.

xmppd is pointed at a closed port on loopback (it stays offline).
Each figure is the median of --reps runs: wall-clock milliseconds from
exec to the greeting, and the CPU seconds of the whole process (start,
greeting, SIGTERM).

    /usr/bin/python3 bench/storeopen.py --xmppd build/xmppd \\
        [--sizes 10000,100000,1000000] [--migrate 100000,1000000]
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

SCHEMA1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE outbox (id INTEGER PRIMARY KEY, msg_id TEXT NOT NULL,
 recipient TEXT NOT NULL, stanza TEXT NOT NULL, accepted INTEGER NOT NULL);
"""
SCHEMA2 = SCHEMA1 + """
CREATE TABLE messages (seq INTEGER NOT NULL, outbound INTEGER NOT NULL,
 sender TEXT, peer TEXT, type TEXT, stanza_id TEXT, origin_key TEXT,
 msg_id TEXT, time INTEGER NOT NULL, event TEXT NOT NULL);
CREATE INDEX messages_seq ON messages (seq);
CREATE INDEX messages_peer ON messages (peer, seq);
CREATE INDEX messages_stanza_id ON messages (stanza_id)
 WHERE stanza_id IS NOT NULL;
CREATE INDEX messages_origin ON messages (origin_key)
 WHERE origin_key IS NOT NULL;
PRAGMA user_version = 2;
"""
SCHEMA3 = SCHEMA1 + """
CREATE TABLE messages (seq INTEGER PRIMARY KEY, outbound INTEGER NOT NULL,
 sender TEXT, peer TEXT, type TEXT, stanza_id TEXT, origin_key TEXT,
 msg_id TEXT, time INTEGER NOT NULL, event TEXT NOT NULL);
CREATE INDEX messages_peer ON messages (peer);
CREATE INDEX messages_stanza_id ON messages (stanza_id)
 WHERE stanza_id IS NOT NULL;
CREATE INDEX messages_origin ON messages (origin_key)
 WHERE origin_key IS NOT NULL;
PRAGMA user_version = 3;
"""

ME = "me@example.org"
WORDS = ("the quick brown fox jumps over a lazy dog and then some more "
	"words about lunch tomorrow at noon ok see you there").split()


def rows(n, schema):
	"""n log rows over the last 300 days (schema 2: an outbound row
	shares the seq of the event before it)."""
	rnd = random.Random(n)
	now = int(time.time() * 1000)
	t0 = now - 300 * 86400 * 1000
	seq = 0
	for i in range(n):
		t = t0 + (now - t0) * i // n
		peer = "contact%03d@example.net" % rnd.randrange(200)
		body = " ".join(rnd.choice(WORDS) for _ in range(rnd.randrange(4, 40)))
		body = body.replace('"', "")
		mid = "%016x" % rnd.getrandbits(64)
		if rnd.random() < 0.8:
			seq += 1
			sid = "%032x" % rnd.getrandbits(128)
			ev = ('{"event":"message","seq":%d,"from":"%s/phone","to":"%s/xmppd",'
				'"type":"chat","id":"%s","stanza_id":"%s","time":%d,"body":"%s"}'
				% (seq, peer, ME, mid, sid, t // 1000, body))
			yield (seq, 0, peer, peer, "chat", sid, "%s o %s" % (peer, mid),
				mid, t, ev)
		else:
			if schema == 3 or seq == 0:
				seq += 1
			ev = ('{"seq":%d,"event":"sent","to":"%s","type":"chat","id":"%s",'
				'"body":"%s"}' % (seq, peer, mid, body))
			yield (seq, 1, ME, peer, "chat", None, None, mid, t, ev)


def make_db(path, n, schema):
	if os.path.exists(path):
		return
	tmp = path + ".tmp"
	for f in (tmp, tmp + "-wal", tmp + "-shm"):
		if os.path.exists(f):
			os.unlink(f)
	db = sqlite3.connect(tmp)
	db.executescript(SCHEMA2 if schema == 2 else SCHEMA3)
	with db:
		db.executemany("INSERT INTO messages VALUES (?,?,?,?,?,?,?,?,?,?)",
			rows(n, schema))
		db.execute("INSERT INTO meta VALUES ('seq_reserved', ?)", (n + 10,))
	db.execute("PRAGMA journal_mode = WAL")
	db.close()
	os.rename(tmp, path)


def free_port():
	with socket.socket() as s:
		s.bind(("127.0.0.1", 0))
		return s.getsockname()[1]


def write_config(d, db):
	path = os.path.join(d, "xmppd.conf")
	with open(path, "w") as f:
		f.write("[account]\njid = %s\npassword = unused\n\n"
			"[server]\nhost = 127.0.0.1\nport = %d\nreconnect_max = 300\n\n"
			"[control]\nsocket = %s/xmppd.sock\n\n[log]\nlevel = warn\n\n"
			"[store]\npath = %s\n" % (ME, free_port(), d, db))
	os.chmod(path, 0o600)
	return path


def one_run(binary, d, src):
	"""Copies src, starts xmppd on it: (ms to the greeting, CPU s)."""
	db = os.path.join(d, "run.db")
	for f in (db, db + "-wal", db + "-shm"):
		if os.path.exists(f):
			os.unlink(f)
	shutil.copyfile(src, db)
	os.chmod(db, 0o600)
	conf = write_config(d, db)
	sock = os.path.join(d, "xmppd.sock")
	if os.path.exists(sock):
		os.unlink(sock)
	env = dict(os.environ, HOME=d)
	t0 = time.monotonic()
	proc = subprocess.Popen([binary, "-c", conf], stdout=subprocess.DEVNULL,
		stderr=open(os.path.join(d, "xmppd.log"), "ab"), env=env)
	ms = None
	deadline = t0 + 600
	while time.monotonic() < deadline and proc.poll() is None:
		try:
			s = socket.socket(socket.AF_UNIX)
			s.connect(sock)
			f = s.makefile("rwb")
			f.readline()
			ms = (time.monotonic() - t0) * 1000
			f.write(b'{"cmd":"status","id":1}\n')
			f.flush()
			reply = json.loads(f.readline())
			s.close()
			if not reply.get("store", {}).get("ok"):
				sys.exit("the store failed: %r; see %s/xmppd.log" % (reply, d))
			break
		except OSError:
			s.close()
			time.sleep(0.0005)
	proc.send_signal(signal.SIGTERM)
	_, status, ru = os.wait4(proc.pid, 0)
	proc.returncode = status
	if ms is None:
		sys.exit("xmppd did not start; see %s/xmppd.log" % d)
	return ms, ru.ru_utime + ru.ru_stime


def measure(binary, d, src, reps):
	runs = [one_run(binary, d, src) for _ in range(reps)]
	return (statistics.median(r[0] for r in runs),
		statistics.median(r[1] for r in runs))


def mib(path):
	return os.path.getsize(path) / 2**20


def main():
	ap = argparse.ArgumentParser()
	ap.add_argument("--xmppd", default="build/xmppd")
	ap.add_argument("--sizes", default="0,10000,100000,1000000")
	ap.add_argument("--migrate", default="100000,1000000")
	ap.add_argument("--reps", type=int, default=5)
	ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(),
		"xmppd-storeopen"))
	a = ap.parse_args()
	binary = os.path.abspath(a.xmppd)
	os.makedirs(a.dir, exist_ok=True)
	work = tempfile.mkdtemp(prefix="storeopen-")
	try:
		print("%-10s %-7s %10s %12s %10s" % ("rows", "schema", "file MiB",
			"to ready ms", "CPU s"))
		for n in (int(x) for x in a.sizes.split(",") if x):
			src = os.path.join(a.dir, "s3-%d.db" % n)
			make_db(src, n, 3)
			ms, cpu = measure(binary, work, src, a.reps)
			print("%-10d %-7s %10.1f %12.1f %10.3f" % (n, "3", mib(src), ms,
				cpu), flush=True)
		for n in (int(x) for x in a.migrate.split(",") if x):
			src = os.path.join(a.dir, "s2-%d.db" % n)
			make_db(src, n, 2)
			ms, cpu = measure(binary, work, src, max(1, a.reps // 2))
			print("%-10d %-7s %10.1f %12.1f %10.3f" % (n, "2->3", mib(src),
				ms, cpu), flush=True)
	finally:
		shutil.rmtree(work)


if __name__ == "__main__":
	main()
