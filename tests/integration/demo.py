#!/usr/bin/python3
"""The demo behind tools/demo: a throwaway Prosody on loopback, xmppd
online as alice and as bob, and a message round trip alice -> bob ->
alice through the control sockets, every JSON line shown. Everything is
stopped and removed at the end.

    demo.py --xmppd build/xmppd
"""

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fixtures as F  # noqa: E402


def show(who):
	def trace(direction, line):
		print("  %-5s %s %s" % (who, direction, line))
	return trace


def socat_send(x, to, body):
	"""What a shell script does: one request line through socat."""
	req = json.dumps({"cmd": "send", "id": 1, "to": to, "body": body})
	print("  $ echo '%s' \\\n      | socat -t 2 - UNIX-CONNECT:%s" % (req,
		x.socket))
	out = subprocess.run(["socat", "-t", "2", "-",
		"UNIX-CONNECT:" + x.socket], input=req + "\n", text=True,
		stdout=subprocess.PIPE, timeout=20, check=True).stdout
	for line in out.splitlines():
		print("  " + line)
	replies = [json.loads(ln) for ln in out.splitlines()]
	F.check(any(r.get("id") == 1 and r.get("ok") for r in replies),
		"send was not accepted: %s" % out)


def main():
	ap = argparse.ArgumentParser()
	ap.add_argument("--xmppd", required=True)
	args = ap.parse_args()
	ws = F.Workspace()
	xs = []
	try:
		print("* certificates and a private Prosody on 127.0.0.1")
		certs = F.Certs(ws)
		prosody = F.Prosody(ws, certs).start()
		print("  prosody listening on 127.0.0.1:%d (c2s)" % prosody.port)
		alice, bob = prosody.new_account("alice"), prosody.new_account("bob")
		clients = {}
		for acct in (alice, bob):
			x = F.Xmppd(ws, os.path.abspath(args.xmppd), acct, {"server":
				{"ca_file": certs.ca.cert}, "log": {"level": "info",
				"xml": "no"}})
			xs.append(x)
			print("* xmppd for %s (config %s)" % (acct.jid, x.config))
			with open(x.config) as f:
				for line in f:
					if line.startswith("password"):
						line = "password = ***\n"
					if line.strip():
						print("    " + line.rstrip())
			x.start()
			c = F.IpcClient(x.socket, trace=show(acct.user.split("_")[0]))
			c.ok("subscribe", events=["message", "state"])
			st = c.wait_state(("online", "auth-failed", "tls-failed"), 20)
			F.check(st.get("state") == "online", "not online: %r" % st)
			clients[acct.user] = c
		ac, bc = clients[alice.user], clients[bob.user]
		print("* alice -> bob, sent the way a script would")
		socat_send(xs[0], bob.jid, "Hello Bob, this is xmppd.")
		ev = bc.wait_event(lambda e: e.get("event") == "message", 10)
		print("* bob -> alice, a reply to %s" % ev["from"])
		socat_send(xs[1], ev["from"], "Hi Alice, got it.")
		ac.wait_event(lambda e: e.get("event") == "message", 10)
		print("* done: the message went round; cleaning up")
		return 0
	except Exception as e:
		print("demo failed: %s" % e)
		for x in xs:
			print("---- tail of %s" % x.log)
			print(F.tail(x.log, 20))
		return 1
	finally:
		for x in xs:
			x.stop()
		ws.cleanup()


if __name__ == "__main__":
	sys.exit(main())
