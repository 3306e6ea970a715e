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
 * subscribers as a "sent" event: queued -> acked, or expired; later
 * delivered (a XEP-0184 receipt) or failed (an error reply). Those come
 * after the entry has usually left the outbox, so the last
 * OUTBOX_RECENT messages that left are remembered (id, recipient).
 */
#ifndef XMPPD_DAEMON_OUTBOX_H
#define XMPPD_DAEMON_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/xml.h"

struct xmppd;
struct xerr;
struct outbox_entry;
struct outbox_recent;

/* How many messages that left the outbox are still recognised when a
 * receipt or an error reply about them arrives later. */
#define OUTBOX_RECENT 256

struct outbox {
	struct outbox_entry *head;
	struct outbox_entry *tail;
	struct outbox_entry *flushed;	/* end of the sent prefix, or NULL */
	size_t count;
	size_t pending;			/* entries waiting for their commit */
	uint64_t next_tag;
	struct outbox_recent *recent;	/* ring of OUTBOX_RECENT, lazily */
	size_t recent_next;
};

void outbox_init(struct outbox *o);
void outbox_finish(struct outbox *o);

/* What became of a message handed to outbox_add. */
enum outbox_result {
	OUTBOX_ACCEPTED,	/* in the (memory-only) outbox now */
	OUTBOX_PENDING,		/* written; done() tells when committed */
	OUTBOX_REFUSED,		/* not accepted: see the xerr */
};
/* Told once a pending message is committed (error NULL: accepted) or
 * refused (error says why; it left the outbox). */
typedef void (*outbox_done_cb)(void *ud, const char *error);
/*
 * Accepts a message (ownership of stanza passes). With the store, the
 * message is written in the turn's transaction and counts as accepted
 * (publishes "queued", is sent) only once that is committed; done is
 * called then. Refused when the outbox is full or the store unusable.
 */
enum outbox_result outbox_add(struct xmppd *x, const char *msg_id,
	struct xml *stanza, outbox_done_cb done, void *ud, struct xerr *e);
/* Loads what the store's outbox holds (at start, before connecting). */
void outbox_load(struct xmppd *x);

/* An entry's tag and store row, for saving the stream management queue. */
struct outbox_tag_row {
	uint64_t tag;
	int64_t rowid;
};
/* Every entry's (tag, row), sorted by tag (caller frees); *n the count. */
struct outbox_tag_row *outbox_tag_rows(const struct outbox *o, size_t *n);
/* The loaded entry of this row was on the stream when the daemon
 * stopped: marks it sent and gives its tag and serialized stanza
 * (caller frees). False if there is no such entry. */
bool outbox_restore_sent(struct xmppd *x, int64_t rowid, uint64_t *tag,
	char **data);
/* Sends every entry not yet handed to the current stream. */
void outbox_flush(struct xmppd *x);
/* A fresh session began: nothing was sent on it yet. */
void outbox_fresh_session(struct xmppd *x);
/* The server acknowledged the stanza with this tag. */
void outbox_acked(struct xmppd *x, uint64_t tag);
/* Entries waiting (unsent or unacknowledged). */
size_t outbox_count(const struct outbox *o);
/* An error reply from 'from' (NULL: our server) to the message msg_id,
 * waiting or recently sent to that JID (or its domain): publishes
 * "failed" with condition and text (may be NULL). False if no message
 * we sent matches. */
bool outbox_failed(struct xmppd *x, const char *msg_id, const char *from,
	const char *condition, const char *text);
/* A XEP-0184 receipt from 'from' for msg_id: publishes "delivered" once,
 * if we sent that message to from's bare JID. False otherwise. */
bool outbox_delivered(struct xmppd *x, const char *msg_id, const char *from);

#endif
