#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"
#include "daemon/core.h"
#include "daemon/events.h"
#include "daemon/log.h"
#include "daemon/outbox.h"
#include "proto/alloc.h"

struct outbox_entry {
	struct outbox_entry *next;
	uint64_t tag;
	char *msg_id;
	char *to;
	struct xml *stanza;
	uint64_t accepted_ms;	/* loop time */
	bool sent;		/* handed to the current stream */
};

void outbox_init(struct outbox *o)
{
	memset(o, 0, sizeof(*o));
	o->next_tag = 1;
}

static void entry_free(struct outbox_entry *e)
{
	free(e->msg_id);
	free(e->to);
	xml_free(e->stanza);
	free(e);
}

void outbox_finish(struct outbox *o)
{
	struct outbox_entry *e = o->head;
	while (e != NULL) {
		struct outbox_entry *next = e->next;
		entry_free(e);
		e = next;
	}
	memset(o, 0, sizeof(*o));
}

size_t outbox_count(const struct outbox *o)
{
	return o->count;
}

static void publish(const struct outbox_entry *e, const char *status)
{
	json_t *ev = json_object();
	json_object_set_new(ev, "msg_id", json_string(e->msg_id));
	json_object_set_new(ev, "to", json_string(e->to));
	json_object_set_new(ev, "status", json_string(status));
	events_publish("sent", ev);
}

/* Unlinks e, whose predecessor is prev (NULL: e is the head). */
static void unlink_entry(struct outbox *o, struct outbox_entry *prev,
	struct outbox_entry *e)
{
	if (prev == NULL) {
		o->head = e->next;
	} else {
		prev->next = e->next;
	}
	if (o->tail == e) {
		o->tail = prev;
	}
	o->count--;
}

bool outbox_add(struct xmppd *x, const char *msg_id, struct xml *stanza)
{
	struct outbox *o = &x->outbox;
	if (o->count >= x->cfg->queue) {
		xml_free(stanza);
		return false;
	}
	struct outbox_entry *e = xcalloc(1, sizeof(*e));
	e->tag = o->next_tag++;
	e->msg_id = xstrdup(msg_id);
	e->to = xstrdup(xml_attr(stanza, "to"));
	e->stanza = stanza;
	e->accepted_ms = uv_now(x->loop);
	if (o->tail == NULL) {
		o->head = e;
	} else {
		o->tail->next = e;
	}
	o->tail = e;
	o->count++;
	publish(e, "queued");
	outbox_flush(x);
	return true;
}

static bool expired(const struct xmppd *x, const struct outbox_entry *e)
{
	uint64_t max = (uint64_t)x->cfg->max_age * 1000;
	return max != 0 && uv_now(x->loop) - e->accepted_ms > max;
}

void outbox_flush(struct xmppd *x)
{
	struct outbox *o = &x->outbox;
	if (x->state != XMPPD_ONLINE || x->session == NULL) {
		return;
	}
	bool managed = session_sm_enabled(x->session);
	struct outbox_entry *prev = NULL;
	struct outbox_entry *e = o->head;
	while (e != NULL) {
		struct outbox_entry *next = e->next;
		if (e->sent) {
			prev = e;
			e = next;
			continue;
		}
		if (expired(x, e)) {
			log_info("message %s to %s expired unsent", e->msg_id, e->to);
			publish(e, "expired");
			unlink_entry(o, prev, e);
			entry_free(e);
		} else if (!session_send_tagged(x->session, e->stanza, e->tag)) {
			log_warnx("message %s could not be sent", e->msg_id);
			return;
		} else if (!managed) {
			/* Without XEP-0198 nothing will ever confirm it. */
			unlink_entry(o, prev, e);
			entry_free(e);
		} else {
			e->sent = true;
			prev = e;
		}
		e = next;
	}
}

void outbox_fresh_session(struct xmppd *x)
{
	for (struct outbox_entry *e = x->outbox.head; e != NULL; e = e->next) {
		e->sent = false;
	}
}

void outbox_acked(struct xmppd *x, uint64_t tag)
{
	struct outbox *o = &x->outbox;
	struct outbox_entry *prev = NULL;
	for (struct outbox_entry *e = o->head; e != NULL; prev = e, e = e->next) {
		if (e->tag == tag) {
			publish(e, "acked");
			unlink_entry(o, prev, e);
			entry_free(e);
			return;
		}
	}
}
