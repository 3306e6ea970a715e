/*
 * The control socket against a stub core (tests/ipc-stub.c): each test
 * gets a fresh loop, a socket in a mkdtemp directory and plain AF_UNIX
 * client sockets that speak JSON lines. run_until() turns the loop (with
 * a 1 ms tick so it never blocks for long) and reads every client that
 * is not paused, until a condition holds or a deadline passes.
 */
#define _XOPEN_SOURCE 700	/* nftw */

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <limits.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "daemon/config.h"
#include "daemon/events.h"
#include "daemon/jsonenc.h"
#include "daemon/log.h"
#include "daemon/xmppd.h"
#include "ipc/client.h"
#include "ipc/ipc.h"
#include "ipc/json.h"
#include "proto/alloc.h"
#include "proto/buf.h"
#include "proto/ns.h"
#include "proto/xml.h"
#include "tests/ipc-stub.h"

#define FIRST_SEQ 100
#define WAIT_MS 5000

static uv_loop_t loop;
static uv_timer_t tick;
static struct config cfg;
static struct xmppd *core;
static struct ipc *ipc;
static char dir[64];
static char sockpath[128];

/* Criterion's cr_assert cannot take jansson's macros directly. */
static bool is_object(const json_t *v)
{
	return json_is_object(v);
}

static bool is_integer(const json_t *v)
{
	return json_is_integer(v);
}

static bool is_true(const json_t *v)
{
	return json_is_true(v);
}

static bool is_false(const json_t *v)
{
	return json_is_false(v);
}

static bool is_array(const json_t *v)
{
	return json_is_array(v);
}

/* ---- test clients ---- */

struct tc {
	int fd;
	struct buf in;
	bool eof;
	bool paused;		/* not read by run_until: a client that never reads */
};

#define MAX_TC 8
static struct tc tcs[MAX_TC];
static int ntc;

static void pump(struct tc *t)
{
	char b[65536];
	while (t->fd >= 0 && !t->paused && !t->eof) {
		ssize_t n = recv(t->fd, b, sizeof(b), MSG_DONTWAIT);
		if (n > 0) {
			buf_append(&t->in, b, (size_t)n);
		} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			t->eof = true;
		} else {
			return;
		}
	}
}

static void tick_cb(uv_timer_t *t)
{
}

/* Turns the loop until cond(arg) or ms pass; what cond saw last. */
static bool run_until(bool (*cond)(void *), void *arg, unsigned ms)
{
	uint64_t deadline = uv_hrtime() + (uint64_t)ms * 1000000;
	uv_timer_start(&tick, tick_cb, 1, 1);
	bool ok = false;
	for (;;) {
		for (int i = 0; i < ntc; i++) {
			pump(&tcs[i]);
		}
		ok = cond(arg);
		if (ok || uv_hrtime() > deadline) {
			break;
		}
		uv_run(&loop, UV_RUN_ONCE);
	}
	uv_timer_stop(&tick);
	return ok;
}

static bool never(void *arg)
{
	return false;
}

/* A few loop turns with nothing expected to happen. */
static void settle(unsigned ms)
{
	run_until(never, NULL, ms);
}

static void sun_fill(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	cr_assert(lt(sz, strlen(path), sizeof(sa->sun_path)));
	memcpy(sa->sun_path, path, strlen(path) + 1);
}

static struct tc *tc_open(const char *path)
{
	cr_assert(lt(int, ntc, MAX_TC));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(ge(int, fd, 0));
	struct sockaddr_un sa;
	sun_fill(&sa, path);
	cr_assert(eq(int, connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0),
		"connect %s: %s", path, strerror(errno));
	struct tc *t = &tcs[ntc++];
	t->fd = fd;
	buf_init(&t->in);
	return t;
}

static void tc_close(struct tc *t)
{
	if (t->fd >= 0) {
		close(t->fd);
		t->fd = -1;
	}
}

/* Writes all of s, turning the loop whenever the socket is full. */
static void tc_write(struct tc *t, const char *s, size_t len)
{
	while (len > 0) {
		ssize_t n = send(t->fd, s, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			s += n;
			len -= (size_t)n;
			continue;
		}
		cr_assert(eq(int, errno, EAGAIN), "send: %s", strerror(errno));
		uv_run(&loop, UV_RUN_NOWAIT);
		pump(t);
	}
}

static void tc_send(struct tc *t, const char *s)
{
	tc_write(t, s, strlen(s));
}

static bool has_line(void *arg)
{
	struct tc *t = arg;
	return t->in.len > 0 && memchr(t->in.data, '\n', t->in.len) != NULL;
}

static bool at_eof(void *arg)
{
	struct tc *t = arg;
	return t->eof;
}

static bool line_or_eof(void *arg)
{
	return has_line(arg) || at_eof(arg);
}

/* The next line (caller frees), or NULL at EOF or if none comes in time. */
static char *tc_line(struct tc *t)
{
	run_until(line_or_eof, t, WAIT_MS);
	if (!has_line(t)) {
		return NULL;
	}
	char *nl = memchr(t->in.data, '\n', t->in.len);
	size_t n = (size_t)(nl - t->in.data);
	char *line = xstrndup(t->in.data, n);
	buf_consume(&t->in, n + 1);
	return line;
}

/* The next line as a JSON object; fails the test otherwise. */
static json_t *tc_json(struct tc *t)
{
	char *line = tc_line(t);
	cr_assert(ne(ptr, line, NULL), "no line from the daemon");
	json_error_t err;
	json_t *j = json_loads(line, 0, &err);
	cr_assert(ne(ptr, j, NULL), "not JSON: %s (%s)", line, err.text);
	cr_assert(is_object(j), "not an object: %s", line);
	free(line);
	return j;
}

/* A client that has read its greeting. */
static struct tc *client(void)
{
	struct tc *t = tc_open(sockpath);
	json_t *hello = tc_json(t);
	cr_assert(eq(str, (char *)json_string_value(json_object_get(hello, "event")),
		"hello"));
	json_decref(hello);
	return t;
}

static json_t *request(struct tc *t, const char *line)
{
	tc_send(t, line);
	return tc_json(t);
}

/* ---- reading replies ---- */

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s != NULL ? s : "(absent)";
}

static json_int_t jint(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	cr_assert(is_integer(v), "'%s' is not an integer", key);
	return json_integer_value(v);
}

static void assert_ok(json_t *r)
{
	char *s = json_dumps(r, JSON_COMPACT);
	cr_assert(is_true(json_object_get(r, "ok")), "not ok: %s", s);
	free(s);
}

/* r is an error reply with this condition; its text contains want. */
static void assert_error(json_t *r, const char *condition, const char *want)
{
	char *s = json_dumps(r, JSON_COMPACT);
	cr_assert(is_false(json_object_get(r, "ok")), "not an error: %s", s);
	json_t *err = json_object_get(r, "error");
	cr_assert(eq(str, (char *)jstr(err, "condition"), (char *)condition), "%s", s);
	if (want != NULL) {
		cr_assert(ne(ptr, strstr(jstr(err, "text"), want), NULL),
			"'%s' not in %s", want, s);
	}
	free(s);
}

static void expect_error(struct tc *t, const char *line, const char *condition,
	const char *want)
{
	json_t *r = request(t, line);
	assert_error(r, condition, want);
	json_decref(r);
}

/* ---- events ---- */

static uint64_t publish(const char *name, const char *from, const char *body)
{
	json_t *ev = json_object();
	if (from != NULL) {
		json_object_set_new(ev, "from", json_string(from));
	}
	json_object_set_new(ev, "body", json_string(body));
	return events_publish(name, ev);
}

/* The next line is event name with this seq. */
static void expect_event(struct tc *t, const char *name, uint64_t seq)
{
	json_t *ev = tc_json(t);
	char *s = json_dumps(ev, JSON_COMPACT);
	cr_assert(eq(str, (char *)jstr(ev, "event"), (char *)name), "%s", s);
	cr_assert(eq(i64, jint(ev, "seq"), (json_int_t)seq), "%s", s);
	cr_assert(eq(ptr, json_object_get(ev, "id"), NULL), "%s", s);
	free(s);
	json_decref(ev);
}

/* ---- fixture ---- */

static int rm_entry(const char *path, const struct stat *st, int flag,
	struct FTW *ftw)
{
	remove(path);
	return 0;
}

static void setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	log_init(LOG_ERROR, 0);
	snprintf(dir, sizeof(dir), "/tmp/test-ipc-XXXXXX");
	cr_assert(ne(ptr, mkdtemp(dir), NULL));
	snprintf(sockpath, sizeof(sockpath), "%s/run/xmppd.sock", dir);
	cr_assert(eq(int, uv_loop_init(&loop), 0));
	uv_timer_init(&loop, &tick);
	events_init(FIRST_SEQ);
	memset(&cfg, 0, sizeof(cfg));
	cfg.socket = sockpath;
	cfg.max_line = 1024 * 1024;
	cfg.max_output = 4 * 1024 * 1024;
	cfg.iq_timeout = 30;
	core = xmppd_new(&loop, &cfg);
	char *cause = NULL;
	ipc = ipc_new(&loop, core, &cfg, &cause);
	cr_assert(ne(ptr, ipc, NULL), "ipc_new: %s", cause);
}

static void teardown(void)
{
	for (int i = 0; i < ntc; i++) {
		tc_close(&tcs[i]);
		buf_finish(&tcs[i].in);
	}
	ipc_free(ipc);
	xmppd_free(core);
	if (!uv_is_closing((uv_handle_t *)&tick)) {
		uv_close((uv_handle_t *)&tick, NULL);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert(eq(int, uv_loop_close(&loop), 0), "handles left open");
	events_finish();
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

TestSuite(ipc, .init = setup, .fini = teardown, .timeout = 30);

/* ---- greeting and status ---- */

Test(ipc, greeting_fields)
{
	struct tc *t = tc_open(sockpath);
	json_t *g = tc_json(t);
	cr_assert(eq(str, (char *)jstr(g, "event"), "hello"));
	cr_assert(eq(i64, jint(g, "version"), 1));
	cr_assert(eq(str, (char *)jstr(g, "daemon"), "xmppd " XMPPD_VERSION));
	cr_assert(eq(str, (char *)jstr(g, "jid"), "alice@example.org/test"));
	cr_assert(eq(str, (char *)jstr(g, "state"), "online"));
	cr_assert(eq(i64, jint(g, "seq"), FIRST_SEQ));
	cr_assert(eq(u64, events_last_seq(), FIRST_SEQ), "the greeting took a seq");
	json_decref(g);
}

Test(ipc, greeting_shows_state_and_last_seq)
{
	stub_set_state(core, XMPPD_CONNECTING);
	publish("message", "bob@example.org", "hi");
	struct tc *t = tc_open(sockpath);
	json_t *g = tc_json(t);
	cr_assert(eq(str, (char *)jstr(g, "state"), "connecting"));
	cr_assert(eq(i64, jint(g, "seq"), FIRST_SEQ + 1));
	json_decref(g);
}

Test(ipc, status_merges_core_status_and_echoes_id)
{
	struct tc *t = client();
	json_t *r = request(t, "{\"cmd\":\"status\",\"id\":{\"a\":[1,\"x\"]}}\n");
	assert_ok(r);
	json_t *want = json_pack("{s:[i,s]}", "a", 1, "x");
	cr_assert(json_equal(json_object_get(r, "id"), want));
	cr_assert(eq(str, (char *)jstr(r, "state"), "online"));
	cr_assert(eq(str, (char *)jstr(r, "jid"), "alice@example.org/test"));
	cr_assert(is_array(json_object_get(r, "features")));
	json_decref(want);
	json_decref(r);
}

Test(ipc, reply_without_id_has_no_id)
{
	struct tc *t = client();
	json_t *r = request(t, "{\"cmd\":\"status\"}\n");
	assert_ok(r);
	cr_assert(eq(ptr, json_object_get(r, "id"), NULL));
	json_decref(r);
}

/* ---- commands against the stub ---- */

Test(ipc, send_passes_arguments_and_returns_msg_id)
{
	struct tc *t = client();
	json_t *r = request(t, "{\"cmd\":\"send\",\"id\":3,\"to\":\"bob@example.org\","
		"\"body\":\"build #42 passed\",\"type\":\"headline\",\"subject\":\"ci\","
		"\"thread\":\"t1\"}\n");
	assert_ok(r);
	cr_assert(eq(i64, jint(r, "id"), 3));
	cr_assert(eq(str, (char *)jstr(r, "msg_id"), "stub1"));
	json_t *sent = json_array_get(stub_sent(core), 0);
	cr_assert(eq(str, (char *)jstr(sent, "kind"), "message"));
	cr_assert(eq(str, (char *)jstr(sent, "to"), "bob@example.org"));
	cr_assert(eq(str, (char *)jstr(sent, "body"), "build #42 passed"));
	cr_assert(eq(str, (char *)jstr(sent, "type"), "headline"));
	cr_assert(eq(str, (char *)jstr(sent, "subject"), "ci"));
	cr_assert(eq(str, (char *)jstr(sent, "thread"), "t1"));
	json_decref(r);

	r = request(t, "{\"cmd\":\"send\",\"to\":\"bob@example.org\",\"body\":\"x\","
		"\"msg_id\":\"mine\"}\n");
	assert_ok(r);
	cr_assert(eq(str, (char *)jstr(r, "msg_id"), "mine"));
	json_decref(r);
}

Test(ipc, core_errors_become_error_replies)
{
	struct tc *t = client();
	stub_fail_next(core, "service-unavailable", "the outbox is full");
	json_t *r = request(t, "{\"cmd\":\"send\",\"id\":\"s\",\"to\":\"bob@example.org\","
		"\"body\":\"x\"}\n");
	assert_error(r, "service-unavailable", "the outbox is full");
	cr_assert(eq(str, (char *)jstr(r, "id"), "s"));
	cr_assert(eq(sz, json_array_size(stub_sent(core)), 0));
	json_decref(r);
}

Test(ipc, presence_passes_arguments)
{
	struct tc *t = client();
	json_t *r = request(t, "{\"cmd\":\"presence\",\"show\":\"dnd\",\"status\":\"busy\","
		"\"priority\":-5}\n");
	assert_ok(r);
	json_decref(r);
	r = request(t, "{\"cmd\":\"presence\",\"to\":\"room@muc.example.org/me\","
		"\"type\":\"unavailable\"}\n");
	assert_ok(r);
	json_decref(r);
	json_t *p = json_array_get(stub_sent(core), 0);
	cr_assert(eq(str, (char *)jstr(p, "show"), "dnd"));
	cr_assert(eq(str, (char *)jstr(p, "status"), "busy"));
	cr_assert(eq(i64, jint(p, "priority"), -5));
	cr_assert(eq(ptr, json_object_get(p, "to"), NULL));
	p = json_array_get(stub_sent(core), 1);
	cr_assert(eq(str, (char *)jstr(p, "to"), "room@muc.example.org/me"));
	cr_assert(eq(str, (char *)jstr(p, "type"), "unavailable"));
	cr_assert(eq(ptr, json_object_get(p, "priority"), NULL));
}

Test(ipc, raw_sends_xml)
{
	struct tc *t = client();
	json_t *r = request(t, "{\"cmd\":\"raw\",\"xml\":\"<presence/>\"}\n");
	assert_ok(r);
	json_decref(r);
	json_t *p = json_array_get(stub_sent(core), 0);
	cr_assert(eq(str, (char *)jstr(p, "kind"), "raw"));
	cr_assert(eq(str, (char *)jstr(p, "xml"), "<presence/>"));
}

Test(ipc, raw_and_iq_need_a_connection)
{
	struct tc *t = client();
	stub_set_state(core, XMPPD_OFFLINE);
	expect_error(t, "{\"cmd\":\"raw\",\"xml\":\"<presence/>\"}\n", "not-connected",
		"offline");
	expect_error(t, "{\"cmd\":\"iq\",\"type\":\"get\"}\n", "not-connected", NULL);
	cr_assert(eq(sz, json_array_size(stub_sent(core)), 0));
}

static struct xml *iq_result(const char *from)
{
	struct xml *iq = xml_new("iq", NS_CLIENT);
	xml_set_attr(iq, "type", "result");
	xml_set_attr(iq, "from", from);
	xml_add(iq, "query", "jabber:iq:version");
	return iq;
}

static bool iq_pending(void *arg)
{
	return stub_iq_pending(core) == (size_t)(uintptr_t)arg;
}

Test(ipc, iq_result_reply)
{
	struct tc *t = client();
	tc_send(t, "{\"cmd\":\"iq\",\"id\":7,\"to\":\"example.org\",\"type\":\"get\","
		"\"payload\":\"<query xmlns='jabber:iq:version'/>\",\"timeout\":2.5}\n");
	cr_assert(run_until(iq_pending, (void *)1, WAIT_MS));
	json_t *q = json_array_get(stub_sent(core), 0);
	cr_assert(eq(str, (char *)jstr(q, "to"), "example.org"));
	cr_assert(eq(str, (char *)jstr(q, "type"), "get"));
	cr_assert(eq(str, (char *)jstr(q, "payload"), "<query xmlns='jabber:iq:version'/>"));
	cr_assert(eq(i64, jint(q, "timeout_ms"), 2500));

	struct xml *reply = iq_result("example.org");
	cr_assert(stub_iq_answer(core, reply));
	xml_free(reply);
	json_t *r = tc_json(t);
	assert_ok(r);
	cr_assert(eq(i64, jint(r, "id"), 7));
	cr_assert(eq(str, (char *)jstr(r, "type"), "result"));
	cr_assert(eq(str, (char *)jstr(r, "from"), "example.org"));
	const char *xml = jstr(r, "xml");
	cr_assert(eq(int, strncmp(xml, "<iq", 3), 0), "%s", xml);
	cr_assert(ne(ptr, strstr(xml, "jabber:iq:version"), NULL), "%s", xml);
	json_decref(r);
}

Test(ipc, iq_error_stanza_reply)
{
	struct tc *t = client();
	tc_send(t, "{\"cmd\":\"iq\",\"id\":8,\"to\":\"bob@example.org/x\",\"type\":\"set\"}\n");
	cr_assert(run_until(iq_pending, (void *)1, WAIT_MS));
	struct xml *iq = xml_new("iq", NS_CLIENT);
	xml_set_attr(iq, "type", "error");
	xml_set_attr(iq, "from", "bob@example.org/x");
	struct xml *err = xml_add(iq, "error", NS_CLIENT);
	xml_set_attr(err, "type", "cancel");
	xml_add(err, "item-not-found", NS_STANZA_ERRORS);
	xml_add_text_child(err, "text", NS_STANZA_ERRORS, "no such node");
	cr_assert(stub_iq_answer(core, iq));
	xml_free(iq);
	json_t *r = tc_json(t);
	assert_error(r, "item-not-found", "no such node");
	cr_assert(eq(i64, jint(r, "id"), 8));
	cr_assert(ne(ptr, strstr(jstr(r, "xml"), "item-not-found"), NULL));
	json_decref(r);
}

Test(ipc, iq_timeout_reply)
{
	struct tc *t = client();
	json_t *r = request(t, "{\"cmd\":\"iq\",\"id\":9,\"type\":\"get\","
		"\"payload\":\"<ping xmlns='urn:xmpp:ping'/>\",\"timeout\":0.05}\n");
	assert_error(r, "remote-server-timeout", NULL);
	cr_assert(eq(i64, jint(r, "id"), 9));
	cr_assert(eq(sz, stub_iq_pending(core), 0));
	json_decref(r);
}

Test(ipc, iq_failure_from_core)
{
	struct tc *t = client();
	stub_fail_next(core, "not-connected", "the stream is gone");
	expect_error(t, "{\"cmd\":\"iq\",\"type\":\"get\"}\n", "not-connected",
		"the stream is gone");
	tc_send(t, "{\"cmd\":\"iq\",\"type\":\"get\"}\n");
	cr_assert(run_until(iq_pending, (void *)1, WAIT_MS));
	stub_iq_fail(core, "not-connected", "connection lost");
	json_t *r = tc_json(t);
	assert_error(r, "not-connected", "connection lost");
	json_decref(r);
}

Test(ipc, quit_replies_then_quits)
{
	struct tc *t = client();
	json_t *r = request(t, "{\"cmd\":\"quit\",\"id\":1}\n");
	assert_ok(r);
	cr_assert(stub_quit_called(core));
	json_decref(r);
}

Test(ipc, reconnect_asks_the_core)
{
	struct tc *t = client();
	json_t *r = request(t, "{\"cmd\":\"reconnect\",\"id\":1}\n");
	assert_ok(r);
	cr_assert(eq(int, stub_reconnects(core), 1));
	json_decref(r);
}

static void stop_ipc(void *ud)
{
	ipc_free(ipc);
	ipc = NULL;
}

static bool output_queued(void *arg)
{
	return ipc->clients != NULL && ipc->clients->out.len > 0;
}

/* The core may stop, and main free the socket, inside the quit command,
 * while an earlier reply's write is still in flight. */
Test(ipc, quit_reply_survives_an_immediate_stop)
{
	xmppd_on_stopped(core, stop_ipc, NULL);
	struct tc *t = client();
	tc_send(t, "{\"cmd\":\"status\",\"id\":1}\n");
	cr_assert(run_until(output_queued, NULL, WAIT_MS));
	tc_send(t, "{\"cmd\":\"quit\",\"id\":2}\n");
	json_t *r = tc_json(t);
	cr_assert(eq(i64, jint(r, "id"), 1));
	json_decref(r);
	r = tc_json(t);
	cr_assert(eq(i64, jint(r, "id"), 2));
	assert_ok(r);
	json_decref(r);
	cr_assert(run_until(at_eof, t, WAIT_MS));
	cr_assert(eq(ptr, ipc, NULL));
}

/* ---- framing ---- */

Test(ipc, partial_lines_across_writes)
{
	struct tc *t = client();
	tc_send(t, "{\"cmd\":\"sta");
	settle(20);
	cr_assert(not(has_line(t)));
	tc_send(t, "tus\",");
	settle(20);
	tc_send(t, "\"id\":1}");
	settle(20);
	cr_assert(not(has_line(t)), "a reply before the newline");
	tc_send(t, "\n");
	json_t *r = tc_json(t);
	assert_ok(r);
	cr_assert(eq(i64, jint(r, "id"), 1));
	json_decref(r);
}

Test(ipc, several_lines_in_one_write)
{
	struct tc *t = client();
	tc_send(t, "{\"cmd\":\"status\",\"id\":1}\n{\"cmd\":\"status\",\"id\":2}\n"
		"{\"cmd\":\"sned\",\"id\":3}\n");
	for (int i = 1; i <= 3; i++) {
		json_t *r = tc_json(t);
		cr_assert(eq(i64, jint(r, "id"), i));
		json_decref(r);
	}
}

Test(ipc, empty_lines_are_ignored)
{
	struct tc *t = client();
	tc_send(t, "\n\n  \r\n\t\n{\"cmd\":\"status\",\"id\":1}\r\n\n");
	json_t *r = tc_json(t);
	cr_assert(eq(i64, jint(r, "id"), 1));
	json_decref(r);
	r = request(t, "{\"cmd\":\"status\",\"id\":2}\n");
	cr_assert(eq(i64, jint(r, "id"), 2), "an empty line got a reply");
	json_decref(r);
}

Test(ipc, long_line_is_refused_and_the_connection_stays)
{
	ipc->max_line = 100;
	struct tc *t = client();
	char big[300];
	memset(big, 'x', sizeof(big));
	tc_send(t, "{\"cmd\":\"status\",\"x\":\"");
	tc_write(t, big, sizeof(big));
	json_t *r = tc_json(t);	/* refused before the newline arrives */
	assert_error(r, "line-too-long", "100");
	json_decref(r);
	tc_write(t, big, sizeof(big));
	tc_send(t, "\"}\n{\"cmd\":\"status\",\"id\":2}\n");
	r = tc_json(t);
	assert_ok(r);
	cr_assert(eq(i64, jint(r, "id"), 2));
	json_decref(r);

	/* A line of exactly max_line bytes is fine; one more is not. */
	char line[102];
	memset(line, ' ', sizeof(line));
	memcpy(line, "{\"cmd\":\"status\",\"id\":3}", 23);
	line[100] = '\n';
	tc_write(t, line, 101);
	r = tc_json(t);
	cr_assert(eq(i64, jint(r, "id"), 3));
	json_decref(r);
	line[100] = ' ';
	line[101] = '\n';
	tc_write(t, line, 102);
	r = tc_json(t);
	assert_error(r, "line-too-long", NULL);
	json_decref(r);
}

Test(ipc, limits_come_from_config)
{
	char path[160];
	snprintf(path, sizeof(path), "%s/other.sock", dir);
	struct config c2 = cfg;
	c2.socket = path;
	c2.max_line = 40;
	c2.max_output = 0;	/* the default */
	char *cause = NULL;
	struct ipc *i2 = ipc_new(&loop, core, &c2, &cause);
	cr_assert(ne(ptr, i2, NULL), "%s", cause);
	cr_assert(eq(sz, i2->max_output, 4 * 1024 * 1024));
	struct tc *t = tc_open(path);
	json_decref(tc_json(t));
	expect_error(t, "{\"cmd\":\"status\",\"id\":\"0123456789012345678901234\"}\n",
		"line-too-long", NULL);
	tc_close(t);
	ipc_free(i2);
}

Test(ipc, invalid_json_is_bad_request)
{
	struct tc *t = client();
	expect_error(t, "{\"cmd\":\"status\",}\n", "bad-request", "invalid JSON");
	expect_error(t, "{\"cmd\":\"st\xff\"}\n", "bad-request", "invalid JSON");
	expect_error(t, "{\"cmd\":\"status\",\"id\":1,\"id\":2}\n", "bad-request", NULL);
	json_t *r = request(t, "{\"cmd\":\"status\",\"id\":4}\n");
	assert_ok(r);
	json_decref(r);
}

Test(ipc, non_object_is_bad_request)
{
	struct tc *t = client();
	expect_error(t, "[1,2]\n", "bad-request", "object");
	expect_error(t, "\"status\"\n", "bad-request", "object");
	expect_error(t, "42\n", "bad-request", "object");
	expect_error(t, "null\n", "bad-request", "object");
}

Test(ipc, unknown_command)
{
	struct tc *t = client();
	json_t *r = request(t, "{\"cmd\":\"sned\",\"id\":4}\n");
	assert_error(r, "unknown-command", "no command 'sned'");
	cr_assert(eq(i64, jint(r, "id"), 4));
	json_decref(r);
	expect_error(t, "{\"id\":5}\n", "bad-request", "missing argument 'cmd'");
	expect_error(t, "{\"cmd\":5}\n", "bad-request", "'cmd' must be a string");
}

Test(ipc, missing_and_mistyped_arguments)
{
	struct tc *t = client();
	expect_error(t, "{\"cmd\":\"send\",\"body\":\"x\"}\n", "bad-request",
		"missing argument 'to'");
	expect_error(t, "{\"cmd\":\"send\",\"to\":null,\"body\":\"x\"}\n", "bad-request",
		"missing argument 'to'");
	expect_error(t, "{\"cmd\":\"send\",\"to\":\"b@example.org\",\"body\":5}\n",
		"bad-request", "'body' must be a string");
	expect_error(t, "{\"cmd\":\"send\",\"to\":\"b@example.org\",\"type\":\"email\"}\n",
		"bad-request", "'type' must be one of: chat, normal, headline, groupchat");
	expect_error(t, "{\"cmd\":\"send\",\"to\":\"b@example.org\",\"bdy\":\"x\"}\n",
		"bad-request", "unknown argument 'bdy'");
	expect_error(t, "{\"cmd\":\"presence\",\"priority\":\"high\"}\n", "bad-request",
		"'priority' must be an integer");
	expect_error(t, "{\"cmd\":\"presence\",\"priority\":1.5}\n", "bad-request",
		"'priority'");
	expect_error(t, "{\"cmd\":\"presence\",\"priority\":128}\n", "bad-request",
		"'priority'");
	expect_error(t, "{\"cmd\":\"presence\",\"show\":\"busy\"}\n", "bad-request",
		"'show'");
	expect_error(t, "{\"cmd\":\"iq\",\"type\":\"result\"}\n", "bad-request", "'type'");
	expect_error(t, "{\"cmd\":\"iq\"}\n", "bad-request", "missing argument 'type'");
	expect_error(t, "{\"cmd\":\"iq\",\"type\":\"get\",\"timeout\":0}\n", "bad-request",
		"'timeout'");
	expect_error(t, "{\"cmd\":\"iq\",\"type\":\"get\",\"timeout\":\"5\"}\n",
		"bad-request", "'timeout' must be a number");
	expect_error(t, "{\"cmd\":\"raw\"}\n", "bad-request", "missing argument 'xml'");
	expect_error(t, "{\"cmd\":\"subscribe\"}\n", "bad-request",
		"missing argument 'events'");
	expect_error(t, "{\"cmd\":\"subscribe\",\"events\":\"message\"}\n",
		"bad-request", "'events'");
	expect_error(t, "{\"cmd\":\"subscribe\",\"events\":[\"mesage\"]}\n",
		"bad-request", "unknown event 'mesage'");
	expect_error(t, "{\"cmd\":\"subscribe\",\"events\":[1]}\n", "bad-request",
		"'events'");
	expect_error(t, "{\"cmd\":\"subscribe\",\"events\":\"*\",\"since\":-1}\n",
		"bad-request", "'since'");
	cr_assert(eq(sz, json_array_size(stub_sent(core)), 0));
}

Test(ipc, invalid_jid)
{
	struct tc *t = client();
	expect_error(t, "{\"cmd\":\"send\",\"to\":\"@example.org\",\"body\":\"x\"}\n",
		"invalid-jid", "empty localpart");
	expect_error(t, "{\"cmd\":\"send\",\"to\":\"bob@\",\"body\":\"x\"}\n",
		"invalid-jid", "'to'");
	expect_error(t, "{\"cmd\":\"iq\",\"to\":\"a@b/\",\"type\":\"get\"}\n",
		"invalid-jid", "resourcepart");
	expect_error(t, "{\"cmd\":\"presence\",\"to\":\"\"}\n", "invalid-jid", NULL);
	expect_error(t, "{\"cmd\":\"subscribe\",\"events\":\"*\",\"from\":\"x@\"}\n",
		"invalid-jid", "'from'");
	cr_assert(eq(sz, json_array_size(stub_sent(core)), 0));
}

/* ---- protocol: the command tables described ---- */

static json_t *protocol(struct tc *t)
{
	json_t *r = request(t, "{\"cmd\":\"protocol\",\"id\":1}\n");
	assert_ok(r);
	cr_assert(eq(i64, jint(r, "version"), 1));
	cr_assert(is_array(json_object_get(r, "commands")));
	cr_assert(is_array(json_object_get(r, "events")));
	return r;
}

static bool is_boolean(const json_t *v)
{
	return json_is_boolean(v);
}

static bool is_real(const json_t *v)
{
	return json_is_real(v);
}

/* The description of a command (borrowed), or NULL. */
static json_t *described(json_t *proto, const char *name)
{
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(proto, "commands"), i, c) {
		if (strcmp(jstr(c, "name"), name) == 0) {
			return c;
		}
	}
	return NULL;
}

static json_t *described_arg(json_t *cmd, const char *name)
{
	size_t i;
	json_t *a;
	json_array_foreach(json_object_get(cmd, "args"), i, a) {
		if (strcmp(jstr(a, "name"), name) == 0) {
			return a;
		}
	}
	return NULL;
}

Test(ipc, protocol_describes_every_command)
{
	static const char *const names[] = {
		"block", "blocklist", "disco", "history", "iq", "muc-join",
		"muc-leave", "ping", "presence", "presences", "protocol", "quit",
		"raw", "reconnect", "roster", "roster-remove", "roster-set", "send",
		"status", "subscribe", "subscription", "unblock", "unsubscribe",
		"upload-slot", NULL,
	};
	struct tc *t = client();
	json_t *p = protocol(t);
	for (size_t i = 0; names[i] != NULL; i++) {
		cr_expect(ne(ptr, described(p, names[i]), NULL), "no %s", names[i]);
	}
	/* Sorted, each once, each with a name, args and needs_online. */
	size_t i;
	json_t *c;
	const char *prev = "";
	json_array_foreach(json_object_get(p, "commands"), i, c) {
		cr_assert(gt(int, strcmp(jstr(c, "name"), prev), 0), "%s after %s",
			jstr(c, "name"), prev);
		prev = jstr(c, "name");
		cr_assert(is_array(json_object_get(c, "args")), "%s", prev);
		cr_assert(is_boolean(json_object_get(c, "needs_online")), "%s", prev);
	}
	json_decref(p);
}

Test(ipc, protocol_describes_arguments)
{
	struct tc *t = client();
	json_t *p = protocol(t);
	json_t *send = described(p, "send");
	cr_assert(is_false(json_object_get(send, "needs_online")));
	json_t *to = described_arg(send, "to");
	cr_assert(eq(str, (char *)jstr(to, "type"), "jid"));
	cr_assert(is_true(json_object_get(to, "required")));
	json_t *type = described_arg(send, "type");
	cr_assert(is_false(json_object_get(type, "required")));
	cr_assert(eq(str, (char *)json_string_value(json_array_get(
		json_object_get(type, "choices"), 0)), "chat"));
	cr_assert(eq(str, (char *)jstr(described_arg(send, "receipt"), "type"),
		"boolean"));
	json_t *prio = described_arg(described(p, "presence"), "priority");
	cr_assert(eq(str, (char *)jstr(prio, "type"), "integer"));
	cr_assert(eq(i64, jint(prio, "min"), -128));
	cr_assert(eq(i64, jint(prio, "max"), 127));
	json_t *timeout = described_arg(described(p, "iq"), "timeout");
	cr_assert(eq(str, (char *)jstr(timeout, "type"), "number"));
	cr_assert(is_real(json_object_get(timeout, "min")));
	cr_assert(is_true(json_object_get(described(p, "iq"), "needs_online")));
	cr_assert(eq(str, (char *)jstr(described_arg(described(p, "subscribe"),
		"events"), "type"), "events"));
	json_t *up = described(p, "upload-slot");
	cr_assert(is_true(json_object_get(up, "needs_online")));
	cr_assert(eq(str, (char *)jstr(described_arg(up, "filename"), "type"), "string"));
	json_t *size = described_arg(up, "size");
	cr_assert(eq(str, (char *)jstr(size, "type"), "integer"));
	cr_assert(is_true(json_object_get(size, "required")));
	cr_assert(eq(i64, jint(size, "min"), 0));
	cr_assert(is_false(json_object_get(described_arg(up, "content_type"), "required")));
	cr_assert(eq(sz, json_array_size(json_object_get(described(p, "status"), "args")), 0));
	json_decref(p);
}

/* What protocol lists is what the dispatcher knows: every listed command
 * is found (an unknown argument is refused before its handler runs) and
 * refuses a request without its first required argument; a name it does
 * not list is an unknown command. */
Test(ipc, protocol_agrees_with_the_dispatcher)
{
	struct tc *t = client();
	json_t *p = protocol(t);
	size_t i;
	json_t *c;
	char line[256];
	char want[128];
	json_array_foreach(json_object_get(p, "commands"), i, c) {
		const char *name = jstr(c, "name");
		snprintf(line, sizeof(line), "{\"cmd\":\"%s\",\"zz-none\":1}\n", name);
		expect_error(t, line, "bad-request", "unknown argument 'zz-none'");
		size_t j;
		json_t *a;
		json_array_foreach(json_object_get(c, "args"), j, a) {
			if (is_true(json_object_get(a, "required"))) {
				snprintf(line, sizeof(line), "{\"cmd\":\"%s\"}\n", name);
				snprintf(want, sizeof(want), "missing argument '%s'", jstr(a, "name"));
				expect_error(t, line, "bad-request", want);
				break;
			}
		}
	}
	cr_assert(eq(ptr, described(p, "protocols"), NULL));
	expect_error(t, "{\"cmd\":\"protocols\"}\n", "unknown-command", NULL);
	cr_assert(eq(sz, json_array_size(stub_sent(core)), 0));
	cr_assert(not(stub_quit_called(core)));
	json_decref(p);
}

Test(ipc, protocol_lists_the_events_subscribe_accepts)
{
	struct tc *t = client();
	json_t *p = protocol(t);
	json_t *events = json_object_get(p, "events");
	cr_assert(ge(sz, json_array_size(events), 3));
	bool message = false;
	size_t i;
	json_t *ev;
	char line[128];
	json_array_foreach(events, i, ev) {
		message = message || strcmp(json_string_value(ev), "message") == 0;
		snprintf(line, sizeof(line), "{\"cmd\":\"subscribe\",\"events\":[\"%s\"]}\n",
			json_string_value(ev));
		json_t *r = request(t, line);
		assert_ok(r);
		json_decref(r);
	}
	cr_assert(message);
	json_decref(p);
}

Test(ipc, unterminated_line_at_eof_still_counts)
{
	struct tc *t = client();
	tc_send(t, "{\"cmd\":\"status\",\"id\":1}\n{\"cmd\":\"status\",\"id\":2}");
	shutdown(t->fd, SHUT_WR);
	json_t *r = tc_json(t);
	cr_assert(eq(i64, jint(r, "id"), 1));
	json_decref(r);
	r = tc_json(t);
	cr_assert(eq(i64, jint(r, "id"), 2));
	json_decref(r);
	cr_assert(run_until(at_eof, t, WAIT_MS), "not closed after the replies");
}

/* ---- reply order and pending requests ---- */

static size_t reply_slots(const struct ipc_client *c)
{
	size_t n = 0;
	for (const struct ipc_reply *r = c->replies; r != NULL; r = r->next) {
		n++;
	}
	return n;
}

static bool slots_two(void *arg)
{
	return ipc->clients != NULL && reply_slots(ipc->clients) == 2;
}

Test(ipc, replies_keep_request_order_behind_a_pending_iq)
{
	struct tc *t = client();
	json_decref(request(t, "{\"cmd\":\"subscribe\",\"events\":[\"message\"]}\n"));
	tc_send(t, "{\"cmd\":\"iq\",\"id\":1,\"type\":\"get\"}\n"
		"{\"cmd\":\"status\",\"id\":2}\n");
	cr_assert(run_until(slots_two, NULL, WAIT_MS));
	cr_assert(eq(sz, stub_iq_pending(core), 1));
	settle(20);
	cr_assert(not(has_line(t)), "the status reply overtook the iq");

	/* Events are not held back by the pending reply. */
	uint64_t seq = publish("message", "bob@example.org/a", "meanwhile");
	expect_event(t, "message", seq);

	struct xml *reply = iq_result("example.org");
	stub_iq_answer(core, reply);
	xml_free(reply);
	json_t *r = tc_json(t);
	cr_assert(eq(i64, jint(r, "id"), 1), "the iq reply is not first");
	json_decref(r);
	r = tc_json(t);
	cr_assert(eq(i64, jint(r, "id"), 2));
	json_decref(r);
}

Test(ipc, replies_held_behind_a_pending_iq_are_bounded)
{
	ipc->max_output = 4096;
	struct tc *t = client();
	tc_send(t, "{\"cmd\":\"iq\",\"id\":0,\"type\":\"get\"}\n");
	for (int i = 1; i <= 100; i++) {
		char line[64];
		snprintf(line, sizeof(line), "{\"cmd\":\"status\",\"id\":%d}\n", i);
		tc_send(t, line);
	}
	cr_assert(run_until(at_eof, t, WAIT_MS), "not dropped");
	char *line = tc_line(t);
	cr_assert(ne(ptr, line, NULL));
	cr_assert(ne(ptr, strstr(line, "\"too-slow\""), NULL), "%s", line);
	free(line);
	cr_assert(eq(ptr, tc_line(t), NULL));
}

static bool iq_pending_256(void *arg)
{
	return stub_iq_pending(core) == 256;
}

Test(ipc, waiting_requests_are_bounded)
{
	struct tc *t = client();
	struct buf b;
	buf_init(&b);
	for (int i = 0; i <= 256; i++) {
		buf_printf(&b, "{\"cmd\":\"iq\",\"id\":%d,\"type\":\"get\"}\n", i);
	}
	tc_write(t, b.data, b.len);
	buf_finish(&b);
	cr_assert(run_until(iq_pending_256, NULL, WAIT_MS));
	settle(10);
	cr_assert(eq(sz, stub_iq_pending(core), 256));
	while (stub_iq_fail(core, "not-connected", "gone")) {
	}
	for (int i = 0; i < 256; i++) {
		json_t *r = tc_json(t);
		cr_assert(eq(i64, jint(r, "id"), i));
		assert_error(r, "not-connected", "gone");
		json_decref(r);
	}
	json_t *r = tc_json(t);
	cr_assert(eq(i64, jint(r, "id"), 256));
	assert_error(r, "resource-constraint", NULL);
	json_decref(r);
}

static bool no_clients(void *arg)
{
	return ipc->nclients == 0;
}

Test(ipc, client_gone_while_iq_pending)
{
	struct tc *t = tc_open(sockpath);
	t->paused = true;	/* unread data makes the close a reset */
	tc_send(t, "{\"cmd\":\"iq\",\"id\":1,\"type\":\"get\"}\n");
	cr_assert(run_until(iq_pending, (void *)1, WAIT_MS));
	tc_close(t);
	cr_assert(run_until(no_clients, NULL, WAIT_MS));
	struct xml *reply = iq_result("example.org");
	cr_assert(stub_iq_answer(core, reply));
	xml_free(reply);
	settle(10);
	struct tc *u = client();
	json_t *r = request(u, "{\"cmd\":\"status\",\"id\":1}\n");
	assert_ok(r);
	json_decref(r);
}

Test(ipc, half_closed_client_gets_its_pending_reply)
{
	struct tc *t = client();
	tc_send(t, "{\"cmd\":\"iq\",\"id\":1,\"type\":\"get\"}\n");
	shutdown(t->fd, SHUT_WR);
	cr_assert(run_until(iq_pending, (void *)1, WAIT_MS));
	settle(20);
	cr_assert(not(at_eof(t)), "closed before the reply");
	struct xml *reply = iq_result("example.org");
	stub_iq_answer(core, reply);
	xml_free(reply);
	json_t *r = tc_json(t);
	assert_ok(r);
	json_decref(r);
	cr_assert(run_until(at_eof, t, WAIT_MS));
}

Test(ipc, iq_pending_when_ipc_is_freed)
{
	struct tc *t = client();
	tc_send(t, "{\"cmd\":\"iq\",\"id\":1,\"type\":\"get\"}\n");
	cr_assert(run_until(iq_pending, (void *)1, WAIT_MS));
	ipc_free(ipc);
	ipc = NULL;
	settle(10);
	struct xml *reply = iq_result("example.org");
	cr_assert(stub_iq_answer(core, reply));
	xml_free(reply);
	cr_assert(run_until(at_eof, t, WAIT_MS));
}

/* ---- subscriptions ---- */

Test(ipc, subscribe_filters_by_event_name)
{
	struct tc *a = client();
	struct tc *b = client();
	struct tc *none = client();
	json_t *r = request(a, "{\"cmd\":\"subscribe\",\"id\":1,\"events\":[\"message\"]}\n");
	assert_ok(r);
	cr_assert(eq(i64, jint(r, "seq"), FIRST_SEQ));
	cr_assert(eq(ptr, json_object_get(r, "gap"), NULL));
	json_decref(r);
	json_decref(request(b, "{\"cmd\":\"subscribe\",\"events\":[\"presence\",\"state\"]}\n"));

	uint64_t s1 = publish("presence", "carol@example.org/x", "");
	uint64_t s2 = publish("message", "bob@example.org/x", "one");
	uint64_t s3 = publish("state", NULL, "");
	expect_event(a, "message", s2);
	expect_event(b, "presence", s1);
	expect_event(b, "state", s3);
	r = request(none, "{\"cmd\":\"status\",\"id\":1}\n");
	cr_assert(eq(i64, jint(r, "id"), 1), "an unsubscribed client got an event");
	json_decref(r);

	json_decref(request(a, "{\"cmd\":\"unsubscribe\",\"events\":[\"message\"]}\n"));
	json_decref(request(b, "{\"cmd\":\"unsubscribe\"}\n"));
	publish("message", "bob@example.org/x", "two");
	publish("presence", "bob@example.org/x", "");
	r = request(a, "{\"cmd\":\"status\",\"id\":2}\n");
	cr_assert(eq(i64, jint(r, "id"), 2), "an event after unsubscribe");
	json_decref(r);
	r = request(b, "{\"cmd\":\"status\",\"id\":2}\n");
	cr_assert(eq(i64, jint(r, "id"), 2), "an event after unsubscribe");
	json_decref(r);
}

Test(ipc, subscribe_all_and_unsubscribe_some)
{
	struct tc *t = client();
	json_decref(request(t, "{\"cmd\":\"subscribe\",\"events\":\"*\"}\n"));
	json_decref(request(t, "{\"cmd\":\"unsubscribe\",\"events\":[\"presence\"]}\n"));
	publish("presence", "bob@example.org", "");
	uint64_t s = publish("roster", NULL, "");
	uint64_t u = publish("future-event", NULL, "");
	expect_event(t, "roster", s);
	expect_event(t, "future-event", u);
}

Test(ipc, subscribe_from_filters_on_bare_jid)
{
	struct tc *t = client();
	json_decref(request(t, "{\"cmd\":\"subscribe\",\"events\":[\"message\",\"state\"],"
		"\"from\":\"Bob@Example.ORG/ignored\"}\n"));
	publish("message", "carol@example.org/x", "no");
	uint64_t s1 = publish("message", "bob@example.org/phone", "yes");
	publish("message", "bob@example.org.evil/phone", "no");
	uint64_t s2 = publish("state", NULL, "");
	uint64_t s3 = publish("message", "bob@example.org", "yes");
	expect_event(t, "message", s1);
	expect_event(t, "state", s2);
	expect_event(t, "message", s3);
}

Test(ipc, event_lines_carry_the_published_fields)
{
	struct tc *t = client();
	json_decref(request(t, "{\"cmd\":\"subscribe\",\"events\":[\"message\"]}\n"));
	publish("message", "bob@example.org/x", "h\xc3\xa9llo \"quoted\"\n");
	char *line = tc_line(t);
	cr_assert(ne(ptr, line, NULL));
	cr_assert(eq(str, line, "{\"event\":\"message\",\"seq\":101,"
		"\"from\":\"bob@example.org/x\",\"body\":\"h\xc3\xa9llo \\\"quoted\\\"\\n\"}"));
	free(line);
}

Test(ipc, subscribe_since_replays_missed_events)
{
	struct tc *t = client();
	uint64_t s1 = publish("message", "bob@example.org/x", "1");
	publish("presence", "bob@example.org/x", "");
	uint64_t s3 = publish("message", "bob@example.org/x", "3");
	uint64_t s4 = publish("message", "bob@example.org/x", "4");
	publish("xml", NULL, "<not-kept/>");
	tc_send(t, "{\"cmd\":\"subscribe\",\"id\":1,\"events\":[\"message\"],\"since\":100}\n");
	expect_event(t, "message", s1);
	expect_event(t, "message", s3);
	expect_event(t, "message", s4);
	json_t *r = tc_json(t);
	assert_ok(r);
	cr_assert(eq(i64, jint(r, "seq"), FIRST_SEQ + 5));
	cr_assert(eq(ptr, json_object_get(r, "gap"), NULL));
	json_decref(r);

	/* Only what came after since. */
	struct tc *u = client();
	tc_send(u, "{\"cmd\":\"subscribe\",\"id\":1,\"events\":[\"message\"],\"since\":103}\n");
	expect_event(u, "message", s4);
	r = tc_json(u);
	cr_assert(eq(i64, jint(r, "id"), 1));
	json_decref(r);
}

Test(ipc, subscribe_since_reports_a_gap)
{
	ipc->sink.max_events = 2;
	struct tc *t = client();
	for (int i = 0; i < 5; i++) {
		publish("message", "bob@example.org/x", "m");
	}
	tc_send(t, "{\"cmd\":\"subscribe\",\"id\":1,\"events\":[\"message\"],\"since\":101}\n");
	expect_event(t, "message", 104);
	expect_event(t, "message", 105);
	json_t *r = tc_json(t);
	assert_ok(r);
	cr_assert(is_true(json_object_get(r, "gap")));
	cr_assert(eq(i64, jint(r, "oldest"), 104));
	cr_assert(eq(i64, jint(r, "seq"), 105));
	json_decref(r);

	/* Nothing is missing after 103. */
	tc_send(t, "{\"cmd\":\"subscribe\",\"id\":2,\"events\":[\"message\"],\"since\":103}\n");
	expect_event(t, "message", 104);
	expect_event(t, "message", 105);
	r = tc_json(t);
	cr_assert(eq(i64, jint(r, "id"), 2));
	cr_assert(eq(ptr, json_object_get(r, "gap"), NULL));
	json_decref(r);
}

/* The ring's lines live in shared chunks: after many evictions, some
 * lines bigger than a chunk, the retained ones come back whole, and
 * their senders still filter. */
Test(ipc, ring_lines_survive_chunk_turnover)
{
	ipc->sink.max_events = 40;
	static char body[20000];
	for (int i = 0; i < 300; i++) {
		size_t n = i % 9 == 0 ? 17000 + (size_t)i : (size_t)(i * 37) % 300 + 1;
		memset(body, 'a' + i % 26, n);
		body[n] = '\0';
		publish("message", i % 2 ? "bob@example.org/x" : "carol@example.org/y",
			body);
	}
	struct tc *t = client();
	tc_send(t, "{\"cmd\":\"subscribe\",\"id\":1,\"events\":[\"message\"],"
		"\"since\":100,\"from\":\"bob@example.org\"}\n");
	for (int i = 260; i < 300; i++) {
		if (i % 2 == 0) {
			continue;
		}
		json_t *ev = tc_json(t);
		cr_assert(eq(i64, jint(ev, "seq"), FIRST_SEQ + 1 + i));
		const char *b = jstr(ev, "body");
		size_t n = i % 9 == 0 ? 17000 + (size_t)i : (size_t)(i * 37) % 300 + 1;
		cr_assert(eq(sz, strlen(b), n));
		cr_assert(eq(chr, b[0], 'a' + i % 26));
		cr_assert(eq(chr, b[n - 1], 'a' + i % 26));
		json_decref(ev);
	}
	json_t *r = tc_json(t);
	assert_ok(r);
	cr_assert(is_true(json_object_get(r, "gap")));
	json_decref(r);
}

Test(ipc, subscribe_since_before_startup_is_a_gap)
{
	struct tc *t = client();
	uint64_t s = publish("message", "bob@example.org/x", "m");
	tc_send(t, "{\"cmd\":\"subscribe\",\"id\":1,\"events\":[\"message\"],\"since\":50}\n");
	expect_event(t, "message", s);
	json_t *r = tc_json(t);
	cr_assert(is_true(json_object_get(r, "gap")));
	cr_assert(eq(i64, jint(r, "oldest"), (json_int_t)s));
	json_decref(r);
}

/* ---- a slow client ---- */

struct reader {
	struct tc *t;
	uint64_t last;		/* seq of the last event read */
};

/* Reads r's lines; true once it has every published event. */
static bool caught_up(void *arg)
{
	struct reader *r = arg;
	while (has_line(r->t)) {
		char *nl = memchr(r->t->in.data, '\n', r->t->in.len);
		json_t *ev = json_loadb(r->t->in.data, (size_t)(nl - r->t->in.data), 0, NULL);
		cr_assert(ne(ptr, ev, NULL));
		uint64_t seq = (uint64_t)jint(ev, "seq");
		cr_assert(eq(u64, seq, r->last + 1), "an event missed");
		r->last = seq;
		json_decref(ev);
		buf_consume(&r->t->in, (size_t)(nl - r->t->in.data) + 1);
	}
	return r->last == events_last_seq();
}

static bool one_client(void *arg)
{
	return ipc->nclients == 1;
}

Test(ipc, slow_client_is_dropped_and_others_are_not)
{
	ipc->max_output = 64 * 1024;
	ipc->drop_grace_ms = 60000;	/* slow_c stays valid until it reads */
	struct tc *good = client();
	json_decref(request(good, "{\"cmd\":\"subscribe\",\"events\":[\"message\"]}\n"));
	struct tc *slow = client();
	json_decref(request(slow, "{\"cmd\":\"subscribe\",\"events\":[\"message\"]}\n"));
	struct ipc_client *slow_c = ipc->clients;	/* the newest */
	slow->paused = true;

	char body[200];
	memset(body, 'b', sizeof(body) - 1);
	body[sizeof(body) - 1] = '\0';
	struct reader rd = { good, FIRST_SEQ };
	int batches = 0;
	while (!slow_c->dropping && batches++ < 1000) {
		for (int i = 0; i < 100; i++) {
			publish("message", "bob@example.org/x", body);
		}
		cr_assert(run_until(caught_up, &rd, WAIT_MS), "the good client fell behind");
	}
	cr_assert(slow_c->dropping, "never dropped");
	uint64_t published = events_last_seq() - FIRST_SEQ;

	/* It reads now: a prefix of the events, the notice, then EOF. */
	slow->paused = false;
	cr_assert(run_until(at_eof, slow, WAIT_MS));
	uint64_t seq = FIRST_SEQ;
	json_t *last = NULL;
	char *line;
	while ((line = tc_line(slow)) != NULL) {
		json_decref(last);
		last = json_loads(line, 0, NULL);
		free(line);
		cr_assert(ne(ptr, last, NULL));
		if (strcmp(jstr(last, "event"), "message") == 0) {
			cr_assert(eq(i64, jint(last, "seq"), (json_int_t)++seq));
		}
	}
	cr_assert(ne(ptr, last, NULL));
	cr_assert(eq(str, (char *)jstr(last, "event"), "error"));
	cr_assert(eq(str, (char *)jstr(last, "condition"), "too-slow"));
	cr_assert(ne(ptr, strstr(jstr(last, "text"), "since"), NULL));
	cr_assert(lt(u64, seq - FIRST_SEQ, published));
	json_decref(last);

	cr_assert(run_until(one_client, NULL, WAIT_MS));
	json_t *r = request(good, "{\"cmd\":\"status\",\"id\":1}\n");
	assert_ok(r);
	json_decref(r);
	cr_assert(eq(sz, ipc->nclients, 1));
}

static int pressure_calls;
static bool pressure_now;

static void on_pressure(void *ud, bool behind)
{
	pressure_calls++;
	pressure_now = behind;
}

static bool no_pressure(void *arg)
{
	struct reader *r = arg;
	caught_up(r);
	return !events_under_pressure();
}

Test(ipc, client_behind_puts_on_back_pressure)
{
	events_on_pressure(on_pressure, &pressure_calls);
	struct tc *slow = client();
	json_decref(request(slow, "{\"cmd\":\"subscribe\",\"events\":[\"message\"]}\n"));
	struct ipc_client *slow_c = ipc->clients;
	slow->paused = true;
	char body[1000];
	memset(body, 'b', sizeof(body) - 1);
	body[sizeof(body) - 1] = '\0';
	int n = 0;
	while (!events_under_pressure() && n++ < 5000) {
		publish("message", "bob@example.org/x", body);
		uv_run(&loop, UV_RUN_NOWAIT);
	}
	cr_assert(events_under_pressure(), "no back-pressure after %d events", n);
	cr_assert(pressure_now);
	cr_assert(eq(int, pressure_calls, 1));
	cr_assert(not(slow_c->dropping));

	/* It reads: the pressure ends, and it has every event. */
	slow->paused = false;
	struct reader rd = { slow, FIRST_SEQ };
	cr_assert(run_until(no_pressure, &rd, WAIT_MS), "still under pressure");
	cr_assert(not(pressure_now));
	cr_assert(eq(int, pressure_calls, 2));
	cr_assert(run_until(caught_up, &rd, WAIT_MS));
	events_on_pressure(NULL, &pressure_calls);
}

/* ---- the socket ---- */

Test(ipc, socket_is_0600_in_a_0700_directory)
{
	struct stat st;
	cr_assert(eq(int, stat(sockpath, &st), 0));
	bool sock = S_ISSOCK(st.st_mode);
	cr_assert(sock);
	cr_assert(eq(int, st.st_mode & 0777, 0600), "mode %o", st.st_mode & 0777);
	char run[160];
	snprintf(run, sizeof(run), "%s/run", dir);
	cr_assert(eq(int, stat(run, &st), 0));
	cr_assert(eq(int, st.st_mode & 0777, 0700), "mode %o", st.st_mode & 0777);
	cr_assert(eq(str, (char *)ipc_path(ipc), sockpath));
}

Test(ipc, default_path_under_xdg_runtime_dir)
{
	setenv("XDG_RUNTIME_DIR", dir, 1);
	struct config c2 = cfg;
	c2.socket = NULL;
	char *cause = NULL;
	struct ipc *i2 = ipc_new(&loop, core, &c2, &cause);
	cr_assert(ne(ptr, i2, NULL), "%s", cause);
	char want[160];
	snprintf(want, sizeof(want), "%s/xmppd/xmppd.sock", dir);
	cr_assert(eq(str, (char *)ipc_path(i2), want));
	struct stat st;
	snprintf(want, sizeof(want), "%s/xmppd", dir);
	cr_assert(eq(int, stat(want, &st), 0));
	cr_assert(eq(int, st.st_mode & 0777, 0700));
	ipc_free(i2);
}

static void expect_refused(const char *path, const char *want)
{
	struct config c2 = cfg;
	c2.socket = (char *)path;
	char *cause = NULL;
	struct ipc *i2 = ipc_new(&loop, core, &c2, &cause);
	cr_assert(eq(ptr, i2, NULL));
	cr_assert(ne(ptr, cause, NULL));
	cr_assert(ne(ptr, strstr(cause, want), NULL), "cause: %s", cause);
	free(cause);
}

Test(ipc, refuses_a_directory_others_can_enter)
{
	char open_dir[160], path[192];
	snprintf(open_dir, sizeof(open_dir), "%s/open", dir);
	cr_assert(eq(int, mkdir(open_dir, 0700), 0));
	cr_assert(eq(int, chmod(open_dir, 0755), 0));
	snprintf(path, sizeof(path), "%s/xmppd.sock", open_dir);
	expect_refused(path, "must be 0700");
	cr_assert(eq(int, access(path, F_OK), -1), "a socket was made anyway");
}

Test(ipc, refuses_a_second_daemon_on_the_same_path)
{
	char *cause = NULL;
	struct ipc *i2 = ipc_new(&loop, core, &cfg, &cause);
	cr_assert(eq(ptr, i2, NULL));
	char want[192];
	snprintf(want, sizeof(want), "another xmppd is running on %s", sockpath);
	cr_assert(eq(str, cause, want));
	free(cause);
	/* The first one still works. */
	struct tc *t = client();
	json_t *r = request(t, "{\"cmd\":\"status\",\"id\":1}\n");
	assert_ok(r);
	json_decref(r);
}

Test(ipc, replaces_a_stale_socket)
{
	char path[160];
	snprintf(path, sizeof(path), "%s/stale.sock", dir);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa;
	sun_fill(&sa, path);
	cr_assert(eq(int, bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0));
	close(fd);	/* left behind, nobody listening */
	struct config c2 = cfg;
	c2.socket = path;
	char *cause = NULL;
	struct ipc *i2 = ipc_new(&loop, core, &c2, &cause);
	cr_assert(ne(ptr, i2, NULL), "%s", cause);
	struct tc *t = tc_open(path);
	json_t *g = tc_json(t);
	cr_assert(eq(str, (char *)jstr(g, "event"), "hello"));
	json_decref(g);
	tc_close(t);
	ipc_free(i2);
}

Test(ipc, refuses_to_replace_what_is_not_a_socket)
{
	char path[160];
	snprintf(path, sizeof(path), "%s/file.sock", dir);
	FILE *f = fopen(path, "w");
	cr_assert(ne(ptr, f, NULL));
	fclose(f);
	expect_refused(path, "not a socket");
	cr_assert(eq(int, access(path, F_OK), 0), "the file was removed");
}

Test(ipc, free_unlinks_the_socket)
{
	struct tc *t = client();
	ipc_free(ipc);
	ipc = NULL;
	cr_assert(eq(int, access(sockpath, F_OK), -1));
	cr_assert(run_until(at_eof, t, WAIT_MS));
	/* teardown checks that uv_loop_close returns 0 */
}

Test(ipc, free_flushes_queued_output)
{
	struct tc *t = client();
	json_decref(request(t, "{\"cmd\":\"subscribe\",\"events\":[\"message\"]}\n"));
	uint64_t s = publish("message", "bob@example.org", "last words");
	ipc_free(ipc);
	ipc = NULL;
	expect_event(t, "message", s);
	cr_assert(run_until(at_eof, t, WAIT_MS));
}

static void close_open_handle(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h)) {
		uv_close(h, NULL);
	}
}

/* main.c's stopped_cb frees ipc, then closes every handle still open. */
Test(ipc, free_then_closing_every_other_handle_is_safe)
{
	struct tc *t = client();
	json_decref(request(t, "{\"cmd\":\"subscribe\",\"events\":[\"message\"]}\n"));
	tc_send(t, "{\"cmd\":\"iq\",\"id\":1,\"type\":\"get\"}\n");
	cr_assert(run_until(iq_pending, (void *)1, WAIT_MS));
	uint64_t s = publish("message", "bob@example.org", "last words");
	ipc_free(ipc);
	ipc = NULL;
	xmppd_free(core);
	core = NULL;
	uv_walk(&loop, close_open_handle, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	expect_event(t, "message", s);
	cr_assert(run_until(at_eof, t, 0));
}

Test(ipc, other_uids_are_refused)
{
	ipc->uid = getuid() + 1;
	struct tc *t = tc_open(sockpath);
	json_t *r = tc_json(t);
	assert_error(r, "not-authorized", "may not use this socket");
	json_decref(r);
	cr_assert(run_until(at_eof, t, WAIT_MS));
	cr_assert(eq(sz, ipc->nclients, 0));
}

static bool accept_failed(void *arg)
{
	return ipc->accept_failures > 0;
}

Test(ipc, pauses_accepting_when_out_of_descriptors)
{
	ipc->accept_pause_ms = 50;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(ge(int, fd, 0));
	struct rlimit old, low;
	getrlimit(RLIMIT_NOFILE, &old);
	low = old;
	low.rlim_cur = (rlim_t)fd + 32;
	cr_assert(eq(int, setrlimit(RLIMIT_NOFILE, &low), 0));
	int dups[64];
	int n = 0;
	while (n < 64 && (dups[n] = dup(fd)) >= 0) {
		n++;
	}
	cr_assert(lt(int, n, 64));
	struct sockaddr_un sa;
	sun_fill(&sa, sockpath);
	cr_assert(eq(int, connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0));

	cr_assert(run_until(accept_failed, NULL, WAIT_MS));
	cr_assert(ipc->accept_paused);
	uint64_t t0 = uv_hrtime();
	settle(200);
	double ms = (double)(uv_hrtime() - t0) / 1e6;
	/* One retry per pause, not a busy loop. */
	cr_assert(le(ulong, ipc->accept_failures, (unsigned long)(ms / 50) + 2),
		"%lu failures in %.0f ms", ipc->accept_failures, ms);

	while (n > 0) {
		close(dups[--n]);
	}
	setrlimit(RLIMIT_NOFILE, &old);
	struct tc *t = &tcs[ntc++];
	t->fd = fd;
	buf_init(&t->in);
	json_t *g = tc_json(t);
	cr_assert(eq(str, (char *)jstr(g, "event"), "hello"));
	json_decref(g);
}

/* ipc_json_encode writes what jansson's compact dump writes. */
static void encode_like_jansson(json_t *v)
{
	struct buf b;
	buf_init(&b);
	char *want = json_dumps(v, JSON_COMPACT);
	bool ok = ipc_json_encode(v, &b);
	cr_assert(eq(int, ok, want != NULL), "%s", want ? want : "(fails)");
	if (want != NULL) {
		cr_assert(eq(sz, b.len, strlen(want) + 1));
		cr_assert(eq(int, memcmp(b.data, want, b.len - 1), 0),
			"%s vs %s", b.data, want);
		cr_assert(eq(chr, b.data[b.len - 1], '\n'));
	} else {
		cr_assert(eq(sz, b.len, 0));
	}
	free(want);
	buf_finish(&b);
	json_decref(v);
}

Test(ipc_json, encodes_like_jansson)
{
	encode_like_jansson(json_pack("{s:s,s:I,s:b,s:b,s:n,s:f,s:[i,s,{}],s:{}}",
		"event", "message", "seq", (json_int_t)-1234567890123,
		"t", 1, "f", 0, "n", "r", 1.5, "a", 7, "x/y", "o", "e"));
	encode_like_jansson(json_pack("[I,I,I,I]", (json_int_t)0,
		(json_int_t)LLONG_MIN, (json_int_t)LLONG_MAX, (json_int_t)-7));
	char all[128];
	for (int i = 0; i < 127; i++) {
		all[i] = (char)(i + 1);
	}
	all[127] = '\0';
	encode_like_jansson(json_pack("{s:s}", all, all));
	encode_like_jansson(json_pack("{s:s%}", "nul", "a\0b\"\\", (size_t)5));
	encode_like_jansson(json_pack("{s:s}", "utf8",
		"caf\xc3\xa9 \xe2\x80\xa8 \xf0\x9f\x98\x80 \xe2\x82\xac"));
	encode_like_jansson(json_pack("[s,[[[]]],{s:{s:[]}}]", "", "k", "k2"));
	/* Invalid UTF-8 fails in both (json_stringn_nocheck skips the check
	 * that json_string makes). */
	json_t *bad = json_object();
	json_object_set_new(bad, "s", json_stringn_nocheck("a\xc3", 2));
	encode_like_jansson(bad);
	bad = json_object();
	json_object_set_new(bad, "s", json_stringn_nocheck("\xed\xa0\x80", 3));
	encode_like_jansson(bad);
	encode_like_jansson(json_string("top-level strings are refused"));
}

/* Every length around the 8- and 16-byte steps, with an escape, a
 * multi-byte character or neither at each place (plain tails are
 * copied as a whole word). */
Test(ipc_json, string_lengths_like_jansson)
{
	static const char *const odd[] = { "\"", "\n", "\x01", "\xc3\xa9",
		"\xf0\x9f\x98\x80", "x" };
	for (size_t n = 0; n < 41; n++) {
		for (size_t k = 0; k <= n; k++) {
			for (size_t j = 0; j < sizeof(odd) / sizeof(odd[0]); j++) {
				char s[80];
				memset(s, 'a', n);
				s[n] = '\0';
				size_t o = strlen(odd[j]);
				memmove(s + k + o, s + k, n - k + 1);
				memcpy(s + k, odd[j], o);
				encode_like_jansson(json_pack("{s:s}", "k", s));
			}
		}
	}
}

/* jsonenc_event writes what framing the event and dumping it writes. */
static void event_like_jansson(json_t *ev)
{
	json_t *framed = json_pack("{s:s,s:I}", "event", "message",
		"seq", (json_int_t)42);
	json_object_update(framed, ev);
	char *want = json_dumps(framed, JSON_COMPACT);
	struct buf b;
	buf_init(&b);
	cr_assert(jsonenc_event(&b, "message", 42, ev));
	cr_assert(eq(str, b.data, want));
	free(want);
	buf_finish(&b);
	json_decref(framed);
	json_decref(ev);
}

Test(ipc_json, event_line_like_jansson)
{
	event_like_jansson(json_pack("{s:s,s:s,s:[s]}", "from", "a@b/c",
		"body", "caf\xc3\xa9\n\"", "x", "y"));
	event_like_jansson(json_object());
	json_t *bad = json_object();
	json_object_set_new(bad, "s", json_stringn_nocheck("a\xc3", 2));
	struct buf b;
	buf_init(&b);
	buf_puts(&b, "kept");
	cr_assert(not(jsonenc_event(&b, "message", 1, bad)));
	cr_assert(eq(str, b.data, "kept"));
	buf_finish(&b);
	json_decref(bad);
}
