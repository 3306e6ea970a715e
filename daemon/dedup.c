/*
 * The keys live in one array of fixed slots used as a ring: the slot at
 * `next` is the oldest once the ring is full, and is reused for the new
 * key. A key up to INLINE_KEY bytes (a bare JID and a short id) is kept
 * in its slot; a longer one has a heap copy. Chains of slot indexes hang
 * from a power-of-two bucket array. Both arrays are calloc'ed, so their
 * pages cost memory only as keys arrive.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/dedup.h"
#include "proto/alloc.h"

#define INLINE_KEY 40

struct dedup_slot {
	uint64_t hash;
	size_t len;
	uint32_t next;		/* next slot index + 1 in the chain; 0: end */
	union {
		char bytes[INLINE_KEY];
		char *heap;
	} key;
};

/* Eight bytes at a time with a multiply-xorshift mix: short keys, and
 * an adversary who collides them gains nothing but a longer chain. */
static uint64_t hash(const char *s, size_t len)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)len;
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, s, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 29;
		s += 8;
		len -= 8;
	}
	uint64_t w = 0;
	for (size_t i = 0; i < len; i++) {
		w |= (uint64_t)(unsigned char)s[i] << (8 * i);
	}
	h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
	return h ^ (h >> 32);
}

static const char *key_of(const struct dedup_slot *s)
{
	return s->len <= INLINE_KEY ? s->key.bytes : s->key.heap;
}

/* An empty set remembering at most cap keys. */
void dedup_init(struct dedup *d, size_t cap)
{
	d->cap = cap > 0 ? cap : 1;
	d->next = 0;
	d->count = 0;
	d->nbuckets = 16;
	while (d->nbuckets < d->cap) {
		d->nbuckets *= 2;
	}
	d->buckets = xcalloc(d->nbuckets, sizeof(*d->buckets));
	d->slots = xcalloc(d->cap, sizeof(*d->slots));
}

/* Frees the keys. */
void dedup_finish(struct dedup *d)
{
	for (size_t i = 0; i < d->count; i++) {
		if (d->slots[i].len > INLINE_KEY) {
			free(d->slots[i].key.heap);
		}
	}
	free(d->slots);
	free(d->buckets);
	memset(d, 0, sizeof(*d));
}

/* Takes the oldest key out of its chain and frees its heap copy. */
static void evict(struct dedup *d, size_t i)
{
	struct dedup_slot *old = &d->slots[i];
	uint32_t *pp = &d->buckets[old->hash & (d->nbuckets - 1)];
	while (*pp != i + 1) {
		pp = &d->slots[*pp - 1].next;
	}
	*pp = old->next;
	if (old->len > INLINE_KEY) {
		free(old->key.heap);
	}
}

static bool contains(const struct dedup *d, uint32_t head, uint64_t h,
	const char *key, size_t len)
{
	for (uint32_t i = head; i != 0; i = d->slots[i - 1].next) {
		const struct dedup_slot *s = &d->slots[i - 1];
		if (s->hash == h && s->len == len &&
				memcmp(key_of(s), key, len) == 0) {
			return true;
		}
	}
	return false;
}

/* Adds key; false if it was already there. */
bool dedup_add(struct dedup *d, const char *key, size_t len)
{
	uint64_t h = hash(key, len);
	uint32_t *bucket = &d->buckets[h & (d->nbuckets - 1)];
	if (contains(d, *bucket, h, key, len)) {
		return false;
	}
	size_t i = d->next;
	if (d->count == d->cap) {
		evict(d, i);
		bucket = &d->buckets[h & (d->nbuckets - 1)];
	} else {
		d->count++;
	}
	struct dedup_slot *s = &d->slots[i];
	s->hash = h;
	s->len = len;
	if (len <= INLINE_KEY) {
		memcpy(s->key.bytes, key, len);
	} else {
		s->key.heap = xmalloc(len);
		memcpy(s->key.heap, key, len);
	}
	s->next = *bucket;
	*bucket = (uint32_t)(i + 1);
	d->next = (i + 1) % d->cap;
	return true;
}
