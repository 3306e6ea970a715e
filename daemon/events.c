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

uint64_t events_publish(const char *name, json_t *ev)
{
	if (!xassert(json_is_object(ev), "event '%s' is not an object", name)) {
		json_decref(ev);
		return last_seq;
	}
	if (limit_cb != NULL && last_seq + 1 > limit) {
		events_limit_cb cb = limit_cb;
		limit_cb = NULL;
		cb(limit_ud, last_seq);
	}
	uint64_t seq = ++last_seq;
	json_t *out = frame(ev);
	line_valid = false;
	depth++;
	size_t n = nsinks;	/* sinks added meanwhile start with the next one */
	for (size_t i = 0; i < n; i++) {
		if (!sinks[i].dead) {
			sinks[i].cb(sinks[i].ud, name, seq, out);
		}
	}
	depth--;
	if (depth == 0) {
		sweep();
	}
	if (line.cap > LINE_KEEP) {
		buf_finish(&line);
		line_valid = false;
	}
	json_decref(out);
	return seq;
}

const char *events_line(const char *name, uint64_t seq, const json_t *ev,
	size_t *len)
{
	if (!line_valid || line_seq != seq) {
		buf_reset(&line);
		line_valid = jsonenc_event(&line, name, seq, ev);
		if (line_valid) {
			buf_putc(&line, '\n');
		}
		line_seq = seq;
	}
	if (!line_valid) {
		line_seq = 0;
		return NULL;
	}
	*len = line.len;
	return line.data;
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
