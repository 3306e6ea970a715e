/*
 * The outbox: every message the send command accepted, from acceptance
 * until the server acknowledges it (XEP-0198) or it is handed to a
 * server without stream management, or it expires.
 *
 * Entries are kept in acceptance order. An entry is "sent" once handed to
 * the current stream; after a resumed stream the stream itself re-sends
 * what the server did not count, so only unsent entries go out; after a
 * fresh session every entry goes out again, except those older than
 * [delivery] max_age, which are reported expired. Each step reaches
 * subscribers as a "sent" event: queued -> acked, or expired.
 */
#ifndef XMPPD_DAEMON_OUTBOX_H
#define XMPPD_DAEMON_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/xml.h"

struct xmppd;
struct outbox_entry;

struct outbox {
	struct outbox_entry *head;
	struct outbox_entry *tail;
	size_t count;
	uint64_t next_tag;
};

void outbox_init(struct outbox *o);
void outbox_finish(struct outbox *o);
/* Accepts a message (ownership of stanza passes); false if the outbox is
 * full. Publishes "queued" and sends it at once when online. */
bool outbox_add(struct xmppd *x, const char *msg_id, struct xml *stanza);
/* Sends every entry not yet handed to the current stream. */
void outbox_flush(struct xmppd *x);
/* A fresh session began: nothing was sent on it yet. */
void outbox_fresh_session(struct xmppd *x);
/* The server acknowledged the stanza with this tag. */
void outbox_acked(struct xmppd *x, uint64_t tag);
/* Entries waiting (unsent or unacknowledged). */
size_t outbox_count(const struct outbox *o);

#endif
