"""A slixmpp client driven over stdin/stdout, the independent peer of the
integration tests. Run with /usr/bin/python3 (Debian's python3-slixmpp).

    peer.py JID PASSWORD HOST PORT CAFILE

Prints one JSON object per line: {"event":"online","jid":FULL} once logged
in, {"event":"message","from","to","type","body","id"} for each message,
{"event":"failed","reason"} on a failed login, and one reply per command.
Reads commands, one JSON object per line:
    {"op":"send","to","body","type"?}
    {"op":"disco","to"}  -> {"event":"disco","ok","identities":[[cat,type,name]],
	                            "features":[…]}
    {"op":"ping","to"}   -> {"event":"ping","ok","error"?}
    {"op":"iq","to","payload"} -> {"event":"iq","type","error"?} (a get)
    {"op":"quit"}
"""

import asyncio
import json
import logging
import sys
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout


def emit(obj):
	sys.stdout.write(json.dumps(obj) + "\n")
	sys.stdout.flush()


class Peer(slixmpp.ClientXMPP):
	def __init__(self, jid, password, cafile):
		super().__init__(jid, password)
		self.ca_certs = cafile
		self.register_plugin("xep_0030")
		self.register_plugin("xep_0199")
		self.add_event_handler("session_start", self.on_start)
		self.add_event_handler("message", self.on_message)
		self.add_event_handler("failed_all_auth", self.on_failed)
		self.add_event_handler("connection_failed", self.on_failed)

	async def on_start(self, _event):
		self.send_presence()
		await self.get_roster()
		emit({"event": "online", "jid": str(self.boundjid)})
		asyncio.ensure_future(self.commands())

	def on_message(self, msg):
		emit({"event": "message", "from": str(msg["from"]),
			"to": str(msg["to"]), "type": msg["type"],
			"body": msg["body"], "id": msg["id"]})

	def on_failed(self, why=None):
		emit({"event": "failed", "reason": str(why)})
		self.disconnect()
		asyncio.get_event_loop().call_later(1, sys.exit, 1)

	async def commands(self):
		loop = asyncio.get_event_loop()
		reader = asyncio.StreamReader(limit=1 << 20)
		await loop.connect_read_pipe(
			lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
		while True:
			line = await reader.readline()
			if not line:
				break
			cmd = json.loads(line)
			op = cmd.get("op")
			if op == "send":
				self.send_message(mto=cmd["to"], mbody=cmd["body"],
					mtype=cmd.get("type", "chat"))
				emit({"event": "sent"})
			elif op == "disco":
				await self.disco(cmd["to"])
			elif op == "iq":
				await self.raw_iq(cmd["to"], cmd["payload"])
			elif op == "ping":
				await self.ping(cmd["to"])
			elif op == "quit":
				break
		self.disconnect()
		await asyncio.sleep(0.5)
		loop.stop()

	async def disco(self, to):
		try:
			iq = await self["xep_0030"].get_info(jid=to, local=False,
				timeout=10)
			info = iq["disco_info"]
			emit({"event": "disco", "ok": True,
				"identities": [[i[0], i[1], i[3]]
					for i in info["identities"]],
				"features": sorted(info["features"])})
		except IqError as e:
			emit({"event": "disco", "ok": False,
				"error": e.iq["error"]["condition"]})
		except IqTimeout:
			emit({"event": "disco", "ok": False, "error": "timeout"})

	async def raw_iq(self, to, payload):
		iq = self.Iq(stype="get", sto=to)
		iq.append(ET.fromstring(payload))
		try:
			reply = await iq.send(timeout=10)
			emit({"event": "iq", "type": reply["type"]})
		except IqError as e:
			emit({"event": "iq", "type": e.iq["type"],
				"error": e.iq["error"]["condition"]})
		except IqTimeout:
			emit({"event": "iq", "type": None, "error": "timeout"})

	async def ping(self, to):
		try:
			await self["xep_0199"].send_ping(to, timeout=10)
			emit({"event": "ping", "ok": True})
		except IqError as e:
			emit({"event": "ping", "ok": False,
				"error": e.iq["error"]["condition"]})
		except IqTimeout:
			emit({"event": "ping", "ok": False, "error": "timeout"})


def main():
	jid, password, host, port, cafile = sys.argv[1:6]
	logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
	peer = Peer(jid, password, cafile)
	peer.connect(address=(host, int(port)))
	peer.loop.run_forever()


if __name__ == "__main__":
	main()
