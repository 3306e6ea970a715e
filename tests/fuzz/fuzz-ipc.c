/*
 * libFuzzer entry for the control socket's input side: line framing,
 * request decoding, command lookup and argument checks, the handlers
 * against the stub core of test-ipc (tests/ipc-stub.c) and reply
 * encoding, all through the real ipc/server.c on a socket in a temporary
 * directory.
 *
 * Each input is what one client writes: it connects, writes the input in
 * two parts (split at a point the input itself picks, so lines straddle
 * reads), shuts down its write side and reads until the daemon hangs up.
 * Meanwhile iq requests are answered (or failed) as a server would and
 * one message event is published. Then the output is checked: every line
 * is a JSON object, the greeting comes first, and the replies are one per
 * non-blank request line (max_line is small, so over-long lines count
 * too), in request order, each echoing its request's id; only a client
 * dropped for reading too slowly may see fewer, a prefix.
 *
 * Each input gets a fresh daemon side (loop excepted), so it replays
 * alone. Built by meson with -Dfuzz=true (tests/fuzz/meson.build lists
 * the sources); run it with tools/fuzz ipc, or by hand:
 *
 *   build-fuzz/tests/fuzz/fuzz-ipc -max_len=8192 CORPUS tests/fuzz/corpus/ipc
 */
#define _XOPEN_SOURCE 700	/* nftw */

#include <errno.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "daemon/config.h"
#include "daemon/events.h"
#include "daemon/log.h"
#include "daemon/xmppd.h"
#include "ipc/ipc.h"
#include "proto/alloc.h"
#include "proto/buf.h"
#include "proto/ns.h"
#include "proto/xml.h"
#include "tests/ipc-stub.h"

#define MAX_LINE 2048
#define MAX_OUTPUT (64 * 1024)
#define DEADLINE_MS 10000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uv_loop_t loop;
static struct config cfg;
static struct xmppd *core;
static struct ipc *ipc;
static char dir[] = "/tmp/xmppd-fuzz-ipc-XXXXXX";
static char sockpath[64];

static void check(bool ok, const char *what, const char *line)
{
	if (!ok) {
		fprintf(stderr, "fuzz-ipc: %s%s%s\n", what, line ? ": " : "",
			line ? line : "");
		abort();
	}
}

static int rm_entry(const char *path, const struct stat *st, int flag,
	struct FTW *ftw)
{
	remove(path);
	return 0;
}

static void remove_dir(void)
{
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* The temporary directory and the loop, once. */
static void init(void)
{
	signal(SIGPIPE, SIG_IGN);
	log_init(LOG_ERROR, 0);
	check(mkdtemp(dir) != NULL, "mkdtemp", NULL);
	atexit(remove_dir);
	snprintf(sockpath, sizeof(sockpath), "%s/run/xmppd.sock", dir);
	check(uv_loop_init(&loop) == 0, "uv_loop_init", NULL);
	cfg.socket = sockpath;
	cfg.max_line = MAX_LINE;
	cfg.max_output = MAX_OUTPUT;
	cfg.iq_timeout = 30;
}

/* A fresh daemon side for each input, so an input replays alone and
 * every allocation of a run is freed by its end (libFuzzer counts). */
static void start(void)
{
	events_init(100);
	core = xmppd_new(&loop, &cfg);
	char *cause = NULL;
	ipc = ipc_new(&loop, core, &cfg, &cause);
	check(ipc != NULL, "ipc_new", cause);
}

static void stop(void)
{
	ipc_free(ipc);
	ipc = NULL;
	xmppd_free(core);
	core = NULL;
	uv_run(&loop, UV_RUN_DEFAULT);
	events_finish();
}

/* ---- the client side ---- */

static int client_connect(void)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	check(fd >= 0, "socket", strerror(errno));
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, sockpath, strlen(sockpath) + 1);
	check(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect",
		strerror(errno));
	return fd;
}

/* Reads what is there; true at EOF. */
static bool client_read(int fd, struct buf *in)
{
	char b[16384];
	for (;;) {
		ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
		if (n > 0) {
			buf_append(in, b, (size_t)n);
		} else if (n == 0 || errno == ECONNRESET) {
			return true;	/* reset: it hung up on unread input */
		} else {
			check(errno == EAGAIN || errno == EINTR, "recv", strerror(errno));
			return false;
		}
	}
}

/* Answers every pending iq: results and failures alternate. */
static void answer_iqs(void)
{
	static unsigned n;
	while (stub_iq_pending(core) > 0) {
		if (n++ % 2 == 0) {
			struct xml *iq = xml_new("iq", NS_CLIENT);
			xml_set_attr(iq, "type", "result");
			xml_set_attr(iq, "from", "example.org");
			xml_add(iq, "query", "jabber:iq:version");
			stub_iq_answer(core, iq);
			xml_free(iq);
		} else {
			stub_iq_fail(core, "remote-server-timeout", "fuzz");
		}
	}
}

/* One loop turn, then waits (briefly) for the loop or the client. */
static void turn(int fd)
{
	uv_run(&loop, UV_RUN_NOWAIT);
	answer_iqs();
	int timeout = uv_backend_timeout(&loop);
	struct pollfd p[2] = {
		{ .fd = uv_backend_fd(&loop), .events = POLLIN },
		{ .fd = fd, .events = POLLIN },
	};
	poll(p, 2, timeout < 0 || timeout > 10 ? 10 : timeout);
}

/* Writes all of data, turning the loop whenever the socket is full. */
static void client_write(int fd, const uint8_t *data, size_t len,
	struct buf *in)
{
	while (len > 0) {
		ssize_t n = send(fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			data += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
			return;		/* dropped: it stopped reading us */
		}
		check(n < 0 && (errno == EAGAIN || errno == EINTR), "send",
			strerror(errno));
		client_read(fd, in);
		turn(fd);
	}
}

/* ---- what the replies must be ---- */

static bool blank(const uint8_t *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') {
			return false;
		}
	}
	return true;
}

/* The id each reply must carry, in order: an array of ids, JSON null
 * standing for "no id" (a request's own null id is kept as a string
 * marker, since it must come back as null). */
static json_t *expected_ids(const uint8_t *data, size_t size)
{
	json_t *ids = json_array();
	while (size > 0) {
		const uint8_t *nl = memchr(data, '\n', size);
		size_t len = nl != NULL ? (size_t)(nl - data) : size;
		if (len > MAX_LINE) {
			json_array_append_new(ids, json_null());
		} else if (!blank(data, len)) {
			json_t *req = json_loadb((const char *)data, len,
				JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
			json_t *id = json_is_object(req) ? json_object_get(req, "id") : NULL;
			if (id == NULL) {
				json_array_append_new(ids, json_null());
			} else if (json_is_null(id)) {
				json_array_append_new(ids, json_string("(null id)"));
			} else {
				json_array_append(ids, id);
			}
			json_decref(req);
		}
		size_t used = nl != NULL ? len + 1 : len;
		data += used;
		size -= used;
	}
	return ids;
}

static void check_reply(json_t *r, json_t *want, const char *line)
{
	json_t *ok = json_object_get(r, "ok");
	check(json_is_boolean(ok), "a reply without a boolean ok", line);
	if (json_is_false(ok)) {
		json_t *err = json_object_get(r, "error");
		check(json_is_string(json_object_get(err, "condition")) &&
			json_is_string(json_object_get(err, "text")),
			"an error reply without condition and text", line);
	}
	json_t *id = json_object_get(r, "id");
	if (json_is_null(want)) {
		check(id == NULL, "a reply with an id its request lacked", line);
	} else if (json_is_string(want) &&
			strcmp(json_string_value(want), "(null id)") == 0) {
		check(json_is_null(id), "a null id not echoed", line);
	} else {
		check(id != NULL && json_equal(id, want), "a reply with another id",
			line);
	}
}

/* Checks every line the daemon wrote against the expected replies. */
static void check_output(struct buf *out, json_t *ids)
{
	size_t nreplies = 0;
	bool dropped = false;
	bool greeted = false;
	buf_putc(out, '\0');
	char *p = out->data;
	char *nl;
	while ((nl = strchr(p, '\n')) != NULL) {
		*nl = '\0';
		json_t *o = json_loads(p, 0, NULL);
		check(json_is_object(o), "a line that is not a JSON object", p);
		const char *ev = json_string_value(json_object_get(o, "event"));
		if (!greeted) {
			check(ev != NULL && strcmp(ev, "hello") == 0,
				"the first line is not the greeting", p);
			greeted = true;
		} else if (ev != NULL && strcmp(ev, "error") == 0) {
			dropped = true;
		} else if (ev != NULL) {
			check(json_is_integer(json_object_get(o, "seq")),
				"an event without seq", p);
		} else {
			check(nreplies < json_array_size(ids), "more replies than requests",
				p);
			check_reply(o, json_array_get(ids, nreplies), p);
			nreplies++;
		}
		json_decref(o);
		p = nl + 1;
	}
	check(*p == '\0', "an unterminated last line", p);
	check(greeted, "no greeting", NULL);
	check(dropped || nreplies == json_array_size(ids), "replies missing", NULL);
}

static void publish_event(void)
{
	json_t *ev = json_object();
	json_object_set_new(ev, "from", json_string("bob@example.org/phone"));
	json_object_set_new(ev, "body", json_string("hi"));
	events_publish("message", ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool inited;
	if (!inited) {
		init();
		inited = true;
	}
	start();

	unsigned sum = 0;
	for (size_t i = 0; i < size; i++) {
		sum += data[i];
	}
	size_t split = size > 0 ? sum % (size + 1) : 0;

	struct buf in;
	buf_init(&in);
	int fd = client_connect();
	client_write(fd, data, split, &in);
	turn(fd);
	client_write(fd, data + split, size - split, &in);
	publish_event();
	shutdown(fd, SHUT_WR);
	uint64_t deadline = uv_now(&loop) + DEADLINE_MS;
	while (!client_read(fd, &in)) {
		check(uv_now(&loop) < deadline, "the daemon never hung up", NULL);
		turn(fd);
	}
	close(fd);
	stop();

	json_t *ids = expected_ids(data, size);
	check_output(&in, ids);
	json_decref(ids);
	buf_finish(&in);
	return 0;
}
