/*
 * The client side of xmppd's control socket (xmppd-ipc(7)) for xmppctl: a
 * blocking connection that reads the greeting, frames JSON lines both ways
 * with a bound on their length, and matches a request with its reply while
 * handing the events that come before it to a callback.
 */
#ifndef XMPPD_CTL_CONN_H
#define XMPPD_CTL_CONN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define CONN_PROTOCOL 1			/* the greeting's version we speak */
#define CONN_MAX_LINE (64u << 20)	/* longest line accepted from xmppd */

enum conn_status {
	CONN_OK = 0,
	CONN_FAILED = -1,	/* a line that breaks the protocol */
	CONN_GONE = -2,		/* not reachable, or the connection was closed */
	CONN_TIMEOUT = -3,	/* nothing came before the deadline */
};

struct conn {
	int fd;
	char *buf;		/* bytes read: [start, end) are not consumed */
	size_t start;
	size_t end;
	size_t cap;
	bool eof;
	json_t *hello;		/* the greeting */
	json_int_t next_id;
};

/* Gets each event that arrives while a reply is awaited; line (len bytes,
 * no newline) is the event as xmppd wrote it, valid during the call. */
typedef void (*conn_event_cb)(void *ud, json_t *event, const char *line,
	size_t len);

/*
 * The socket to use, a new string: opt when not NULL, else $XMPPD_SOCKET,
 * else the daemon's default ($XDG_RUNTIME_DIR/xmppd/xmppd.sock when that
 * is an absolute path, else /tmp/xmppd-UID/xmppd.sock).
 */
char *conn_socket_path(const char *opt);

/* The monotonic clock in milliseconds plus ms, or -1 (no deadline) for a
 * negative ms. */
long long conn_deadline(long long ms);

/*
 * Connects to path and reads the greeting before deadline (see
 * conn_deadline). Returns CONN_OK, or a conn_status with *cause set (the
 * caller frees it); c needs conn_close either way.
 */
int conn_open(struct conn *c, const char *path, long long deadline,
	char **cause);

/*
 * Reads the next JSON object. *obj is new (the caller decrefs it); *line
 * and *len show the line as it came, valid until the next read. The
 * daemon's last word before dropping a slow client (an "error" event) and
 * the end of the connection give CONN_GONE, a line that is not a JSON
 * object or too long gives CONN_FAILED, and nothing before deadline
 * CONN_TIMEOUT, all with *cause set.
 */
int conn_read(struct conn *c, long long deadline, json_t **obj,
	const char **line, size_t *len, char **cause);

/* Writes req as one compact line before deadline. */
int conn_send(struct conn *c, const json_t *req, long long deadline,
	char **cause);

/*
 * Sends req and returns its reply in *reply (new). A req without "id" is
 * given the next integer id and only the reply with that id is taken;
 * with an "id" of its own, the first reply is. Events before it go to cb
 * (may be NULL).
 */
int conn_request(struct conn *c, json_t *req, long long deadline,
	conn_event_cb cb, void *ud, json_t **reply, char **cause);

/* "condition: text" of an error object, such as a failed reply's "error"
 * (a new string; "undefined-condition" when it names none). */
char *conn_describe_error(const json_t *err);

/* Closes the socket and frees what c holds; c may be closed twice. */
void conn_close(struct conn *c);

#endif
