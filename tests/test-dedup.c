#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <string.h>

#include "daemon/dedup.h"

Test(dedup, second_sighting_is_a_duplicate)
{
	struct dedup d;
	dedup_init(&d, 4);
	cr_assert(dedup_add(&d, "a", 1));
	cr_assert(not(dedup_add(&d, "a", 1)));
	cr_assert(dedup_add(&d, "b", 1));
	dedup_finish(&d);
}

Test(dedup, keys_compare_by_length_and_bytes)
{
	struct dedup d;
	dedup_init(&d, 4);
	cr_assert(dedup_add(&d, "bob@x\0id1", 9));
	cr_assert(dedup_add(&d, "bob@x\0id", 8));
	cr_assert(dedup_add(&d, "bob@y\0id1", 9));
	cr_assert(not(dedup_add(&d, "bob@x\0id1", 9)));
	dedup_finish(&d);
}

Test(dedup, oldest_key_is_forgotten_when_full)
{
	struct dedup d;
	dedup_init(&d, 3);
	cr_assert(dedup_add(&d, "1", 1));
	cr_assert(dedup_add(&d, "2", 1));
	cr_assert(dedup_add(&d, "3", 1));
	cr_assert(dedup_add(&d, "4", 1));	/* evicts "1" */
	cr_assert(dedup_add(&d, "1", 1));	/* evicts "2" */
	cr_assert(not(dedup_add(&d, "3", 1)));
	cr_assert(not(dedup_add(&d, "4", 1)));
	cr_assert(dedup_add(&d, "2", 1));
	dedup_finish(&d);
}

Test(dedup, many_keys_with_collisions_in_buckets)
{
	struct dedup d;
	dedup_init(&d, 1000);
	char key[32];
	for (int i = 0; i < 5000; i++) {
		int n = snprintf(key, sizeof(key), "k%d", i);
		cr_assert(dedup_add(&d, key, (size_t)n));
	}
	for (int i = 4000; i < 5000; i++) {
		int n = snprintf(key, sizeof(key), "k%d", i);
		cr_assert(not(dedup_add(&d, key, (size_t)n)));
	}
	dedup_finish(&d);
}

/* Keys longer than a slot holds are kept on the heap, and evicted (and
 * freed) in their turn like short ones; lengths around the slot size. */
Test(dedup, long_keys_are_kept_whole)
{
	struct dedup d;
	dedup_init(&d, 8);
	char key[200];
	memset(key, 'k', sizeof(key));
	for (size_t len = 30; len < 50; len++) {
		key[0] = (char)('a' + len % 26);
		cr_assert(dedup_add(&d, key, len), "len %zu", len);
		cr_assert(not(dedup_add(&d, key, len)), "len %zu", len);
	}
	/* 50-byte keys that differ only in their last byte */
	for (int i = 0; i < 8; i++) {
		key[49] = (char)('0' + i);
		cr_assert(dedup_add(&d, key, 50));
	}
	for (int i = 0; i < 8; i++) {
		key[49] = (char)('0' + i);
		cr_assert(not(dedup_add(&d, key, 50)));
	}
	key[49] = '9';
	cr_assert(dedup_add(&d, key, 50));	/* evicts '0' */
	key[49] = '0';
	cr_assert(dedup_add(&d, key, 50));
	cr_assert(dedup_add(&d, key, 200));
	cr_assert(not(dedup_add(&d, key, 200)));
	dedup_finish(&d);
}
