/*
 * The control socket: the listening socket, accepting with a peer uid
 * check, per-client line framing, write queues and orderly teardown.
 * client.h describes a client's lifetime and how output is queued.
 *
 * The listener is a plain socket watched with a uv_poll_t rather than a
 * uv_pipe_t, so the peer's credentials are checked before any libuv
 * handle exists, and accepting can pause after EMFILE/ENFILE (libuv has
 * no way to stop listening on a pipe without closing it).
 */
#define _GNU_SOURCE	/* struct ucred, accept4 */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/config.h"
#include "daemon/events.h"
#include "daemon/log.h"
#include "daemon/xmppd.h"
#include "ipc/client.h"
#include "ipc/cmd.h"
#include "ipc/commands.h"
#include "ipc/ipc.h"
#include "ipc/json.h"
#include "ipc/sink.h"
#include "proto/alloc.h"

#ifndef XMPPD_VERSION
#define XMPPD_VERSION "unknown"
#endif

#define DEFAULT_MAX_LINE (1024 * 1024)
#define DEFAULT_MAX_OUTPUT (4 * 1024 * 1024)
#define ACCEPT_BATCH 32
#define LISTEN_BACKLOG 64

static void client_close(struct ipc_client *c);
static void flush_cb(uv_prepare_t *p);
static void flush_client(struct ipc_client *c);
static void maybe_finish(struct ipc_client *c);
static void ipc_maybe_done(struct ipc *ipc);
static void update_behind(struct ipc_client *c);

/* ---- the socket's path and directory ---- */

/* $XDG_RUNTIME_DIR/xmppd/xmppd.sock, else /tmp/xmppd-UID/xmppd.sock. */
static char *default_path(void)
{
	const char *rt = getenv("XDG_RUNTIME_DIR");
	if (rt != NULL && rt[0] == '/') {
		return xasprintf("%s/xmppd/xmppd.sock", rt);
	}
	return xasprintf("/tmp/xmppd-%ju/xmppd.sock", (uintmax_t)geteuid());
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (slash == path) {
		return xstrdup("/");
	}
	return xstrndup(path, (size_t)(slash - path));
}

/* Creates dir 0700, or accepts an existing one only if it is a directory
 * of ours that nobody else can enter. */
static int ensure_dir(const char *dir, uid_t uid, char **cause)
{
	if (mkdir(dir, 0700) == 0) {
		if (chmod(dir, 0700) < 0) {
			*cause = xasprintf("cannot chmod %s: %s", dir, strerror(errno));
			return -1;
		}
		return 0;
	}
	if (errno != EEXIST) {
		*cause = xasprintf("cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	struct stat st;
	if (lstat(dir, &st) < 0) {
		*cause = xasprintf("cannot stat %s: %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		*cause = xasprintf("%s is not a directory", dir);
		return -1;
	}
	if (st.st_uid != uid) {
		*cause = xasprintf("%s belongs to uid %ju, not to us (uid %ju)", dir,
			(uintmax_t)st.st_uid, (uintmax_t)uid);
		return -1;
	}
	if ((st.st_mode & 077) != 0) {
		*cause = xasprintf("%s is open to group or others (mode %03o); "
			"it must be 0700", dir, (unsigned)(st.st_mode & 0777));
		return -1;
	}
	return 0;
}

static void fill_addr(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, strlen(path) + 1);
}

/* Refuses a live daemon's socket, removes a stale one (OpenSMTPD
 * control_create_socket). */
static int clear_old_socket(const char *path, char **cause)
{
	struct stat st;
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT) {
			return 0;
		}
		*cause = xasprintf("cannot stat %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		*cause = xasprintf("%s exists and is not a socket", path);
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*cause = xasprintf("socket: %s", strerror(errno));
		return -1;
	}
	struct sockaddr_un sa;
	fill_addr(&sa, path);
	int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	int err = errno;
	close(fd);
	if (rc == 0 || err == EAGAIN || err == EINPROGRESS) {
		*cause = xasprintf("another xmppd is running on %s", path);
		return -1;
	}
	if (err != ECONNREFUSED && err != ENOENT) {
		*cause = xasprintf("cannot check %s: %s", path, strerror(err));
		return -1;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		*cause = xasprintf("cannot remove stale %s: %s", path, strerror(errno));
		return -1;
	}
	log_info("removed the stale socket %s", path);
	return 0;
}

/* Binds and listens with a umask that leaves the socket 0600 (tmux
 * server_create_socket). */
static int listen_on(struct ipc *ipc, char **cause)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*cause = xasprintf("socket: %s", strerror(errno));
		return -1;
	}
	struct sockaddr_un sa;
	fill_addr(&sa, ipc->path);
	mode_t mask = umask(S_IXUSR | S_IRWXG | S_IRWXO);
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	int err = errno;
	umask(mask);
	if (rc < 0) {
		*cause = xasprintf("cannot bind %s: %s", ipc->path, strerror(err));
		goto err_socket;
	}
	struct stat st;
	if (listen(fd, LISTEN_BACKLOG) < 0 || stat(ipc->path, &st) < 0) {
		err = errno;
		*cause = xasprintf("cannot listen on %s: %s", ipc->path, strerror(err));
		unlink(ipc->path);
		goto err_socket;
	}
	ipc->dev = st.st_dev;
	ipc->ino = st.st_ino;
	ipc->fd = fd;
	return 0;

err_socket:
	close(fd);
	errno = err;
	return -1;
}

static int create_socket(struct ipc *ipc, char **cause)
{
	if (ipc->path[0] != '/') {
		*cause = xasprintf("socket path %s is not absolute", ipc->path);
		return -1;
	}
	if (strlen(ipc->path) >= sizeof(((struct sockaddr_un *)NULL)->sun_path)) {
		*cause = xasprintf("socket path %s is too long", ipc->path);
		return -1;
	}
	char *dir = dir_of(ipc->path);
	int rc = ensure_dir(dir, ipc->uid, cause);
	free(dir);
	if (rc < 0 || clear_old_socket(ipc->path, cause) < 0) {
		return -1;
	}
	return listen_on(ipc, cause);
}

/* Unlinks the socket unless it is no longer the one we bound. ino 0
 * (never a real inode) marks a socket handed to us, which is not ours
 * to remove: systemd keeps listening on it to start us again. */
static void unlink_socket(struct ipc *ipc)
{
	if (ipc->ino == 0) {
		return;
	}
	struct stat st;
	if (lstat(ipc->path, &st) == 0 && st.st_dev == ipc->dev &&
			st.st_ino == ipc->ino) {
		unlink(ipc->path);
	}
}

/* ---- output ---- */

static void schedule_flush(struct ipc_client *c)
{
	struct ipc *ipc = c->ipc;
	if (!ipc->freeing && !uv_is_active((uv_handle_t *)&ipc->flusher)) {
		uv_prepare_start(&ipc->flusher, flush_cb);
	}
}

static void drop_timeout_cb(uv_timer_t *t)
{
	client_close(t->data);
}

/* Too far behind: forget what it has not been sent, tell it so in a last
 * line, and close once that is written or the grace time is over. */
static void client_drop(struct ipc_client *c)
{
	struct ipc *ipc = c->ipc;
	log_warnx("ipc client %lu: more than %zu bytes unread, dropping it",
		c->id, ipc->max_output);
	c->dropping = true;
	update_behind(c);
	uv_read_stop((uv_stream_t *)&c->pipe);
	buf_reset(&c->out);
	json_t *ev = json_object();
	json_object_set_new(ev, "event", json_string("error"));
	json_object_set_new(ev, "condition", json_string("too-slow"));
	json_object_set_new(ev, "text", ipc_json_string("output not read "
		"fast enough; reconnect with since"));
	ipc_json_encode(ev, &c->out);
	json_decref(ev);
	uv_timer_start(&c->drop_timer, drop_timeout_cb, ipc->drop_grace_ms, 0);
	schedule_flush(c);
}

static size_t queued(struct ipc_client *c)
{
	return c->out.len + c->held +
		uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe);
}

static bool too_far_behind(struct ipc_client *c)
{
	return queued(c) > c->ipc->max_output;
}

/*
 * Back-pressure: a client with more unwritten bytes than its share of
 * BEHIND_TOTAL (within BEHIND_MIN and BEHIND_MAX) is behind until it is
 * down to a quarter of that; while any client is behind, the
 * session stops reading from the server (events_set_pressure), so a
 * burst waits in the server's socket instead of in our queues. A client
 * that does not catch up is still dropped at max_output: the session
 * reads again after a while whatever the pressure (session.c).
 */
#define BEHIND_TOTAL (1024 * 1024)	/* shared by all clients */
#define BEHIND_MIN (16 * 1024)
#define BEHIND_MAX (256 * 1024)

static size_t behind_high(const struct ipc *ipc)
{
	size_t high = BEHIND_TOTAL / (ipc->nclients ? ipc->nclients : 1);
	return high < BEHIND_MIN ? BEHIND_MIN : high > BEHIND_MAX ? BEHIND_MAX : high;
}

static void update_behind(struct ipc_client *c)
{
	size_t q = queued(c);
	size_t high = behind_high(c->ipc);
	bool behind = !c->closing && !c->dropping &&
		(c->behind ? q > high / 4 : q > high);
	if (behind == c->behind) {
		return;
	}
	c->behind = behind;
	c->ipc->nbehind += behind ? 1 : (size_t)-1;
	events_set_pressure(c->ipc->nbehind > 0);
}

void ipc_client_write(struct ipc_client *c, const char *data, size_t len)
{
	if (c->closing || c->dropping) {
		return;
	}
	buf_append(&c->out, data, len);
	if (too_far_behind(c)) {
		client_drop(c);
		return;
	}
	update_behind(c);
	schedule_flush(c);
}

static void write_cb(uv_write_t *req, int status)
{
	struct ipc_client *c = req->data;
	free(c->wbuf);
	c->wbuf = NULL;
	c->writing = false;
	if (c->closing) {
		return;
	}
	if (status < 0) {
		log_debug("ipc client %lu: write: %s", c->id, uv_strerror(status));
		client_close(c);
		return;
	}
	update_behind(c);
	if (c->out.len > 0) {
		schedule_flush(c);
		return;
	}
	maybe_finish(c);
}

/* Hands everything queued for c to one uv_write. */
static void flush_client(struct ipc_client *c)
{
	if (c->closing || c->writing || c->out.len == 0) {
		return;
	}
	size_t len;
	c->wbuf = buf_steal(&c->out, &len);
	uv_buf_t b = uv_buf_init(c->wbuf, (unsigned)len);
	c->wreq.data = c;
	int rc = uv_write(&c->wreq, (uv_stream_t *)&c->pipe, &b, 1, write_cb);
	if (rc < 0) {
		log_debug("ipc client %lu: write: %s", c->id, uv_strerror(rc));
		free(c->wbuf);
		c->wbuf = NULL;
		client_close(c);
		return;
	}
	c->writing = true;
}

/* Once per loop turn, before the loop waits (redis beforeSleep). */
static void flush_cb(uv_prepare_t *p)
{
	struct ipc *ipc = p->data;
	for (struct ipc_client *c = ipc->clients; c != NULL; c = c->next) {
		flush_client(c);
	}
	uv_prepare_stop(p);
}

/* ---- replies in request order ---- */

struct ipc_reply *ipc_client_reserve(struct ipc_client *c)
{
	struct ipc_reply *r = xcalloc(1, sizeof(*r));
	*c->replies_tail = r;
	c->replies_tail = &r->next;
	c->waiting++;
	return r;
}

static void release_replies(struct ipc_client *c)
{
	while (c->replies != NULL && c->replies->ready) {
		struct ipc_reply *r = c->replies;
		c->replies = r->next;
		if (c->replies == NULL) {
			c->replies_tail = &c->replies;
		}
		c->held -= r->len;
		ipc_client_write(c, r->line, r->len);
		free(r->line);
		free(r);
	}
	maybe_finish(c);
}

void ipc_client_fill(struct ipc_client *c, struct ipc_reply *slot, json_t *reply)
{
	struct buf b;
	buf_init(&b);
	if (!ipc_json_encode(reply, &b)) {
		json_t *err = ipc_json_error(json_object_get(reply, "id"),
			"internal-server-error", "the reply could not be encoded");
		ipc_json_encode(err, &b);
		json_decref(err);
	}
	json_decref(reply);
	if (log_tracing(TRACE_IPC)) {
		log_info("ipc client %lu -> %.*s", c->id, (int)b.len - 1, b.data);
	}
	slot->line = buf_steal(&b, &slot->len);
	slot->ready = true;
	c->waiting--;
	c->held += slot->len;
	if (c->closing || c->dropping) {
		return;
	}
	release_replies(c);
	if (!c->closing && !c->dropping && too_far_behind(c)) {
		client_drop(c);
	}
}

void ipc_client_reply(struct ipc_client *c, json_t *reply)
{
	ipc_client_fill(c, ipc_client_reserve(c), reply);
}

bool ipc_client_alive(const struct ipc_client *c)
{
	return !c->closing;
}

/* ---- client lifetime ---- */

void ipc_client_ref(struct ipc_client *c)
{
	c->refs++;
}

static void client_free(struct ipc_client *c)
{
	while (c->replies != NULL) {
		struct ipc_reply *r = c->replies;
		c->replies = r->next;
		free(r->line);
		free(r);
	}
	buf_finish(&c->in);
	buf_finish(&c->out);
	free(c->wbuf);
	free(c->from);
	free(c);
}

void ipc_client_unref(struct ipc_client *c)
{
	if (--c->refs == 0) {
		client_free(c);
	}
}

/* The last close callback: unlink c; ipc may be done with it. */
static void client_handle_closed(uv_handle_t *h)
{
	struct ipc_client *c = h->data;
	if (--c->handles > 0) {
		return;
	}
	struct ipc *ipc = c->ipc;
	if (c->prev != NULL) {
		c->prev->next = c->next;
	} else {
		ipc->clients = c->next;
	}
	if (c->next != NULL) {
		c->next->prev = c->prev;
	}
	ipc->nclients--;
	c->ipc = NULL;
	log_debug("ipc client %lu: closed", c->id);
	events_listeners_changed();
	ipc_client_unref(c);
	ipc_maybe_done(ipc);
}

static void client_close(struct ipc_client *c)
{
	if (c->closing) {
		return;
	}
	c->closing = true;
	update_behind(c);
	cmd_ext_closed(c);
	uv_close((uv_handle_t *)&c->pipe, client_handle_closed);
	uv_close((uv_handle_t *)&c->drop_timer, client_handle_closed);
}

/* Closes c once nothing more is owed to it: after a drop's last line,
 * or after EOF once its replies are written. */
static void maybe_finish(struct ipc_client *c)
{
	if (c->closing || c->writing || c->out.len > 0) {
		return;
	}
	if (c->dropping || (c->eof && c->replies == NULL)) {
		client_close(c);
	}
}

static void greet(struct ipc_client *c)
{
	struct xmppd *x = c->ipc->x;
	const char *jid = xmppd_jid(x);
	json_t *g = json_object();
	json_object_set_new(g, "event", json_string("hello"));
	json_object_set_new(g, "version", json_integer(IPC_PROTOCOL_VERSION));
	json_object_set_new(g, "daemon", json_string("xmppd " XMPPD_VERSION));
	json_object_set_new(g, "jid", jid ? ipc_json_string(jid) : json_null());
	json_object_set_new(g, "state",
		json_string(xmppd_state_name(xmppd_state(x))));
	json_object_set_new(g, "seq", json_integer((json_int_t)events_last_seq()));
	struct buf b;
	buf_init(&b);
	ipc_json_encode(g, &b);
	json_decref(g);
	ipc_client_write(c, b.data, b.len);
	buf_finish(&b);
}

/* ---- input ---- */

static bool blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') {
			return false;
		}
	}
	return true;
}

static void handle_line(struct ipc_client *c, const char *line, size_t len)
{
	if (blank(line, len)) {
		return;
	}
	if (log_tracing(TRACE_IPC)) {
		log_info("ipc client %lu <- %.*s", c->id,
			len > 1024 ? 1024 : (int)len, line);
	}
	json_t *err = NULL;
	json_t *req = ipc_json_parse(line, len, &err);
	if (req == NULL) {
		ipc_client_reply(c, err);
		return;
	}
	commands_run(c, req);
	json_decref(req);
}

static void line_too_long(struct ipc_client *c)
{
	ipc_client_reply(c, ipc_json_error(NULL, "line-too-long",
		"request line longer than %zu bytes", c->ipc->max_line));
	buf_reset(&c->in);
}

static bool reading(const struct ipc_client *c)
{
	return !c->closing && !c->dropping && !c->ipc->freeing;
}

/* Splits data into lines; a partial line waits in c->in, a line over
 * max_line is answered with line-too-long and skipped to its newline. */
static void client_feed(struct ipc_client *c, const char *data, size_t len)
{
	while (len > 0 && reading(c)) {
		const char *nl = memchr(data, '\n', len);
		size_t take = nl != NULL ? (size_t)(nl - data) : len;
		size_t used = nl != NULL ? take + 1 : len;
		if (c->skipping) {
			c->skipping = nl == NULL;
		} else if (c->in.len + take > c->ipc->max_line) {
			line_too_long(c);
			c->skipping = nl == NULL;
		} else if (nl == NULL) {
			buf_append(&c->in, data, len);
		} else if (c->in.len == 0) {
			handle_line(c, data, take);
		} else {
			buf_append(&c->in, data, take);
			handle_line(c, c->in.data, c->in.len);
			buf_reset(&c->in);
		}
		data += used;
		len -= used;
	}
}

/* The client will send nothing more: an unterminated last line still
 * counts, then c closes once its replies are out. */
static void client_eof(struct ipc_client *c)
{
	c->eof = true;
	uv_read_stop((uv_stream_t *)&c->pipe);
	if (!c->skipping && c->in.len > 0 && reading(c)) {
		handle_line(c, c->in.data, c->in.len);
	}
	buf_reset(&c->in);
	maybe_finish(c);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct ipc_client *c = h->data;
	b->base = c->ipc->readbuf;
	b->len = IPC_READ_BUF;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct ipc_client *c = s->data;
	if (nread == UV_EOF) {
		client_eof(c);
	} else if (nread < 0) {
		log_debug("ipc client %lu: read: %s", c->id, uv_strerror((int)nread));
		client_close(c);
	} else if (nread > 0) {
		client_feed(c, b->base, (size_t)nread);
	}
}

/* ---- accepting ---- */

static void client_new(struct ipc *ipc, int fd)
{
	struct ipc_client *c = xcalloc(1, sizeof(*c));
	c->ipc = ipc;
	c->id = ++ipc->next_id;
	c->refs = 1;
	buf_init(&c->in);
	buf_init(&c->out);
	c->replies_tail = &c->replies;
	uv_pipe_init(ipc->loop, &c->pipe, 0);
	uv_timer_init(ipc->loop, &c->drop_timer);
	c->pipe.data = c;
	c->drop_timer.data = c;
	c->handles = 2;
	c->next = ipc->clients;
	if (c->next != NULL) {
		c->next->prev = c;
	}
	ipc->clients = c;
	ipc->nclients++;

	int rc = uv_pipe_open(&c->pipe, fd);
	if (rc < 0) {
		log_warnx("ipc: cannot use a new connection: %s", uv_strerror(rc));
		close(fd);
		client_close(c);
		return;
	}
	log_debug("ipc client %lu: connected", c->id);
	greet(c);
	uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb);
}

/* A peer of another uid gets one line and is hung up on. */
static void refuse(struct ipc *ipc, int fd, uid_t uid)
{
	log_warnx("ipc: refused a connection from uid %ju", (uintmax_t)uid);
	json_t *r = ipc_json_error(NULL, "not-authorized",
		"uid %ju may not use this socket, only uid %ju", (uintmax_t)uid,
		(uintmax_t)ipc->uid);
	struct buf b;
	buf_init(&b);
	ipc_json_encode(r, &b);
	json_decref(r);
	if (send(fd, b.data, b.len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
		log_debug("ipc: refusal not sent: %s", strerror(errno));
	}
	buf_finish(&b);
	close(fd);
}

static void admit(struct ipc *ipc, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		log_warn("ipc: SO_PEERCRED");
		close(fd);
		return;
	}
	if (cred.uid != ipc->uid) {
		refuse(ipc, fd, cred.uid);
		return;
	}
	client_new(ipc, fd);
}

static void accept_resume_cb(uv_timer_t *t);
static void accept_cb(uv_poll_t *h, int status, int events);

/* Out of descriptors: stop accepting for a while instead of spinning on
 * a listener that stays readable (tmux server_accept). */
static void accept_pause(struct ipc *ipc)
{
	ipc->accept_failures++;
	ipc->accept_paused = true;
	log_warn("ipc: accept; pausing for %u ms", ipc->accept_pause_ms);
	uv_poll_stop(&ipc->listener);
	uv_timer_start(&ipc->accept_timer, accept_resume_cb, ipc->accept_pause_ms, 0);
}

static void accept_resume_cb(uv_timer_t *t)
{
	struct ipc *ipc = t->data;
	ipc->accept_paused = false;
	uv_poll_start(&ipc->listener, UV_READABLE, accept_cb);
}

/* Whether to go on accepting after accept failed with err. */
static bool accept_failed(struct ipc *ipc, int err)
{
	switch (err) {
	case EINTR:
	case ECONNABORTED:
		return true;
	case EAGAIN:
		return false;
	case EMFILE:
	case ENFILE:
	case ENOBUFS:
	case ENOMEM:
		accept_pause(ipc);
		return false;
	default:
		log_warnx("ipc: accept: %s", strerror(err));
		return false;
	}
}

static void accept_cb(uv_poll_t *h, int status, int events)
{
	struct ipc *ipc = h->data;
	if (status < 0) {
		log_warnx("ipc: listener: %s", uv_strerror(status));
		return;
	}
	for (int i = 0; i < ACCEPT_BATCH && !ipc->freeing; i++) {
		int fd = accept4(ipc->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			admit(ipc, fd);
		} else if (!accept_failed(ipc, errno)) {
			return;
		}
	}
}

/* ---- the whole ---- */

static void ipc_handle_closed(uv_handle_t *h)
{
	struct ipc *ipc = h->data;
	if (h == (uv_handle_t *)&ipc->listener) {
		close(ipc->fd);
		ipc->fd = -1;
	}
	ipc->handles--;
	ipc_maybe_done(ipc);
}

/* Frees ipc once ipc_free was called and every handle has closed. */
static void ipc_maybe_done(struct ipc *ipc)
{
	if (!ipc->freeing || ipc->handles > 0 || ipc->clients != NULL) {
		return;
	}
	sink_finish(&ipc->sink);
	free(ipc->path);
	free(ipc->readbuf);
	free(ipc);
}

static void init_handles(struct ipc *ipc)
{
	uv_poll_init(ipc->loop, &ipc->listener, ipc->fd);
	uv_timer_init(ipc->loop, &ipc->accept_timer);
	uv_prepare_init(ipc->loop, &ipc->flusher);
	ipc->listener.data = ipc;
	ipc->accept_timer.data = ipc;
	ipc->flusher.data = ipc;
	ipc->handles = 3;
}

static struct ipc *ipc_alloc(uv_loop_t *loop, struct xmppd *x,
	const struct config *cfg)
{
	struct ipc *ipc = xcalloc(1, sizeof(*ipc));
	ipc->readbuf = xmalloc(IPC_READ_BUF);
	ipc->loop = loop;
	ipc->x = x;
	ipc->fd = -1;
	ipc->uid = geteuid();
	ipc->max_line = cfg->max_line ? cfg->max_line : DEFAULT_MAX_LINE;
	ipc->max_output = cfg->max_output ? cfg->max_output : DEFAULT_MAX_OUTPUT;
	ipc->accept_pause_ms = 1000;
	ipc->drop_grace_ms = 2000;
	return ipc;
}

/* ipc->fd listens: watch it and plug the sink in. */
static void ipc_start(struct ipc *ipc)
{
	/* A client that hangs up while we write must not kill the daemon. */
	signal(SIGPIPE, SIG_IGN);
	init_handles(ipc);
	uv_poll_start(&ipc->listener, UV_READABLE, accept_cb);
	sink_init(&ipc->sink, events_last_seq(), ipc->max_output);
	sink_attach(ipc);
}

struct ipc *ipc_new(uv_loop_t *loop, struct xmppd *x, const struct config *cfg,
	char **cause)
{
	struct ipc *ipc = ipc_alloc(loop, x, cfg);
	ipc->path = cfg->socket != NULL ? xstrdup(cfg->socket) : default_path();
	if (create_socket(ipc, cause) < 0) {
		free(ipc->path);
		free(ipc->readbuf);
		free(ipc);
		return NULL;
	}
	ipc_start(ipc);
	return ipc;
}

static int sockopt(int fd, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, name, &v, &len) < 0) {
		return -1;
	}
	return v;
}

/* Whether fd listens as an AF_UNIX stream socket; *cause says why not. */
static bool listening_unix(int fd, char **cause)
{
	if (sockopt(fd, SO_DOMAIN) != AF_UNIX || sockopt(fd, SO_TYPE) != SOCK_STREAM) {
		*cause = xasprintf("descriptor %d is not an AF_UNIX stream socket", fd);
		return false;
	}
	if (sockopt(fd, SO_ACCEPTCONN) != 1) {
		*cause = xasprintf("socket %d is not listening", fd);
		return false;
	}
	return true;
}

/* The path fd is bound to, "@name" for an abstract one. */
static char *bound_path(int fd)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	memset(&sa, 0, sizeof(sa));
	size_t off = offsetof(struct sockaddr_un, sun_path);
	if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0 || len <= off) {
		return xstrdup("(unnamed socket)");
	}
	size_t n = len - off;
	if (sa.sun_path[0] == '\0') {
		return xasprintf("@%.*s", (int)(n - 1), sa.sun_path + 1);
	}
	return xstrndup(sa.sun_path, strnlen(sa.sun_path, n));
}

struct ipc *ipc_new_from_fd(uv_loop_t *loop, struct xmppd *x,
	const struct config *cfg, int fd, char **cause)
{
	if (!listening_unix(fd, cause)) {
		return NULL;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
			fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		*cause = xasprintf("socket %d: fcntl: %s", fd, strerror(errno));
		return NULL;
	}
	struct ipc *ipc = ipc_alloc(loop, x, cfg);
	ipc->path = bound_path(fd);
	ipc->fd = fd;
	ipc->dev = 0;
	ipc->ino = 0;	/* not ours to unlink */
	ipc_start(ipc);
	return ipc;
}

const char *ipc_path(const struct ipc *ipc)
{
	return ipc->path;
}

/* What the socket takes at once of c's queue, for ipc_free: the daemon
 * is stopping and there is no later loop turn to count on. */
static void flush_now(struct ipc_client *c)
{
	/* While an earlier write still has bytes to go, uv_try_write says
	 * UV_EAGAIN rather than overtake it. */
	if (c->closing || c->out.len == 0) {
		return;
	}
	uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
	int n = uv_try_write((uv_stream_t *)&c->pipe, &b, 1);
	if (n < 0 || (size_t)n < c->out.len) {
		log_debug("ipc client %lu: %zu bytes unsent at exit", c->id,
			n < 0 ? c->out.len : c->out.len - (size_t)n);
	}
}

/* Every handle is closing when this returns, each with its own callback,
 * so a caller may uv_walk the loop and close whatever else is open. */
void ipc_free(struct ipc *ipc)
{
	if (ipc == NULL || ipc->freeing) {
		return;
	}
	ipc->freeing = true;
	sink_detach(ipc);
	unlink_socket(ipc);
	uv_close((uv_handle_t *)&ipc->listener, ipc_handle_closed);
	uv_close((uv_handle_t *)&ipc->accept_timer, ipc_handle_closed);
	uv_close((uv_handle_t *)&ipc->flusher, ipc_handle_closed);
	for (struct ipc_client *c = ipc->clients; c != NULL; c = c->next) {
		flush_now(c);
		client_close(c);
	}
}
