/*
 * Presence: our own (initial from [presence], changed by the presence
 * command, unavailable on the way out) and what contacts send, published
 * as presence events; subscription presences go to roster.c.
 *
 * The presence table holds one entry per available contact resource,
 * sorted by prepared full JID: available presence adds or updates it,
 * unavailable removes it (from a bare JID: every resource of it), an
 * error presence leaves it alone. Our own full JID is not in it. It is
 * emptied when the session is lost without resumption, since contacts'
 * presence is then unknown until they send it again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/caps.h"
#include "daemon/config.h"
#include "daemon/core.h"
#include "daemon/events.h"
#include "daemon/log.h"
#include "daemon/muc.h"
#include "daemon/roster.h"
#include "daemon/subsystems.h"
#include "proto/alloc.h"
#include "proto/jid.h"
#include "proto/ns.h"

#ifndef NS_CAPS
#define NS_CAPS "http://jabber.org/protocol/caps"
#endif

struct presence_entry {
	char *jid;		/* prepared full JID */
	char *bare;		/* its bare part */
	char *show;		/* NULL: plainly available */
	char *status;
	int priority;
	char *caps_node;	/* XEP-0115, both or neither */
	char *caps_ver;
};

struct presence_table {
	struct presence_entry *v;	/* sorted by jid */
	size_t n;
	size_t cap;
	/* Our own presence as last broadcast by the presence command; until
	 * then (own_set false) the configuration's. Kept across sessions. */
	bool own_set;
	char *own_show;
	char *own_status;
	int own_priority;
};

static const char *const shows[] = { "away", "chat", "dnd", "xa", NULL };
static const char *const types[] = {
	"unavailable", "subscribe", "subscribed", "unsubscribe",
	"unsubscribed", "probe", NULL,
};

static bool one_of(const char *s, const char *const *list)
{
	for (size_t i = 0; list[i] != NULL; i++) {
		if (strcmp(s, list[i]) == 0) {
			return true;
		}
	}
	return false;
}

static struct xml *build(struct xmppd *x, const char *to, const char *type,
	const char *show, const char *status, bool has_priority, int priority)
{
	struct xml *p = xml_new("presence", NS_CLIENT);
	xml_set_attr(p, "to", to);
	xml_set_attr(p, "type", type);
	if (show != NULL) {
		xml_add_text_child(p, "show", NULL, show);
	}
	if (status != NULL) {
		xml_add_text_child(p, "status", NULL, status);
	}
	if (has_priority) {
		char num[16];
		snprintf(num, sizeof(num), "%d", priority);
		xml_add_text_child(p, "priority", NULL, num);
	}
	if (type == NULL) {
		xml_append(p, caps_element(x));	/* XEP-0115 */
	}
	return p;
}

struct xml *presence_own(struct xmppd *x, const char *to)
{
	const struct presence_table *t = x->presences;
	if (t->own_set) {
		return build(x, to, NULL, t->own_show, t->own_status,
			t->own_priority != 0, t->own_priority);
	}
	const struct config *c = x->cfg;
	return build(x, to, NULL, c->show, c->status, c->priority != 0,
		c->priority);
}

void presence_send_initial(struct xmppd *x)
{
	struct xml *p = presence_own(x, NULL);
	xmppd_send(x, p);
	xml_free(p);
}

void presence_send_again(struct xmppd *x)
{
	if (x->state != XMPPD_ONLINE || x->presence_pending) {
		return;	/* the initial presence, when it goes, is current */
	}
	presence_send_initial(x);
	muc_presence_changed(x);
}

void presence_send_unavailable(struct xmppd *x)
{
	struct xml *p = build(x, NULL, "unavailable", NULL, NULL, false, 0);
	xmppd_send(x, p);
	xml_free(p);
}

static void remember_own(struct presence_table *t, const char *show,
	const char *status, int priority)
{
	free(t->own_show);
	free(t->own_status);
	t->own_show = show != NULL ? xstrdup(show) : NULL;
	t->own_status = status != NULL ? xstrdup(status) : NULL;
	t->own_priority = priority;
	t->own_set = true;
}

/* Validates the arguments of the presence command. */
static int check(const struct presence_args *a, struct xerr *e)
{
	if (a->show != NULL && strcmp(a->show, "available") != 0 &&
			!one_of(a->show, shows)) {
		return xerr_set(e, "bad-request",
			"show must be available, away, chat, dnd or xa");
	}
	if (a->type != NULL && !one_of(a->type, types)) {
		return xerr_set(e, "bad-request", "unknown presence type '%s'", a->type);
	}
	if (a->has_priority && (a->priority < -128 || a->priority > 127)) {
		return xerr_set(e, "bad-request", "priority must be between -128 and 127");
	}
	return 0;
}

int presence_send(struct xmppd *x, const struct presence_args *a, struct xerr *e)
{
	if (check(a, e) < 0) {
		return -1;
	}
	char *to = NULL;
	if (a->to != NULL) {
		const char *err = NULL;
		to = jid_prep(a->to, false, &err);
		if (to == NULL) {
			return xerr_set(e, "invalid-jid", "to: %s", err);
		}
	}
	if (x->state != XMPPD_ONLINE) {
		free(to);
		return xerr_set(e, "not-connected", "the account is %s",
			xmppd_state_name(x->state));
	}
	const char *show = a->show;
	if (show != NULL && strcmp(show, "available") == 0) {
		show = NULL;
	}
	struct xml *p = build(x, to, a->type, show, a->status, a->has_priority,
		a->priority);
	bool sent = xmppd_send(x, p);
	xml_free(p);
	if (!sent) {
		free(to);
		return xerr_set(e, "bad-request",
			"the presence holds characters XML cannot carry");
	}
	if (to == NULL && a->type == NULL) {
		remember_own(x->presences, show, a->status,
			a->has_priority ? a->priority : 0);
		muc_presence_changed(x);
	}
	free(to);
	return 0;
}

/* ---- the table ---- */

static void entry_finish(struct presence_entry *e)
{
	free(e->jid);
	free(e->bare);
	free(e->show);
	free(e->status);
	free(e->caps_node);
	free(e->caps_ver);
}

static void table_clear(struct presence_table *t)
{
	for (size_t i = 0; i < t->n; i++) {
		entry_finish(&t->v[i]);
	}
	t->n = 0;
}

/* The index of jid, or -1 with *at set to where it would go. */
static long table_find(const struct presence_table *t, const char *jid,
	size_t *at)
{
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(jid, t->v[mid].jid);
		if (c == 0) {
			return (long)mid;
		}
		if (c < 0) {
			hi = mid;
		} else {
			lo = mid + 1;
		}
	}
	*at = lo;
	return -1;
}

static void table_remove_at(struct presence_table *t, size_t i)
{
	entry_finish(&t->v[i]);
	memmove(&t->v[i], &t->v[i + 1], (t->n - i - 1) * sizeof(*t->v));
	t->n--;
}

/* Removes jid, or every resource of it when it is a bare JID. */
static void table_remove(struct presence_table *t, const struct jid *j,
	const char *jid)
{
	if (j->resource != NULL) {
		size_t at;
		long i = table_find(t, jid, &at);
		if (i >= 0) {
			table_remove_at(t, (size_t)i);
		}
		return;
	}
	for (size_t i = t->n; i > 0; i--) {
		if (strcmp(t->v[i - 1].bare, jid) == 0) {
			table_remove_at(t, i - 1);
		}
	}
}

/* Puts e (moved in) in place of the entry with its JID, or adds it. */
static void table_put(struct presence_table *t, struct presence_entry *e)
{
	size_t at = 0;
	long i = table_find(t, e->jid, &at);
	if (i >= 0) {
		entry_finish(&t->v[i]);
		t->v[i] = *e;
		return;
	}
	if (t->n >= PRESENCE_MAX_RESOURCES) {
		log_warnx("presence: %d resources known, '%s' left out",
			PRESENCE_MAX_RESOURCES, e->jid);
		entry_finish(e);
		return;
	}
	t->v = xgrow(t->v, &t->cap, t->n + 1, sizeof(*t->v));
	memmove(&t->v[at + 1], &t->v[at], (t->n - at) * sizeof(*t->v));
	t->v[at] = *e;
	t->n++;
}

/* <priority/> as an integer clamped to -128..127 (0 when absent or
 * not a number). */
static int parse_priority(const char *s)
{
	if (s == NULL) {
		return 0;
	}
	char *end;
	long v = strtol(s, &end, 10);
	if (end == s) {
		return 0;
	}
	if (v < -128) {
		return -128;
	}
	return v > 127 ? 127 : (int)v;
}

static void read_caps(struct presence_entry *e, const struct xml *stanza)
{
	const struct xml *c = xml_child(stanza, "c", NS_CAPS);
	const char *node = c ? xml_attr(c, "node") : NULL;
	const char *ver = c ? xml_attr(c, "ver") : NULL;
	if (node != NULL && ver != NULL) {
		e->caps_node = xstrdup(node);
		e->caps_ver = xstrdup(ver);
	}
}

/* Applies an available or unavailable presence to the table. */
static void table_update(struct xmppd *x, const struct xml *stanza,
	const char *type)
{
	const char *from = xml_attr(stanza, "from");
	struct jid j;
	if (from == NULL || !jid_parse(&j, from, NULL)) {
		return;
	}
	char *full = jid_to_string(&j);
	if (x->full_jid != NULL && strcmp(full, x->full_jid) == 0) {
		/* our own presence, reflected */
	} else if (type != NULL) {
		table_remove(x->presences, &j, full);
	} else {
		struct presence_entry e = {
			.jid = full,
			.bare = jid_bare_string(&j),
			.show = xml_child_text(stanza, "show", NS_CLIENT),
			.status = xml_child_text(stanza, "status", NS_CLIENT),
		};
		char *prio = xml_child_text(stanza, "priority", NS_CLIENT);
		e.priority = parse_priority(prio);
		free(prio);
		read_caps(&e, stanza);
		table_put(x->presences, &e);
		full = NULL;
	}
	free(full);
	jid_finish(&j);
}

static json_t *entry_json(const struct presence_entry *e)
{
	json_t *o = json_object();
	json_object_set_new(o, "jid", json_string(e->jid));
	if (e->show != NULL) {
		json_object_set_new(o, "show", json_string(e->show));
	}
	if (e->status != NULL) {
		json_object_set_new(o, "status", json_string(e->status));
	}
	json_object_set_new(o, "priority", json_integer(e->priority));
	if (e->caps_node != NULL) {
		json_t *c = json_object();
		json_object_set_new(c, "node", json_string(e->caps_node));
		json_object_set_new(c, "ver", json_string(e->caps_ver));
		json_object_set_new(o, "caps", c);
	}
	return o;
}

json_t *presence_table_json(const struct xmppd *x, const char *bare)
{
	const struct presence_table *t = x->presences;
	char *want = bare ? jid_prep(bare, true, NULL) : NULL;
	json_t *a = json_array();
	for (size_t i = 0; i < t->n; i++) {
		if (want == NULL || strcmp(t->v[i].bare, want) == 0) {
			json_array_append_new(a, entry_json(&t->v[i]));
		}
	}
	free(want);
	return a;
}

/* ---- received presence ---- */

static bool is_subscription(const char *type)
{
	return type != NULL && (strcmp(type, "subscribe") == 0 ||
		strcmp(type, "subscribed") == 0 ||
		strcmp(type, "unsubscribe") == 0 ||
		strcmp(type, "unsubscribed") == 0);
}

static void publish(const struct xml *stanza, const char *type)
{
	json_t *ev = json_object();
	const char *from = xml_attr(stanza, "from");
	if (from != NULL) {
		json_object_set_new(ev, "from", json_string(from));
	}
	if (type != NULL) {
		json_object_set_new(ev, "type", json_string(type));
	}
	char *show = xml_child_text(stanza, "show", NS_CLIENT);
	char *status = xml_child_text(stanza, "status", NS_CLIENT);
	char *priority = xml_child_text(stanza, "priority", NS_CLIENT);
	if (show != NULL) {
		json_object_set_new(ev, "show", json_string(show));
	}
	if (status != NULL) {
		json_object_set_new(ev, "status", json_string(status));
	}
	if (priority != NULL) {
		json_object_set_new(ev, "priority",
			json_integer(parse_priority(priority)));
	}
	free(show);
	free(status);
	free(priority);
	const struct xml *c = xml_child(stanza, "c", NS_CAPS);
	if (c != NULL && xml_attr(c, "node") != NULL &&
			xml_attr(c, "ver") != NULL) {
		json_object_set_new(ev, "caps", json_pack("{s:s,s:s}", "node",
			xml_attr(c, "node"), "ver", xml_attr(c, "ver")));
	}
	events_publish("presence", ev);
}

void presence_handle(struct xmppd *x, const struct xml *stanza)
{
	if (muc_handle_presence(x, stanza)) {
		return;
	}
	const char *type = xml_attr(stanza, "type");
	if (is_subscription(type)) {
		roster_handle_subscription(x, stanza);
		return;
	}
	if (type == NULL || strcmp(type, "unavailable") == 0) {
		table_update(x, stanza, type);
	}
	publish(stanza, type);
}

/* ---- the subsystem ---- */

static void presence_init(struct xmppd *x)
{
	x->presences = xcalloc(1, sizeof(*x->presences));
}

static void presence_free(struct xmppd *x)
{
	if (x->presences == NULL) {
		return;
	}
	table_clear(x->presences);
	free(x->presences->v);
	free(x->presences->own_show);
	free(x->presences->own_status);
	free(x->presences);
	x->presences = NULL;
}

static void presence_online(struct xmppd *x, bool resumed)
{
	if (!resumed) {
		table_clear(x->presences);
	}
}

/* The connection went away: unless the session can be resumed (and the
 * server then keeps sending what changed), what we know is stale. */
static void presence_offline(struct xmppd *x)
{
	if (!x->sm.resumable) {
		table_clear(x->presences);
	}
}

const struct subsystem presence_subsystem = {
	.name = "presence",
	.init = presence_init,
	.free = presence_free,
	.online = presence_online,
	.offline = presence_offline,
};
