#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"
#include "daemon/core.h"
#include "daemon/csi.h"
#include "daemon/events.h"
#include "daemon/log.h"
#include "daemon/outbox.h"
#include "daemon/store.h"
#include "proto/alloc.h"
#include "proto/jid.h"
#include "proto/ns.h"
#include "proto/reader.h"

struct outbox_entry {
	struct outbox_entry *next;
	uint64_t tag;
	char *msg_id;
	char *to;
	struct xml *stanza;
	uint64_t accepted_ms;	/* loop time */
	int64_t rowid;		/* in the store's outbox, or 0 */
	bool committed;		/* durable (or no store): may be sent */
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

/* Unlinks e, whose predecessor is prev (NULL: e is the head), and
 * deletes its row (in the turn's transaction). */
static void unlink_entry(struct xmppd *x, struct outbox_entry *prev,
	struct outbox_entry *e)
{
	struct outbox *o = &x->outbox;
	store_outbox_remove(x->store, e->rowid);
	if (prev == NULL) {
		o->head = e->next;
	} else {
		prev->next = e->next;
	}
	if (o->tail == e) {
		o->tail = prev;
	}
	if (o->flushed == e) {
		o->flushed = prev;
	}
	o->count--;
}

/* Links a new entry at the tail. */
static struct outbox_entry *append(struct outbox *o, const char *msg_id,
	struct xml *stanza, uint64_t accepted_ms)
{
	struct outbox_entry *e = xcalloc(1, sizeof(*e));
	e->tag = o->next_tag++;
	e->msg_id = xstrdup(msg_id);
	const char *to = xml_attr(stanza, "to");
	e->to = xstrdup(to ? to : "");
	e->stanza = stanza;
	e->accepted_ms = accepted_ms;
	if (o->tail == NULL) {
		o->head = e;
	} else {
		o->tail->next = e;
	}
	o->tail = e;
	o->count++;
	return e;
}

/* A message waiting for its commit. Its entry stays linked until then:
 * only committed entries are sent, acked or expired. */
struct pending {
	struct xmppd *x;
	struct outbox_entry *e;
	outbox_done_cb done;
	void *ud;
};

/* The entry before e (NULL: e is the head). */
static struct outbox_entry *before(struct outbox *o, struct outbox_entry *e)
{
	struct outbox_entry *prev = NULL;
	for (struct outbox_entry *i = o->head; i != NULL && i != e; i = i->next) {
		prev = i;
	}
	return prev;
}

static void committed_cb(void *ud, const char *error)
{
	struct pending *p = ud;
	struct xmppd *x = p->x;
	struct outbox_entry *e = p->e;
	if (error == NULL) {
		e->committed = true;
		publish(e, "queued");
	} else {
		log_warnx("message %s to %s refused: %s", e->msg_id, e->to, error);
		e->rowid = 0;	/* rolled back: no row to delete */
		unlink_entry(x, before(&x->outbox, e), e);
		entry_free(e);
	}
	if (p->done != NULL) {
		p->done(p->ud, error);
	}
	free(p);
	/* The last of the turn's commits sends them all at once. */
	if (--x->outbox.pending == 0) {
		outbox_flush(x);
	}
}

/* The store's error as the reason a send is refused. */
static void refuse(struct xmppd *x, struct xerr *e)
{
	const char *why = store_error(x->store);
	why = why ? why : "the message store cannot be written";
	xerr_set(e, strstr(why, "full") != NULL ? "resource-constraint" :
		"internal-server-error", "not accepted: the message store "
		"failed: %s", why);
}

enum outbox_result outbox_add(struct xmppd *x, const char *msg_id,
	struct xml *stanza, outbox_done_cb done, void *ud, struct xerr *err)
{
	struct outbox *o = &x->outbox;
	if (o->count >= x->cfg->queue) {
		xml_free(stanza);
		xerr_set(err, "resource-constraint",
			"%zu messages are already waiting to be sent", o->count);
		return OUTBOX_REFUSED;
	}
	int64_t rowid = 0;
	if (store_enabled(x->store)) {
		char *text = xml_to_string(stanza, NS_CLIENT);
		rowid = text ? store_outbox_add(x->store, msg_id,
			xml_attr(stanza, "to"), text, store_wall_ms()) : 0;
		free(text);
		if (rowid == 0) {
			xml_free(stanza);
			refuse(x, err);
			return OUTBOX_REFUSED;
		}
	}
	struct outbox_entry *e = append(o, msg_id, stanza, uv_now(x->loop));
	e->rowid = rowid;
	if (rowid == 0) {
		e->committed = true;
		publish(e, "queued");
		outbox_flush(x);
		return OUTBOX_ACCEPTED;
	}
	struct pending *p = xcalloc(1, sizeof(*p));
	*p = (struct pending){ x, e, done, ud };
	o->pending++;
	store_when_committed(x->store, committed_cb, p);
	return OUTBOX_PENDING;
}

/* Loop time of a wall-clock acceptance time. */
static uint64_t loop_time(struct xmppd *x, int64_t accepted)
{
	uint64_t now = uv_now(x->loop);
	int64_t age = store_wall_ms() - accepted;
	if (age <= 0) {
		return now;
	}
	return (uint64_t)age < now ? now - (uint64_t)age : 0;
}

static void load_row(void *ud, int64_t rowid, const char *msg_id,
	const char *to, const char *stanza, int64_t accepted)
{
	struct xmppd *x = ud;
	const char *err = NULL;
	struct xml *st = stanza ? reader_parse_element(stanza, strlen(stanza),
		NS_CLIENT, &err) : NULL;
	if (st == NULL || msg_id == NULL) {
		log_warnx("store: outbox row %jd is unreadable (%s); dropped",
			(intmax_t)rowid, err ? err : "empty");
		store_outbox_remove(x->store, rowid);
		return;
	}
	struct outbox_entry *e = append(&x->outbox, msg_id, st,
		loop_time(x, accepted));
	e->rowid = rowid;
	e->committed = true;
	(void)to;
}

struct outbox_tag_row *outbox_tag_rows(const struct outbox *o, size_t *n)
{
	struct outbox_tag_row *t = xcalloc(o->count + 1, sizeof(*t));
	size_t k = 0;
	/* Tags grow in acceptance order, the list's order. */
	for (const struct outbox_entry *e = o->head; e != NULL; e = e->next) {
		t[k++] = (struct outbox_tag_row){ e->tag, e->rowid };
	}
	*n = k;
	return t;
}

bool outbox_restore_sent(struct xmppd *x, int64_t rowid, uint64_t *tag,
	char **data)
{
	for (struct outbox_entry *e = x->outbox.head; e != NULL; e = e->next) {
		if (e->rowid == rowid) {
			*data = xml_to_string(e->stanza, NS_CLIENT);
			if (*data == NULL) {
				return false;
			}
			*tag = e->tag;
			e->sent = true;
			return true;
		}
	}
	return false;
}

void outbox_load(struct xmppd *x)
{
	store_outbox_load(x->store, load_row, x);
	if (x->outbox.count > 0) {
		log_info("store: %zu messages in the outbox from before",
			x->outbox.count);
	}
}

static bool expired(const struct xmppd *x, const struct outbox_entry *e)
{
	uint64_t max = (uint64_t)x->cfg->max_age * 1000;
	return max != 0 && uv_now(x->loop) - e->accepted_ms > max;
}

/*
 * Sends the committed entries not sent yet, in order. Entries up to
 * o->flushed were all sent on this stream: the walk starts after them,
 * so sending one more message costs the same however many wait for
 * their acks.
 */
void outbox_flush(struct xmppd *x)
{
	struct outbox *o = &x->outbox;
	if (x->state != XMPPD_ONLINE || x->session == NULL) {
		return;
	}
	bool managed = session_sm_enabled(x->session);
	struct outbox_entry *prev = o->flushed;
	struct outbox_entry *e = prev ? prev->next : o->head;
	bool prefix = true;	/* every entry before e was sent */
	while (e != NULL) {
		struct outbox_entry *next = e->next;
		if (e->sent || !e->committed) {
			prefix = prefix && e->sent;
			if (prefix) {
				o->flushed = e;
			}
			prev = e;
			e = next;
			continue;
		}
		if (e->failed) {
			/* Answered with an error already: never again. */
			unlink_entry(x, prev, e);
			remember(o, e);
			entry_free(e);
		} else if (expired(x, e)) {
			log_info("message %s to %s expired unsent", e->msg_id, e->to);
			publish(e, "expired");
			unlink_entry(x, prev, e);
			entry_free(e);
		} else if (!session_send_tagged(x->session, e->stanza, e->tag)) {
			log_warnx("message %s could not be sent", e->msg_id);
			return;
		} else if (!managed) {
			/* Without XEP-0198 nothing will ever confirm it. */
			unlink_entry(x, prev, e);
			remember(o, e);
			entry_free(e);
		} else {
			e->sent = true;
			if (prefix) {
				o->flushed = e;
			}
			prev = e;
		}
		e = next;
	}
	csi_evaluate(x);
}

void outbox_fresh_session(struct xmppd *x)
{
	x->outbox.flushed = NULL;
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
			unlink_entry(x, prev, e);
			remember(o, e);
			entry_free(e);
			if (o->count == 0) {
				csi_evaluate(x);
			}
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
