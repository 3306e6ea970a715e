#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"
#include "daemon/core.h"
#include "daemon/events.h"
#include "daemon/log.h"
#include "daemon/outbox.h"
#include "proto/alloc.h"
#include "proto/jid.h"

struct outbox_entry {
	struct outbox_entry *next;
	uint64_t tag;
	char *msg_id;
	char *to;
	struct xml *stanza;
	uint64_t accepted_ms;	/* loop time */
	bool sent;		/* handed to the current stream */
	bool delivered;		/* a receipt came */
	bool failed;		/* an error reply came: no "acked", no resend */
};

/* A message that left the outbox, still recognised by its id. */
struct outbox_recent {
	char *msg_id;		/* NULL: an empty slot */
	char *to;
	bool delivered;
	bool failed;
};

/* What outbox_failed and outbox_delivered look at: either a waiting
 * entry's fields or a recent one's. */
struct sent_ref {
	const char *msg_id;
	const char *to;
	bool *delivered;
	bool *failed;
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

static void recent_clear(struct outbox_recent *r)
{
	free(r->msg_id);
	free(r->to);
	memset(r, 0, sizeof(*r));
}

void outbox_finish(struct outbox *o)
{
	struct outbox_entry *e = o->head;
	while (e != NULL) {
		struct outbox_entry *next = e->next;
		entry_free(e);
		e = next;
	}
	if (o->recent != NULL) {
		for (size_t i = 0; i < OUTBOX_RECENT; i++) {
			recent_clear(&o->recent[i]);
		}
		free(o->recent);
	}
	memset(o, 0, sizeof(*o));
}

/* Remembers an entry that leaves the outbox, replacing the oldest. */
static void remember(struct outbox *o, const struct outbox_entry *e)
{
	if (o->recent == NULL) {
		o->recent = xcalloc(OUTBOX_RECENT, sizeof(*o->recent));
	}
	struct outbox_recent *r = &o->recent[o->recent_next];
	o->recent_next = (o->recent_next + 1) % OUTBOX_RECENT;
	recent_clear(r);
	r->msg_id = xstrdup(e->msg_id);
	r->to = xstrdup(e->to);
	r->delivered = e->delivered;
	r->failed = e->failed;
}

size_t outbox_count(const struct outbox *o)
{
	return o->count;
}

static json_t *sent_event(const char *msg_id, const char *to,
	const char *status)
{
	json_t *ev = json_object();
	json_object_set_new(ev, "msg_id", json_string(msg_id));
	json_object_set_new(ev, "to", json_string(to));
	json_object_set_new(ev, "status", json_string(status));
	return ev;
}

static void publish(const struct outbox_entry *e, const char *status)
{
	events_publish("sent", sent_event(e->msg_id, e->to, status));
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
		if (e->failed) {
			/* Answered with an error already: never again. */
			unlink_entry(o, prev, e);
			remember(o, e);
			entry_free(e);
		} else if (expired(x, e)) {
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
			remember(o, e);
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
			if (!e->failed) {
				publish(e, "acked");
			}
			unlink_entry(o, prev, e);
			remember(o, e);
			entry_free(e);
			return;
		}
	}
}

/* The message with this id: waiting in the outbox or recently gone. */
static bool find_sent(struct outbox *o, const char *msg_id, struct sent_ref *ref)
{
	for (struct outbox_entry *e = o->head; e != NULL; e = e->next) {
		if (strcmp(e->msg_id, msg_id) == 0) {
			*ref = (struct sent_ref){ e->msg_id, e->to, &e->delivered,
				&e->failed };
			return true;
		}
	}
	for (size_t i = 0; o->recent != NULL && i < OUTBOX_RECENT; i++) {
		struct outbox_recent *r = &o->recent[i];
		if (r->msg_id != NULL && strcmp(r->msg_id, msg_id) == 0) {
			*ref = (struct sent_ref){ r->msg_id, r->to, &r->delivered,
				&r->failed };
			return true;
		}
	}
	return false;
}

/*
 * May 'from' speak about a message we sent to 'to'? The recipient may
 * (any of its resources); for errors also its server, and ours (or no
 * from at all: our server on the account's behalf). Anyone else could
 * only be guessing ids, or replaying those of messages we sent them.
 */
static bool sender_fits(const struct xmppd *x, const char *to,
	const char *from, bool servers)
{
	if (from == NULL) {
		return servers;
	}
	struct jid f, t;
	if (!jid_parse(&f, from, NULL)) {
		return false;
	}
	if (!jid_parse(&t, to, NULL)) {
		jid_finish(&f);
		return false;
	}
	bool ok = jid_bare_equal(&f, &t);
	if (!ok && servers && f.local == NULL && f.resource == NULL) {
		ok = strcmp(f.domain, t.domain) == 0 ||
			strcmp(f.domain, x->domain) == 0;
	}
	jid_finish(&f);
	jid_finish(&t);
	return ok;
}

bool outbox_failed(struct xmppd *x, const char *msg_id, const char *from,
	const char *condition, const char *text)
{
	struct sent_ref ref;
	if (msg_id == NULL || !find_sent(&x->outbox, msg_id, &ref) ||
			!sender_fits(x, ref.to, from, true)) {
		return false;
	}
	if (!*ref.failed) {
		*ref.failed = true;
		log_info("message %s to %s failed: %s", ref.msg_id, ref.to,
			condition ? condition : "undefined-condition");
		json_t *ev = sent_event(ref.msg_id, ref.to, "failed");
		json_object_set_new(ev, "condition", json_string(condition ?
			condition : "undefined-condition"));
		if (text != NULL) {
			json_object_set_new(ev, "text", json_string(text));
		}
		events_publish("sent", ev);
	}
	return true;
}

bool outbox_delivered(struct xmppd *x, const char *msg_id, const char *from)
{
	struct sent_ref ref;
	if (msg_id == NULL || !find_sent(&x->outbox, msg_id, &ref) ||
			!sender_fits(x, ref.to, from, false)) {
		return false;
	}
	if (!*ref.delivered && !*ref.failed) {
		*ref.delivered = true;
		events_publish("sent", sent_event(ref.msg_id, ref.to, "delivered"));
	}
	return true;
}
