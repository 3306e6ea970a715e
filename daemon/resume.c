#include <stdlib.h>
#include <string.h>

#include "daemon/core.h"
#include "daemon/log.h"
#include "daemon/resume.h"
#include "daemon/store.h"
#include "proto/alloc.h"

#define META_KEY "sm"

static int64_t row_of(const struct outbox_tag_row *t, size_t n, uint64_t tag)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t[mid].tag == tag) {
			return t[mid].rowid;
		}
		if (t[mid].tag < tag) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return 0;
}

/* The unacknowledged stanzas: outbox rows by number, others whole. */
static json_t *queue_json(struct xmppd *x)
{
	const struct sm *sm = &x->sm;
	size_t n;
	struct outbox_tag_row *rows = outbox_tag_rows(&x->outbox, &n);
	json_t *q = json_array();
	for (size_t i = sm_session_first(sm); i < sm->nqueue; i++) {
		const struct sm_entry *e = &sm->queue[i];
		json_t *o = json_object();
		json_object_set_new(o, "seq", json_integer(e->seq));
		int64_t row = e->tag != 0 ? row_of(rows, n, e->tag) : 0;
		if (row > 0) {
			json_object_set_new(o, "row", json_integer(row));
		} else {
			json_object_set_new(o, "data", json_stringn(e->data, e->len));
		}
		json_array_append_new(q, o);
	}
	free(rows);
	return q;
}

static json_t *state_json(struct xmppd *x)
{
	const struct sm *sm = &x->sm;
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(sm->id));
	json_object_set_new(o, "jid", json_string(sm->jid));
	if (sm->location != NULL) {
		json_object_set_new(o, "location", json_string(sm->location));
	}
	json_object_set_new(o, "max", json_integer(sm->max));
	json_object_set_new(o, "h_in", json_integer(sm->h_in));
	json_object_set_new(o, "h_out", json_integer(sm->h_out));
	json_object_set_new(o, "acked", json_integer(sm->acked));
	json_object_set_new(o, "queue", queue_json(x));
	return o;
}

/* The store's precommit hook: the counters go with the turn's writes
 * (an inbound message and the h that counts it, an ack and the outbox
 * rows it deletes). */
static void save_cb(void *ud)
{
	struct xmppd *x = ud;
	const struct sm *sm = &x->sm;
	if (x->quitting || !sm->resumable || sm->id == NULL || sm->jid == NULL) {
		if (x->resume_saved) {
			store_meta_set(x->store, META_KEY, "");
			x->resume_saved = false;
		}
		return;
	}
	json_t *o = state_json(x);
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (text != NULL && store_meta_set(x->store, META_KEY, text)) {
		x->resume_saved = true;
	}
	free(text);
}

static uint32_t u32(json_t *o, const char *key)
{
	return (uint32_t)json_integer_value(json_object_get(o, key));
}

static void push(struct sm *sm, uint32_t seq, uint64_t tag, char *data)
{
	sm->queue = xgrow(sm->queue, &sm->capqueue, sm->nqueue + 1,
		sizeof(*sm->queue));
	sm->queue[sm->nqueue++] = (struct sm_entry){
		.seq = seq, .tag = tag, .data = data, .len = strlen(data),
	};
}

static void load_queue(struct xmppd *x, json_t *q)
{
	size_t i;
	json_t *it;
	json_array_foreach(q, i, it) {
		uint32_t seq = u32(it, "seq");
		json_t *row = json_object_get(it, "row");
		const char *data = json_string_value(json_object_get(it, "data"));
		uint64_t tag = 0;
		char *copy = NULL;
		if (json_is_integer(row)) {
			if (!outbox_restore_sent(x, json_integer_value(row), &tag,
					&copy)) {
				continue;
			}
		} else if (data != NULL) {
			copy = xstrdup(data);
		} else {
			continue;
		}
		push(&x->sm, seq, tag, copy);
	}
}

void resume_load(struct xmppd *x)
{
	if (!store_enabled(x->store)) {
		return;
	}
	store_set_precommit(x->store, save_cb, x);
	char *text = store_meta_get(x->store, META_KEY);
	json_t *o = text && text[0] ? json_loads(text, 0, NULL) : NULL;
	free(text);
	const char *id = json_string_value(json_object_get(o, "id"));
	const char *jid = json_string_value(json_object_get(o, "jid"));
	if (id == NULL || jid == NULL) {
		json_decref(o);
		return;
	}
	struct sm *sm = &x->sm;
	const char *loc = json_string_value(json_object_get(o, "location"));
	sm->id = xstrdup(id);
	sm->jid = xstrdup(jid);
	sm->location = loc ? xstrdup(loc) : NULL;
	sm->max = u32(o, "max");
	sm->h_in = u32(o, "h_in");
	sm->h_out = u32(o, "h_out");
	sm->acked = u32(o, "acked");
	sm->resumable = true;
	sm->restored = true;
	load_queue(x, json_object_get(o, "queue"));
	json_decref(o);
	x->resume_saved = true;
	x->restored_session = true;
	log_info("stream management: the session of %s from before the restart "
		"(%zu stanzas unacknowledged) is tried first", sm->jid, sm->nqueue);
}

void resume_forget(struct xmppd *x)
{
	if (x->resume_saved && store_meta_set(x->store, META_KEY, "")) {
		x->resume_saved = false;
	}
}
