/*
 * A bounded set of recently seen message keys, to publish a message once
 * even when its sender had to send it again (a resend after a failed
 * stream resumption carries the same origin-id). The oldest key leaves
 * when the set is full.
 */
#ifndef XMPPD_DAEMON_DEDUP_H
#define XMPPD_DAEMON_DEDUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dedup_slot;

struct dedup {
	struct dedup_slot *slots;	/* a ring of cap slots, oldest at next */
	uint32_t *buckets;	/* slot index + 1 heading each chain; 0: none */
	size_t nbuckets;	/* a power of two */
	size_t cap;
	size_t next;
	size_t count;
};

/* An empty set remembering at most cap keys (cap < 2^32). */
void dedup_init(struct dedup *d, size_t cap);
/* Frees the keys. */
void dedup_finish(struct dedup *d);
/* Adds key; false if it was already there. */
bool dedup_add(struct dedup *d, const char *key, size_t len);

#endif
