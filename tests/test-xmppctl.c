/*
 * The parts of xmppctl that need no daemon: number and stdin parsing, the
 * environment of listen --exec and the command it runs, what is printed,
 * the socket path, and the line protocol against a socketpair that plays
 * the daemon. The rest is tests/integration/test_xmppctl.py.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl/conn.h"
#include "ctl/input.h"
#include "ctl/output.h"
#include "ctl/run.h"

/* ---- input ---- */

Test(input, parse_uint_takes_plain_decimals_only)
{
	unsigned long long v = 99;
	cr_assert(input_parse_uint("0", 10, &v));
	cr_assert(eq(ullong, v, 0));
	cr_assert(input_parse_uint("18446744073709551615", ~0ull, &v));
	cr_assert(eq(ullong, v, ~0ull));
	cr_assert(input_parse_uint("10", 10, &v));
	cr_assert(eq(ullong, v, 10));
	const char *bad[] = { "", "-1", "+1", " 1", "1 ", "1x", "0x10", "11",
		"18446744073709551616" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect(not(input_parse_uint(bad[i], i == 8 ? ~0ull : 10, &v)),
			"accepted '%s'", bad[i]);
	}
}

Test(input, parse_seconds_bounds)
{
	long long ms = 0;
	cr_assert(input_parse_seconds("1.5", &ms));
	cr_assert(eq(i64, ms, 1500));
	cr_assert(input_parse_seconds("86400", &ms));
	cr_assert(eq(i64, ms, 86400000));
	cr_assert(input_parse_seconds("0.0001", &ms));
	cr_assert(eq(i64, ms, 1));
	const char *bad[] = { "", "0", "-1", "86400.5", "nan", "inf", "1s" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect(not(input_parse_seconds(bad[i], &ms)), "accepted '%s'",
			bad[i]);
	}
}

/* A pipe whose read end holds len bytes of data, then EOF. */
static int pipe_with(const char *data, size_t len)
{
	int p[2];
	cr_assert(eq(int, pipe(p), 0));
	cr_assert(eq(sz, (size_t)write(p[1], data, len), len));
	close(p[1]);
	return p[0];
}

Test(input, read_all_is_exact_and_bounded)
{
	static const char text[] = "a\0b\nc\n\n";
	int fd = pipe_with(text, sizeof(text) - 1);
	char *out, *cause = NULL;
	size_t len;
	cr_assert(eq(int, input_read_all(fd, 7, &out, &len, &cause), 0));
	cr_assert(eq(sz, len, 7));
	cr_assert(eq(int, memcmp(out, text, 7), 0));
	input_trim_newlines(out, &len);
	cr_assert(eq(sz, len, 5));
	cr_assert(eq(str, out + 2, "b\nc"));
	free(out);
	close(fd);

	fd = pipe_with(text, sizeof(text) - 1);
	cr_assert(eq(int, input_read_all(fd, 6, &out, &len, &cause), -1));
	cr_assert(not(eq(ptr, strstr(cause, "longer than 6"), NULL)));
	free(cause);
	close(fd);
}

/* ---- run ---- */

/* The value of name in env, or NULL. */
static const char *env_get(char **env, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; env[i] != NULL; i++) {
		if (strncmp(env[i], name, n) == 0 && env[i][n] == '=') {
			return env[i] + n + 1;
		}
	}
	return NULL;
}

static const char evil[] = "$(touch pwned) `id` '\"; rm -rf /; \"'\n\\ * ?";

Test(run, env_carries_fields_and_replaces_ours_only)
{
	char *base[] = { "PATH=/bin", "XMPP_SUBJECT=stale", "XMPP_BODYX=kept",
		"XMPP_FROM", NULL };
	json_t *ev = json_pack("{s:s,s:s,s:s,s:I,s:b}", "event", "message",
		"from", "bob@example.org/phone", "body", evil, "seq",
		(json_int_t)1234567890123LL, "me", 1);
	char **env = run_env(base, ev);
	cr_assert(eq(str, (char *)env_get(env, "PATH"), "/bin"));
	cr_assert(eq(str, (char *)env_get(env, "XMPP_BODYX"), "kept"));
	cr_assert(eq(str, (char *)env_get(env, "XMPP_BODY"), (char *)evil));
	cr_assert(eq(str, (char *)env_get(env, "XMPP_FROM"),
		"bob@example.org/phone"));
	cr_assert(eq(str, (char *)env_get(env, "XMPP_SEQ"), "1234567890123"));
	cr_assert(eq(ptr, (void *)env_get(env, "XMPP_SUBJECT"), NULL));
	size_t n = 0;
	while (env[n] != NULL) {
		cr_expect(strcmp(env[n], "XMPP_FROM") != 0, "a bare XMPP_FROM kept");
		n++;
	}
	cr_assert(eq(sz, n, 5));	/* PATH, BODYX, FROM, BODY, SEQ */
	run_env_free(env);
	json_decref(ev);
}

/* A fresh directory for a test's files. */
static char *scratch(void)
{
	char tmpl[] = "/tmp/test-xmppctl-XXXXXX";
	cr_assert(not(eq(ptr, mkdtemp(tmpl), NULL)));
	return strdup(tmpl);
}

Test(run, command_sees_text_only_through_the_environment)
{
	char *dir = scratch();
	cr_assert(eq(int, chdir(dir), 0));
	json_t *ev = json_pack("{s:s,s:I}", "body", evil, "seq", (json_int_t)7);
	char *cause = NULL;
	int st = run_command("printf '%s' \"$XMPP_BODY\" > out; "
		"read -r x || echo eof > stdin", ev, &cause);
	cr_assert(eq(int, st, 0));
	char buf[256] = { 0 };
	FILE *f = fopen("out", "r");
	cr_assert(not(eq(ptr, f, NULL)));
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	cr_assert(eq(sz, n, strlen(evil)));
	cr_assert(eq(str, buf, (char *)evil));
	struct stat sb;
	cr_assert(eq(int, stat("pwned", &sb), -1), "the body ran a command");
	cr_assert(eq(int, stat("stdin", &sb), 0), "stdin is not /dev/null");
	json_decref(ev);
	unlink("out");
	unlink("stdin");
	rmdir(dir);
	free(dir);
}

Test(run, command_status_comes_back)
{
	json_t *ev = json_object();
	char *cause = NULL;
	cr_assert(eq(int, run_command("exit 3", ev, &cause), 3));
	cr_assert(eq(int, run_command("kill -9 $$", ev, &cause), 128 + SIGKILL));
	json_decref(ev);
}

/* ---- output ---- */

/* What show printed for the JSON text obj. */
static char *printed(void (*show)(FILE *, const json_t *), const char *obj)
{
	json_t *o = json_loads(obj, 0, NULL);
	cr_assert(not(eq(ptr, o, NULL)));
	char *text;
	size_t len;
	FILE *f = open_memstream(&text, &len);
	show(f, o);
	fclose(f);
	json_decref(o);
	return text;
}

static void check_printed(void (*show)(FILE *, const json_t *),
	const char *obj, const char *want)
{
	char *got = printed(show, obj);
	cr_expect(eq(str, got, (char *)want));
	free(got);
}

Test(output, message_lines)
{
	check_printed(output_message,
		"{\"event\":\"message\",\"from\":\"bob@x/y\",\"body\":\"hi\"}",
		"bob@x/y: hi\n");
	check_printed(output_message,
		"{\"from\":\"bob@x/y\",\"body\":\"one\\ntwo\\n\"}",
		"bob@x/y: one\n\ttwo\n\t\n");
	check_printed(output_message,
		"{\"from\":\"r@c/n\",\"subject\":\"topic\"}", "r@c/n: [topic]\n");
	check_printed(output_message, "{\"body\":\"x\"}", "(unknown): x\n");
}

Test(output, fields_in_order)
{
	check_printed(output_fields,
		"{\"id\":1,\"ok\":true,\"state\":\"online\",\"sm\":true,\"outbox\":0,"
		"\"features\":[\"a\",\"b\"],\"none\":[],\"caps\":{\"x\":1}}",
		"state: online\nsm: true\noutbox: 0\nfeatures:\n\ta\n\tb\nnone:\n"
		"caps: {\"x\":1}\n");
}

Test(output, roster_columns)
{
	check_printed(output_roster,
		"{\"items\":[{\"jid\":\"a@x\",\"name\":\"A\",\"subscription\":\"both\","
		"\"groups\":[\"F\",\"W\"]},{\"jid\":\"b@x\",\"subscription\":\"none\","
		"\"ask\":\"subscribe\",\"groups\":[]}]}",
		"a@x\tboth\tA\tF,W\nb@x\tnone (asked)\t\t\n");
}

Test(output, history_and_join)
{
	check_printed(output_history,
		"{\"messages\":[{\"from\":\"b@x/r\",\"body\":\"old\",\"delay\":"
		"\"2024-01-02T03:04:05Z\"},{\"from\":\"b@x/r\",\"body\":\"new\"}]}",
		"2024-01-02T03:04:05Z b@x/r: old\nb@x/r: new\n");
	check_printed(output_join,
		"{\"room\":\"r@c\",\"nick\":\"al\",\"role\":\"moderator\","
		"\"affiliation\":\"owner\",\"created\":true,\"subject\":\"s\"}",
		"joined r@c as al (moderator, owner), created\nsubject: s\n");
}

/* ---- conn ---- */

Test(conn, socket_path_precedence)
{
	setenv("XMPPD_SOCKET", "/env/sock", 1);
	setenv("XDG_RUNTIME_DIR", "/run/user/5", 1);
	char *p = conn_socket_path("/opt/sock");
	cr_expect(eq(str, p, "/opt/sock"));
	free(p);
	p = conn_socket_path(NULL);
	cr_expect(eq(str, p, "/env/sock"));
	free(p);
	unsetenv("XMPPD_SOCKET");
	p = conn_socket_path(NULL);
	cr_expect(eq(str, p, "/run/user/5/xmppd/xmppd.sock"));
	free(p);
	setenv("XDG_RUNTIME_DIR", "relative", 1);
	p = conn_socket_path(NULL);
	char want[64];
	snprintf(want, sizeof(want), "/tmp/xmppd-%u/xmppd.sock",
		(unsigned)geteuid());
	cr_expect(eq(str, p, want));
	free(p);
}

/* A conn on one end of a socketpair; the daemon's end in *peer. */
static void pair(struct conn *c, int *peer)
{
	int sv[2];
	cr_assert(eq(int, socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0));
	*c = (struct conn){ .fd = sv[0], .next_id = 1 };
	*peer = sv[1];
}

static void put(int fd, const char *s)
{
	cr_assert(eq(sz, (size_t)write(fd, s, strlen(s)), strlen(s)));
}

static int events_seen;

static void count_event(void *ud, json_t *ev, const char *line, size_t len)
{
	cr_assert(eq(int, strncmp(line, "{\"event\"", 8), 0));
	cr_assert(eq(int, line[len - 1], '}'));
	events_seen++;
}

Test(conn, request_skips_events_and_other_ids)
{
	struct conn c;
	int peer;
	pair(&c, &peer);
	put(peer, "{\"event\":\"message\",\"seq\":1}\n\n  \r\n{\"event\":\"sent\","
		"\"seq\":2}\n{\"id\":1,\"ok\":true,\"x\":");
	put(peer, "5}\n{\"event\":\"message\",\"seq\":3}\n");
	json_t *reply = NULL, *req = json_pack("{s:s}", "cmd", "status");
	char *cause = NULL;
	events_seen = 0;
	int rc = conn_request(&c, req, conn_deadline(2000), count_event, NULL,
		&reply, &cause);
	cr_assert(eq(int, rc, CONN_OK), "%s", cause ? cause : "");
	cr_assert(eq(int, events_seen, 2));
	cr_assert(eq(i64, json_integer_value(json_object_get(reply, "x")), 5));
	char line[256] = { 0 };
	cr_assert(gt(sz, (size_t)read(peer, line, sizeof(line) - 1), 0));
	cr_assert(eq(str, line, "{\"cmd\":\"status\",\"id\":1}\n"));
	json_decref(reply);
	json_decref(req);
	conn_close(&c);
	close(peer);
}

/* The status and cause of reading one object after feeding s (and
 * closing the daemon's end when close_after). */
static int read_after(const char *s, bool close_after, char **cause)
{
	struct conn c;
	int peer;
	pair(&c, &peer);
	put(peer, s);
	if (close_after) {
		close(peer);
	}
	json_t *o = NULL;
	const char *line;
	size_t len;
	int rc = conn_read(&c, conn_deadline(100), &o, &line, &len, cause);
	json_decref(o);
	conn_close(&c);
	if (!close_after) {
		close(peer);
	}
	return rc;
}

Test(conn, read_failures)
{
	char *cause = NULL;
	cr_assert(eq(int, read_after("", true, &cause), CONN_GONE));
	cr_expect(eq(str, cause, "xmppd closed the connection"));
	free(cause);
	cr_assert(eq(int, read_after("{\"event\":\"error\",\"condition\":"
		"\"too-slow\",\"text\":\"read faster\"}\n", false, &cause), CONN_GONE));
	cr_expect(eq(str, cause, "too-slow: read faster"));
	free(cause);
	cr_assert(eq(int, read_after("[1,2]\n", false, &cause), CONN_FAILED));
	free(cause);
	cr_assert(eq(int, read_after("{\"a\":", false, &cause), CONN_TIMEOUT));
	free(cause);
	/* A last line without its newline still counts. */
	cr_assert(eq(int, read_after("{\"a\":1}", true, &cause), CONN_OK));
}

Test(conn, greeting_checked)
{
	char dir[] = "/tmp/test-xmppctl-sock-XXXXXX";
	cr_assert(not(eq(ptr, mkdtemp(dir), NULL)));
	char path[128];
	snprintf(path, sizeof(path), "%s/s", dir);
	struct conn c;
	char *cause = NULL;
	cr_assert(eq(int, conn_open(&c, path, conn_deadline(100), &cause),
		CONN_GONE));
	cr_expect(not(eq(ptr, strstr(cause, "No such file"), NULL)), "%s", cause);
	free(cause);
	conn_close(&c);
	rmdir(dir);
}
