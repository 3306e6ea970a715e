#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/events.h"
#include "daemon/log.h"
#include "ipc/client.h"
#include "ipc/json.h"
#include "ipc/sink.h"
#include "proto/alloc.h"
#include "proto/jid.h"

#define RING_EVENTS 4096
#define RING_BYTES (8 * 1024 * 1024)

/* The events of protocol version 1 (DESIGN.md section 4), one bit each. */
static const char *const event_names[] = {
	"block",
	"chatstate",
	"iq",
	"message",
	"muc",
	"presence",
	"roster",
	"sent",
	"stanza",
	"state",
	"subscription",
	"xml",
};
#define NEVENTS (sizeof(event_names) / sizeof(event_names[0]))
#define ALL_EVENTS (((1u << NEVENTS) - 1) | SINK_OTHER)

/* The XML console is too bulky to keep: it goes to live subscribers only. */
static const char not_retained[] = "xml";
/* Nor are "stanza" events, built only while someone listens (and
 * filtered per client by namespace). */
static const char live_only[] = "stanza";

static uint32_t event_bit(const char *name)
{
	for (size_t i = 0; i < NEVENTS; i++) {
		if (strcmp(name, event_names[i]) == 0) {
			return 1u << i;
		}
	}
	return SINK_OTHER;
}

const char *sink_event_name(size_t i)
{
	return i < NEVENTS ? event_names[i] : NULL;
}

void sink_init(struct sink *s, uint64_t last_seq, size_t max_output)
{
	memset(s, 0, sizeof(*s));
	s->max_events = RING_EVENTS;
	s->max_bytes = max_output / 2 < RING_BYTES ? max_output / 2 : RING_BYTES;
	s->dropped_upto = last_seq;
}

static void entry_finish(struct sink_entry *e)
{
	free(e->line);
	free(e->from);
	free(e->from_bare);
}

void sink_finish(struct sink *s)
{
	for (size_t i = 0; i < s->count; i++) {
		entry_finish(&s->ring[(s->head + i) % s->max_events]);
	}
	free(s->ring);
	memset(s, 0, sizeof(*s));
}

static void ring_evict(struct sink *s)
{
	struct sink_entry *e = &s->ring[s->head];
	s->dropped_upto = e->seq;
	s->bytes -= e->len;
	entry_finish(e);
	s->head = (s->head + 1) % s->max_events;
	s->count--;
}

/* Keeps e (taking its strings), evicting the oldest entries to make room. */
static void ring_push(struct sink *s, struct sink_entry *e)
{
	if (s->max_events == 0 || e->len > s->max_bytes) {
		s->dropped_upto = e->seq;
		entry_finish(e);
		return;
	}
	if (s->ring == NULL) {
		s->ring = xcalloc(s->max_events, sizeof(*s->ring));
	}
	while (s->count == s->max_events || s->bytes + e->len > s->max_bytes) {
		ring_evict(s);
	}
	s->ring[(s->head + s->count) % s->max_events] = *e;
	s->count++;
	s->bytes += e->len;
}

/* The bare JID of the event's "from", prepared so that it compares with
 * a subscriber's filter; computed once per event. */
static const char *entry_bare(struct sink_entry *e)
{
	if (!e->bare_done) {
		e->bare_done = true;
		e->from_bare = jid_prep(e->from, true, NULL);
		if (e->from_bare == NULL) {
			const char *slash = strchr(e->from, '/');
			size_t n = slash ? (size_t)(slash - e->from) : strlen(e->from);
			e->from_bare = xstrndup(e->from, n);
		}
	}
	return e->from_bare;
}

/* Events without a "from" (state, sent) pass any from filter. */
static bool matches(const struct ipc_client *c, struct sink_entry *e)
{
	if ((c->events & e->bit) == 0) {
		return false;
	}
	if (c->from == NULL || e->from == NULL) {
		return true;
	}
	return strcmp(c->from, entry_bare(e)) == 0;
}

static bool listening(const struct ipc_client *c)
{
	return ipc_client_alive(c) && !c->dropping && !c->eof;
}

static bool subscribed(const struct ipc *ipc, uint32_t bit)
{
	for (const struct ipc_client *c = ipc->clients; c != NULL; c = c->next) {
		if (listening(c) && (c->events & bit) != 0) {
			return true;
		}
	}
	return false;
}

static bool retained(const char *name)
{
	return strcmp(name, not_retained) != 0 && strcmp(name, live_only) != 0;
}

static bool wants_cb(void *ud, const char *name)
{
	return retained(name) || subscribed(ud, event_bit(name));
}

/* A "stanza" event passes c's namespace filter if it has none, or if
 * one of the event's "ns" is in it. */
static bool ns_matches(const struct ipc_client *c, const char *name, json_t *ev)
{
	json_t *have = json_object_get(ev, "ns");
	if (c->ns == NULL || strcmp(name, live_only) != 0 || !json_is_array(have)) {
		return true;
	}
	size_t i, j;
	json_t *a, *b;
	json_array_foreach(have, i, a) {
		json_array_foreach(c->ns, j, b) {
			if (json_equal(a, b)) {
				return true;
			}
		}
	}
	return false;
}

static void sink_cb(void *ud, const char *name, uint64_t seq, json_t *ev)
{
	struct ipc *ipc = ud;
	bool keep = retained(name);
	struct sink_entry e = { .seq = seq, .bit = event_bit(name) };
	if (!keep && !subscribed(ipc, e.bit)) {
		return;
	}
	struct buf b;
	buf_init(&b);
	if (!ipc_json_encode(ev, &b)) {
		log_warnx("ipc: event %s (seq %ju) could not be encoded", name,
			(uintmax_t)seq);
		buf_finish(&b);
		return;
	}
	e.line = buf_steal(&b, &e.len);
	const char *from = json_string_value(json_object_get(ev, "from"));
	e.from = from != NULL ? xstrdup(from) : NULL;
	for (struct ipc_client *c = ipc->clients; c != NULL; c = c->next) {
		if (listening(c) && matches(c, &e) && ns_matches(c, name, ev)) {
			ipc_client_write(c, e.line, e.len);
		}
	}
	if (keep) {
		ring_push(&ipc->sink, &e);
	} else {
		entry_finish(&e);
	}
}

/* Live subscribers only, for the client state (XEP-0352). */
static bool listening_cb(void *ud, const char *name)
{
	return subscribed(ud, event_bit(name));
}

void sink_attach(struct ipc *ipc)
{
	events_add_sink(sink_cb, wants_cb, ipc);
	events_set_listening(ipc, listening_cb);
}

void sink_detach(struct ipc *ipc)
{
	events_remove_sink(ipc);
}

bool sink_parse_events(const json_t *v, uint32_t *mask, char *err, size_t errlen)
{
	if (json_is_string(v) && strcmp(json_string_value(v), "*") == 0) {
		*mask = ALL_EVENTS;
		return true;
	}
	if (!json_is_array(v)) {
		snprintf(err, errlen, "must be \"*\" or an array of event names");
		return false;
	}
	*mask = 0;
	size_t i;
	json_t *name;
	json_array_foreach(v, i, name) {
		const char *s = json_string_value(name);
		if (s == NULL) {
			snprintf(err, errlen, "must hold only strings");
			return false;
		}
		uint32_t bit = strcmp(s, "*") == 0 ? ALL_EVENTS : event_bit(s);
		if (bit == SINK_OTHER) {
			snprintf(err, errlen, "names an unknown event '%.64s'", s);
			return false;
		}
		*mask |= bit;
	}
	return true;
}

void sink_replay(struct ipc *ipc, struct ipc_client *c, uint64_t since,
	bool *gap, uint64_t *oldest)
{
	struct sink *s = &ipc->sink;
	for (size_t i = 0; i < s->count; i++) {
		struct sink_entry *e = &s->ring[(s->head + i) % s->max_events];
		if (e->seq > since && matches(c, e)) {
			ipc_client_write(c, e->line, e->len);
		}
	}
	*gap = since < s->dropped_upto;
	*oldest = s->count > 0 ? s->ring[s->head].seq : events_last_seq() + 1;
}
