"""A TCP proxy the test controls, for fault injection: it listens on a
free port of 127.0.0.1 and forwards each connection to an upstream
address (Prosody's c2s port), in one thread of the test process.

    p = Proxy(("127.0.0.1", prosody.port)).start()
    ... xmppd connects to 127.0.0.1:p.port ...
    p.cut()          # every current connection reset, both ways
    p.cut(drain=0.3) # ...once the server, no longer fed, has been
                     # quiet for 0.3 s
    p.blackhole()    # bytes stop flowing both ways, sockets stay open
    p.restore()      # ...and flow again (what was held is delivered)
    p.refuse(True)   # new connections are accepted and closed at once
    p.refuse(True, unlisten=True)  # or the port is closed: refused
    p.refuse(False)
    p.stop()

One selector loop does all I/O. Controls are handed to the loop through
a queue and a wake-up socket, and return once the loop has applied them,
so a test knows that after cut() returns every old connection is gone.
Buffers are bounded: a side whose buffer is full is not read until the
other side drained it (back-pressure, as TCP would do).
"""

import collections
import errno
import selectors
import socket
import struct
import threading
import time

BUF_MAX = 256 * 1024
CHUNK = 64 * 1024


def _server_rx_queues(server_port):
	"""{client port: bytes unread} of the sockets that listen on
	server_port's connections, from /proc/net/tcp ({} if unreadable)."""
	queues = {}
	try:
		with open("/proc/net/tcp") as f:
			lines = f.readlines()[1:]
	except OSError:
		return queues
	for line in lines:
		fields = line.split()
		if len(fields) < 5:
			continue
		local = int(fields[1].rsplit(":", 1)[1], 16)
		remote = int(fields[2].rsplit(":", 1)[1], 16)
		if local == server_port and fields[3] == "01":
			queues[remote] = int(fields[4].split(":")[1], 16)
	return queues


class _Conn:
	"""One proxied connection: the client socket, the upstream socket,
	and the bytes read from each and not yet written to the other."""

	def __init__(self, num, client, upstream):
		self.num = num
		self.client = client
		self.upstream = upstream
		self.connecting = True	# upstream connect() in progress
		self.to_up = bytearray()
		self.hold_up = False	# client not read: nothing more goes up
		self.hold_down = False	# server not read: nothing comes down
		self.last_down = time.monotonic()	# bytes last came from server
		self.counts = [0, 0, 0, 0]	# bytes in/out up, in/out down
		self.to_client = bytearray()
		self.opened = time.monotonic()

	def other(self, sock):
		return self.upstream if sock is self.client else self.client

	def outbuf(self, sock):
		"""The buffer of bytes waiting to be written to sock."""
		return self.to_up if sock is self.upstream else self.to_client


class Proxy:
	"""See the module docstring. Counters (read at any time):
	connections (accepted and forwarded), refused (accepted and closed
	by refuse()), active, bytes_up (client to server), bytes_down,
	accept_times (time.monotonic() of every accepted connection, the
	refused ones too, most recent 10,000)."""

	def __init__(self, upstream, name="proxy", log_path=None):
		self.upstream = upstream
		self.name = name
		self.log_path = log_path	# what happened, written at stop()
		self._notes = collections.deque(maxlen=5000)
		self._t0 = time.monotonic()
		self.port = None
		self.connections = 0
		self.refused = 0
		self.bytes_up = 0
		self.bytes_down = 0
		self.accept_times = collections.deque(maxlen=10000)
		self._conns = {}
		self._by_sock = {}
		self._listener = None
		self._sel = None
		self._wake_r = self._wake_w = None
		self._ops = collections.deque()
		self._ops_lock = threading.Lock()
		self._thread = None
		self._running = False
		self._holding = False	# black hole
		self._refusing = False
		self._unlisten = False
		self._next = 0
		self.error = None	# an exception that stopped the loop

	@property
	def active(self):
		return len(self._conns)

	def start(self):
		"""Binds the listener and starts the loop thread; returns self."""
		self._sel = selectors.DefaultSelector()
		self._wake_r, self._wake_w = socket.socketpair()
		self._wake_r.setblocking(False)
		self._wake_w.setblocking(False)
		self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
		self._listen(0)
		self._running = True
		self._thread = threading.Thread(target=self._loop,
			name=self.name, daemon=True)
		self._thread.start()
		return self

	def stop(self, timeout=5):
		"""Closes every connection and the listener, ends the thread."""
		if self._thread is None:
			return
		try:
			self._call(self._shutdown, timeout)
		except RuntimeError:
			pass
		self._thread.join(timeout)
		self._thread = None
		for s in (self._wake_r, self._wake_w):
			s.close()
		self._sel.close()
		if self.log_path is not None:
			with open(self.log_path, "a") as f:
				for line in list(self._notes):
					f.write(line + "\n")
				f.write("%s: %d connections, %d refused, %d bytes up, "
					"%d down\n" % (self.name, self.connections, self.refused,
					self.bytes_up, self.bytes_down))

	def _note(self, fmt, *args):
		self._notes.append("%8.3f %s" % (time.monotonic() - self._t0,
			fmt % args))

	# Controls: each runs in the loop thread; the caller waits for it.

	def cut(self, drain=0.0, upto=None, drain_max=15.0):
		"""Resets every current connection (or those numbered up to
		upto, see connections), both ways (RST, no FIN); returns how
		many. With drain, first stops reading from the clients, then
		waits until, for drain seconds (at most drain_max in all), the
		server has sent nothing and has had nothing left to read (the
		proxy's buffer, and the server socket's receive queue as
		/proc/net/tcp shows it, empty): a server that answers ack
		requests has then read and parsed all it got, and is at a
		stanza boundary when the reset comes. (Prosody 0.12.3 resumes a
		session into the old connection's XML parser, and a stanza cut
		in half there breaks the resumed stream.) Silence alone is not
		enough: a server busy on a loaded machine can spend longer than
		drain on a backlog without writing a byte."""
		if drain > 0:
			self._call(lambda: self._hold_up(upto))
			deadline = time.monotonic() + drain_max
			busy = time.monotonic()
			noted = False
			while time.monotonic() < deadline:
				unread = self._call(lambda: self._unread_up(upto))
				now = time.monotonic()
				last_down = self._call(lambda: self._last_down(upto))
				if unread:
					busy = now
					if now - last_down >= drain and not noted:
						noted = True
						self._call(lambda: self._note("drain: server "
							"quiet %.2fs with %d bytes unread",
							now - last_down, unread))
				since = max(busy, last_down)
				if now - since >= drain:
					break
				time.sleep(min(drain - (now - since), 0.05) + 0.01)
			else:
				self._call(lambda: self._note("drain: not quiet in %.0fs",
					drain_max))
		return self._call(lambda: self._cut_all(upto))

	def blackhole(self):
		"""Stops forwarding in both directions, sockets kept open; new
		connections are accepted but not connected upstream."""
		self._call(lambda: self._set_holding(True))

	def restore(self):
		"""Ends the black hole: held bytes flow again."""
		self._call(lambda: self._set_holding(False))

	def hold_down(self, on):
		"""on: the server's bytes are not read (they pile up in the
		kernel, up to its buffers) while the client's still go up;
		off: what piled up comes down in a burst."""
		self._call(lambda: self._set_hold_down(on))

	def refuse(self, on, unlisten=False):
		"""on: new connections are accepted and reset at once (counted
		in refused, timed in accept_times); with unlisten the listening
		socket is closed instead, so connecting fails with ECONNREFUSED.
		Existing connections are untouched (cut() them if need be).
		refuse(False) listens again on the same port."""
		self._call(lambda: self._set_refusing(on, unlisten))

	def _call(self, fn, timeout=5):
		if self._thread is None or not self._thread.is_alive():
			raise RuntimeError("%s is not running (%r)" % (self.name,
				self.error))
		done = threading.Event()
		box = []
		with self._ops_lock:
			self._ops.append((fn, done, box))
		try:
			self._wake_w.send(b"x")
		except BlockingIOError:
			pass  # the loop has wake-ups pending already
		if not done.wait(timeout):
			raise RuntimeError("%s did not answer within %ss" % (
				self.name, timeout))
		return box[0] if box else None

	# The loop thread.

	def _loop(self):
		try:
			while self._running:
				for key, mask in self._sel.select():
					if key.data == "wake":
						self._run_ops()
					elif key.data == "listen":
						self._accept()
					else:
						self._io(key.fileobj, key.data, mask)
		except Exception as e:  # reported through .error and _call
			self.error = e
			self._running = False
			self._close_everything()
			self._run_ops()

	def _run_ops(self):
		try:
			while self._wake_r.recv(4096):
				pass
		except (BlockingIOError, OSError):
			pass
		while True:
			with self._ops_lock:
				if not self._ops:
					return
				fn, done, box = self._ops.popleft()
			try:
				if self._running or fn == self._shutdown:
					box.append(fn())
			finally:
				done.set()

	def _listen(self, port):
		s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
		s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
		s.bind(("127.0.0.1", port))
		s.listen(64)
		s.setblocking(False)
		self.port = s.getsockname()[1]
		self._listener = s
		self._sel.register(s, selectors.EVENT_READ, "listen")

	def _unlisten_now(self):
		if self._listener is not None:
			self._sel.unregister(self._listener)
			self._listener.close()
			self._listener = None

	def _set_refusing(self, on, unlisten):
		self._note("refuse %s%s", on, " (not listening)" if on and unlisten
			else "")
		self._refusing = on
		if on and unlisten:
			self._unlisten_now()
		elif self._listener is None:
			self._listen(self.port)

	def _set_holding(self, on):
		self._note("black hole %s", "on" if on else "off")
		self._holding = on
		for c in list(self._conns.values()):
			if not on and c.upstream is None:
				self._connect_upstream(c)
			self._update(c)

	def _shutdown(self):
		self._running = False
		self._close_everything()
		return 0

	def _close_everything(self):
		for c in list(self._conns.values()):
			self._close(c, reset=True)
		try:
			self._unlisten_now()
		except Exception:
			pass

	def _chosen(self, upto):
		return [c for num, c in sorted(self._conns.items())
			if upto is None or num <= upto]

	def _last_down(self, upto):
		return max([c.last_down for c in self._chosen(upto)] or [0.0])

	def _unread_up(self, upto):
		"""Bytes on their way up that the server has not read yet: in
		the proxy's buffers, and in the server sockets' receive queues
		(found in /proc/net/tcp by the two ports)."""
		chosen = [c for c in self._chosen(upto) if c.upstream is not None
			and not c.connecting]
		pending = sum(len(c.to_up) for c in chosen)
		queues = _server_rx_queues(self.upstream[1])
		for c in chosen:
			try:
				port = c.upstream.getsockname()[1]
			except OSError:
				continue
			pending += queues.get(port, 0)
		return pending

	def _set_hold_down(self, on):
		self._note("hold down %s", "on" if on else "off")
		for c in self._conns.values():
			c.hold_down = on
			self._update(c)

	def _hold_up(self, upto):
		for c in self._chosen(upto):
			c.hold_up = True
			self._update(c)

	def _cut_all(self, upto=None):
		chosen = self._chosen(upto)
		self._note("cut %d connection(s): %s", len(chosen),
			[c.num for c in chosen])
		for c in chosen:
			self._close(c, reset=True)
		return len(chosen)

	def _accept(self):
		while True:
			try:
				s, _ = self._listener.accept()
			except (BlockingIOError, InterruptedError):
				return
			except OSError as e:
				if e.errno in (errno.EMFILE, errno.ENFILE, errno.ECONNABORTED):
					return
				raise
			self.accept_times.append(time.monotonic())
			if self._refusing:
				self._note("refused a connection")
				self.refused += 1
				_reset(s)
				continue
			s.setblocking(False)
			self._next += 1
			self.connections += 1
			c = _Conn(self._next, s, None)
			self._note("#%d accepted%s", c.num, " (held)" if self._holding
				else "")
			self._conns[c.num] = c
			self._by_sock[s] = c
			if not self._holding:
				self._connect_upstream(c)
			self._update(c)

	def _connect_upstream(self, c):
		u = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
		u.setblocking(False)
		err = u.connect_ex(self.upstream)
		if err not in (0, errno.EINPROGRESS):
			self._note("#%d upstream: %s", c.num, errno.errorcode.get(err, err))
			u.close()
			self._close(c, reset=True)
			return
		c.upstream = u
		c.connecting = True
		self._by_sock[u] = c

	def _update(self, c):
		"""(Re)registers both sockets of c for what they wait for."""
		if c.num not in self._conns:
			return
		for s in (c.client, c.upstream):
			if s is None:
				continue
			mask = 0
			if s is c.upstream and c.connecting:
				mask = selectors.EVENT_WRITE
			elif not self._holding:
				peer = c.other(s)
				peer_ready = peer is not None and not (peer is c.upstream
					and c.connecting)
				if (peer_ready and len(c.outbuf(peer)) < BUF_MAX
						and not (s is c.client and c.hold_up)
						and not (s is c.upstream and c.hold_down)):
					mask |= selectors.EVENT_READ
				if c.outbuf(s):
					mask |= selectors.EVENT_WRITE
			self._set_mask(s, mask, c)

	def _set_mask(self, s, mask, c):
		try:
			key = self._sel.get_key(s)
		except KeyError:
			key = None
		if mask == 0:
			if key is not None:
				self._sel.unregister(s)
		elif key is None:
			self._sel.register(s, mask, c)
		elif key.events != mask:
			self._sel.modify(s, mask, c)

	def _io(self, s, c, mask):
		if c.num not in self._conns:
			return
		if s is c.upstream and c.connecting:
			err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
			if err != 0:
				self._note("#%d upstream: %s", c.num,
					errno.errorcode.get(err, err))
				self._close(c, reset=True)
				return
			c.connecting = False
			self._update(c)
			return
		if self._holding:
			self._update(c)
			return
		if mask & selectors.EVENT_READ:
			try:
				data = s.recv(min(CHUNK, BUF_MAX - len(c.outbuf(c.other(s)))))
			except (BlockingIOError, InterruptedError):
				data = None
			except OSError as e:
				self._note("#%d %s: %s", c.num, "client" if s is c.client
					else "server", e)
				self._close(c, reset=True)
				return
			if data == b"":
				self._note("#%d closed by the %s", c.num, "client" if s is
					c.client else "server")
				# An orderly close on one side: pass it on once the
				# other side has its bytes (kept simple: close both).
				self._flush_and_close(c, c.other(s))
				return
			if data:
				c.outbuf(c.other(s)).extend(data)
				if s is c.client:
					self.bytes_up += len(data)
					c.counts[0] += len(data)
				else:
					self.bytes_down += len(data)
					c.counts[2] += len(data)
					c.last_down = time.monotonic()
		if mask & selectors.EVENT_WRITE and c.num in self._conns:
			buf = c.outbuf(s)
			if buf:
				try:
					n = s.send(buf)
				except (BlockingIOError, InterruptedError):
					n = 0
				except OSError:
					self._close(c, reset=True)
					return
				del buf[:n]
				c.counts[1 if s is c.upstream else 3] += n
		self._update(c)

	def _flush_and_close(self, c, s):
		"""Writes what is buffered for s (best effort, non-blocking),
		then closes the connection with FIN."""
		buf = c.outbuf(s)
		try:
			while buf:
				n = s.send(buf)
				del buf[:n]
				c.counts[1 if s is c.upstream else 3] += n
		except OSError:
			pass
		self._close(c, reset=False)

	def _close(self, c, reset):
		self._note("#%d %s: up %d read %d sent, down %d read %d sent",
			c.num, "reset" if reset else "closed", *c.counts)
		self._conns.pop(c.num, None)
		for s in (c.client, c.upstream):
			if s is None:
				continue
			self._by_sock.pop(s, None)
			try:
				self._sel.unregister(s)
			except (KeyError, ValueError):
				pass
			if reset:
				_reset(s)
			else:
				s.close()


def _reset(s):
	"""Closes s with an RST rather than a FIN."""
	try:
		s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
			struct.pack("ii", 1, 0))
	except OSError:
		pass
	s.close()
