/*
 * Publish/subscribe between the daemon's subsystems and whoever listens
 * (the control socket's sink). A subsystem builds a JSON object and
 * publishes it under an event name (or, for the message event, writes
 * its members straight into the line: events_writer); events.c gives
 * it a seq and hands both to every sink, which writes the line
 * {"event":…,"seq":…,…}. daemon/ never includes ipc/: main.c plugs the
 * ipc sink in here, as tmux's control mode is one sink among several.
 *
 * seq grows by one per published event, starting after the value given
 * to events_init (later restored from the store).
 */
#ifndef XMPPD_DAEMON_EVENTS_H
#define XMPPD_DAEMON_EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "proto/buf.h"

/* A published event as sinks see it: borrowed for the duration of the
 * call. Most events carry their members as a jansson object (ev); a
 * message event is written straight into its line and has no ev. */
struct events_event {
	const char *name;
	uint64_t seq;
	json_t *ev;		/* members without "event" and "seq", or NULL */
	const char *from;	/* the "from" member's value, or NULL */
	const char *line;	/* the encoded line, or NULL: see events_line */
	size_t len;
};

/* Called for each published event; its line is
 * {"event":name,"seq":seq,...members...}, as events_line gives it. */
typedef void (*events_sink_cb)(void *ud, const struct events_event *e);
/* Asked before an event is built: does any sink want this name? */
typedef bool (*events_wants_cb)(void *ud, const char *name);

void events_init(uint64_t last_seq);
void events_finish(void);
void events_add_sink(events_sink_cb sink, events_wants_cb wants, void *ud);
void events_remove_sink(void *ud);
/* True if some sink wants events of this name; test it before building
 * an expensive event. */
bool events_wanted(const char *name);
/* Publishes ev (the reference is stolen) and returns its seq. */
uint64_t events_publish(const char *name, json_t *ev);
/* Takes the next seq for something the message log keeps that no
 * event announces (a message accepted by send): subscribers see the
 * number skipped. */
uint64_t events_take_seq(void);
/* The seq of the last published event. */
uint64_t events_last_seq(void);
/* The line of event e, {"event":name,"seq":seq,...members...} and a
 * newline, encoded once however many sinks (and the message log) ask:
 * valid until the next event is published. NULL if e cannot be
 * encoded. */
const char *events_line(const struct events_event *e, size_t *len);

/*
 * An event written member by member straight into its line, without a
 * jansson object (the message event, once per inbound stanza): begin,
 * add members in their order, publish, finish. Keys are
 * literals that need no escaping. A member whose string is not valid
 * UTF-8 is left out, as jansson leaves out a string it refuses.
 */
struct events_writer {
	const char *name;
	const char *from;	/* the "from" member, for sinks' filters */
	struct buf *out;	/* room for the head, then the members */
	size_t head;		/* where the members start */
	bool own;		/* out is this writer's (a nested writer) */
	bool closed;		/* "}\n" written */
	const char *line;	/* after events_write_line or _publish */
	size_t len;
};

/* Starts an event called name (a plain literal). */
void events_write_begin(struct events_writer *w, const char *name);
/* Adds "key":"s" (nothing for NULL); false if left out. */
bool events_write_str(struct events_writer *w, const char *key, const char *s);
/* Adds "key":true. */
void events_write_true(struct events_writer *w, const char *key);
/* Adds "key": v encoded (v is borrowed); false if left out. */
bool events_write_json(struct events_writer *w, const char *key,
	const json_t *v);
/* Closes the event and returns its line (with the newline) as if
 * published with seq, without publishing it (tests). */
const char *events_write_line(struct events_writer *w, uint64_t seq,
	size_t *len);
/* Publishes the event and returns its seq; w->line and w->len (the line
 * with its newline) stay valid until events_write_finish. */
uint64_t events_write_publish(struct events_writer *w);
/* Ends w, published or not; every events_write_begin needs one. */
void events_write_finish(struct events_writer *w);

/* Restarts numbering after seq (the store's mark), before any sink. */
void events_set_last_seq(uint64_t seq);
/* Called with the last seq before an event would pass limit; it must
 * call events_set_limit again (the store persists a higher mark first,
 * so seq never goes backwards across restarts). */
typedef void (*events_limit_cb)(void *ud, uint64_t last);
void events_set_limit(uint64_t limit, events_limit_cb cb, void *ud);

/* Asked of a sink: does one of its live clients listen for events of
 * this name now (rather than the sink only keeping them for replay)? */
typedef bool (*events_listening_cb)(void *ud, const char *name);
/* Told that the set of live listeners may have changed. */
typedef void (*events_changed_cb)(void *ud);

/* Gives the sink registered with ud its listening question. */
void events_set_listening(void *ud, events_listening_cb listening);
/* True if a live client of some sink listens for events of this name. */
bool events_listening(const char *name);
/* Calls cb(ud) on every events_listeners_changed() until unwatched. */
void events_watch_listeners(events_changed_cb cb, void *ud);
void events_unwatch_listeners(void *ud);
/* A sink's clients subscribed, unsubscribed or went away. */
void events_listeners_changed(void);

/* Back-pressure: told true when a sink's clients fall behind, false when
 * they have caught up (the session stops reading from the server
 * meanwhile). One handler; cb NULL removes ud's. */
typedef void (*events_pressure_cb)(void *ud, bool behind);
void events_on_pressure(events_pressure_cb cb, void *ud);
/* A sink says whether some of its clients are behind. */
void events_set_pressure(bool behind);
/* True while some sink's clients are behind. */
bool events_under_pressure(void);

#endif
