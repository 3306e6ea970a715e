#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/dedup.h"
#include "proto/alloc.h"

struct dedup_node {
	struct dedup_node *next;
	uint64_t hash;
	size_t len;
	char key[];
};

/* FNV-1a: short keys, no adversary gains anything by colliding them but
 * a longer chain. */
static uint64_t hash(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < len; i++) {
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	}
	return h;
}

void dedup_init(struct dedup *d, size_t cap)
{
	d->cap = cap;
	d->next = 0;
	d->nbuckets = 16;
	while (d->nbuckets < cap) {
		d->nbuckets *= 2;
	}
	d->buckets = xcalloc(d->nbuckets, sizeof(*d->buckets));
	d->ring = xcalloc(cap, sizeof(*d->ring));
}

void dedup_finish(struct dedup *d)
{
	for (size_t i = 0; i < d->cap; i++) {
		free(d->ring[i]);
	}
	free(d->ring);
	free(d->buckets);
	memset(d, 0, sizeof(*d));
}

static void evict(struct dedup *d, struct dedup_node *old)
{
	struct dedup_node **pp = &d->buckets[old->hash & (d->nbuckets - 1)];
	while (*pp != old) {
		pp = &(*pp)->next;
	}
	*pp = old->next;
	free(old);
}

bool dedup_add(struct dedup *d, const char *key, size_t len)
{
	uint64_t h = hash(key, len);
	struct dedup_node **bucket = &d->buckets[h & (d->nbuckets - 1)];
	for (struct dedup_node *n = *bucket; n != NULL; n = n->next) {
		if (n->hash == h && n->len == len && memcmp(n->key, key, len) == 0) {
			return false;
		}
	}
	if (d->ring[d->next] != NULL) {
		evict(d, d->ring[d->next]);
	}
	struct dedup_node *n = xmalloc(sizeof(*n) + len);
	n->hash = h;
	n->len = len;
	memcpy(n->key, key, len);
	n->next = *bucket;
	*bucket = n;
	d->ring[d->next] = n;
	d->next = (d->next + 1) % d->cap;
	return true;
}
