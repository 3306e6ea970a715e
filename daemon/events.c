/*
 * The event bus: a list of sinks and the seq counter. Sinks removed while
 * an event is being dispatched are only marked dead and swept once the
 * outermost dispatch returns; sinks added meanwhile first hear the next
 * event (tmux events.c does the same with its notify hooks).
 */
#include <stdlib.h>
#include <string.h>

#include "daemon/events.h"
#include "daemon/jsonenc.h"
#include "daemon/log.h"
#include "proto/alloc.h"

struct sink {
	events_sink_cb cb;
	events_wants_cb wants;
	events_listening_cb listening;	/* may be NULL: never listens */
	void *ud;
	bool dead;
};

/* Who wants to hear that listeners changed (the client state). */
struct watcher {
	events_changed_cb cb;
	void *ud;
};

static struct sink *sinks;
static size_t nsinks;
static size_t sinkcap;
static uint64_t last_seq;
static uint64_t limit;		/* 0: none */
static events_limit_cb limit_cb;
static void *limit_ud;
static unsigned depth;		/* nested events_publish calls running */
/* The latest event's encoded line (see events_line); a big one is not
 * kept past its event. */
#define LINE_KEEP (64 * 1024)
static struct buf line;
static uint64_t line_seq;
static bool line_valid;
/* The line events_write_* writes into. */
static struct buf wline;
static bool wbusy;
static struct watcher *watchers;
static size_t nwatchers;
static size_t watchcap;

void events_init(uint64_t seq)
{
	free(sinks);
	sinks = NULL;
	nsinks = 0;
	sinkcap = 0;
	depth = 0;
	last_seq = seq;
	limit = 0;
	limit_cb = NULL;
	limit_ud = NULL;
}

void events_set_last_seq(uint64_t seq)
{
	last_seq = seq;
}

void events_set_limit(uint64_t upto, events_limit_cb cb, void *ud)
{
	limit = upto;
	limit_cb = cb;
	limit_ud = ud;
}

void events_finish(void)
{
	buf_finish(&line);
	line_valid = false;
	buf_finish(&wline);
	wbusy = false;
	free(sinks);
	sinks = NULL;
	nsinks = 0;
	sinkcap = 0;
	free(watchers);
	watchers = NULL;
	nwatchers = 0;
	watchcap = 0;
}

void events_add_sink(events_sink_cb cb, events_wants_cb wants, void *ud)
{
	sinks = xgrow(sinks, &sinkcap, nsinks + 1, sizeof(*sinks));
	sinks[nsinks++] = (struct sink){ .cb = cb, .wants = wants, .ud = ud };
}

static void sweep(void)
{
	size_t j = 0;
	for (size_t i = 0; i < nsinks; i++) {
		if (!sinks[i].dead) {
			sinks[j++] = sinks[i];
		}
	}
	nsinks = j;
}

void events_remove_sink(void *ud)
{
	for (size_t i = 0; i < nsinks; i++) {
		if (sinks[i].ud == ud) {
			sinks[i].dead = true;
		}
	}
	if (depth == 0) {
		sweep();
	}
}

bool events_wanted(const char *name)
{
	for (size_t i = 0; i < nsinks; i++) {
		if (sinks[i].dead) {
			continue;
		}
		if (sinks[i].wants == NULL || sinks[i].wants(sinks[i].ud, name)) {
			return true;
		}
	}
	return false;
}

/* {"event":name,"seq":seq} followed by ev's own keys, so the two keys
 * every event has come first on the wire. */
/* The line of an event is {"event":name,"seq":seq, then ev's members}
 * (daemon/jsonenc.c writes it without building that object: framing
 * cost more than a tenth of an inbound message); ev must not say
 * otherwise. */
static json_t *frame(json_t *ev)
{
	json_object_del(ev, "event");
	json_object_del(ev, "seq");
	return ev;
}

/* The next seq, after letting the limit's owner move the limit. */
static uint64_t next_seq(void)
{
	if (limit_cb != NULL && last_seq + 1 > limit) {
		events_limit_cb cb = limit_cb;
		limit_cb = NULL;
		cb(limit_ud, last_seq);
	}
	return ++last_seq;
}

/* Hands e to every sink there was when it was published. */
static void dispatch(const struct events_event *e)
{
	depth++;
	size_t n = nsinks;	/* sinks added meanwhile start with the next one */
	for (size_t i = 0; i < n; i++) {
		if (!sinks[i].dead) {
			sinks[i].cb(sinks[i].ud, e);
		}
	}
	depth--;
	if (depth == 0) {
		sweep();
	}
}

uint64_t events_publish(const char *name, json_t *ev)
{
	if (!xassert(json_is_object(ev), "event '%s' is not an object", name)) {
		json_decref(ev);
		return last_seq;
	}
	struct events_event e = { .name = name, .ev = frame(ev) };
	e.seq = next_seq();
	e.from = json_string_value(json_object_get(ev, "from"));
	line_valid = false;
	dispatch(&e);
	if (line.cap > LINE_KEEP) {
		buf_finish(&line);
		line_valid = false;
	}
	json_decref(ev);
	return e.seq;
}

const char *events_line(const struct events_event *e, size_t *len)
{
	if (e->line != NULL) {
		*len = e->len;
		return e->line;
	}
	if (e->ev == NULL) {
		return NULL;
	}
	if (!line_valid || line_seq != e->seq) {
		buf_reset(&line);
		line_valid = jsonenc_event(&line, e->name, e->seq, e->ev);
		if (line_valid) {
			buf_putc(&line, '\n');
		}
		line_seq = e->seq;
	}
	if (!line_valid) {
		line_seq = 0;
		return NULL;
	}
	*len = line.len;
	return line.data;
}

/* ---- events written straight into their line ---- */

/* Room for {"event":"NAME","seq":N before the members; the head is
 * written last, right before them, once the seq is known. */
static size_t head_room(const char *name)
{
	return 48 + strlen(name);
}

void events_write_begin(struct events_writer *w, const char *name)
{
	*w = (struct events_writer){ .name = name };
	if (wbusy) {
		w->out = xcalloc(1, sizeof(*w->out));	/* nested: rare */
		w->own = true;
	} else {
		if (wline.cap > LINE_KEEP) {
			buf_finish(&wline);
		}
		w->out = &wline;
		wbusy = true;
	}
	w->head = head_room(name);
	buf_reset(w->out);
	buf_reserve(w->out, w->head + 256);
	w->out->len = w->head;
	w->out->data[w->head] = '\0';
}

/* Writes ,"key": and returns where the member started. */
static size_t put_key(struct events_writer *w, const char *key)
{
	size_t mark = w->out->len;
	size_t n = strlen(key);
	buf_reserve(w->out, n + 4);
	char *p = w->out->data + mark;
	p[0] = ',';
	p[1] = '"';
	memcpy(p + 2, key, n);
	p[n + 2] = '"';
	p[n + 3] = ':';
	w->out->len = mark + n + 4;
	return mark;
}

static void drop_member(struct events_writer *w, size_t mark)
{
	w->out->len = mark;
	w->out->data[mark] = '\0';
}

bool events_write_str(struct events_writer *w, const char *key, const char *s)
{
	if (s == NULL) {
		return false;
	}
	if (!jsonenc_member_string(w->out, key, strlen(key), s, strlen(s))) {
		return false;
	}
	if (key[0] == 'f' && strcmp(key, "from") == 0) {
		w->from = s;
	}
	return true;
}

void events_write_true(struct events_writer *w, const char *key)
{
	put_key(w, key);
	buf_append(w->out, "true", 4);
}

bool events_write_json(struct events_writer *w, const char *key,
	const json_t *v)
{
	size_t mark = put_key(w, key);
	if (v == NULL || !jsonenc_value(w->out, v)) {
		drop_member(w, mark);
		return false;
	}
	return true;
}

/* Writes the head for seq right before the members, and the closing
 * brace: {"event":"NAME","seq":N (names are plain literals). */
static void close_line(struct events_writer *w, uint64_t seq)
{
	if (!w->closed) {
		buf_append(w->out, "}\n", 2);
		w->closed = true;
	}
	char digits[24];
	char *d = digits + sizeof(digits);
	do {
		*--d = (char)('0' + seq % 10);
		seq /= 10;
	} while (seq != 0);
	size_t nd = (size_t)(digits + sizeof(digits) - d);
	size_t nn = strlen(w->name);
	char *p = w->out->data + w->head - (nn + nd + 18);	/* head_room leaves enough */
	w->line = p;
	memcpy(p, "{\"event\":\"", 10);
	memcpy(p + 10, w->name, nn);
	memcpy(p + 10 + nn, "\",\"seq\":", 8);
	memcpy(p + 18 + nn, d, nd);
	w->len = (size_t)(w->out->data + w->out->len - p);
}

const char *events_write_line(struct events_writer *w, uint64_t seq,
	size_t *len)
{
	close_line(w, seq);
	*len = w->len;
	return w->line;
}

uint64_t events_write_publish(struct events_writer *w)
{
	uint64_t seq = next_seq();
	close_line(w, seq);
	struct events_event e = { .name = w->name, .seq = seq, .from = w->from,
		.line = w->line, .len = w->len };
	dispatch(&e);
	return seq;
}

void events_write_finish(struct events_writer *w)
{
	if (w->out == NULL) {
		return;
	}
	if (w->own) {
		buf_finish(w->out);
		free(w->out);
	} else {
		wbusy = false;
	}
	*w = (struct events_writer){ 0 };
}

uint64_t events_take_seq(void)
{
	return next_seq();
}

uint64_t events_last_seq(void)
{
	return last_seq;
}

void events_set_listening(void *ud, events_listening_cb listening)
{
	for (size_t i = 0; i < nsinks; i++) {
		if (sinks[i].ud == ud) {
			sinks[i].listening = listening;
		}
	}
}

bool events_listening(const char *name)
{
	for (size_t i = 0; i < nsinks; i++) {
		if (!sinks[i].dead && sinks[i].listening != NULL &&
				sinks[i].listening(sinks[i].ud, name)) {
			return true;
		}
	}
	return false;
}

void events_watch_listeners(events_changed_cb cb, void *ud)
{
	watchers = xgrow(watchers, &watchcap, nwatchers + 1, sizeof(*watchers));
	watchers[nwatchers++] = (struct watcher){ .cb = cb, .ud = ud };
}

void events_unwatch_listeners(void *ud)
{
	size_t j = 0;
	for (size_t i = 0; i < nwatchers; i++) {
		if (watchers[i].ud != ud) {
			watchers[j++] = watchers[i];
		}
	}
	nwatchers = j;
}

void events_listeners_changed(void)
{
	/* A watcher only sends a stanza; it does not watch or unwatch. */
	for (size_t i = 0; i < nwatchers; i++) {
		watchers[i].cb(watchers[i].ud);
	}
}

static events_pressure_cb pressure_cb;
static void *pressure_ud;
static bool pressure;

void events_on_pressure(events_pressure_cb cb, void *ud)
{
	if (cb == NULL && ud != pressure_ud) {
		return;		/* someone else's by now */
	}
	pressure_cb = cb;
	pressure_ud = ud;
}

void events_set_pressure(bool behind)
{
	if (behind == pressure) {
		return;
	}
	pressure = behind;
	if (pressure_cb != NULL) {
		pressure_cb(pressure_ud, behind);
	}
}

bool events_under_pressure(void)
{
	return pressure;
}
