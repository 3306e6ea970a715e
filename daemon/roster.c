/*
 * The roster and presence subscriptions.
 *
 * struct roster keeps the items sorted by prepared JID (looked up with a
 * binary search), the version the server gave with them (XEP-0237), and
 * the inbound subscription requests not answered yet, in arrival order.
 * Items and version stay in memory across reconnects, and in the store
 * (its meta row "roster") across restarts, so a later login sends the
 * version and the server answers "unchanged" with an empty result, or
 * sends the changes as pushes.
 *
 * Pushes are trusted only without 'from' or from the own bare JID (RFC
 * 6121 2.1.6): anything else is the classic roster-spoofing hole, so it
 * is refused, logged and changes nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/core.h"
#include "daemon/events.h"
#include "daemon/log.h"
#include "daemon/roster.h"
#include "daemon/store.h"
#include "daemon/subsystems.h"
#include "proto/alloc.h"
#include "proto/error.h"
#include "proto/jid.h"
#include "proto/ns.h"

#define NS_ROSTERVER "urn:xmpp:features:rosterver"
#define NS_PREAPPROVAL "urn:xmpp:features:pre-approval"

enum sub {
	SUB_NONE,
	SUB_TO,
	SUB_FROM,
	SUB_BOTH,
	SUB_REMOVE,
};

static const char *const sub_names[] = {
	[SUB_NONE] = "none",
	[SUB_TO] = "to",
	[SUB_FROM] = "from",
	[SUB_BOTH] = "both",
	[SUB_REMOVE] = "remove",
};

struct roster_item {
	char *jid;		/* prepared */
	char *name;		/* NULL: none */
	enum sub sub;
	bool ask;		/* our subscription request is pending */
	char **groups;
	size_t ngroups;
};

struct pending {
	char *jid;		/* prepared bare JID */
	char *status;		/* the request's text, or NULL */
};

struct roster {
	struct roster_item *items;	/* sorted by jid */
	size_t n;
	size_t cap;
	char *ver;		/* NULL: no version known */
	bool fetching;		/* a roster get is on its way */
	struct pending *pending;	/* oldest first */
	size_t npending;
};

/* ---- items ---- */

static void item_finish(struct roster_item *it)
{
	free(it->jid);
	free(it->name);
	for (size_t i = 0; i < it->ngroups; i++) {
		free(it->groups[i]);
	}
	free(it->groups);
	memset(it, 0, sizeof(*it));
}

static void items_clear(struct roster *r)
{
	for (size_t i = 0; i < r->n; i++) {
		item_finish(&r->items[i]);
	}
	free(r->items);
	r->items = NULL;
	r->n = r->cap = 0;
}

/* The index of jid, or -1 with *at set to where it would go. */
static long find_item(const struct roster *r, const char *jid, size_t *at)
{
	size_t lo = 0, hi = r->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(jid, r->items[mid].jid);
		if (c == 0) {
			return (long)mid;
		}
		if (c < 0) {
			hi = mid;
		} else {
			lo = mid + 1;
		}
	}
	if (at != NULL) {
		*at = lo;
	}
	return -1;
}

/* Puts it (moved in) in place of an item with its JID, or adds it. */
static bool upsert_item(struct roster *r, struct roster_item *it)
{
	size_t at = 0;
	long i = find_item(r, it->jid, &at);
	if (i >= 0) {
		item_finish(&r->items[i]);
		r->items[i] = *it;
		return true;
	}
	if (r->n >= ROSTER_MAX_ITEMS) {
		log_warnx("roster: more than %d items, '%s' left out",
			ROSTER_MAX_ITEMS, it->jid);
		item_finish(it);
		return false;
	}
	r->items = xgrow(r->items, &r->cap, r->n + 1, sizeof(*r->items));
	memmove(&r->items[at + 1], &r->items[at], (r->n - at) * sizeof(*r->items));
	r->items[at] = *it;
	r->n++;
	return true;
}

static void remove_item(struct roster *r, const char *jid)
{
	long i = find_item(r, jid, NULL);
	if (i < 0) {
		return;
	}
	item_finish(&r->items[i]);
	memmove(&r->items[i], &r->items[i + 1],
		(r->n - (size_t)i - 1) * sizeof(*r->items));
	r->n--;
}

static bool has_group(const struct roster_item *it, const char *g)
{
	for (size_t i = 0; i < it->ngroups; i++) {
		if (strcmp(it->groups[i], g) == 0) {
			return true;
		}
	}
	return false;
}

static void parse_groups(struct roster_item *it, const struct xml *el)
{
	for (const struct xml *g = xml_first_element(el); g != NULL;
			g = xml_next_element(g)) {
		if (strcmp(g->name, "group") != 0 || g->ns == NULL ||
				strcmp(g->ns, NS_ROSTER) != 0) {
			continue;
		}
		char *text = xml_text(g);
		if (text[0] == '\0' || has_group(it, text) ||
				it->ngroups >= ROSTER_MAX_GROUPS) {
			free(text);
			continue;
		}
		it->groups = xrealloc(it->groups,
			(it->ngroups + 1) * sizeof(*it->groups));
		it->groups[it->ngroups++] = text;
	}
}

static bool parse_sub(const char *s, enum sub *out)
{
	if (s == NULL) {
		*out = SUB_NONE;
		return true;
	}
	for (size_t i = 0; i < sizeof(sub_names) / sizeof(sub_names[0]); i++) {
		if (strcmp(s, sub_names[i]) == 0) {
			*out = (enum sub)i;
			return true;
		}
	}
	return false;
}

/* Reads an <item/>; false (and why) if it is not a valid one. */
static bool parse_item(const struct xml *el, struct roster_item *it,
	const char **why)
{
	memset(it, 0, sizeof(*it));
	const char *jid = xml_attr(el, "jid");
	if (jid == NULL) {
		*why = "an item without a jid";
		return false;
	}
	if (!parse_sub(xml_attr(el, "subscription"), &it->sub)) {
		*why = "an unknown subscription";
		return false;
	}
	it->jid = jid_prep(jid, false, why);
	if (it->jid == NULL) {
		return false;
	}
	const char *name = xml_attr(el, "name");
	if (name != NULL && name[0] != '\0') {
		it->name = xstrdup(name);
	}
	const char *ask = xml_attr(el, "ask");
	it->ask = ask != NULL && strcmp(ask, "subscribe") == 0;
	parse_groups(it, el);
	return true;
}

static json_t *item_json(const struct roster_item *it)
{
	json_t *o = json_object();
	json_object_set_new(o, "jid", json_string(it->jid));
	if (it->name != NULL) {
		json_object_set_new(o, "name", json_string(it->name));
	}
	json_object_set_new(o, "subscription", json_string(sub_names[it->sub]));
	if (it->ask) {
		json_object_set_new(o, "ask", json_string("subscribe"));
	}
	json_t *groups = json_array();
	for (size_t i = 0; i < it->ngroups; i++) {
		json_array_append_new(groups, json_string(it->groups[i]));
	}
	json_object_set_new(o, "groups", groups);
	return o;
}

json_t *roster_json(const struct xmppd *x)
{
	const struct roster *r = x->roster;
	json_t *o = json_object();
	if (r->ver != NULL) {
		json_object_set_new(o, "ver", json_string(r->ver));
	}
	json_t *items = json_array();
	for (size_t i = 0; i < r->n; i++) {
		json_array_append_new(items, item_json(&r->items[i]));
	}
	json_object_set_new(o, "items", items);
	return o;
}

bool roster_shares_presence(const struct xmppd *x, const char *jid)
{
	char *bare = jid_prep(jid, true, NULL);
	if (bare == NULL) {
		return false;
	}
	bool ok = x->bare_jid != NULL && strcmp(bare, x->bare_jid) == 0;
	long i = ok ? -1 : find_item(x->roster, bare, NULL);
	if (i >= 0) {
		enum sub s = x->roster->items[i].sub;
		ok = s == SUB_FROM || s == SUB_BOTH;
	}
	free(bare);
	return ok;
}

static void set_ver(struct roster *r, const char *ver)
{
	free(r->ver);
	r->ver = ver ? xstrdup(ver) : NULL;
}

/* ---- the store's copy ---- */

/* Items and version together, in the turn's transaction, so the
 * version saved always matches the items saved. */
static void save(struct xmppd *x)
{
	if (!store_enabled(x->store)) {
		return;
	}
	json_t *o = roster_json(x);
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (text == NULL || !store_meta_set(x->store, "roster", text)) {
		log_warnx("roster: cannot save the roster in the store");
	}
	free(text);
}

static bool item_from_json(json_t *o, struct roster_item *it)
{
	memset(it, 0, sizeof(*it));
	const char *jid = json_string_value(json_object_get(o, "jid"));
	const char *sub = json_string_value(json_object_get(o, "subscription"));
	if (jid == NULL || !parse_sub(sub, &it->sub) || it->sub == SUB_REMOVE) {
		return false;
	}
	it->jid = jid_prep(jid, false, NULL);
	if (it->jid == NULL) {
		return false;
	}
	const char *name = json_string_value(json_object_get(o, "name"));
	it->name = name ? xstrdup(name) : NULL;
	it->ask = json_object_get(o, "ask") != NULL;
	size_t i;
	json_t *g;
	json_array_foreach(json_object_get(o, "groups"), i, g) {
		const char *text = json_string_value(g);
		if (text != NULL && text[0] != '\0' && !has_group(it, text) &&
				it->ngroups < ROSTER_MAX_GROUPS) {
			it->groups = xrealloc(it->groups,
				(it->ngroups + 1) * sizeof(*it->groups));
			it->groups[it->ngroups++] = xstrdup(text);
		}
	}
	return true;
}

/* The roster as the store kept it, at start. */
static void load_saved(struct xmppd *x)
{
	struct roster *r = x->roster;
	char *text = store_meta_get(x->store, "roster");
	json_t *o = text ? json_loads(text, 0, NULL) : NULL;
	free(text);
	if (!json_is_object(o)) {
		json_decref(o);
		return;
	}
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(o, "items"), i, v) {
		struct roster_item it;
		if (item_from_json(v, &it)) {
			upsert_item(r, &it);
		} else {
			item_finish(&it);
		}
	}
	set_ver(r, json_string_value(json_object_get(o, "ver")));
	json_decref(o);
	log_info("roster: %zu items, version '%s', from the store", r->n,
		r->ver ? r->ver : "");
}

/* ---- pending inbound requests ---- */

static long find_pending(const struct roster *r, const char *jid)
{
	for (size_t i = 0; i < r->npending; i++) {
		if (strcmp(r->pending[i].jid, jid) == 0) {
			return (long)i;
		}
	}
	return -1;
}

static void remove_pending(struct roster *r, const char *jid)
{
	long i = find_pending(r, jid);
	if (i < 0) {
		return;
	}
	free(r->pending[i].jid);
	free(r->pending[i].status);
	memmove(&r->pending[i], &r->pending[i + 1],
		(r->npending - (size_t)i - 1) * sizeof(*r->pending));
	r->npending--;
}

/* Records a request; false if it was already pending as it is now. */
static bool add_pending(struct roster *r, const char *jid, const char *status)
{
	long i = find_pending(r, jid);
	if (i >= 0) {
		struct pending *p = &r->pending[i];
		bool same = (p->status == NULL && status == NULL) ||
			(p->status != NULL && status != NULL &&
			strcmp(p->status, status) == 0);
		free(p->status);
		p->status = status ? xstrdup(status) : NULL;
		return !same;
	}
	if (r->npending >= ROSTER_MAX_PENDING) {
		log_warnx("roster: %d subscription requests pending, the one from "
			"'%s' is not kept", ROSTER_MAX_PENDING, jid);
		return true;
	}
	r->pending = xrealloc(r->pending,
		(r->npending + 1) * sizeof(*r->pending));
	r->pending[r->npending].jid = xstrdup(jid);
	r->pending[r->npending].status = status ? xstrdup(status) : NULL;
	r->npending++;
	return true;
}

/* A request is answered once the contact has a subscription from us
 * (approved by this or another resource). */
static void resolve_pending(struct roster *r, const struct roster_item *it)
{
	if (it->sub == SUB_FROM || it->sub == SUB_BOTH) {
		remove_pending(r, it->jid);
	}
}

json_t *roster_pending_json(const struct xmppd *x)
{
	const struct roster *r = x->roster;
	json_t *a = json_array();
	for (size_t i = 0; i < r->npending; i++) {
		json_t *o = json_object();
		json_object_set_new(o, "jid", json_string(r->pending[i].jid));
		if (r->pending[i].status != NULL) {
			json_object_set_new(o, "status",
				json_string(r->pending[i].status));
		}
		json_array_append_new(a, o);
	}
	return a;
}

size_t roster_pending_count(const struct xmppd *x)
{
	return x->roster != NULL ? x->roster->npending : 0;
}

/* ---- fetching ---- */

static bool server_offers(const struct xmppd *x, const char *name,
	const char *ns)
{
	if (x->session == NULL) {
		return false;
	}
	const struct xml *f = session_features(x->session);
	return f != NULL && xml_child(f, name, ns) != NULL;
}

/* Replaces the items with those of a full roster result. */
static void load_roster(struct roster *r, const struct xml *query)
{
	items_clear(r);
	size_t bad = 0;
	for (const struct xml *el = xml_first_element(query); el != NULL;
			el = xml_next_element(el)) {
		if (strcmp(el->name, "item") != 0 || el->ns == NULL ||
				strcmp(el->ns, NS_ROSTER) != 0) {
			continue;
		}
		struct roster_item it;
		const char *why = NULL;
		if (!parse_item(el, &it, &why) || it.sub == SUB_REMOVE) {
			item_finish(&it);
			bad++;
			continue;
		}
		upsert_item(r, &it);
	}
	if (bad > 0) {
		log_warnx("roster: %zu invalid items in the server's roster left out",
			bad);
	}
	set_ver(r, xml_attr(query, "ver"));
	for (size_t i = 0; i < r->n; i++) {
		resolve_pending(r, &r->items[i]);
	}
}

static void fetched(void *ud, const struct xml *reply, const char *condition,
	const char *text)
{
	struct xmppd *x = ud;
	struct roster *r = x->roster;
	r->fetching = false;
	if (reply == NULL) {
		log_warnx("roster: no roster: %s", text ? text : condition);
		return;
	}
	const char *type = xml_attr(reply, "type");
	if (type != NULL && strcmp(type, "error") == 0) {
		log_warnx("roster: the server refused the roster request");
		return;
	}
	const struct xml *query = xml_child(reply, "query", NS_ROSTER);
	if (query == NULL) {
		log_info("roster: unchanged since version '%s' (%zu items)",
			r->ver ? r->ver : "", r->n);
		return;
	}
	load_roster(r, query);
	save(x);
	log_info("roster: %zu items, version '%s'", r->n, r->ver ? r->ver : "");
}

/* Asks for the roster, with the version held when the server versions
 * rosters (XEP-0237: ver='' when none is known yet). */
static void fetch(struct xmppd *x)
{
	struct roster *r = x->roster;
	struct xml *q = xml_new("query", NS_ROSTER);
	if (server_offers(x, "ver", NS_ROSTERVER)) {
		xml_set_attr(q, "ver", r->ver ? r->ver : "");
	}
	char *payload = xml_to_string(q, NS_CLIENT);
	xml_free(q);
	struct xerr e = { 0 };
	if (payload == NULL) {
		log_warnx("roster: the stored version cannot be sent");
		return;
	}
	if (iq_request(x, NULL, "get", payload, 0, fetched, x, &e) < 0) {
		log_warnx("roster: cannot ask for the roster: %s", e.text);
	} else {
		r->fetching = true;
	}
	free(payload);
}

/* ---- pushes ---- */

/* The one <item/> a push must hold, or NULL. */
static const struct xml *push_item(const struct xml *query)
{
	const struct xml *found = NULL;
	for (const struct xml *el = xml_first_element(query); el != NULL;
			el = xml_next_element(el)) {
		if (strcmp(el->name, "item") != 0 || el->ns == NULL ||
				strcmp(el->ns, NS_ROSTER) != 0) {
			continue;
		}
		if (found != NULL) {
			return NULL;
		}
		found = el;
	}
	return found;
}

static void publish_item(const struct roster_item *it)
{
	if (!events_wanted("roster")) {
		return;
	}
	json_t *ev = item_json(it);
	events_publish("roster", ev);
}

static void apply_push(struct xmppd *x, const struct xml *iq,
	const struct xml *query)
{
	struct roster *r = x->roster;
	const struct xml *el = push_item(query);
	struct roster_item it;
	const char *why = "not exactly one item";
	if (el == NULL || !parse_item(el, &it, &why)) {
		if (el != NULL) {
			item_finish(&it);
		}
		log_warnx("roster: a bad push: %s", why);
		dispatch_iq_error(x, iq, "modify", "bad-request");
		return;
	}
	const char *ver = xml_attr(query, "ver");
	if (ver != NULL) {
		set_ver(r, ver);
	}
	struct xml *res = dispatch_iq_result(iq);
	xmppd_send(x, res);
	xml_free(res);
	publish_item(&it);
	if (it.sub == SUB_REMOVE) {
		remove_item(r, it.jid);
		remove_pending(r, it.jid);
		item_finish(&it);
		save(x);
		return;
	}
	resolve_pending(r, &it);
	upsert_item(r, &it);
	save(x);
}

void roster_handle_iq(struct xmppd *x, const struct xml *iq)
{
	const char *type = xml_attr(iq, "type");
	const char *from = xml_attr(iq, "from");
	if (type == NULL || strcmp(type, "set") != 0) {
		dispatch_iq_error(x, iq, "cancel", "service-unavailable");
		return;
	}
	if (from != NULL && !xmppd_is_account(x, from)) {
		log_warnx("roster: ignoring a roster push from '%s': only the "
			"account's server may push", from);
		dispatch_iq_error(x, iq, "cancel", "service-unavailable");
		return;
	}
	apply_push(x, iq, xml_first_element(iq));
}

/* ---- roster-set and roster-remove ---- */

struct roster_wait {
	roster_done_cb cb;
	void *ud;
};
static void set_done(void *ud, const struct xml *reply, const char *condition,
	const char *text)
{
	struct roster_wait *w = ud;
	const char *type = reply ? xml_attr(reply, "type") : NULL;
	if (reply == NULL) {
		w->cb(w->ud, condition ? condition : "undefined-condition", text);
	} else if (type != NULL && strcmp(type, "error") == 0) {
		char *t = NULL;
		const char *cond = stanza_error(reply, &t);
		w->cb(w->ud, cond, t);
		free(t);
	} else {
		w->cb(w->ud, NULL, NULL);
	}
	free(w);
}

/* Sends <query><item/></query> as a roster set. */
static int send_set(struct xmppd *x, struct xml *item, roster_done_cb cb,
	void *ud, struct xerr *e)
{
	struct xml *q = xml_new("query", NS_ROSTER);
	xml_append(q, item);
	char *payload = xml_to_string(q, NS_CLIENT);
	xml_free(q);
	if (payload == NULL) {
		return xerr_set(e, "bad-request",
			"the item holds characters XML cannot carry");
	}
	struct roster_wait *w = xcalloc(1, sizeof(*w));
	w->cb = cb;
	w->ud = ud;
	int rc = iq_request(x, NULL, "set", payload, 0, set_done, w, e);
	free(payload);
	if (rc < 0) {
		free(w);
	}
	return rc;
}

static struct xml *new_item(const char *jid, struct xerr *e)
{
	const char *why = NULL;
	char *prepped = jid_prep(jid, false, &why);
	if (prepped == NULL) {
		xerr_set(e, "invalid-jid", "jid: %s", why);
		return NULL;
	}
	struct xml *item = xml_new("item", NS_ROSTER);
	xml_set_attr(item, "jid", prepped);
	free(prepped);
	return item;
}

int roster_set(struct xmppd *x, const char *jid, const char *name,
	const char *const *groups, size_t ngroups, roster_done_cb cb, void *ud,
	struct xerr *e)
{
	if (ngroups > ROSTER_MAX_GROUPS) {
		return xerr_set(e, "bad-request", "at most %d groups",
			ROSTER_MAX_GROUPS);
	}
	for (size_t i = 0; i < ngroups; i++) {
		if (groups[i][0] == '\0') {
			return xerr_set(e, "bad-request", "a group name is empty");
		}
	}
	struct xml *item = new_item(jid, e);
	if (item == NULL) {
		return -1;
	}
	if (name != NULL && name[0] != '\0') {
		xml_set_attr(item, "name", name);
	}
	for (size_t i = 0; i < ngroups; i++) {
		xml_add_text_child(item, "group", NULL, groups[i]);
	}
	return send_set(x, item, cb, ud, e);
}

int roster_remove(struct xmppd *x, const char *jid, roster_done_cb cb,
	void *ud, struct xerr *e)
{
	struct xml *item = new_item(jid, e);
	if (item == NULL) {
		return -1;
	}
	xml_set_attr(item, "subscription", "remove");
	return send_set(x, item, cb, ud, e);
}

/* ---- subscriptions ---- */

struct sub_action {
	const char *action;
	const char *type;	/* presence type sent */
	bool answers;		/* settles a pending inbound request */
};

static const struct sub_action sub_actions[] = {
	{ "request", "subscribe", false },
	{ "approve", "subscribed", true },
	{ "deny", "unsubscribed", true },
	{ "cancel", "unsubscribed", true },
	{ "unsubscribe", "unsubscribe", false },
	{ "preapprove", "subscribed", false },
};

static const struct sub_action *find_action(const char *action)
{
	for (size_t i = 0; i < sizeof(sub_actions) / sizeof(sub_actions[0]); i++) {
		if (strcmp(sub_actions[i].action, action) == 0) {
			return &sub_actions[i];
		}
	}
	return NULL;
}

int roster_subscription(struct xmppd *x, const char *jid, const char *action,
	const char *status, struct xerr *e)
{
	const struct sub_action *a = find_action(action);
	if (a == NULL) {
		return xerr_set(e, "bad-request", "unknown action '%s'", action);
	}
	const char *why = NULL;
	char *to = jid_prep(jid, true, &why);
	if (to == NULL) {
		return xerr_set(e, "invalid-jid", "jid: %s", why);
	}
	if (x->state != XMPPD_ONLINE) {
		free(to);
		return xerr_set(e, "not-connected", "the account is %s",
			xmppd_state_name(x->state));
	}
	if (strcmp(a->action, "preapprove") == 0 &&
			!server_offers(x, "sub", NS_PREAPPROVAL)) {
		free(to);
		return xerr_set(e, "feature-not-implemented",
			"the server does not offer subscription pre-approval");
	}
	struct xml *p = xml_new("presence", NS_CLIENT);
	xml_set_attr(p, "to", to);
	xml_set_attr(p, "type", a->type);
	if (status != NULL) {
		xml_add_text_child(p, "status", NULL, status);
	}
	bool sent = xmppd_send(x, p);
	xml_free(p);
	if (sent && a->answers) {
		remove_pending(x->roster, to);
	}
	free(to);
	if (!sent) {
		return xerr_set(e, "bad-request",
			"the status holds characters XML cannot carry");
	}
	return 0;
}

void roster_handle_subscription(struct xmppd *x, const struct xml *presence)
{
	struct roster *r = x->roster;
	const char *from = xml_attr(presence, "from");
	const char *type = xml_attr(presence, "type");
	char *bare = from ? jid_prep(from, true, NULL) : NULL;
	if (bare == NULL || type == NULL) {
		log_debug("roster: ignoring a subscription presence without a "
			"valid sender");
		free(bare);
		return;
	}
	char *status = xml_child_text(presence, "status", NS_CLIENT);
	bool publish = true;
	if (strcmp(type, "subscribe") == 0) {
		publish = add_pending(r, bare, status);
	} else if (strcmp(type, "unsubscribe") == 0) {
		remove_pending(r, bare);
	}
	if (publish) {
		json_t *ev = json_object();
		json_object_set_new(ev, "from", json_string(bare));
		json_object_set_new(ev, "type", json_string(type));
		if (status != NULL) {
			json_object_set_new(ev, "status", json_string(status));
		}
		events_publish("subscription", ev);
	}
	free(status);
	free(bare);
}

/* ---- the subsystem ---- */

static void roster_init(struct xmppd *x)
{
	x->roster = xcalloc(1, sizeof(*x->roster));
	load_saved(x);
}

static void roster_free(struct xmppd *x)
{
	struct roster *r = x->roster;
	if (r == NULL) {
		return;
	}
	items_clear(r);
	while (r->npending > 0) {
		remove_pending(r, r->pending[0].jid);
	}
	free(r->pending);
	free(r->ver);
	free(r);
	x->roster = NULL;
}

static void roster_online(struct xmppd *x, bool resumed)
{
	if (!resumed) {
		fetch(x);
	}
}

const struct subsystem roster_subsystem = {
	.name = "roster",
	.init = roster_init,
	.free = roster_free,
	.online = roster_online,
	.offline = NULL,
};
