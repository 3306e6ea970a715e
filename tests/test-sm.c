/*
 * XEP-0198 state tests: the queue and both counters, without a stream.
 * The stream's use of them (enable, resume, <r/>, <a/>) is covered by
 * the stream-sm-*.txt transcripts in test-stream.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "proto/sm.h"

/* What the ack callback saw, in order. */
struct acks {
	uint64_t tags[64];
	size_t n;
	struct sm *sm;		/* pushed into from the callback when set */
	bool take;		/* take the queue from the callback */
};

static void on_ack(void *ud, uint64_t tag)
{
	struct acks *a = ud;
	cr_assert(a->n < 64);
	a->tags[a->n++] = tag;
	if (a->sm != NULL && tag == 2) {
		sm_push(a->sm, 100, "<late/>", 7);
	}
	if (a->take && a->sm != NULL) {
		size_t n;
		struct sm_entry *q = sm_take_queue(a->sm, &n);
		for (size_t i = 0; i < n; i++) {
			free(q[i].data);
		}
		free(q);
	}
}

static void push_n(struct sm *sm, uint64_t first_tag, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char data[32];
		int len = snprintf(data, sizeof(data), "<m%zu/>", i);
		sm_push(sm, first_tag + i, data, (size_t)len);
	}
}

Test(sm, init_is_empty)
{
	struct sm sm;
	memset(&sm, 0xa5, sizeof(sm));
	sm_init(&sm);
	cr_assert(eq(int, sm.enabled, false));
	cr_assert(eq(int, sm.resumable, false));
	cr_assert(sm.id == NULL && sm.location == NULL && sm.jid == NULL);
	cr_assert(eq(u32, sm.h_in, 0));
	cr_assert(eq(u32, sm.h_out, 0));
	cr_assert(eq(u32, sm.acked, 0));
	cr_assert(eq(sz, sm.nqueue, 0));
	sm_finish(&sm);
}

Test(sm, push_copies_and_counts)
{
	struct sm sm;
	sm_init(&sm);
	char data[] = "<message to='a@b'/>";
	cr_assert(eq(u32, sm_push(&sm, 7, data, strlen(data)), 1));
	data[1] = 'X';
	cr_assert(eq(u32, sm_push(&sm, 8, "<p/>", 4), 2));
	cr_assert(eq(u32, sm.h_out, 2));
	cr_assert(eq(sz, sm.nqueue, 2));
	cr_assert(eq(str, sm.queue[0].data, "<message to='a@b'/>"));
	cr_assert(eq(sz, sm.queue[0].len, 19));
	cr_assert(eq(u64, sm.queue[0].tag, 7));
	cr_assert(eq(u32, sm.queue[0].seq, 1));
	cr_assert(eq(u32, sm.queue[1].seq, 2));
	sm_finish(&sm);
}

Test(sm, ack_removes_oldest_first)
{
	struct sm sm;
	struct acks a = { 0 };
	sm_init(&sm);
	push_n(&sm, 10, 5);
	cr_assert(sm_ack(&sm, 3, on_ack, &a));
	cr_assert(eq(sz, a.n, 3));
	cr_assert(eq(u64, a.tags[0], 10));
	cr_assert(eq(u64, a.tags[1], 11));
	cr_assert(eq(u64, a.tags[2], 12));
	cr_assert(eq(u32, sm.acked, 3));
	cr_assert(eq(sz, sm.nqueue, 2));
	cr_assert(eq(u64, sm.queue[0].tag, 13));
	/* The same h again acknowledges nothing new. */
	cr_assert(sm_ack(&sm, 3, on_ack, &a));
	cr_assert(eq(sz, a.n, 3));
	cr_assert(sm_ack(&sm, 5, NULL, NULL));
	cr_assert(eq(sz, sm.nqueue, 0));
	cr_assert(eq(u32, sm.acked, 5));
	sm_finish(&sm);
}

Test(sm, ack_too_high_changes_nothing)
{
	struct sm sm;
	struct acks a = { 0 };
	sm_init(&sm);
	push_n(&sm, 1, 3);
	cr_assert(sm_ack(&sm, 1, on_ack, &a));
	cr_assert(eq(int, sm_ack(&sm, 4, on_ack, &a), false));
	/* Going backwards is as wrong: modulo 2^32 it is far ahead. */
	cr_assert(eq(int, sm_ack(&sm, 0, on_ack, &a), false));
	cr_assert(eq(sz, a.n, 1));
	cr_assert(eq(u32, sm.acked, 1));
	cr_assert(eq(sz, sm.nqueue, 2));
	cr_assert(sm_ack(&sm, 3, on_ack, &a));
	cr_assert(eq(sz, a.n, 3));
	sm_finish(&sm);

	sm_init(&sm);
	cr_assert(eq(int, sm_ack(&sm, 1, NULL, NULL), false));
	cr_assert(sm_ack(&sm, 0, NULL, NULL));
	sm_finish(&sm);
}

Test(sm, wraparound_at_2_to_the_32)
{
	struct sm sm;
	struct acks a = { 0 };
	sm_init(&sm);
	sm.h_out = UINT32_MAX - 1;
	sm.acked = UINT32_MAX - 1;
	cr_assert(eq(u32, sm_push(&sm, 1, "<a/>", 4), UINT32_MAX));
	cr_assert(eq(u32, sm_push(&sm, 2, "<b/>", 4), 0));
	cr_assert(eq(u32, sm_push(&sm, 3, "<c/>", 4), 1));
	cr_assert(eq(u32, sm_push(&sm, 4, "<d/>", 4), 2));
	cr_assert(eq(int, sm_ack(&sm, 3, on_ack, &a), false));
	cr_assert(sm_ack(&sm, 0, on_ack, &a));
	cr_assert(eq(sz, a.n, 2));
	cr_assert(eq(u64, a.tags[1], 2));
	cr_assert(sm_ack(&sm, 2, on_ack, &a));
	cr_assert(eq(sz, a.n, 4));
	cr_assert(eq(u64, a.tags[3], 4));
	cr_assert(eq(sz, sm.nqueue, 0));
	cr_assert(eq(u32, sm.acked, 2));
	/* The inbound count wraps the same way. */
	sm.h_in = UINT32_MAX;
	sm.h_in++;
	cr_assert(eq(u32, sm.h_in, 0));
	sm_finish(&sm);
}

Test(sm, take_queue_hands_over_everything)
{
	struct sm sm;
	size_t n = 99;
	sm_init(&sm);
	cr_assert(sm_take_queue(&sm, &n) == NULL);
	cr_assert(eq(sz, n, 0));
	push_n(&sm, 20, 3);
	struct sm_entry *q = sm_take_queue(&sm, &n);
	cr_assert(eq(sz, n, 3));
	cr_assert(eq(sz, sm.nqueue, 0));
	cr_assert(sm.queue == NULL);
	for (size_t i = 0; i < n; i++) {
		cr_assert(eq(u64, q[i].tag, 20 + i));
		cr_assert(eq(u32, q[i].seq, (uint32_t)(i + 1)));
		free(q[i].data);
	}
	free(q);
	/* The session goes on: what it sent after is acked normally, and
	 * the taken entries count as acknowledged on the way. */
	struct acks a = { 0 };
	push_n(&sm, 30, 1);
	cr_assert(eq(u32, sm.queue[0].seq, 4));
	cr_assert(sm_ack(&sm, 2, on_ack, &a));
	cr_assert(eq(sz, a.n, 0));
	cr_assert(sm_ack(&sm, 4, on_ack, &a));
	cr_assert(eq(sz, a.n, 1));
	cr_assert(eq(u64, a.tags[0], 30));
	sm_finish(&sm);
}

Test(sm, reset_keeps_queue_drops_session)
{
	struct sm sm;
	sm_init(&sm);
	sm.enabled = true;
	sm.resumable = true;
	sm.id = strdup("abc");
	sm.location = strdup("[::1]:5222");
	sm.jid = strdup("juliet@example.com/balcony");
	sm.max = 300;
	sm.h_in = 17;
	push_n(&sm, 1, 3);
	cr_assert(sm_ack(&sm, 1, NULL, NULL));
	sm_reset_session(&sm);
	cr_assert(eq(int, sm.enabled, false));
	cr_assert(eq(int, sm.resumable, false));
	cr_assert(sm.id == NULL && sm.location == NULL && sm.jid == NULL);
	cr_assert(eq(u32, sm.max, 0));
	cr_assert(eq(u32, sm.h_in, 0));
	cr_assert(eq(u32, sm.h_out, 0));
	cr_assert(eq(u32, sm.acked, 0));
	cr_assert(eq(sz, sm.nqueue, 2));
	cr_assert(eq(u64, sm.queue[0].tag, 2));
	cr_assert(eq(sz, sm_session_first(&sm), 2));
	sm_finish(&sm);
}

Test(sm, left_over_entries_are_never_acked)
{
	/* Entries from a reset session stay first in the queue; an ack of
	 * the new session (whose seq values collide with theirs) only
	 * covers the new session's stanzas. */
	struct sm sm;
	struct acks a = { 0 };
	sm_init(&sm);
	push_n(&sm, 1, 3);
	sm_reset_session(&sm);
	push_n(&sm, 11, 2);
	cr_assert(eq(sz, sm_session_first(&sm), 3));
	cr_assert(eq(u32, sm.queue[3].seq, 1));
	cr_assert(eq(int, sm_ack(&sm, 3, on_ack, &a), false));
	cr_assert(sm_ack(&sm, 1, on_ack, &a));
	cr_assert(eq(sz, a.n, 1));
	cr_assert(eq(u64, a.tags[0], 11));
	cr_assert(eq(sz, sm.nqueue, 4));
	cr_assert(eq(u64, sm.queue[0].tag, 1));
	cr_assert(eq(u64, sm.queue[3].tag, 12));
	cr_assert(eq(sz, sm_session_first(&sm), 3));
	size_t n;
	struct sm_entry *q = sm_take_queue(&sm, &n);
	cr_assert(eq(sz, n, 4));
	for (size_t i = 0; i < n; i++) {
		free(q[i].data);
	}
	free(q);
	cr_assert(sm_ack(&sm, 2, on_ack, &a));
	cr_assert(eq(sz, a.n, 1));
	sm_finish(&sm);
}

Test(sm, callback_may_push)
{
	/* The owner sends its next stanza from cb.acked. */
	struct sm sm;
	sm_init(&sm);
	struct acks a = { .sm = &sm };
	push_n(&sm, 1, 3);
	cr_assert(sm_ack(&sm, 3, on_ack, &a));
	cr_assert(eq(sz, a.n, 3));
	cr_assert(eq(sz, sm.nqueue, 1));
	cr_assert(eq(u64, sm.queue[0].tag, 100));
	cr_assert(eq(u32, sm.queue[0].seq, 4));
	cr_assert(eq(str, sm.queue[0].data, "<late/>"));
	cr_assert(sm_ack(&sm, 4, on_ack, &a));
	cr_assert(eq(sz, a.n, 4));
	cr_assert(eq(sz, sm.nqueue, 0));
	sm_finish(&sm);
}

Test(sm, callback_may_take_queue)
{
	struct sm sm;
	sm_init(&sm);
	struct acks a = { .sm = &sm, .take = true };
	push_n(&sm, 1, 3);
	cr_assert(sm_ack(&sm, 3, on_ack, &a));
	cr_assert(eq(sz, a.n, 1));
	cr_assert(eq(sz, sm.nqueue, 0));
	cr_assert(eq(u32, sm.acked, 3));
	sm_finish(&sm);
}

Test(sm, finish_frees_everything)
{
	/* Run under ASan: nothing leaks, and finish leaves a usable state. */
	struct sm sm;
	sm_init(&sm);
	sm.id = strdup("x");
	push_n(&sm, 1, 40);
	sm_finish(&sm);
	cr_assert(eq(sz, sm.nqueue, 0));
	cr_assert(sm.queue == NULL && sm.id == NULL);
	push_n(&sm, 1, 1);
	sm_finish(&sm);
}

Test(sm, restored_state_accepts_an_ack_past_what_it_saved)
{
	/* Saved with h_out 3 (entries 2 and 3 unacked); the daemon had
	 * sent two more before it crashed, which the server counted. */
	struct sm sm;
	sm_init(&sm);
	sm_push(&sm, 1, "<a1/>", 5);
	sm_push(&sm, 2, "<a2/>", 5);
	sm_push(&sm, 3, "<a3/>", 5);
	cr_assert(sm_ack(&sm, 1, NULL, NULL));
	cr_assert(not(sm_ack(&sm, 5, NULL, NULL)));
	sm.restored = true;
	/* Backwards is still refused. */
	cr_assert(not(sm_ack(&sm, 0, NULL, NULL)));
	cr_assert(sm.restored);
	struct acks a = { .n = 0 };
	cr_assert(sm_ack(&sm, 5, on_ack, &a));
	cr_expect(eq(sz, a.n, 2));
	cr_expect(eq(u32, sm.acked, 5));
	cr_expect(eq(u32, sm.h_out, 5));
	cr_expect(eq(sz, sm.nqueue, 0));
	cr_expect(not(sm.restored));
	/* Only once: from now on the counters are exact again. */
	cr_expect(not(sm_ack(&sm, 7, NULL, NULL)));
	sm_finish(&sm);
}
