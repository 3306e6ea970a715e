/*
 * xmppctl: the companion command of xmppd, as mpc is to mpd. Each command
 * is one small handler and one row of the table at the end: it parses its
 * options, connects, sends one or two requests and prints the replies for
 * people, or as JSON lines with --json. Exit status: 0 done, 1 the request
 * failed, 2 usage error, 3 xmppd not reachable.
 */
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl/conn.h"
#include "ctl/input.h"
#include "ctl/output.h"
#include "ctl/run.h"
#include "proto/alloc.h"

#ifndef XMPPD_VERSION
#define XMPPD_VERSION "unknown"
#endif

enum {
	CTL_OK = 0,
	CTL_FAILED = 1,
	CTL_USAGE = 2,
	CTL_GONE = 3,
	CTL_CONTINUE = -1,	/* an option parsed, go on */
};

#define DEFAULT_TIMEOUT_MS 60000
#define SEEN_MAX 256
#define NO_PRIORITY LLONG_MAX		/* sent events kept while a send is answered */

struct ctl {
	const char *socket;	/* --socket, or NULL */
	bool json;
	long long timeout_ms;
	const struct command *cmd;
	struct conn conn;
};

struct command {
	const char *name;
	int (*run)(struct ctl *ctl, int argc, char **argv);
	const char *usage;
};

static const struct command commands[];

/* ---- messages and usage ---- */

__attribute__((format(printf, 1, 2)))
static void warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("xmppctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void print_usage(FILE *f)
{
	fputs("usage: xmppctl [--socket PATH] [--json] [--timeout SECONDS]"
		" COMMAND [ARG...]\n\ncommands:\n", f);
	for (const struct command *c = commands; c->name != NULL; c++) {
		fprintf(f, "  %s\n", c->usage);
	}
	fputs("\nEvery command also takes --json, --socket PATH and --timeout"
		" SECONDS.\nSee xmppctl(1).\n", f);
}

/* The command's usage line, or the whole usage before a command. */
static void print_usage_of(const struct ctl *ctl, FILE *f)
{
	if (ctl->cmd != NULL) {
		fprintf(f, "usage: xmppctl %s\n", ctl->cmd->usage);
	} else {
		print_usage(f);
	}
}

__attribute__((format(printf, 2, 3)))
static int usage_error(const struct ctl *ctl, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("xmppctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	print_usage_of(ctl, stderr);
	return CTL_USAGE;
}

/* Reports a connection failure; the exit status that goes with it. */
static int conn_failed(int rc, char *cause)
{
	warn("%s", cause);
	free(cause);
	return rc == CONN_GONE ? CTL_GONE : CTL_FAILED;
}

/* ---- options ---- */

#define COMMON_SHORT "+hjs:t:"
#define COMMON_LONG \
	{ "help", no_argument, NULL, 'h' }, \
	{ "json", no_argument, NULL, 'j' }, \
	{ "socket", required_argument, NULL, 's' }, \
	{ "timeout", required_argument, NULL, 't' }

/* Handles an option every command takes: CTL_CONTINUE, or an exit status
 * (0 after --help). */
static int common_option(struct ctl *ctl, int opt, const char *arg)
{
	switch (opt) {
	case 'j':
		ctl->json = true;
		return CTL_CONTINUE;
	case 's':
		ctl->socket = arg;
		return CTL_CONTINUE;
	case 't':
		if (!input_parse_seconds(arg, &ctl->timeout_ms)) {
			return usage_error(ctl, "--timeout wants seconds (up to"
				" 86400), not '%s'", arg);
		}
		return CTL_CONTINUE;
	case 'h':
		print_usage_of(ctl, stdout);
		return CTL_OK;
	default:	/* getopt said what is wrong */
		print_usage_of(ctl, stderr);
		return CTL_USAGE;
	}
}

/* Parses argv for a command without options of its own. */
static int parse_common(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = { COMMON_LONG, { 0 } };
	int opt;
	while ((opt = getopt_long(argc, argv, COMMON_SHORT, longopts,
			NULL)) != -1) {
		int rc = common_option(ctl, opt, optarg);
		if (rc != CTL_CONTINUE) {
			return rc;
		}
	}
	return CTL_CONTINUE;
}

/* Parses a --since or --max value. */
static bool parse_count(const char *arg, json_int_t *out)
{
	unsigned long long v;
	if (!input_parse_uint(arg, (unsigned long long)LLONG_MAX, &v)) {
		return false;
	}
	*out = (json_int_t)v;
	return true;
}

/* ---- talking to xmppd ---- */

static int ctl_connect(struct ctl *ctl)
{
	char *path = conn_socket_path(ctl->socket);
	char *cause = NULL;
	int rc = conn_open(&ctl->conn, path,
		conn_deadline(ctl->timeout_ms), &cause);
	free(path);
	return rc == CONN_OK ? CTL_OK : conn_failed(rc, cause);
}

/*
 * Sends req (taken over) and waits for its reply until deadline. With
 * --json and print, the reply is printed as it came. A failed reply is
 * reported and gives CTL_FAILED; CTL_OK leaves the reply in *reply.
 */
static int ctl_request(struct ctl *ctl, json_t *req, long long deadline,
	bool print, conn_event_cb cb, void *ud, json_t **reply)
{
	char *cause = NULL;
	json_t *r = NULL;
	int rc = conn_request(&ctl->conn, req, deadline, cb, ud, &r, &cause);
	json_decref(req);
	if (rc != CONN_OK) {
		return conn_failed(rc, cause);
	}
	if (ctl->json && print) {
		output_json(stdout, r);
	}
	if (!json_is_true(json_object_get(r, "ok"))) {
		char *why = conn_describe_error(json_object_get(r, "error"));
		warn("%s", why);
		free(why);
		json_decref(r);
		return CTL_FAILED;
	}
	*reply = r;
	return CTL_OK;
}

/* Connects, sends req (taken over) and prints the reply with show unless
 * --json; the common shape of a simple command. */
static int simple_request(struct ctl *ctl, json_t *req,
	void (*show)(FILE *, const json_t *))
{
	int rc = ctl_connect(ctl);
	if (rc != CTL_OK) {
		json_decref(req);
		return rc;
	}
	json_t *reply;
	rc = ctl_request(ctl, req, conn_deadline(ctl->timeout_ms), true, NULL,
		NULL, &reply);
	if (rc == CTL_OK && !ctl->json && show != NULL) {
		show(stdout, reply);
	}
	if (rc == CTL_OK) {
		json_decref(reply);
	}
	return rc;
}

static json_t *request(const char *cmd)
{
	return json_pack("{s:s}", "cmd", cmd);
}

/* ---- status, roster, join, raw ---- */

static int cmd_status(struct ctl *ctl, int argc, char **argv)
{
	int rc = parse_common(ctl, argc, argv);
	if (rc != CTL_CONTINUE) {
		return rc;
	}
	if (optind != argc) {
		return usage_error(ctl, "status takes no arguments");
	}
	return simple_request(ctl, request("status"), output_fields);
}

static int cmd_roster(struct ctl *ctl, int argc, char **argv)
{
	int rc = parse_common(ctl, argc, argv);
	if (rc != CTL_CONTINUE) {
		return rc;
	}
	if (optind != argc) {
		return usage_error(ctl, "roster takes no arguments");
	}
	return simple_request(ctl, request("roster"), output_roster);
}

static int cmd_join(struct ctl *ctl, int argc, char **argv)
{
	int rc = parse_common(ctl, argc, argv);
	if (rc != CTL_CONTINUE) {
		return rc;
	}
	if (argc - optind != 2) {
		return usage_error(ctl, "join needs a ROOM and a NICK");
	}
	json_t *req = request("muc-join");
	json_object_set_new(req, "room", json_string(argv[optind]));
	json_object_set_new(req, "nick", json_string(argv[optind + 1]));
	if (json_object_size(req) != 3) {
		json_decref(req);
		return usage_error(ctl, "ROOM and NICK must be UTF-8");
	}
	return simple_request(ctl, req, output_join);
}

static int cmd_raw(struct ctl *ctl, int argc, char **argv)
{
	int rc = parse_common(ctl, argc, argv);
	if (rc != CTL_CONTINUE) {
		return rc;
	}
	if (argc - optind != 1) {
		return usage_error(ctl, "raw needs one JSON request");
	}
	json_error_t jerr;
	json_t *req = json_loads(argv[optind], JSON_REJECT_DUPLICATES, &jerr);
	if (req == NULL || !json_is_object(req)) {
		json_decref(req);
		return usage_error(ctl, "not a JSON object: %s", req == NULL ?
			jerr.text : "another JSON value");
	}
	ctl->json = true;	/* the reply as it came, ok or not */
	return simple_request(ctl, req, NULL);
}

/* ---- presence ---- */

static const char *const shows[] = {
	"available", "away", "chat", "dnd", "xa", NULL,
};

static bool is_show(const char *s)
{
	for (size_t i = 0; shows[i] != NULL; i++) {
		if (strcmp(s, shows[i]) == 0) {
			return true;
		}
	}
	return false;
}

/* The operands from argv[from] on, joined by spaces (a new string). */
static char *join_args(int argc, char **argv, int from)
{
	size_t len = 1;
	for (int i = from; i < argc; i++) {
		len += strlen(argv[i]) + 1;
	}
	char *s = xcalloc(1, len);
	for (int i = from; i < argc; i++) {
		if (i > from) {
			strcat(s, " ");
		}
		strcat(s, argv[i]);
	}
	return s;
}

/* The presence request for SHOW [STATUS...], or NULL if not UTF-8. */
static json_t *presence_request(int argc, char **argv, int first,
	json_int_t priority)
{
	json_t *req = request("presence");
	bool ok = true;
	if (first < argc && strcmp(argv[first], "available") != 0) {
		ok = json_object_set_new(req, "show", json_string(argv[first])) == 0;
	}
	if (first + 1 < argc) {
		char *status = join_args(argc, argv, first + 1);
		ok = ok && json_object_set_new(req, "status",
			json_string(status)) == 0;
		free(status);
	}
	if (priority != NO_PRIORITY) {
		json_object_set_new(req, "priority", json_integer(priority));
	}
	if (!ok) {
		json_decref(req);
		return NULL;
	}
	return req;
}

/* --priority: -128 to 127. */
static bool parse_priority(const char *arg, json_int_t *out)
{
	char *end;
	long v = strtol(arg, &end, 10);
	if (end == arg || *end != '\0' || v < -128 || v > 127) {
		return false;
	}
	*out = v;
	return true;
}

static int cmd_presence(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		COMMON_LONG,
		{ "priority", required_argument, NULL, 'p' },
		{ 0 },
	};
	json_int_t priority = NO_PRIORITY;
	int opt;
	while ((opt = getopt_long(argc, argv, COMMON_SHORT "p:", longopts,
			NULL)) != -1) {
		if (opt == 'p' && !parse_priority(optarg, &priority)) {
			return usage_error(ctl, "--priority wants -128 to 127");
		}
		int rc = opt == 'p' ? CTL_CONTINUE : common_option(ctl, opt,
			optarg);
		if (rc != CTL_CONTINUE) {
			return rc;
		}
	}
	if (optind < argc && !is_show(argv[optind])) {
		return usage_error(ctl, "SHOW is available, away, chat, dnd or xa,"
			" not '%s'", argv[optind]);
	}
	json_t *req = presence_request(argc, argv, optind, priority);
	if (req == NULL) {
		return usage_error(ctl, "the status must be UTF-8");
	}
	return simple_request(ctl, req, NULL);
}

/* ---- history ---- */

static int cmd_history(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		COMMON_LONG,
		{ "since", required_argument, NULL, 'S' },
		{ "with", required_argument, NULL, 'w' },
		{ "max", required_argument, NULL, 'm' },
		{ 0 },
	};
	json_t *req = request("history");
	json_int_t n;
	int opt, rc = CTL_CONTINUE;
	while (rc == CTL_CONTINUE && (opt = getopt_long(argc, argv,
			COMMON_SHORT "S:w:m:", longopts, NULL)) != -1) {
		if ((opt == 'S' || opt == 'm') && !parse_count(optarg, &n)) {
			rc = usage_error(ctl, "--%s wants a number, not '%s'",
				opt == 'S' ? "since" : "max", optarg);
		} else if (opt == 'S' || opt == 'm') {
			json_object_set_new(req, opt == 'S' ? "since" : "max",
				json_integer(n));
		} else if (opt == 'w') {
			json_object_set_new(req, "with", json_string(optarg));
		} else {
			rc = common_option(ctl, opt, optarg);
		}
	}
	if (rc == CTL_CONTINUE && optind != argc) {
		rc = usage_error(ctl, "history takes no operands");
	}
	if (rc != CTL_CONTINUE) {
		json_decref(req);
		return rc;
	}
	return simple_request(ctl, req, output_history);
}

/* ---- send ---- */

struct send_opts {
	bool wait;
	const char *type;
	const char *to;
	char *body;
	size_t len;
};

/* Is ev a sent event that ends the wait for a message? */
static bool is_final(const json_t *ev)
{
	const char *name = json_string_value(json_object_get(ev, "event"));
	const char *st = json_string_value(json_object_get(ev, "status"));
	if (name == NULL || strcmp(name, "sent") != 0 || st == NULL) {
		return false;
	}
	return strcmp(st, "acked") == 0 || strcmp(st, "delivered") == 0
		|| strcmp(st, "failed") == 0 || strcmp(st, "expired") == 0;
}

/* Keeps the final sent events that come before the send's reply. */
static void keep_sent(void *ud, json_t *ev, const char *line, size_t len)
{
	json_t *seen = ud;
	if (!is_final(ev)) {
		return;
	}
	if (json_array_size(seen) >= SEEN_MAX) {
		json_array_remove(seen, 0);
	}
	json_array_append(seen, ev);
}

static bool has_msg_id(const json_t *ev, const char *msg_id)
{
	const char *id = json_string_value(json_object_get(ev, "msg_id"));
	return id != NULL && strcmp(id, msg_id) == 0;
}

/* The final sent event of msg_id: among those seen, else the next one to
 * come before deadline. *ev is new. */
static int await_sent(struct ctl *ctl, json_t *seen, const char *msg_id,
	long long deadline, json_t **ev)
{
	size_t i;
	json_t *e;
	json_array_foreach(seen, i, e) {
		if (has_msg_id(e, msg_id)) {
			*ev = json_incref(e);
			return CTL_OK;
		}
	}
	for (;;) {
		char *cause = NULL;
		const char *line;
		size_t len;
		int rc = conn_read(&ctl->conn, deadline, &e, &line, &len, &cause);
		if (rc == CONN_TIMEOUT) {
			free(cause);
			warn("remote-server-timeout: no acknowledgement for %s within"
				" %lld s; it stays in the outbox", msg_id,
				ctl->timeout_ms / 1000);
			return CTL_FAILED;
		}
		if (rc != CONN_OK) {
			return conn_failed(rc, cause);
		}
		if (is_final(e) && has_msg_id(e, msg_id)) {
			*ev = e;
			return CTL_OK;
		}
		json_decref(e);
	}
}

/* Reports the final sent event of a message: acked or delivered is done,
 * anything else failed. */
static int report_sent(struct ctl *ctl, const json_t *ev, const char *msg_id)
{
	if (ctl->json) {
		output_json(stdout, ev);
	}
	const char *st = json_string_value(json_object_get(ev, "status"));
	if (strcmp(st, "acked") == 0 || strcmp(st, "delivered") == 0) {
		return CTL_OK;
	}
	if (strcmp(st, "expired") == 0) {
		warn("expired: %s was not sent within max_age", msg_id);
		return CTL_FAILED;
	}
	char *why = conn_describe_error(ev);
	warn("%s", why);
	free(why);
	return CTL_FAILED;
}

static int subscribe_sent(struct ctl *ctl)
{
	json_t *reply;
	json_t *req = json_pack("{s:s,s:[s]}", "cmd", "subscribe", "events",
		"sent");
	int rc = ctl_request(ctl, req, conn_deadline(ctl->timeout_ms), false,
		NULL, NULL, &reply);
	if (rc == CTL_OK) {
		json_decref(reply);
	}
	return rc;
}

/* The body from the operands from argv[first] on, or from standard input
 * when there are none or only "-". */
static int read_body(int argc, char **argv, int first, struct send_opts *o)
{
	if (first < argc && !(argc - first == 1
			&& strcmp(argv[first], "-") == 0)) {
		o->body = join_args(argc, argv, first);
		o->len = strlen(o->body);
		return CTL_CONTINUE;
	}
	char *cause = NULL;
	if (input_read_all(STDIN_FILENO, INPUT_MAX_BODY, &o->body, &o->len,
			&cause) < 0) {
		warn("%s", cause);
		free(cause);
		return CTL_FAILED;
	}
	input_trim_newlines(o->body, &o->len);
	return CTL_CONTINUE;
}

static int parse_send(struct ctl *ctl, int argc, char **argv,
	struct send_opts *o)
{
	static const struct option longopts[] = {
		COMMON_LONG,
		{ "wait", no_argument, NULL, 'w' },
		{ "type", required_argument, NULL, 'T' },
		{ 0 },
	};
	int opt;
	while ((opt = getopt_long(argc, argv, COMMON_SHORT "wT:", longopts,
			NULL)) != -1) {
		if (opt == 'w') {
			o->wait = true;
		} else if (opt == 'T') {
			o->type = optarg;
		} else {
			int rc = common_option(ctl, opt, optarg);
			if (rc != CTL_CONTINUE) {
				return rc;
			}
		}
	}
	if (optind >= argc) {
		return usage_error(ctl, "send needs a JID");
	}
	o->to = argv[optind];
	return read_body(argc, argv, optind + 1, o);
}

/* The send request, or NULL when some text is not UTF-8. */
static json_t *send_request(const struct send_opts *o)
{
	json_t *req = request("send");
	int bad = json_object_set_new(req, "to", json_string(o->to));
	bad |= json_object_set_new(req, "body", json_stringn(o->body, o->len));
	if (o->type != NULL) {
		bad |= json_object_set_new(req, "type", json_string(o->type));
	}
	if (bad != 0) {
		json_decref(req);
		return NULL;
	}
	return req;
}

/* Prints the msg_id of an accepted message, then waits if asked to. */
static int sent_reply(struct ctl *ctl, const struct send_opts *o,
	const json_t *reply, json_t *seen, long long deadline)
{
	const char *msg_id = json_string_value(json_object_get(reply, "msg_id"));
	if (!ctl->json) {
		printf("%s\n", msg_id != NULL ? msg_id : "");
		fflush(stdout);
	}
	if (!o->wait) {
		return CTL_OK;
	}
	if (msg_id == NULL) {
		warn("the send reply carries no msg_id to wait for");
		return CTL_FAILED;
	}
	json_t *ev;
	int rc = await_sent(ctl, seen, msg_id, deadline, &ev);
	if (rc == CTL_OK) {
		rc = report_sent(ctl, ev, msg_id);
		json_decref(ev);
	}
	return rc;
}

static int do_send(struct ctl *ctl, const struct send_opts *o)
{
	json_t *req = send_request(o);
	if (req == NULL) {
		warn("the message and its JID must be UTF-8 text");
		return CTL_FAILED;
	}
	int rc = ctl_connect(ctl);
	if (rc == CTL_OK && o->wait) {
		rc = subscribe_sent(ctl);
	}
	if (rc != CTL_OK) {
		json_decref(req);
		return rc;
	}
	json_t *seen = json_array();
	json_t *reply;
	long long deadline = conn_deadline(ctl->timeout_ms);
	rc = ctl_request(ctl, req, deadline, true, o->wait ? keep_sent : NULL,
		seen, &reply);
	if (rc == CTL_OK) {
		rc = sent_reply(ctl, o, reply, seen, deadline);
		json_decref(reply);
	}
	json_decref(seen);
	return rc;
}

static int cmd_send(struct ctl *ctl, int argc, char **argv)
{
	struct send_opts o = { 0 };
	int rc = parse_send(ctl, argc, argv, &o);
	if (rc == CTL_CONTINUE) {
		rc = do_send(ctl, &o);
	}
	free(o.body);
	return rc;
}

/* ---- listen ---- */

struct listener {
	struct ctl *ctl;
	const char *exec;	/* --exec, or NULL */
	json_int_t last;	/* the seq to resume after */
};

static void exec_for(struct listener *l, const json_t *ev, json_int_t seq)
{
	char *cause = NULL;
	int st = run_command(l->exec, ev, &cause);
	if (st < 0) {
		warn("%s", cause);
		free(cause);
	} else if (st != 0) {
		warn("the command exited with status %d for seq %" JSON_INTEGER_FORMAT,
			st, seq);
	}
}

/* A message event: printed, or handed to the command. */
static void on_event(void *ud, json_t *ev, const char *line, size_t len)
{
	struct listener *l = ud;
	const char *name = json_string_value(json_object_get(ev, "event"));
	if (name == NULL || strcmp(name, "message") != 0) {
		return;
	}
	json_int_t seq = json_integer_value(json_object_get(ev, "seq"));
	if (l->exec != NULL) {
		exec_for(l, ev, seq);
	} else if (l->ctl->json) {
		fwrite(line, 1, len, stdout);
		fputc('\n', stdout);
	} else {
		output_message(stdout, ev);
	}
	fflush(stdout);
	if (seq > l->last) {
		l->last = seq;
	}
}

/* Notes the subscribe reply: its seq, and any events lost before it. */
static void subscribed(struct listener *l, const json_t *reply)
{
	if (json_is_true(json_object_get(reply, "gap"))) {
		warn("xmppd no longer holds every message after seq %"
			JSON_INTEGER_FORMAT "; the oldest it has is %" JSON_INTEGER_FORMAT,
			l->last, json_integer_value(json_object_get(reply, "oldest")));
	}
	json_int_t seq = json_integer_value(json_object_get(reply, "seq"));
	if (seq > l->last) {
		l->last = seq;
	}
}

/* Handles events until the connection ends. */
static int listen_loop(struct ctl *ctl, struct listener *l)
{
	for (;;) {
		json_t *ev;
		const char *line;
		size_t len;
		char *cause = NULL;
		int rc = conn_read(&ctl->conn, -1, &ev, &line, &len, &cause);
		if (rc != CONN_OK) {
			warn("%s; the last seq was %" JSON_INTEGER_FORMAT
				" (resume with --since %" JSON_INTEGER_FORMAT ")",
				cause, l->last, l->last);
			free(cause);
			return rc == CONN_GONE ? CTL_GONE : CTL_FAILED;
		}
		on_event(l, ev, line, len);
		json_decref(ev);
	}
}

static int start_listen(struct ctl *ctl, json_t *req, const char *exec)
{
	int rc = ctl_connect(ctl);
	if (rc != CTL_OK) {
		json_decref(req);
		return rc;
	}
	struct listener l = { .ctl = ctl, .exec = exec };
	json_t *since = json_object_get(req, "since");
	l.last = since != NULL ? json_integer_value(since) :
		json_integer_value(json_object_get(ctl->conn.hello, "seq"));
	json_t *reply;
	rc = ctl_request(ctl, req, -1, false, on_event, &l, &reply);
	if (rc != CTL_OK) {
		return rc;
	}
	subscribed(&l, reply);
	json_decref(reply);
	return listen_loop(ctl, &l);
}

/* Applies one listen option to req; CTL_CONTINUE or an exit status. */
static int listen_option(struct ctl *ctl, json_t *req, int opt,
	const char **exec)
{
	json_int_t n;
	switch (opt) {
	case 'f':
		if (json_object_set_new(req, "from", json_string(optarg)) != 0) {
			return usage_error(ctl, "--from wants a JID in UTF-8");
		}
		return CTL_CONTINUE;
	case 'S':
		if (!parse_count(optarg, &n)) {
			return usage_error(ctl, "--since wants a seq, not '%s'", optarg);
		}
		json_object_set_new(req, "since", json_integer(n));
		return CTL_CONTINUE;
	case 'e':
		*exec = optarg;
		return CTL_CONTINUE;
	default:
		return common_option(ctl, opt, optarg);
	}
}

static int cmd_listen(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		COMMON_LONG,
		{ "from", required_argument, NULL, 'f' },
		{ "since", required_argument, NULL, 'S' },
		{ "exec", required_argument, NULL, 'e' },
		{ 0 },
	};
	json_t *req = json_pack("{s:s,s:[s]}", "cmd", "subscribe", "events",
		"message");
	const char *exec = NULL;
	int opt, rc = CTL_CONTINUE;
	while (rc == CTL_CONTINUE && (opt = getopt_long(argc, argv,
			COMMON_SHORT "f:S:e:", longopts, NULL)) != -1) {
		rc = listen_option(ctl, req, opt, &exec);
	}
	if (rc == CTL_CONTINUE && optind != argc) {
		rc = usage_error(ctl, "listen takes no operands");
	}
	if (rc != CTL_CONTINUE) {
		json_decref(req);
		return rc;
	}
	return start_listen(ctl, req, exec);
}

/* ---- main ---- */

/* Alphabetical, as the usage lists them. */
static const struct command commands[] = {
	{ "history", cmd_history,
		"history [--since SEQ] [--with JID] [--max N]" },
	{ "join", cmd_join, "join ROOM NICK" },
	{ "listen", cmd_listen,
		"listen [--from JID] [--since SEQ] [--exec COMMAND]" },
	{ "presence", cmd_presence,
		"presence [--priority N] [SHOW [STATUS...]]" },
	{ "raw", cmd_raw, "raw JSON" },
	{ "roster", cmd_roster, "roster" },
	{ "send", cmd_send, "send [--wait] [--type TYPE] JID [TEXT...|-]" },
	{ "status", cmd_status, "status" },
	{ NULL, NULL, NULL },
};

static const struct command *find_command(const char *name)
{
	for (const struct command *c = commands; c->name != NULL; c++) {
		if (strcmp(c->name, name) == 0) {
			return c;
		}
	}
	return NULL;
}

/* The options before the command; CTL_CONTINUE or an exit status. */
static int parse_global(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		COMMON_LONG,
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	int opt;
	while ((opt = getopt_long(argc, argv, COMMON_SHORT "V", longopts,
			NULL)) != -1) {
		if (opt == 'V') {
			printf("xmppctl %s\n", XMPPD_VERSION);
			return CTL_OK;
		}
		int rc = common_option(ctl, opt, optarg);
		if (rc != CTL_CONTINUE) {
			return rc;
		}
	}
	if (optind >= argc) {
		return usage_error(ctl, "no command given");
	}
	ctl->cmd = find_command(argv[optind]);
	if (ctl->cmd == NULL) {
		return usage_error(ctl, "no command '%s'", argv[optind]);
	}
	return CTL_CONTINUE;
}

/* Runs the command on its own argv, named "xmppctl COMMAND" in the
 * messages of getopt, which starts over on it. */
static int dispatch(struct ctl *ctl, int argc, char **argv)
{
	char **sub = xcalloc((size_t)argc + 1, sizeof(*sub));
	char *name = xasprintf("xmppctl %s", argv[0]);
	sub[0] = name;
	memcpy(sub + 1, argv + 1, (size_t)(argc - 1) * sizeof(*sub));
	optind = 0;
	int rc = ctl->cmd->run(ctl, argc, sub);
	free(name);
	free(sub);
	return rc;
}

/* Everything written to stdout must have arrived. */
static int flush_stdout(int rc)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		warn("cannot write the output");
		return rc == CTL_OK ? CTL_FAILED : rc;
	}
	return rc;
}

int main(int argc, char **argv)
{
	struct ctl ctl = { .timeout_ms = DEFAULT_TIMEOUT_MS, .conn.fd = -1 };
	int rc = parse_global(&ctl, argc, argv);
	if (rc == CTL_CONTINUE) {
		rc = dispatch(&ctl, argc - optind, argv + optind);
	}
	conn_close(&ctl.conn);
	return flush_stdout(rc == CTL_CONTINUE ? CTL_OK : rc);
}
