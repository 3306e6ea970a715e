#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/events.h"
#include "daemon/jsonenc.h"
#include "daemon/log.h"
#include "daemon/xmppd.h"
#include "ipc/client.h"
#include "ipc/json.h"
#include "ipc/sink.h"
#include "proto/alloc.h"
#include "proto/jid.h"

#define RING_EVENTS 4096
#define RING_BYTES (8 * 1024 * 1024)

/* The events of protocol version 1 (DESIGN.md section 4), one bit each,
 * in strcmp order (event_bit searches them). */
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

/* Binary search: event_names is sorted, and this runs for every event
 * and every "is it wanted" question. */
static uint32_t event_bit(const char *name)
{
	size_t lo = 0, hi = NEVENTS;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(name, event_names[mid]);
		if (c == 0) {
			return 1u << mid;
		}
		if (c < 0) {
			hi = mid;
		} else {
			lo = mid + 1;
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

/* Memory for retained lines, handed out in order and given back when
 * its last line is evicted (evictions come in the same order). */
#define CHUNK_SIZE (16 * 1024)

struct sink_chunk {
	struct sink_chunk *next;
	size_t used;
	size_t size;
	size_t live;		/* lines in it still retained */
	char data[];
};

/* n bytes for a line of the ring, in the newest chunk or a new one. */
static char *chunk_alloc(struct sink *s, size_t n, struct sink_chunk **where)
{
	struct sink_chunk *c = s->last;
	if (c == NULL || c->size - c->used < n) {
		size_t size = n > CHUNK_SIZE ? n : CHUNK_SIZE;
		c = xmalloc(sizeof(*c) + size);
		*c = (struct sink_chunk){ .size = size };
		if (s->last != NULL) {
			s->last->next = c;
		} else {
			s->chunks = c;
		}
		s->last = c;
	}
	char *p = c->data + c->used;
	c->used += n;
	c->live++;
	*where = c;
	return p;
}

static void chunk_release(struct sink *s, struct sink_chunk *c)
{
	if (--c->live > 0) {
		return;
	}
	if (c == s->last) {
		c->used = 0;		/* empty: start it over */
		return;
	}
	struct sink_chunk **pp = &s->chunks;
	while (*pp != c) {
		pp = &(*pp)->next;
	}
	*pp = c->next;
	free(c);
}

static void entry_finish(struct sink *s, struct sink_entry *e)
{
	if (e->chunk != NULL) {
		chunk_release(s, e->chunk);
	}
	free(e->from_bare);
}

void sink_finish(struct sink *s)
{
	for (size_t i = 0; i < s->count; i++) {
		entry_finish(s, &s->ring[(s->head + i) % s->max_events]);
	}
	free(s->ring);
	while (s->chunks != NULL) {
		struct sink_chunk *c = s->chunks;
		s->chunks = c->next;
		free(c);
	}
	memset(s, 0, sizeof(*s));
}

static void ring_evict(struct sink *s)
{
	struct sink_entry *e = &s->ring[s->head];
	s->dropped_upto = e->seq;
	s->bytes -= e->len;
	entry_finish(s, e);
	s->head = (s->head + 1) % s->max_events;
	s->count--;
}

/* Keeps e (taking its strings), evicting the oldest entries to make room. */
static void ring_push(struct sink *s, struct sink_entry *e)
{
	if (s->max_events == 0 || e->len > s->max_bytes) {
		s->dropped_upto = e->seq;
		entry_finish(s, e);
		return;
	}
	if (s->ring == NULL) {
		/* not zeroed: only the slots used become resident */
		s->ring = xmalloc(s->max_events * sizeof(*s->ring));
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

/* Is the event with this bit kept in the ring (all but not_retained
 * and live_only, unknown names included)? */
static bool retained(uint32_t bit)
{
	static uint32_t not_kept;
	if (not_kept == 0) {
		not_kept = event_bit(not_retained) | event_bit(live_only);
	}
	return (bit & not_kept) == 0;
}

static bool wants_cb(void *ud, const char *name)
{
	uint32_t bit = event_bit(name);
	return retained(bit) || subscribed(ud, bit);
}

/* A "stanza" event passes c's namespace filter if it has none, or if
 * one of the event's "ns" is in it. */
static bool ns_matches(const struct ipc_client *c, const struct events_event *ev)
{
	if (c->ns == NULL || ev->ev == NULL || strcmp(ev->name, live_only) != 0) {
		return true;
	}
	json_t *have = json_object_get(ev->ev, "ns");
	if (!json_is_array(have)) {
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

/* The entry's line and its "from" copied into the ring's memory. */
static void entry_fill(struct sink *s, struct sink_entry *e, const char *line,
	size_t len, const char *from)
{
	size_t flen = from != NULL ? strlen(from) + 1 : 0;
	e->line = chunk_alloc(s, len + 1 + flen, &e->chunk);
	memcpy(e->line, line, len);
	e->line[len] = '\0';
	e->len = len;
	e->from = NULL;
	if (from != NULL) {
		e->from = e->line + len + 1;
		memcpy(e->from, from, flen);
	}
}

static void sink_cb(void *ud, const struct events_event *ev)
{
	struct ipc *ipc = ud;
	struct sink_entry e = { .seq = ev->seq, .bit = event_bit(ev->name) };
	bool keep = retained(e.bit);
	if (!keep && !subscribed(ipc, e.bit)) {
		return;
	}
	size_t len;
	const char *line = events_line(ev, &len);
	if (line == NULL) {
		log_warnx("ipc: event %s (seq %ju) could not be encoded", ev->name,
			(uintmax_t)ev->seq);
		return;
	}
	if (keep) {
		entry_fill(&ipc->sink, &e, line, len, ev->from);
	} else {
		/* live only: the event's own line and from will do */
		e.line = (char *)line;
		e.len = len;
		e.from = (char *)ev->from;
	}
	for (struct ipc_client *c = ipc->clients; c != NULL; c = c->next) {
		if (listening(c) && matches(c, &e) && ns_matches(c, ev)) {
			ipc_client_write(c, e.line, e.len);
		}
	}
	if (keep) {
		ring_push(&ipc->sink, &e);
	} else {
		entry_finish(&ipc->sink, &e);
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

/* Lines read back from the message log, newest first. */
struct log_lines {
	char **lines;
	size_t *lens;
	uint64_t *seqs;
	size_t n, cap, cap2, cap3;
	size_t used;
	size_t budget;
	bool truncated;
};

static bool collect_cb(void *ud, uint64_t seq, bool outbound,
	const char *line, size_t len)
{
	struct log_lines *l = ud;
	if (l->used + len + 1 > l->budget) {
		l->truncated = true;
		return false;
	}
	l->lines = xgrow(l->lines, &l->cap, l->n + 1, sizeof(*l->lines));
	l->lens = xgrow(l->lens, &l->cap2, l->n + 1, sizeof(*l->lens));
	l->seqs = xgrow(l->seqs, &l->cap3, l->n + 1, sizeof(*l->seqs));
	char *copy = xmalloc(len + 1);
	memcpy(copy, line, len);
	copy[len] = '\n';
	l->lines[l->n] = copy;
	l->lens[l->n] = len + 1;
	l->seqs[l->n] = seq;
	l->n++;
	l->used += len + 1;
	return true;
}

/* What the ring's replay and the client's queue leave of its output
 * bound, less a margin for the reply and live events. */
static size_t log_budget(const struct ipc *ipc, const struct ipc_client *c)
{
	size_t taken = ipc->sink.bytes + c->out.len + 64 * 1024;
	return ipc->max_output > taken ? ipc->max_output - taken : 0;
}

/*
 * The message events after since that the ring no longer holds come
 * from the durable message log: newest first up to the client's output
 * budget, then written oldest first. *gap is set when some of what the
 * client subscribed to is gone after all: other kinds of events (only
 * the ring keeps those), messages the log pruned, more than the budget
 * (*oldest then says where the replay starts), or no log.
 */
static void replay_log(struct ipc *ipc, struct ipc_client *c, uint64_t since,
	bool *gap, uint64_t *oldest)
{
	uint32_t msg = event_bit("message");
	uint32_t kept = ALL_EVENTS & ~msg & ~event_bit(not_retained) &
		~event_bit(live_only);
	*gap = (c->events & kept) != 0 || (c->events & msg) == 0;
	if ((c->events & msg) == 0) {
		return;
	}
	*gap = *gap || xmppd_log_pruned(ipc->x) > since;
	struct log_lines l = { .budget = log_budget(ipc, c) };
	struct xmppd_log_query q = {
		.after = since, .upto = ipc->sink.dropped_upto, .sender = c->from,
		.inbound_only = true, .newest = true,
	};
	struct xerr e = { 0 };
	if (xmppd_log_read(ipc->x, &q, collect_cb, &l, &e) < 0) {
		*gap = true;
	} else if (l.truncated) {
		*gap = true;
		*oldest = l.n > 0 ? l.seqs[l.n - 1] : *oldest;
	}
	log_debug("ipc client %lu: %zu messages replayed from the message log%s",
		c->id, l.n, l.truncated ? " (truncated)" : "");
	for (size_t i = l.n; i-- > 0;) {
		ipc_client_write(c, l.lines[i], l.lens[i]);
		free(l.lines[i]);
	}
	free(l.lines);
	free(l.lens);
	free(l.seqs);
}

void sink_replay(struct ipc *ipc, struct ipc_client *c, uint64_t since,
	bool *gap, uint64_t *oldest)
{
	struct sink *s = &ipc->sink;
	*gap = false;
	*oldest = s->count > 0 ? s->ring[s->head].seq : events_last_seq() + 1;
	if (since < s->dropped_upto) {
		replay_log(ipc, c, since, gap, oldest);
	}
	for (size_t i = 0; i < s->count; i++) {
		struct sink_entry *e = &s->ring[(s->head + i) % s->max_events];
		if (e->seq > since && matches(c, e)) {
			ipc_client_write(c, e->line, e->len);
		}
	}
}
