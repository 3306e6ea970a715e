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

struct dedup_node;

struct dedup {
	struct dedup_node **buckets;
	size_t nbuckets;	/* a power of two */
	struct dedup_node **ring;	/* insertion order, for eviction */
	size_t cap;
	size_t next;
};

void dedup_init(struct dedup *d, size_t cap);
void dedup_finish(struct dedup *d);
/* Adds key; false if it was already there. */
bool dedup_add(struct dedup *d, const char *key, size_t len);

#endif
