/*
 * What xmppctl prints: replies and events for people (one line per thing,
 * tab-separated columns where a table helps) and as JSON lines for
 * scripts. Nothing here does I/O beyond writing to the FILE given.
 */
#ifndef XMPPD_CTL_OUTPUT_H
#define XMPPD_CTL_OUTPUT_H

#include <jansson.h>
#include <stdio.h>

/* obj as one compact JSON line. */
void output_json(FILE *f, const json_t *obj);

/*
 * A reply's fields but "id" and "ok", one "key: value" line each in the
 * order they came; an array of scalars as "key:" followed by one
 * tab-indented line per element, anything else as compact JSON.
 */
void output_fields(FILE *f, const json_t *obj);

/*
 * A message event as "FROM: BODY" (the subject in brackets when there is
 * no body); the lines of a body after its first are indented by a tab, so
 * every line that does not start with one begins a message.
 */
void output_message(FILE *f, const json_t *ev);

/* A roster reply: per contact "JID<tab>SUBSCRIPTION<tab>NAME<tab>GROUPS",
 * groups comma-separated, " (asked)" after a pending request. */
void output_roster(FILE *f, const json_t *reply);

/* A history reply: each message as output_message does, after its time
 * (delay) when it has one. */
void output_history(FILE *f, const json_t *reply);

/* A muc-join reply: "joined ROOM as NICK (ROLE, AFFILIATION)", then the
 * subject when there is one. */
void output_join(FILE *f, const json_t *reply);

#endif
