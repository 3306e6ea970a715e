/*
 * XEP-0198 state: counters modulo 2^32 and the queue of stanzas the
 * server has not acknowledged yet.
 *
 * The queue holds, oldest first, possibly some entries left over from an
 * earlier session (after sm_reset_session(), until the owner takes them)
 * followed by the entries of the current session. Every stanza pushed in
 * the current session is either acknowledged or still queued, so the
 * current session's entries are the last h_out - acked ones; anything
 * before them is left over and never acknowledged by this session's
 * counters, even if its old seq happens to fall in the window of a new
 * <a/>.
 */
#include <stdlib.h>
#include <string.h>

#include "proto/alloc.h"
#include "proto/sm.h"

/* How many stanzas past its saved h_out a restored state accepts as
 * acknowledged: those sent between the last save and the crash. */
#define SM_RESTORED_SLACK 65536

/* Prepares an empty state: no session, counters at 0, empty queue. */
void sm_init(struct sm *sm)
{
	memset(sm, 0, sizeof(*sm));
}

static void free_session(struct sm *sm)
{
	free(sm->id);
	free(sm->location);
	free(sm->jid);
	sm->id = NULL;
	sm->location = NULL;
	sm->jid = NULL;
}

/* Frees everything the state holds, queue included. */
void sm_finish(struct sm *sm)
{
	free_session(sm);
	for (size_t i = 0; i < sm->nqueue; i++) {
		free(sm->queue[i].data);
	}
	free(sm->queue);
	memset(sm, 0, sizeof(*sm));
}

/* Forgets the session but keeps the queue for the owner. */
void sm_reset_session(struct sm *sm)
{
	free_session(sm);
	sm->enabled = false;
	sm->resumable = false;
	sm->max = 0;
	sm->h_in = 0;
	sm->h_out = 0;
	sm->acked = 0;
	sm->restored = false;
}

/* Queues a copy of a stanza just sent; returns the h it made. */
uint32_t sm_push(struct sm *sm, uint64_t tag, const char *data, size_t len)
{
	sm->queue = xgrow(sm->queue, &sm->capqueue, sm->nqueue + 1,
		sizeof(*sm->queue));
	struct sm_entry *e = &sm->queue[sm->nqueue++];
	sm->h_out++;
	e->seq = sm->h_out;
	e->tag = tag;
	e->len = len;
	e->data = xmalloc(len + 1);
	if (len > 0) {
		memcpy(e->data, data, len);
	}
	e->data[len] = '\0';
	return e->seq;
}

/* Is seq in the window (from, to] of the 2^32 circle? */
static bool in_window(uint32_t seq, uint32_t from, uint32_t to)
{
	return (uint32_t)(seq - from - 1) < (uint32_t)(to - from);
}

/* Left-over entries come first; the session's are the last h_out - acked
 * (fewer if the owner took the queue meanwhile). */
size_t sm_session_first(const struct sm *sm)
{
	uint32_t live = sm->h_out - sm->acked;
	return sm->nqueue > live ? sm->nqueue - live : 0;
}

/*
 * Entries leave the queue one at a time before their callback runs, so
 * the callback may push (the owner sends its next stanza) or take the
 * queue without disturbing the walk.
 */
bool sm_ack(struct sm *sm, uint32_t h, void (*ack)(void *ud, uint64_t tag),
	void *ud)
{
	uint32_t from = sm->acked;
	if ((uint32_t)(h - from) > (uint32_t)(sm->h_out - from)) {
		/* A little past, not backwards (which is far ahead modulo
		 * 2^32). */
		if (!sm->restored || (uint32_t)(h - sm->h_out) > SM_RESTORED_SLACK) {
			return false;
		}
		/* Stanzas sent after the saved state was written reached the
		 * server: they count, as if sent now. */
		sm->h_out = h;
	}
	sm->restored = false;
	size_t first = sm_session_first(sm);
	sm->acked = h;
	while (first < sm->nqueue && in_window(sm->queue[first].seq, from, h)) {
		struct sm_entry e = sm->queue[first];
		memmove(&sm->queue[first], &sm->queue[first + 1],
			(sm->nqueue - first - 1) * sizeof(*sm->queue));
		sm->nqueue--;
		if (ack != NULL) {
			ack(ud, e.tag);
		}
		free(e.data);
	}
	return true;
}

/* Hands every queued entry to the caller and empties the queue. */
struct sm_entry *sm_take_queue(struct sm *sm, size_t *n)
{
	struct sm_entry *q = sm->queue;
	*n = sm->nqueue;
	if (sm->nqueue == 0) {
		free(q);
		q = NULL;
	}
	sm->queue = NULL;
	sm->nqueue = 0;
	sm->capqueue = 0;
	return q;
}
