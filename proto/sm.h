/*
 * XEP-0198 stream management state that outlives a single stream: the
 * resumption id, both counters and the stanzas the server has not yet
 * acknowledged. The daemon owns one struct sm per account and hands it
 * to every stream it creates (stream_config.sm); the stream enables,
 * resumes, counts and acknowledges through it.
 *
 * Counting follows the XEP exactly: h counts stanzas (message, presence,
 * iq at depth 1), modulo 2^32; nonzas (<r/>, <a/>, <enable/> ...) do not
 * count. Outbound, each stanza sent while management is enabled is kept
 * in the queue with the caller's tag until an <a h=…/> or <resumed h=…/>
 * covers it.
 */
#ifndef XMPPD_PROTO_SM_H
#define XMPPD_PROTO_SM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sm_entry {
	uint32_t seq;		/* outbound h value this stanza made */
	uint64_t tag;		/* the owner's, e.g. its outbox row */
	char *data;		/* serialized stanza, for resending */
	size_t len;
};

struct sm {
	bool enabled;		/* on the current stream */
	bool resumable;		/* id is valid for <resume/> */
	char *id;		/* resumption id, or NULL */
	char *location;		/* server's preferred reconnect address */
	char *jid;		/* the full JID bound on the managed stream */
	uint32_t max;		/* seconds the server keeps the session */
	uint32_t h_in;		/* stanzas received and handled */
	uint32_t h_out;		/* stanzas sent */
	uint32_t acked;		/* last h the server acknowledged */
	bool restored;		/* read back after a restart: the server may
				 * have counted stanzas sent after it was
				 * saved, so the next <resumed h=…/> may
				 * acknowledge past h_out */
	struct sm_entry *queue;	/* unacknowledged, oldest first */
	size_t nqueue;
	size_t capqueue;
};

void sm_init(struct sm *sm);
void sm_finish(struct sm *sm);
/* Forgets the session (after a failed resume or a clean close): counters
 * to 0, id dropped; the queue is kept for the owner to take. */
void sm_reset_session(struct sm *sm);
/* Appends an entry for a stanza just sent (data copied); returns its seq. */
uint32_t sm_push(struct sm *sm, uint64_t tag, const char *data, size_t len);
/*
 * Applies an acknowledgement of h: entries up to h leave the queue, and
 * ack(ud, tag) is called for each, oldest first. Returns false if h
 * acknowledges more than was sent (a protocol violation: the XEP says to
 * treat it as an unrecoverable stream error "undefined-condition").
 */
bool sm_ack(struct sm *sm, uint32_t h, void (*ack)(void *ud, uint64_t tag),
	void *ud);
/* Removes and returns every queued entry (caller frees each .data and
 * the array); *n gets the count. */
struct sm_entry *sm_take_queue(struct sm *sm, size_t *n);
/* The index of the first queue entry sent in the current session:
 * entries before it are left over from a session that was reset and
 * belong to the owner alone (they are never acknowledged or resent). */
size_t sm_session_first(const struct sm *sm);

#endif
