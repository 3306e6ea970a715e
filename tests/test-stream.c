/*
 * Stream negotiation tests. Most are transcripts in tests/data/stream-*.txt:
 *
 *   # comment
 *   config jid=J resource=R password=P tls_required=0|1 direct_tls=0|1
 *          no_tls=0|1
 *          max_stanza=N max_depth=N trace=0|1 sm=0|1
 *          (sm=1 gives the stream a struct sm that outlives it)
 *   online-send: XML   the owner sends XML from inside cb.online
 *   stanza-close       the owner calls stream_close() from inside cb.stanza
 *   start              stream_start()
 *   tls 12|13          stream_tls_ready(): 12 gives tls-unique and
 *                      tls-exporter, 13 only tls-exporter (as GnuTLS does)
 *   S: bytes           server bytes; consecutive S: lines are one read
 *   C: bytes           client bytes expected (concatenated, no newlines)
 *   E: event           a callback expected: start_tls, online JID,
 *                      stanza XML, failed KIND COND TEXT, closed,
 *                      acked TAG, resumed JID, resume_failed, and
 *                      queued TAG XML (from take-queue)
 *   T: line            a trace line expected (with trace=1): "> data" out,
 *                      "< data" in
 *   send: XML          stream_send() from the owner
 *   close              stream_close()
 *   state NAME         stream_state() must be NAME now
 *   mech NAME          stream_mechanism() must be NAME now
 *   send-tagged: TAG XML  stream_send_tagged() from the owner
 *   request-ack 0|1    stream_request_ack() must return this
 *   sm KEY=VALUE ...   the struct sm must hold these now: enabled,
 *                      resumable, id, location, jid (- for NULL), max,
 *                      h_in, h_out, acked, nqueue; stream=0|1 is
 *                      stream_sm_enabled()
 *   take-queue         sm_take_queue(): one "queued" event per entry
 *   reconnect          the connection is cut: the stream is freed
 *                      without a close and a new one made with the same
 *                      config and the same struct sm
 *
 * In S:, C:, E: and T: lines \n, \r, \t and \\ are escapes; in expected
 * lines {b64} matches a run of base64 characters and {*} any text up to
 * the end of the line. Before each action the client's output and events
 * so far must match the expectation so far, so ordering is checked turn
 * by turn. Each transcript runs with every read whole, then once for
 * every offset with the read holding that offset split there, and once a
 * byte at a time: all runs must match the same expectation. Bytes of a
 * read after cb.start_tls are dropped, as the transport would hand them
 * to TLS.
 */
#include <glob.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <criterion/parameterized.h>
#include <gsasl.h>

#include "proto/alloc.h"
#include "proto/buf.h"
#include "proto/ns.h"
#include "proto/reader.h"
#include "proto/sm.h"
#include "proto/stream.h"
#include "proto/xml.h"

#ifndef TEST_DATA_DIR
#define TEST_DATA_DIR "tests/data"
#endif

#define WHOLE SIZE_MAX
#define BYTEWISE (SIZE_MAX - 1)

static const unsigned char fake_unique[12] = "0123456789ab";
static const unsigned char fake_exporter[32] = "exporter-exporter-exporter-expor";

static const struct stream_tls_info tls12 = {
	.version = 12,
	.tls_unique = fake_unique,
	.tls_unique_len = sizeof(fake_unique),
	.tls_exporter = fake_exporter,
	.tls_exporter_len = sizeof(fake_exporter),
};

static const struct stream_tls_info tls13 = {
	.version = 13,
	.tls_exporter = fake_exporter,
	.tls_exporter_len = sizeof(fake_exporter),
};

/* ---- the owner side of a stream, recording what happens ---- */

struct run {
	struct stream *s;
	struct stream_config cfg;	/* for reconnect */
	bool traced;
	struct sm sm;			/* cfg.sm points here with sm=1 */
	struct buf log;		/* client bytes and "\n@event\n" lines */
	struct buf trace;	/* "> data\n" / "< data\n" */
	char *online_send;
	bool stanza_close;
	bool drop_rest;		/* start_tls happened during this read */
	size_t nstanzas;
	size_t nfailed;
};

static void on_send(void *ud, const char *data, size_t len)
{
	struct run *r = ud;
	buf_append(&r->log, data, len);
}

static void on_start_tls(void *ud)
{
	struct run *r = ud;
	buf_puts(&r->log, "\n@start_tls\n");
	r->drop_rest = true;
}

static void on_online(void *ud, const char *jid)
{
	struct run *r = ud;
	buf_printf(&r->log, "\n@online %s\n", jid);
	if (r->online_send != NULL) {
		const char *err = NULL;
		struct xml *x = reader_parse_element(r->online_send,
			strlen(r->online_send), NS_CLIENT, &err);
		cr_assert(x != NULL, "online-send: %s", err);
		cr_assert(stream_send(r->s, x));
		xml_free(x);
	}
}

static void on_stanza(void *ud, struct xml *x)
{
	struct run *r = ud;
	char *str = xml_to_string(x, NS_CLIENT);
	buf_printf(&r->log, "\n@stanza %s\n", str ? str : "(unserializable)");
	free(str);
	r->nstanzas++;
	if (r->stanza_close) {
		stream_close(r->s);
	}
}

static const char *const fail_names[] = {
	[STREAM_FAIL_PROTOCOL] = "PROTOCOL",
	[STREAM_FAIL_TLS] = "TLS",
	[STREAM_FAIL_AUTH] = "AUTH",
	[STREAM_FAIL_STREAM_ERROR] = "STREAM_ERROR",
	[STREAM_FAIL_BIND] = "BIND",
	[STREAM_FAIL_CLOSED] = "CLOSED",
};

static void on_failed(void *ud, enum stream_fail kind, const char *cond,
	const char *text)
{
	struct run *r = ud;
	r->nfailed++;
	buf_printf(&r->log, "\n@failed %s %s %s\n", fail_names[kind],
		cond ? cond : "-", text ? text : "-");
}

static void on_closed(void *ud)
{
	struct run *r = ud;
	buf_puts(&r->log, "\n@closed\n");
}

static void on_trace(void *ud, bool out, const char *data, size_t len)
{
	struct run *r = ud;
	buf_puts(&r->trace, out ? "> " : "< ");
	buf_append(&r->trace, data, len);
	buf_putc(&r->trace, '\n');
}

static void on_state(void *ud, enum stream_state old, enum stream_state new)
{
	cr_assert(old != new);
	cr_assert(eq(int, stream_state(((struct run *)ud)->s), new));
}

static void on_acked(void *ud, uint64_t tag)
{
	struct run *r = ud;
	buf_printf(&r->log, "\n@acked %" PRIu64 "\n", tag);
}

static void on_resumed(void *ud, const char *jid)
{
	struct run *r = ud;
	buf_printf(&r->log, "\n@resumed %s\n", jid);
}

static void on_resume_failed(void *ud)
{
	struct run *r = ud;
	buf_puts(&r->log, "\n@resume_failed\n");
}

static const struct stream_cb callbacks = {
	.send = on_send,
	.start_tls = on_start_tls,
	.online = on_online,
	.stanza = on_stanza,
	.failed = on_failed,
	.closed = on_closed,
	.state = on_state,
	.acked = on_acked,
	.resumed = on_resumed,
	.resume_failed = on_resume_failed,
};

static const struct stream_cb trace_callbacks = {
	.send = on_send,
	.start_tls = on_start_tls,
	.online = on_online,
	.stanza = on_stanza,
	.failed = on_failed,
	.closed = on_closed,
	.trace = on_trace,
	.state = on_state,
	.acked = on_acked,
	.resumed = on_resumed,
	.resume_failed = on_resume_failed,
};

/* A run whose stream uses the run's own struct sm when use_sm is set. */
static void run_init_sm(struct run *r, const struct stream_config *cfg,
	bool trace, bool use_sm)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->log);
	buf_init(&r->trace);
	sm_init(&r->sm);
	r->cfg = *cfg;
	r->cfg.sm = use_sm ? &r->sm : NULL;
	r->traced = trace;
	r->s = stream_new(&r->cfg, trace ? &trace_callbacks : &callbacks, r);
}

static void run_init(struct run *r, const struct stream_config *cfg,
	bool trace)
{
	run_init_sm(r, cfg, trace, false);
}

/* The connection is cut and a new one made: same config, same sm. */
static void run_reconnect(struct run *r)
{
	stream_free(r->s);
	r->s = NULL;
	r->nfailed = 0;
	r->s = stream_new(&r->cfg, r->traced ? &trace_callbacks : &callbacks,
		r);
}

static void run_finish(struct run *r)
{
	stream_free(r->s);
	sm_finish(&r->sm);
	buf_finish(&r->log);
	buf_finish(&r->trace);
	free(r->online_send);
}

static void feed(struct run *r, const char *data, size_t len)
{
	if (r->drop_rest || len == 0) {
		return;
	}
	bool ok = stream_feed(r->s, data, len);
	cr_assert(eq(int, ok, stream_state(r->s) != STREAM_FAILED));
	cr_assert(r->nfailed <= 1, "cb.failed ran more than once");
}

static void feed_str(struct run *r, const char *data)
{
	r->drop_rest = false;
	feed(r, data, strlen(data));
}

/* ---- transcripts ---- */

enum step_kind {
	STEP_CONFIG,
	STEP_ONLINE_SEND,
	STEP_STANZA_CLOSE,
	STEP_START,
	STEP_TLS,
	STEP_SERVER,
	STEP_CLIENT,
	STEP_EVENT,
	STEP_TRACE,
	STEP_SEND,
	STEP_CLOSE,
	STEP_STATE,
	STEP_MECH,
	STEP_SEND_TAGGED,
	STEP_REQUEST_ACK,
	STEP_SM,
	STEP_TAKE_QUEUE,
	STEP_RECONNECT,
};

struct step {
	enum step_kind kind;
	char *text;
	size_t len;
	int line;
};

struct transcript {
	const char *name;
	struct step *steps;
	size_t nsteps;
	size_t cap;
};

static char *unescape(const char *s, size_t *len)
{
	struct buf b;
	buf_init(&b);
	buf_puts(&b, "");
	for (; *s != '\0'; s++) {
		if (*s != '\\' || s[1] == '\0') {
			buf_putc(&b, *s);
			continue;
		}
		s++;
		buf_putc(&b, *s == 'n' ? '\n' : *s == 'r' ? '\r'
			: *s == 't' ? '\t' : *s);
	}
	return buf_steal(&b, len);
}

static void add_step(struct transcript *t, enum step_kind kind,
	const char *text, int line)
{
	struct step *last = t->nsteps ? &t->steps[t->nsteps - 1] : NULL;
	size_t len;
	char *u = unescape(text, &len);
	if (kind == STEP_SERVER && last != NULL && last->kind == STEP_SERVER) {
		last->text = realloc(last->text, last->len + len + 1);
		memcpy(last->text + last->len, u, len + 1);
		last->len += len;
		free(u);
		return;
	}
	if (t->nsteps == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 32;
		t->steps = realloc(t->steps, t->cap * sizeof(*t->steps));
	}
	t->steps[t->nsteps++] = (struct step){ kind, u, len, line };
}

static const struct {
	const char *prefix;
	enum step_kind kind;
} keywords[] = {
	{ "config ", STEP_CONFIG }, { "online-send: ", STEP_ONLINE_SEND },
	{ "stanza-close", STEP_STANZA_CLOSE }, { "start", STEP_START },
	{ "tls ", STEP_TLS }, { "S: ", STEP_SERVER }, { "C: ", STEP_CLIENT },
	{ "E: ", STEP_EVENT }, { "T: ", STEP_TRACE }, { "send: ", STEP_SEND },
	{ "close", STEP_CLOSE }, { "state ", STEP_STATE }, { "mech ", STEP_MECH },
	{ "send-tagged: ", STEP_SEND_TAGGED },
	{ "request-ack ", STEP_REQUEST_ACK }, { "sm ", STEP_SM },
	{ "take-queue", STEP_TAKE_QUEUE }, { "reconnect", STEP_RECONNECT },
};

static void parse_line(struct transcript *t, const char *line, int n)
{
	if (line[0] == '#' || line[0] == '\0') {
		return;
	}
	for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
		size_t len = strlen(keywords[i].prefix);
		if (strncmp(line, keywords[i].prefix, len) == 0) {
			add_step(t, keywords[i].kind, line + len, n);
			return;
		}
	}
	cr_fatal("%s:%d: cannot parse: %s", t->name, n, line);
}

static void load(struct transcript *t, const char *name)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", TEST_DATA_DIR, name);
	FILE *f = fopen(path, "r");
	cr_assert(f != NULL, "cannot open %s", path);
	memset(t, 0, sizeof(*t));
	t->name = name;
	char *line = NULL;
	size_t cap = 0;
	ssize_t got;
	int n = 0;
	while ((got = getline(&line, &cap, f)) >= 0) {
		n++;
		while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) {
			line[--got] = '\0';
		}
		parse_line(t, line, n);
	}
	free(line);
	fclose(f);
}

static void unload(struct transcript *t)
{
	for (size_t i = 0; i < t->nsteps; i++) {
		free(t->steps[i].text);
	}
	free(t->steps);
}

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";

/* Does s match pattern p ({b64} and {*} wildcards)? */
static bool match(const char *p, const char *s)
{
	while (*p != '\0') {
		if (strncmp(p, "{b64}", 5) == 0) {
			p += 5;
			s += strspn(s, b64chars);
			continue;
		}
		if (strncmp(p, "{*}", 3) == 0) {
			p += 3;
			for (;; s++) {
				if (match(p, s)) {
					return true;
				}
				if (*s == '\0' || *s == '\n') {
					return false;
				}
			}
		}
		if (*p != *s) {
			return false;
		}
		p++;
		s++;
	}
	return *s == '\0';
}

static const char *mode_name(size_t split, char *tmp, size_t n)
{
	if (split == WHOLE) {
		return "whole";
	}
	if (split == BYTEWISE) {
		return "byte by byte";
	}
	snprintf(tmp, n, "split at %zu", split);
	return tmp;
}

static void check(struct run *r, struct buf *want, struct buf *want_trace,
	const struct transcript *t, const struct step *st, size_t split)
{
	char tmp[64];
	const char *got = r->log.data ? r->log.data : "";
	const char *exp = want->data ? want->data : "";
	cr_assert(match(exp, got), "%s:%d (%s):\nexpected:\n%s\ngot:\n%s\n",
		t->name, st ? st->line : 0, mode_name(split, tmp, sizeof(tmp)),
		exp, got);
	if (want_trace->len > 0) {
		cr_assert(match(want_trace->data, r->trace.data ? r->trace.data : ""),
			"%s:%d trace:\nexpected:\n%s\ngot:\n%s\n", t->name,
			st ? st->line : 0, want_trace->data, r->trace.data);
	}
}

static void parse_config(struct stream_config *cfg, char *text, bool *trace,
	bool *use_sm)
{
	for (char *kv = strtok(text, " "); kv != NULL; kv = strtok(NULL, " ")) {
		char *v = strchr(kv, '=');
		cr_assert(v != NULL, "bad config %s", kv);
		*v++ = '\0';
		if (strcmp(kv, "jid") == 0) {
			cfg->jid = v;
		} else if (strcmp(kv, "resource") == 0) {
			cfg->resource = v;
		} else if (strcmp(kv, "password") == 0) {
			cfg->password = v;
		} else if (strcmp(kv, "tls_required") == 0) {
			cfg->tls_required = atoi(v);
		} else if (strcmp(kv, "direct_tls") == 0) {
			cfg->direct_tls = atoi(v);
		} else if (strcmp(kv, "no_tls") == 0) {
			cfg->no_tls = atoi(v);
		} else if (strcmp(kv, "max_stanza") == 0) {
			cfg->limits.max_stanza = (size_t)atol(v);
		} else if (strcmp(kv, "max_depth") == 0) {
			cfg->limits.max_depth = (unsigned)atoi(v);
		} else if (strcmp(kv, "trace") == 0) {
			*trace = atoi(v);
		} else if (strcmp(kv, "sm") == 0) {
			*use_sm = atoi(v);
		} else {
			cr_fatal("unknown config key %s", kv);
		}
	}
}

/* Feeds one server read, split as the mode asks; *off counts bytes. */
static void feed_step(struct run *r, const struct step *st, size_t split,
	size_t *off)
{
	r->drop_rest = false;
	if (split == BYTEWISE) {
		for (size_t i = 0; i < st->len; i++) {
			feed(r, st->text + i, 1);
		}
	} else if (split != WHOLE && split > *off && split < *off + st->len) {
		size_t k = split - *off;
		feed(r, st->text, k);
		feed(r, st->text + k, st->len - k);
	} else {
		feed(r, st->text, st->len);
	}
	*off += st->len;
}

static void owner_send(struct run *r, const char *text)
{
	const char *err = NULL;
	struct xml *x = reader_parse_element(text, strlen(text), NS_CLIENT, &err);
	cr_assert(x != NULL, "send: %s", err);
	stream_send(r->s, x);
	xml_free(x);
}

/* "TAG XML": stream_send_tagged(), which must succeed. */
static void owner_send_tagged(struct run *r, const struct step *st)
{
	char *end;
	uint64_t tag = strtoull(st->text, &end, 10);
	cr_assert(end[0] == ' ', "line %d: send-tagged: TAG XML", st->line);
	const char *err = NULL;
	struct xml *x = reader_parse_element(end + 1, strlen(end + 1),
		NS_CLIENT, &err);
	cr_assert(x != NULL, "send-tagged: %s", err);
	cr_assert(stream_send_tagged(r->s, x, tag), "line %d", st->line);
	xml_free(x);
}

static void take_queue(struct run *r)
{
	size_t n;
	struct sm_entry *q = sm_take_queue(&r->sm, &n);
	for (size_t i = 0; i < n; i++) {
		buf_printf(&r->log, "\n@queued %" PRIu64 " ", q[i].tag);
		buf_append(&r->log, q[i].data, q[i].len);
		buf_putc(&r->log, '\n');
		free(q[i].data);
	}
	free(q);
}

static void check_sm_str(const char *got, const char *want, const char *key,
	int line)
{
	cr_assert(eq(str, (char *)(got != NULL ? got : "-"), (char *)want),
		"line %d: sm %s", line, key);
}

static void check_sm_num(uint64_t got, const char *want, const char *key,
	int line)
{
	cr_assert(eq(u64, got, strtoull(want, NULL, 10)), "line %d: sm %s",
		line, key);
}

/* "sm KEY=VALUE ...": each named field of the run's struct sm. */
static void check_sm(struct run *r, const struct step *st)
{
	char *text = strdup(st->text), *save = NULL;
	for (char *kv = strtok_r(text, " ", &save); kv != NULL;
			kv = strtok_r(NULL, " ", &save)) {
		char *v = strchr(kv, '=');
		cr_assert(v != NULL, "line %d: bad sm check %s", st->line, kv);
		*v++ = '\0';
		const struct sm *sm = &r->sm;
		if (strcmp(kv, "enabled") == 0) {
			check_sm_num(sm->enabled, v, kv, st->line);
		} else if (strcmp(kv, "resumable") == 0) {
			check_sm_num(sm->resumable, v, kv, st->line);
		} else if (strcmp(kv, "stream") == 0) {
			check_sm_num(stream_sm_enabled(r->s), v, kv, st->line);
		} else if (strcmp(kv, "id") == 0) {
			check_sm_str(sm->id, v, kv, st->line);
		} else if (strcmp(kv, "location") == 0) {
			check_sm_str(sm->location, v, kv, st->line);
		} else if (strcmp(kv, "jid") == 0) {
			check_sm_str(sm->jid, v, kv, st->line);
		} else if (strcmp(kv, "max") == 0) {
			check_sm_num(sm->max, v, kv, st->line);
		} else if (strcmp(kv, "h_in") == 0) {
			check_sm_num(sm->h_in, v, kv, st->line);
		} else if (strcmp(kv, "h_out") == 0) {
			check_sm_num(sm->h_out, v, kv, st->line);
		} else if (strcmp(kv, "acked") == 0) {
			check_sm_num(sm->acked, v, kv, st->line);
		} else if (strcmp(kv, "nqueue") == 0) {
			check_sm_num(sm->nqueue, v, kv, st->line);
		} else {
			cr_fatal("line %d: unknown sm key %s", st->line, kv);
		}
	}
	free(text);
}

static void do_action(struct run *r, const struct step *st, size_t split,
	size_t *off)
{
	switch (st->kind) {
	case STEP_START:
		stream_start(r->s);
		break;
	case STEP_TLS:
		stream_tls_ready(r->s, atoi(st->text) == 12 ? &tls12 : &tls13);
		break;
	case STEP_SERVER:
		feed_step(r, st, split, off);
		break;
	case STEP_SEND:
		owner_send(r, st->text);
		break;
	case STEP_CLOSE:
		stream_close(r->s);
		break;
	case STEP_STATE:
		cr_assert(eq(str, (char *)stream_state_name(stream_state(r->s)),
			st->text), "line %d", st->line);
		break;
	case STEP_MECH:
		cr_assert(eq(str, (char *)(stream_mechanism(r->s)
			? stream_mechanism(r->s) : "-"), st->text),
			"line %d", st->line);
		break;
	case STEP_SEND_TAGGED:
		owner_send_tagged(r, st);
		break;
	case STEP_REQUEST_ACK:
		cr_assert(eq(int, stream_request_ack(r->s), atoi(st->text)),
			"line %d", st->line);
		break;
	case STEP_SM:
		check_sm(r, st);
		break;
	case STEP_TAKE_QUEUE:
		take_queue(r);
		break;
	case STEP_RECONNECT:
		run_reconnect(r);
		break;
	default:
		break;
	}
}

static size_t setup(struct run *r, const struct transcript *t, char **cfgtext)
{
	struct stream_config cfg = { 0 };
	bool trace = false, use_sm = false;
	size_t i = 0;
	*cfgtext = NULL;
	if (t->nsteps > 0 && t->steps[0].kind == STEP_CONFIG) {
		*cfgtext = strdup(t->steps[0].text);
		parse_config(&cfg, *cfgtext, &trace, &use_sm);
		i = 1;
	}
	run_init_sm(r, &cfg, trace, use_sm);
	for (; i < t->nsteps; i++) {
		if (t->steps[i].kind == STEP_ONLINE_SEND) {
			r->online_send = strdup(t->steps[i].text);
		} else if (t->steps[i].kind == STEP_STANZA_CLOSE) {
			r->stanza_close = true;
		} else {
			break;
		}
	}
	return i;
}

static void append_expected(struct buf *want, struct buf *want_trace,
	const struct step *st)
{
	if (st->kind == STEP_CLIENT) {
		buf_append(want, st->text, st->len);
	} else if (st->kind == STEP_EVENT) {
		buf_printf(want, "\n@%s\n", st->text);
	} else {
		buf_printf(want_trace, "%s\n", st->text);
	}
}

static void run_transcript(const struct transcript *t, size_t split)
{
	struct run r;
	char *cfgtext;
	struct buf want, want_trace;
	buf_init(&want);
	buf_init(&want_trace);
	size_t off = 0;
	size_t i = setup(&r, t, &cfgtext);
	for (; i < t->nsteps; i++) {
		const struct step *st = &t->steps[i];
		if (st->kind == STEP_CLIENT || st->kind == STEP_EVENT
				|| st->kind == STEP_TRACE) {
			append_expected(&want, &want_trace, st);
			continue;
		}
		check(&r, &want, &want_trace, t, st, split);
		do_action(&r, st, split, &off);
	}
	check(&r, &want, &want_trace, t, NULL, split);
	run_finish(&r);
	free(cfgtext);
	buf_finish(&want);
	buf_finish(&want_trace);
}

static size_t server_bytes(const struct transcript *t)
{
	size_t n = 0;
	for (size_t i = 0; i < t->nsteps; i++) {
		if (t->steps[i].kind == STEP_SERVER) {
			n += t->steps[i].len;
		}
	}
	return n;
}

static const char *const transcripts[] = {
	"stream-starttls.txt",
	"stream-direct-tls.txt",
	"stream-tls-required.txt",
	"stream-tls-optional.txt",
	"stream-starttls-failure.txt",
	"stream-starttls-injection.txt",
	"stream-auth-failure.txt",
	"stream-bind-resource.txt",
	"stream-bind-conflict.txt",
	"stream-bind-conflict-twice.txt",
	"stream-bind-error.txt",
	"stream-bind-missing.txt",
	"stream-bind-bad-jid.txt",
	"stream-session-mandatory.txt",
	"stream-session-optional.txt",
	"stream-session-error.txt",
	"stream-error-negotiation.txt",
	"stream-error-online.txt",
	"stream-not-well-formed.txt",
	"stream-restricted-xml.txt",
	"stream-policy-violation.txt",
	"stream-close.txt",
	"stream-close-stanzas.txt",
	"stream-server-close.txt",
	"stream-bad-header.txt",
	"stream-bad-version.txt",
	"stream-bad-content-ns.txt",
	"stream-unexpected.txt",
	"stream-plus-tls12.txt",
	"stream-plus-tls13.txt",
	"stream-plus-xep0440.txt",
	"stream-no-plain-without-tls.txt",
	"stream-scram-without-tls.txt",
	"stream-no-tls.txt",
	"stream-no-mechanisms.txt",
	"stream-reentrant.txt",
	"stream-trace.txt",
	"stream-trace-upload.txt",
	"stream-sm-enable.txt",
	"stream-sm-enable-failed.txt",
	"stream-sm-counting.txt",
	"stream-sm-ack.txt",
	"stream-sm-auto-request.txt",
	"stream-sm-h-too-high.txt",
	"stream-sm-resume.txt",
	"stream-sm-resume-failed.txt",
	"stream-sm-resume-failed-no-h.txt",
	"stream-sm-resume-not-offered.txt",
	"stream-sm-resume-mismatch.txt",
	"stream-sm-close.txt",
	"stream-sm-trace.txt",
};

#define NTRANSCRIPTS (sizeof(transcripts) / sizeof(transcripts[0]))

/* Parameters are copied into the test process by value: no pointers. */
struct param {
	char name[64];
};

ParameterizedTestParameters(stream, transcript)
{
	static struct param params[NTRANSCRIPTS];
	for (size_t i = 0; i < NTRANSCRIPTS; i++) {
		snprintf(params[i].name, sizeof(params[i].name), "%s",
			transcripts[i]);
	}
	return cr_make_param_array(struct param, params, NTRANSCRIPTS, NULL);
}

ParameterizedTest(struct param *p, stream, transcript, .timeout = 60)
{
	struct transcript t;
	load(&t, p->name);
	run_transcript(&t, WHOLE);
	run_transcript(&t, BYTEWISE);
	size_t n = server_bytes(&t);
	for (size_t k = 1; k < n; k++) {
		run_transcript(&t, k);
	}
	unload(&t);
}

Test(stream, every_transcript_is_listed)
{
	glob_t g;
	cr_assert(eq(int, glob(TEST_DATA_DIR "/stream-*.txt", 0, NULL, &g), 0));
	cr_expect(eq(sz, g.gl_pathc, NTRANSCRIPTS));
	for (size_t i = 0; i < g.gl_pathc; i++) {
		const char *base = strrchr(g.gl_pathv[i], '/') + 1;
		bool found = false;
		for (size_t j = 0; j < NTRANSCRIPTS; j++) {
			found = found || strcmp(base, transcripts[j]) == 0;
		}
		cr_expect(found, "%s is not in transcripts[]", base);
	}
	globfree(&g);
}

/* ---- hand-driven tests ---- */

#define SERVER_HEADER "<?xml version='1.0'?><stream:stream " \
	"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' " \
	"id='s1' from='example.com' version='1.0' xml:lang='en'>"

#define BIND_FEATURES "<stream:features><bind xmlns='" NS_BIND "'/>" \
	"</stream:features>"

static const struct stream_config direct_cfg = {
	.jid = "juliet@example.com",
	.resource = "balcony",
	.password = "r0m30",
	.tls_required = true,
	.direct_tls = true,
};

/* Brings a direct-TLS stream with PLAIN online. */
static void go_online(struct run *r, bool trace)
{
	run_init(r, &direct_cfg, trace);
	stream_tls_ready(r->s, &tls13);
	feed_str(r, SERVER_HEADER "<stream:features><mechanisms xmlns='"
		NS_SASL "'><mechanism>PLAIN</mechanism></mechanisms>"
		"</stream:features>");
	feed_str(r, "<success xmlns='" NS_SASL "'/>");
	feed_str(r, SERVER_HEADER BIND_FEATURES);
	feed_str(r, "<iq type='result' id='bind_1'><bind xmlns='" NS_BIND
		"'><jid>juliet@example.com/balcony</jid></bind></iq>");
	cr_assert(eq(int, stream_state(r->s), STREAM_ONLINE));
	cr_assert(eq(str, (char *)stream_jid(r->s),
		"juliet@example.com/balcony"));
}

Test(stream, stanza_delivered_on_its_last_byte)
{
	struct run r;
	go_online(&r, false);
	const char *msg = "<message from='romeo@example.net/orchard' "
		"type='chat'><body>hi</body></message>";
	size_t len = strlen(msg);
	for (int round = 0; round < 2; round++) {
		size_t before = r.nstanzas;
		for (size_t i = 0; i + 1 < len; i++) {
			feed(&r, msg + i, 1);
			cr_assert(eq(sz, r.nstanzas, before), "early at byte %zu", i);
		}
		feed(&r, msg + len - 1, 1);
		cr_assert(eq(sz, r.nstanzas, before + 1));
	}
	run_finish(&r);
}

Test(stream, send_only_while_online)
{
	struct run r;
	run_init(&r, &direct_cfg, false);
	struct xml *x = xml_new("presence", NS_CLIENT);
	cr_assert(eq(int, stream_send(r.s, x), false));
	run_finish(&r);
	go_online(&r, false);
	buf_reset(&r.log);
	cr_assert(stream_send(r.s, x));
	cr_assert(eq(str, r.log.data, "<presence/>"));
	xml_set_attr(x, "to", "bad\001");
	cr_assert(eq(int, stream_send(r.s, x), false));
	stream_close(r.s);
	xml_set_attr(x, "to", NULL);
	cr_assert(eq(int, stream_send(r.s, x), false));
	xml_free(x);
	run_finish(&r);
}

Test(stream, plaintext_during_tls_handshake_fails)
{
	/* After cb.start_tls the transport must not feed plaintext. */
	const struct stream_config cfg = { .jid = "juliet@example.com",
		.password = "r0m30", .tls_required = true };
	struct run r;
	run_init(&r, &cfg, false);
	stream_start(r.s);
	feed_str(&r, SERVER_HEADER "<stream:features><starttls xmlns='"
		NS_TLS "'/></stream:features>");
	feed_str(&r, "<proceed xmlns='" NS_TLS "'/>");
	cr_assert(eq(int, stream_state(r.s), STREAM_TLS));
	buf_reset(&r.log);
	r.drop_rest = false;
	cr_assert(eq(int, stream_feed(r.s, "<x/>", 4), false));
	cr_assert(eq(str, r.log.data, "\n@failed PROTOCOL bad-format "
		"data from the server before the stream started\n"));
	run_finish(&r);
}

Test(stream, data_before_start_fails)
{
	struct run r;
	run_init(&r, &direct_cfg, false);
	cr_assert(eq(int, stream_feed(r.s, SERVER_HEADER, strlen(SERVER_HEADER)),
		false));
	cr_assert(eq(sz, r.nfailed, 1));
	run_finish(&r);
}

Test(stream, close_before_start)
{
	struct run r;
	run_init(&r, &direct_cfg, false);
	stream_close(r.s);
	cr_assert(eq(str, r.log.data, "\n@closed\n"));
	cr_assert(eq(int, stream_state(r.s), STREAM_CLOSED));
	run_finish(&r);
}

Test(stream, features_kept)
{
	struct run r;
	go_online(&r, false);
	const struct xml *f = stream_features(r.s);
	cr_assert(f != NULL);
	cr_assert(xml_child(f, "bind", NS_BIND) != NULL);
	run_finish(&r);
}

Test(stream, state_names)
{
	cr_assert(eq(str, (char *)stream_state_name(STREAM_ONLINE), "online"));
	cr_assert(eq(str, (char *)stream_state_name(STREAM_FAILED), "failed"));
	cr_assert(eq(str, (char *)stream_state_name((enum stream_state)99),
		"unknown"));
}

Test(stream, nothing_traced_without_trace)
{
	/* The trace buffer stays empty when cb.trace is NULL. */
	struct run r;
	go_online(&r, false);
	cr_assert(eq(sz, r.trace.len, 0));
	run_finish(&r);
}

/* ---- stream management by hand ---- */

#define SM_FEATURES "<stream:features><bind xmlns='" NS_BIND "'/>" \
	"<sm xmlns='" NS_SM "'/></stream:features>"

/* Brings a managed stream online (or resumed) with callbacks cb. */
static void sm_online(struct run *r, const struct stream_cb *cb)
{
	if (r->s == NULL) {
		run_init_sm(r, &direct_cfg, false, true);
	}
	stream_free(r->s);
	r->s = stream_new(&r->cfg, cb, r);
	stream_tls_ready(r->s, &tls13);
	feed_str(r, SERVER_HEADER "<stream:features><mechanisms xmlns='"
		NS_SASL "'><mechanism>PLAIN</mechanism></mechanisms>"
		"</stream:features>");
	feed_str(r, "<success xmlns='" NS_SASL "'/>");
	feed_str(r, SERVER_HEADER SM_FEATURES);
	if (stream_state(r->s) == STREAM_BIND) {
		feed_str(r, "<iq type='result' id='bind_1'><bind xmlns='" NS_BIND
			"'><jid>juliet@example.com/balcony</jid></bind></iq>");
		feed_str(r, "<enabled xmlns='" NS_SM "' id='x' resume='true'/>");
	} else {
		feed_str(r, "<resumed xmlns='" NS_SM "' h='0' previd='x'/>");
	}
	cr_assert(eq(int, stream_state(r->s), STREAM_ONLINE), "%s", r->log.data);
	cr_assert(stream_sm_enabled(r->s));
}

static void send_presence(struct run *r, uint64_t tag)
{
	struct xml *x = xml_new("presence", NS_CLIENT);
	cr_assert(stream_send_tagged(r->s, x, tag));
	xml_free(x);
}

/* The owner sends its next stanza from inside cb.acked. */
static void on_acked_send(void *ud, uint64_t tag)
{
	struct run *r = ud;
	on_acked(ud, tag);
	if (tag < 10) {
		send_presence(r, tag + 10);
	}
}

Test(stream, sm_send_from_acked)
{
	struct stream_cb cb = callbacks;
	cb.acked = on_acked_send;
	struct run r = { 0 };
	sm_online(&r, &cb);
	buf_reset(&r.log);
	send_presence(&r, 1);
	send_presence(&r, 2);
	feed_str(&r, "<a xmlns='" NS_SM "' h='2'/>");
	cr_assert(eq(str, r.log.data, "<presence/><presence/>\n@acked 1\n"
		"<presence/>\n@acked 2\n<presence/>"));
	cr_assert(eq(sz, r.sm.nqueue, 2));
	cr_assert(eq(u64, r.sm.queue[0].tag, 11));
	cr_assert(eq(u32, r.sm.queue[1].seq, 4));
	buf_reset(&r.log);
	feed_str(&r, "<a xmlns='" NS_SM "' h='4'/>");
	cr_assert(eq(str, r.log.data, "\n@acked 11\n\n@acked 12\n"));
	cr_assert(eq(sz, r.sm.nqueue, 0));
	/* The fifth stanza since the last request brings an <r/>. */
	buf_reset(&r.log);
	send_presence(&r, 20);
	cr_assert(eq(str, r.log.data, "<presence/><r xmlns='" NS_SM "'/>"));
	run_finish(&r);
}

Test(stream, sm_resumed_without_callback_is_online)
{
	struct stream_cb cb = callbacks;
	cb.resumed = NULL;
	struct run r = { 0 };
	sm_online(&r, &cb);
	cr_assert(r.sm.resumable);
	buf_reset(&r.log);
	sm_online(&r, &cb);
	cr_assert(strstr(r.log.data, "<resume xmlns=") != NULL);
	cr_assert(strstr(r.log.data, "\n@online juliet@example.com/balcony\n")
		!= NULL, "%s", r.log.data);
	cr_assert(eq(str, (char *)stream_jid(r.s), "juliet@example.com/balcony"));
	run_finish(&r);
}

Test(stream, sm_never_without_state)
{
	/* With cfg.sm NULL an offered <sm/> changes nothing. */
	struct run r;
	run_init(&r, &direct_cfg, false);
	stream_tls_ready(r.s, &tls13);
	feed_str(&r, SERVER_HEADER "<stream:features><mechanisms xmlns='"
		NS_SASL "'><mechanism>PLAIN</mechanism></mechanisms>"
		"</stream:features>");
	feed_str(&r, "<success xmlns='" NS_SASL "'/>");
	feed_str(&r, SERVER_HEADER SM_FEATURES);
	feed_str(&r, "<iq type='result' id='bind_1'><bind xmlns='" NS_BIND
		"'><jid>juliet@example.com/balcony</jid></bind></iq>");
	cr_assert(eq(int, stream_state(r.s), STREAM_ONLINE));
	cr_assert(strstr(r.log.data, "enable") == NULL);
	cr_assert(eq(int, stream_sm_enabled(r.s), false));
	cr_assert(eq(int, stream_request_ack(r.s), false));
	buf_reset(&r.log);
	send_presence(&r, 7);
	cr_assert(eq(str, r.log.data, "<presence/>"));
	run_finish(&r);
}

/* ---- SCRAM against a GNU SASL server ---- */

struct server {
	Gsasl *ctx;
	Gsasl_session *sess;
	const char *password;
	const unsigned char *cb;
	size_t cb_len;
};

static int server_callback(Gsasl *ctx, Gsasl_session *sctx, Gsasl_property prop)
{
	struct server *srv = gsasl_callback_hook_get(ctx);
	char *b64;
	size_t len;
	switch (prop) {
	case GSASL_PASSWORD:
		return gsasl_property_set(sctx, prop, srv->password);
	case GSASL_CB_TLS_UNIQUE:
		if (srv->cb == NULL) {
			return GSASL_NO_CALLBACK;
		}
		gsasl_base64_to((const char *)srv->cb, srv->cb_len, &b64, &len);
		gsasl_property_set(sctx, prop, b64);
		gsasl_free(b64);
		return GSASL_OK;
	default:
		return GSASL_NO_CALLBACK;
	}
}

/* The text of the last <NAME ...>TEXT</NAME> in the client's output. */
static char *last_payload(const char *log, const char *name, char *mech)
{
	char open[128], close[32];
	snprintf(open, sizeof(open), "<%s xmlns='%s'", name, NS_SASL);
	snprintf(close, sizeof(close), "</%s>", name);
	const char *p = NULL;
	for (const char *q = strstr(log, open); q; q = strstr(q + 1, open)) {
		p = q;
	}
	cr_assert(p != NULL, "no <%s/> in %s", name, log);
	const char *m = strstr(p, "mechanism='");
	if (mech != NULL && m != NULL) {
		m += 11;
		size_t n = strcspn(m, "'");
		memcpy(mech, m, n);
		mech[n] = '\0';
	}
	const char *gt = strchr(p, '>');
	if (gt[-1] == '/') {
		return strdup("");
	}
	const char *end = strstr(gt, close);
	cr_assert(end != NULL);
	return strndup(gt + 1, (size_t)(end - gt - 1));
}

static void sasl_reply(struct run *r, const char *name, const char *b64)
{
	char *x = xasprintf("<%s xmlns='%s'>%s</%s>", name, NS_SASL, b64, name);
	feed_str(r, x);
	free(x);
}

/*
 * Runs SCRAM through the stream against a GNU SASL server; returns the
 * mechanism the client picked. tamper corrupts the server signature.
 */
static void scram_login(struct run *r, const struct stream_tls_info *tls,
	const char *mechs, struct server *srv, bool tamper, char *mech)
{
	stream_tls_ready(r->s, tls);
	char *features = xasprintf(SERVER_HEADER "<stream:features>"
		"<mechanisms xmlns='%s'>%s</mechanisms></stream:features>",
		NS_SASL, mechs);
	feed_str(r, features);
	free(features);
	char *in = last_payload(r->log.data, "auth", mech);
	cr_assert(eq(int, gsasl_init(&srv->ctx), GSASL_OK));
	gsasl_callback_set(srv->ctx, server_callback);
	gsasl_callback_hook_set(srv->ctx, srv);
	cr_assert(eq(int, gsasl_server_start(srv->ctx, mech, &srv->sess),
		GSASL_OK));
	char *out = NULL;
	int rc = gsasl_step64(srv->sess, in, &out);
	free(in);
	cr_assert(eq(int, rc, GSASL_NEEDS_MORE));
	sasl_reply(r, "challenge", out);
	gsasl_free(out);
	in = last_payload(r->log.data, "response", NULL);
	out = NULL;
	rc = gsasl_step64(srv->sess, in, &out);
	free(in);
	if (rc != GSASL_OK) {
		feed_str(r, "<failure xmlns='" NS_SASL "'><not-authorized/>"
			"</failure>");
	} else {
		if (tamper) {
			out[5] = out[5] == 'A' ? 'B' : 'A';
		}
		sasl_reply(r, "success", out);
	}
	gsasl_free(out);
	gsasl_finish(srv->sess);
	gsasl_done(srv->ctx);
}

static void scram_case(const struct stream_tls_info *tls, const char *mechs,
	const char *want_mech, const char *server_password, bool tamper,
	bool want_ok)
{
	struct run r;
	run_init(&r, &direct_cfg, false);
	struct server srv = { .password = server_password, .cb = fake_unique,
		.cb_len = sizeof(fake_unique) };
	char mech[64] = "";
	scram_login(&r, tls, mechs, &srv, tamper, mech);
	cr_assert(eq(str, mech, (char *)want_mech));
	cr_assert(eq(str, (char *)stream_mechanism(r.s), (char *)want_mech));
	if (want_ok) {
		cr_assert(eq(int, stream_state(r.s), STREAM_HEADER), "%s",
			r.log.data);
	} else {
		cr_assert(eq(int, stream_state(r.s), STREAM_FAILED));
		cr_assert(strstr(r.log.data, "@failed AUTH") != NULL, "%s",
			r.log.data);
	}
	run_finish(&r);
}

#define ALL_SCRAM "<mechanism>SCRAM-SHA-1</mechanism>" \
	"<mechanism>SCRAM-SHA-1-PLUS</mechanism>" \
	"<mechanism>SCRAM-SHA-256</mechanism>" \
	"<mechanism>SCRAM-SHA-256-PLUS</mechanism><mechanism>PLAIN</mechanism>"

Test(stream, scram_sha256_plus_under_tls12)
{
	scram_case(&tls12, ALL_SCRAM, "SCRAM-SHA-256-PLUS", "r0m30", false, true);
}

Test(stream, scram_sha256_under_tls13)
{
	scram_case(&tls13, ALL_SCRAM, "SCRAM-SHA-256", "r0m30", false, true);
}

Test(stream, scram_sha1_plus_under_tls12)
{
	scram_case(&tls12, "<mechanism>SCRAM-SHA-1</mechanism>"
		"<mechanism>SCRAM-SHA-1-PLUS</mechanism>", "SCRAM-SHA-1-PLUS",
		"r0m30", false, true);
}

Test(stream, scram_sha1)
{
	scram_case(&tls12, "<mechanism>SCRAM-SHA-1</mechanism>", "SCRAM-SHA-1",
		"r0m30", false, true);
}

Test(stream, scram_wrong_password)
{
	scram_case(&tls12, ALL_SCRAM, "SCRAM-SHA-256-PLUS", "other", false, false);
}

Test(stream, scram_bad_server_signature)
{
	scram_case(&tls13, ALL_SCRAM, "SCRAM-SHA-256", "r0m30", true, false);
}

Test(stream, scram_trace_redacted)
{
	struct run r;
	run_init(&r, &direct_cfg, true);
	struct server srv = { .password = "r0m30" };
	char mech[64];
	scram_login(&r, &tls13, ALL_SCRAM, &srv, false, mech);
	const char *t = r.trace.data;
	cr_assert(strstr(t, "> <auth xmlns='" NS_SASL "' mechanism="
		"'SCRAM-SHA-256'>[redacted]</auth>\n") != NULL, "%s", t);
	cr_assert(strstr(t, "> <response xmlns='" NS_SASL
		"'>[redacted]</response>\n") != NULL, "%s", t);
	cr_assert(strstr(t, "< <challenge xmlns=\"" NS_SASL
		"\">[redacted]</challenge>\n") != NULL, "%s", t);
	cr_assert(strstr(t, "< <success xmlns=\"" NS_SASL
		"\">[redacted]</success>\n") != NULL, "%s", t);
	/* Every payload the client sent is absent from the trace. */
	char *payload = last_payload(r.log.data, "auth", NULL);
	cr_assert(strstr(t, payload) == NULL);
	free(payload);
	payload = last_payload(r.log.data, "response", NULL);
	cr_assert(strstr(t, payload) == NULL);
	free(payload);
	run_finish(&r);
}
