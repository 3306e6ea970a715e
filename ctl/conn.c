/*
 * A blocking client of the control socket. Reads go through one buffer:
 * bytes [start, end) are not consumed yet, a line handed out is consumed
 * by the next read, and the buffer is compacted only when it must grow, so
 * a burst of short lines costs no copying per line. Every wait has a
 * deadline on the monotonic clock (or none, for listen), and the buffer
 * never holds more than one line of CONN_MAX_LINE bytes plus a read.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl/conn.h"
#include "proto/alloc.h"

#define READ_CHUNK (64u << 10)

char *conn_socket_path(const char *opt)
{
	if (opt != NULL) {
		return xstrdup(opt);
	}
	const char *env = getenv("XMPPD_SOCKET");
	if (env != NULL && env[0] != '\0') {
		return xstrdup(env);
	}
	const char *rt = getenv("XDG_RUNTIME_DIR");
	if (rt != NULL && rt[0] == '/') {
		return xasprintf("%s/xmppd/xmppd.sock", rt);
	}
	return xasprintf("/tmp/xmppd-%ju/xmppd.sock", (uintmax_t)geteuid());
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long conn_deadline(long long ms)
{
	return ms < 0 ? -1 : now_ms() + ms;
}

/* Milliseconds left for poll(): -1 without a deadline, 0 once past it. */
static int left_ms(long long deadline)
{
	if (deadline < 0) {
		return -1;
	}
	long long left = deadline - now_ms();
	if (left <= 0) {
		return 0;
	}
	return left > INT32_MAX ? INT32_MAX : (int)left;
}

/* Waits until fd is ready for events; CONN_OK, or CONN_TIMEOUT. */
static int wait_fd(int fd, short events, long long deadline, char **cause)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		int n = poll(&p, 1, left_ms(deadline));
		if (n > 0) {
			return CONN_OK;
		}
		if (n == 0) {
			*cause = xstrdup("timed out waiting for xmppd");
			return CONN_TIMEOUT;
		}
		if (errno != EINTR) {
			*cause = xasprintf("poll: %s", strerror(errno));
			return CONN_FAILED;
		}
	}
}

/* Makes room for one more read, compacting before growing. */
static void make_room(struct conn *c)
{
	if (c->start > 0) {
		memmove(c->buf, c->buf + c->start, c->end - c->start);
		c->end -= c->start;
		c->start = 0;
	}
	if (c->cap - c->end < READ_CHUNK) {
		c->buf = xgrow(c->buf, &c->cap, c->end + READ_CHUNK, 1);
	}
}

/* Reads what the socket has, waiting for it until deadline. */
static int fill(struct conn *c, long long deadline, char **cause)
{
	int rc = wait_fd(c->fd, POLLIN, deadline, cause);
	if (rc != CONN_OK) {
		return rc;
	}
	make_room(c);
	for (;;) {
		ssize_t n = read(c->fd, c->buf + c->end, c->cap - c->end);
		if (n > 0) {
			c->end += (size_t)n;
			return CONN_OK;
		}
		if (n == 0) {
			c->eof = true;
			return CONN_OK;
		}
		if (errno == EINTR) {
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			return CONN_OK;
		}
		c->eof = true;	/* a reset ends the connection like a close */
		return CONN_OK;
	}
}

static bool is_blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') {
			return false;
		}
	}
	return true;
}

char *conn_describe_error(const json_t *err)
{
	const char *cond = json_string_value(json_object_get(err, "condition"));
	const char *text = json_string_value(json_object_get(err, "text"));
	if (cond == NULL) {
		cond = "undefined-condition";
	}
	if (text == NULL || text[0] == '\0' || strcmp(text, cond) == 0) {
		return xstrdup(cond);
	}
	return xasprintf("%s: %s", cond, text);
}

/* Decodes one line; CONN_OK with an object, or why not. */
static int decode(const char *line, size_t len, json_t **obj, char **cause)
{
	json_error_t jerr;
	json_t *o = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
	if (o == NULL || !json_is_object(o)) {
		json_decref(o);
		*cause = xasprintf("xmppd sent a line that is not a JSON object"
			" (%s)", o == NULL ? jerr.text : "another JSON value");
		return CONN_FAILED;
	}
	const char *ev = json_string_value(json_object_get(o, "event"));
	if (ev != NULL && strcmp(ev, "error") == 0
			&& json_object_get(o, "ok") == NULL) {
		*cause = conn_describe_error(o);
		json_decref(o);
		return CONN_GONE;
	}
	*obj = o;
	return CONN_OK;
}

/* The next complete line in the buffer, if there is one. */
static bool next_line(struct conn *c, const char **line, size_t *len)
{
	char *s = c->buf + c->start;
	size_t avail = c->end - c->start;
	char *nl = avail > 0 ? memchr(s, '\n', avail) : NULL;
	if (nl == NULL) {
		if (!c->eof || avail == 0) {
			return false;
		}
		nl = s + avail;	/* a last line without its newline */
	}
	*line = s;
	*len = (size_t)(nl - s);
	c->start += *len + (nl < c->buf + c->end ? 1 : 0);
	return true;
}

int conn_read(struct conn *c, long long deadline, json_t **obj,
	const char **line, size_t *len, char **cause)
{
	for (;;) {
		if (next_line(c, line, len)) {
			if (*len > CONN_MAX_LINE) {
				break;
			}
			if (is_blank(*line, *len)) {
				continue;
			}
			return decode(*line, *len, obj, cause);
		}
		if (c->end - c->start > CONN_MAX_LINE) {
			break;
		}
		if (c->eof) {
			*cause = xstrdup("xmppd closed the connection");
			return CONN_GONE;
		}
		int rc = fill(c, deadline, cause);
		if (rc != CONN_OK) {
			return rc;
		}
	}
	*cause = xasprintf("xmppd sent a line longer than %u bytes",
		CONN_MAX_LINE);
	return CONN_FAILED;
}

int conn_send(struct conn *c, const json_t *req, long long deadline,
	char **cause)
{
	char *text = json_dumps(req, JSON_COMPACT);
	if (text == NULL) {
		*cause = xstrdup("cannot encode the request as JSON");
		return CONN_FAILED;
	}
	size_t len = strlen(text);
	char *line = xmalloc(len + 1);
	memcpy(line, text, len);
	line[len++] = '\n';
	free(text);
	int rc = CONN_OK;
	for (size_t off = 0; off < len && rc == CONN_OK;) {
		rc = wait_fd(c->fd, POLLOUT, deadline, cause);
		if (rc != CONN_OK) {
			break;
		}
		ssize_t n = send(c->fd, line + off, len - off,
			MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n >= 0) {
			off += (size_t)n;
		} else if (errno != EINTR && errno != EAGAIN
				&& errno != EWOULDBLOCK) {
			*cause = xasprintf("xmppd closed the connection (%s)",
				strerror(errno));
			rc = CONN_GONE;
		}
	}
	free(line);
	return rc;
}

/* The error a line holds: a failed reply's, or an "error" event. */
static const json_t *error_in(const json_t *o)
{
	const char *ev = json_string_value(json_object_get(o, "event"));
	if (ev != NULL && strcmp(ev, "error") == 0) {
		return o;
	}
	if (json_object_get(o, "ok") == json_false()) {
		return json_object_get(o, "error");
	}
	return NULL;
}

/* After a write found the connection closed: the daemon's last line may
 * still wait to be read, and say why (too slow, not authorized). */
static void last_words(struct conn *c, char **cause)
{
	while (!c->eof && c->end - c->start <= CONN_MAX_LINE) {
		char *why = NULL;
		int rc = fill(c, conn_deadline(0), &why);
		free(why);
		if (rc != CONN_OK) {
			break;
		}
	}
	const char *line;
	size_t len;
	while (next_line(c, &line, &len)) {
		json_t *o = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
		const json_t *err = error_in(o);
		if (err != NULL) {
			free(*cause);
			*cause = conn_describe_error(err);
		}
		json_decref(o);
	}
}

/* Is o the reply awaited: want is its id, or NULL for the first reply. */
static bool is_reply(const json_t *o, const json_t *want)
{
	if (json_object_get(o, "ok") == NULL) {
		return false;
	}
	return want == NULL || json_equal(json_object_get(o, "id"), want);
}

int conn_request(struct conn *c, json_t *req, long long deadline,
	conn_event_cb cb, void *ud, json_t **reply, char **cause)
{
	json_t *want = NULL;
	if (json_object_get(req, "id") == NULL) {
		want = json_integer(c->next_id++);
		json_object_set(req, "id", want);
	}
	int rc = conn_send(c, req, deadline, cause);
	if (rc == CONN_GONE) {
		last_words(c, cause);
	}
	while (rc == CONN_OK) {
		json_t *o;
		const char *line;
		size_t len;
		rc = conn_read(c, deadline, &o, &line, &len, cause);
		if (rc != CONN_OK) {
			break;
		}
		if (is_reply(o, want)) {
			*reply = o;
			break;
		}
		if (json_object_get(o, "event") != NULL && cb != NULL) {
			cb(ud, o, line, len);
		}
		json_decref(o);
	}
	json_decref(want);
	return rc;
}

/* Checks the greeting: a hello of our protocol, or the daemon's refusal. */
static int check_hello(struct conn *c, const char *path, char **cause)
{
	json_t *h = c->hello;
	if (json_object_get(h, "ok") == json_false()) {
		*cause = conn_describe_error(json_object_get(h, "error"));
		return CONN_GONE;
	}
	const char *ev = json_string_value(json_object_get(h, "event"));
	if (ev == NULL || strcmp(ev, "hello") != 0) {
		*cause = xasprintf("%s did not greet like xmppd", path);
		return CONN_FAILED;
	}
	json_int_t v = json_integer_value(json_object_get(h, "version"));
	if (v != CONN_PROTOCOL) {
		*cause = xasprintf("xmppd speaks protocol version %" JSON_INTEGER_FORMAT
			", xmppctl version %d", v, CONN_PROTOCOL);
		return CONN_FAILED;
	}
	return CONN_OK;
}

static int connect_to(struct conn *c, const char *path, char **cause)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		*cause = xasprintf("socket path %s is too long", path);
		return CONN_GONE;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		*cause = xasprintf("socket: %s", strerror(errno));
		return CONN_GONE;
	}
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		*cause = xasprintf("cannot connect to %s: %s (is xmppd running?)",
			path, strerror(errno));
		return CONN_GONE;
	}
	return CONN_OK;
}

int conn_open(struct conn *c, const char *path, long long deadline,
	char **cause)
{
	*c = (struct conn){ .fd = -1, .next_id = 1 };
	int rc = connect_to(c, path, cause);
	if (rc != CONN_OK) {
		return rc;
	}
	const char *line;
	size_t len;
	rc = conn_read(c, deadline, &c->hello, &line, &len, cause);
	if (rc != CONN_OK) {
		return rc;
	}
	return check_hello(c, path, cause);
}

void conn_close(struct conn *c)
{
	if (c->fd >= 0) {
		close(c->fd);
	}
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
	c->start = c->end = c->cap = 0;
	json_decref(c->hello);
	c->hello = NULL;
}
