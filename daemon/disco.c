/*
 * Service discovery, both ways.
 *
 * Answers: XEP-0030 disco#info (only what is really implemented, listed
 * once in disco_features[]; also at our XEP-0115 node "NODE#ver") and
 * disco#items (none), XEP-0199 ping, XEP-0092 version, XEP-0202 time.
 *
 * Questions: after each fresh login the server's (the domain's) and the
 * account's (the bare JID's) disco#info are asked once; their features
 * are kept until the next fresh login (a resumption keeps them) and
 * waiters registered with disco_when_ready() are called when both are
 * in. A query that fails with an error or times out counts as "offers
 * nothing"; one cut short by the loss of the connection (not-connected)
 * drops the waiters, as the next session asks again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/caps.h"
#include "daemon/core.h"
#include "daemon/disco.h"
#include "daemon/handlers.h"
#include "daemon/log.h"
#include "daemon/subsystems.h"
#include "proto/alloc.h"
#include "proto/error.h"
#include "proto/jid.h"
#include "proto/ns.h"

const char *const disco_features[] = {
	NS_CAPS,
	NS_CHATSTATES,
	NS_DISCO_INFO,
	NS_DISCO_ITEMS,
	NS_MUC,			/* XEP-0045 6.7: we join rooms */
	NS_PING,
	NS_RECEIPTS,
	NS_SID,			/* XEP-0359: origin-id out, stanza-id kept */
	NS_TIME,
	NS_VERSION,
	NS_X_CONFERENCE,	/* XEP-0249: direct invitations are events */
	NULL,
};

struct waiter {
	void (*cb)(struct xmppd *x, void *ud);
	void *ud;
};

struct disco {
	json_t *server;		/* {"identities","features"} or NULL */
	json_t *account;
	unsigned pending;	/* of the two queries */
	bool ready;		/* both answered this session */
	struct waiter *waiters;
	size_t nwaiters;
	size_t waitcap;
};

/* Which of the two login queries a reply is for. */
struct login_query {
	struct xmppd *x;
	bool server;
};

/* ---- answers ---- */

static bool is_get(const struct xml *iq)
{
	const char *type = xml_attr(iq, "type");
	return type != NULL && strcmp(type, "get") == 0;
}

static bool listed_before(size_t i)
{
	for (size_t j = 0; j < i; j++) {
		if (strcmp(disco_features[j], disco_features[i]) == 0) {
			return true;
		}
	}
	return false;
}

/* Adds a feature unless query lists it already. */
static void add_feature(struct xml *query, const char *var)
{
	for (const struct xml *f = xml_first_element(query); f != NULL;
			f = xml_next_element(f)) {
		const char *v = xml_attr(f, "var");
		if (strcmp(f->name, "feature") == 0 && v != NULL &&
				strcmp(v, var) == 0) {
			return;
		}
	}
	xml_set_attr(xml_add(query, "feature", NULL), "var", var);
}

struct xml *disco_own_info(struct xmppd *x, const char *node)
{
	struct xml *query = xml_new("query", NS_DISCO_INFO);
	xml_set_attr(query, "node", node);
	struct xml *id = xml_add(query, "identity", NULL);
	xml_set_attr(id, "category", "client");
	xml_set_attr(id, "type", "bot");
	xml_set_attr(id, "name", "xmppd");
	for (size_t i = 0; disco_features[i] != NULL; i++) {
		if (!listed_before(i)) {
			struct xml *f = xml_add(query, "feature", NULL);
			xml_set_attr(f, "var", disco_features[i]);
		}
	}
	if (x != NULL) {
		/* What socket clients answer is implemented too (iq-handle). */
		const char *ns[HANDLERS_MAX_REGS];
		size_t n = handlers_namespaces(x, ns, HANDLERS_MAX_REGS);
		for (size_t i = 0; i < n; i++) {
			add_feature(query, ns[i]);
		}
	}
	return query;
}

/* Is node our caps node with the current ver ("NODE#ver")? */
static bool is_caps_node(struct xmppd *x, const char *node)
{
	size_t n = strlen(CAPS_NODE);
	if (strncmp(node, CAPS_NODE, n) != 0 || node[n] != '#') {
		return false;
	}
	struct xml *info = disco_own_info(x, NULL);
	char *ver = caps_ver(info);
	xml_free(info);
	bool ok = ver != NULL && strcmp(node + n + 1, ver) == 0;
	free(ver);
	return ok;
}

void disco_handle_info(struct xmppd *x, const struct xml *iq)
{
	if (!is_get(iq)) {
		dispatch_iq_error(x, iq, "cancel", "bad-request");
		return;
	}
	const char *node = xml_attr(xml_first_element(iq), "node");
	if (node != NULL && !is_caps_node(x, node)) {
		dispatch_iq_error(x, iq, "cancel", "item-not-found");
		return;
	}
	struct xml *r = dispatch_iq_result(iq);
	xml_append(r, disco_own_info(x, node));
	xmppd_send(x, r);
	xml_free(r);
}

void disco_handle_items(struct xmppd *x, const struct xml *iq)
{
	if (!is_get(iq)) {
		dispatch_iq_error(x, iq, "cancel", "bad-request");
		return;
	}
	if (xml_attr(xml_first_element(iq), "node") != NULL) {
		dispatch_iq_error(x, iq, "cancel", "item-not-found");
		return;
	}
	struct xml *r = dispatch_iq_result(iq);
	xml_add(r, "query", NS_DISCO_ITEMS);
	xmppd_send(x, r);
	xml_free(r);
}

void disco_handle_ping(struct xmppd *x, const struct xml *iq)
{
	if (!is_get(iq)) {
		dispatch_iq_error(x, iq, "cancel", "bad-request");
		return;
	}
	struct xml *r = dispatch_iq_result(iq);
	xmppd_send(x, r);
	xml_free(r);
}

void disco_handle_version(struct xmppd *x, const struct xml *iq)
{
	if (!is_get(iq)) {
		dispatch_iq_error(x, iq, "cancel", "bad-request");
		return;
	}
	struct xml *r = dispatch_iq_result(iq);
	struct xml *q = xml_add(r, "query", NS_VERSION);
	xml_add_text_child(q, "name", NULL, "xmppd");
	xml_add_text_child(q, "version", NULL, XMPPD_VERSION);
	xmppd_send(x, r);
	xml_free(r);
}

/* XEP-0202: the local offset as "+hh:mm" and UTC with milliseconds. */
void disco_handle_time(struct xmppd *x, const struct xml *iq)
{
	if (!is_get(iq)) {
		dispatch_iq_error(x, iq, "cancel", "bad-request");
		return;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm utc;
	struct tm local;
	gmtime_r(&ts.tv_sec, &utc);
	localtime_r(&ts.tv_sec, &local);
	int off = (int)(local.tm_gmtoff / 60) % (24 * 60);
	char tzo[16];
	snprintf(tzo, sizeof(tzo), "%c%02d:%02d", off < 0 ? '-' : '+',
		abs(off) / 60, abs(off) % 60);
	char stamp[64];
	char when[32];
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &utc);
	snprintf(stamp, sizeof(stamp), "%s.%03ldZ", when, ts.tv_nsec / 1000000);
	struct xml *r = dispatch_iq_result(iq);
	struct xml *t = xml_add(r, "time", NS_TIME);
	xml_add_text_child(t, "tzo", NULL, tzo);
	xml_add_text_child(t, "utc", NULL, stamp);
	xmppd_send(x, r);
	xml_free(r);
}

/* ---- replies to json ---- */

static void set_attr(json_t *o, const char *key, const struct xml *el,
	const char *attr)
{
	const char *v = xml_attr(el, attr);
	if (v != NULL) {
		json_object_set_new(o, key, json_string(v));
	}
}

/* An element without ns of its own is in its parent's (xml.h). */
static bool is_child(const struct xml *c, const char *name, const char *ns)
{
	const struct xml *in = c;
	while (in->ns == NULL && in->parent != NULL) {
		in = in->parent;
	}
	return in->ns != NULL && strcmp(in->ns, ns) == 0 && strcmp(c->name, name) == 0;
}

/* {"identities":[…],"features":[…]} of a disco#info <query/> (may be
 * NULL: both empty). Strings that are not valid UTF-8 cannot occur:
 * the reader has checked them. */
static json_t *info_json(const struct xml *query)
{
	json_t *ids = json_array();
	json_t *feats = json_array();
	for (const struct xml *c = query ? xml_first_element(query) : NULL;
			c != NULL; c = xml_next_element(c)) {
		if (is_child(c, "identity", NS_DISCO_INFO)) {
			json_t *id = json_object();
			json_object_set_new(id, "category",
				json_string(xml_attr(c, "category") ? xml_attr(c, "category") : ""));
			json_object_set_new(id, "type",
				json_string(xml_attr(c, "type") ? xml_attr(c, "type") : ""));
			set_attr(id, "name", c, "name");
			set_attr(id, "lang", c, "xml:lang");
			json_array_append_new(ids, id);
		} else if (is_child(c, "feature", NS_DISCO_INFO) &&
				xml_attr(c, "var") != NULL) {
			json_array_append_new(feats, json_string(xml_attr(c, "var")));
		}
	}
	json_t *o = json_object();
	json_object_set_new(o, "identities", ids);
	json_object_set_new(o, "features", feats);
	return o;
}

/* {"items":[{jid, node?, name?}]} of a disco#items <query/>. */
static json_t *items_json(const struct xml *query)
{
	json_t *items = json_array();
	for (const struct xml *c = query ? xml_first_element(query) : NULL;
			c != NULL; c = xml_next_element(c)) {
		if (!is_child(c, "item", NS_DISCO_ITEMS) || xml_attr(c, "jid") == NULL) {
			continue;
		}
		json_t *it = json_object();
		set_attr(it, "jid", c, "jid");
		set_attr(it, "node", c, "node");
		set_attr(it, "name", c, "name");
		json_array_append_new(items, it);
	}
	json_t *o = json_object();
	json_object_set_new(o, "items", items);
	return o;
}

static bool has_feature(const json_t *info, const char *feature)
{
	size_t i;
	json_t *f;
	json_array_foreach(json_object_get(info, "features"), i, f) {
		if (strcmp(json_string_value(f), feature) == 0) {
			return true;
		}
	}
	return false;
}

/* ---- discovery at login ---- */

bool disco_known(struct xmppd *x)
{
	return x->disco->ready;
}

bool disco_server_has(struct xmppd *x, const char *feature)
{
	return x->disco->server != NULL && has_feature(x->disco->server, feature);
}

bool disco_account_has(struct xmppd *x, const char *feature)
{
	return x->disco->account != NULL && has_feature(x->disco->account, feature);
}

void disco_when_ready(struct xmppd *x, void (*cb)(struct xmppd *x, void *ud),
	void *ud)
{
	struct disco *d = x->disco;
	if (d->ready) {
		cb(x, ud);
		return;
	}
	d->waiters = xgrow(d->waiters, &d->waitcap, d->nwaiters + 1,
		sizeof(*d->waiters));
	d->waiters[d->nwaiters++] = (struct waiter){ .cb = cb, .ud = ud };
}

/* Both answers are in: call the waiters (those a callback adds run at
 * once, as ready is already set). */
static void become_ready(struct xmppd *x)
{
	struct disco *d = x->disco;
	d->ready = true;
	struct waiter *w = d->waiters;
	size_t n = d->nwaiters;
	d->waiters = NULL;
	d->nwaiters = 0;
	d->waitcap = 0;
	log_debug("disco: the server offers %zu features, the account %zu",
		json_array_size(json_object_get(d->server, "features")),
		json_array_size(json_object_get(d->account, "features")));
	for (size_t i = 0; i < n; i++) {
		w[i].cb(x, w[i].ud);
	}
	free(w);
}

static void login_reply(void *ud, const struct xml *reply, const char *condition,
	const char *text)
{
	struct login_query *q = ud;
	struct xmppd *x = q->x;
	struct disco *d = x->disco;
	bool server = q->server;
	free(q);
	if (reply == NULL && strcmp(condition, "not-connected") == 0) {
		d->nwaiters = 0;	/* the next session asks again */
		return;
	}
	const char *type = reply ? xml_attr(reply, "type") : NULL;
	const struct xml *query = NULL;
	if (type != NULL && strcmp(type, "result") == 0) {
		query = xml_child(reply, "query", NS_DISCO_INFO);
	} else {
		log_info("disco: the %s's disco#info failed: %s",
			server ? "server" : "account", reply ? "error reply" : condition);
	}
	json_t **slot = server ? &d->server : &d->account;
	json_decref(*slot);
	*slot = info_json(query);
	if (d->pending > 0 && --d->pending == 0) {
		become_ready(x);
	}
}

static void ask_info(struct xmppd *x, const char *to, bool server)
{
	struct login_query *q = xcalloc(1, sizeof(*q));
	q->x = x;
	q->server = server;
	struct xerr e = { 0 };
	char payload[128];
	snprintf(payload, sizeof(payload), "<query xmlns='%s'/>", NS_DISCO_INFO);
	if (iq_request(x, to, "get", payload, 0, login_reply, q, &e) < 0) {
		log_warnx("disco: cannot ask %s: %s", to, e.text);
		login_reply(q, NULL, "internal-server-error", e.text);
	}
}

static void disco_online(struct xmppd *x, bool resumed)
{
	struct disco *d = x->disco;
	if (resumed) {
		return;
	}
	json_decref(d->server);
	json_decref(d->account);
	d->server = NULL;
	d->account = NULL;
	d->ready = false;
	d->pending = 2;
	ask_info(x, x->domain, true);
	ask_info(x, x->bare_jid, false);
}

static void disco_init(struct xmppd *x)
{
	x->disco = xcalloc(1, sizeof(*x->disco));
}

static void disco_free(struct xmppd *x)
{
	struct disco *d = x->disco;
	if (d == NULL) {
		return;
	}
	json_decref(d->server);
	json_decref(d->account);
	free(d->waiters);
	free(d);
	x->disco = NULL;
}

const struct subsystem disco_subsystem = {
	.name = "disco",
	.init = disco_init,
	.free = disco_free,
	.online = disco_online,
};

/* ---- status ---- */

static int cmp_json_str(const void *a, const void *b)
{
	return strcmp(json_string_value(*(json_t *const *)a),
		json_string_value(*(json_t *const *)b));
}

/* The features of server and account, sorted, each once. */
static json_t *union_features(const struct disco *d)
{
	json_t *all[2] = { json_object_get(d->server, "features"),
		json_object_get(d->account, "features") };
	size_t n = json_array_size(all[0]) + json_array_size(all[1]);
	json_t **v = xcalloc(n + 1, sizeof(*v));
	size_t k = 0;
	for (size_t a = 0; a < 2; a++) {
		for (size_t i = 0; i < json_array_size(all[a]); i++) {
			v[k++] = json_array_get(all[a], i);
		}
	}
	qsort(v, k, sizeof(*v), cmp_json_str);
	json_t *out = json_array();
	for (size_t i = 0; i < k; i++) {
		if (i == 0 || cmp_json_str(&v[i - 1], &v[i]) != 0) {
			json_array_append(out, v[i]);
		}
	}
	free(v);
	return out;
}

void disco_status(const struct xmppd *x, json_t *status)
{
	json_object_set_new(status, "features", union_features(x->disco));
	json_t *ours = json_array();
	for (size_t i = 0; disco_features[i] != NULL; i++) {
		if (!listed_before(i)) {
			json_array_append_new(ours, json_string(disco_features[i]));
		}
	}
	const char *ns[HANDLERS_MAX_REGS];
	size_t n = handlers_namespaces(x, ns, HANDLERS_MAX_REGS);
	for (size_t i = 0; i < n; i++) {
		bool dup = false;
		for (size_t j = 0; disco_features[j] != NULL && !dup; j++) {
			dup = strcmp(disco_features[j], ns[i]) == 0;
		}
		if (!dup) {
			json_array_append_new(ours, json_string(ns[i]));
		}
	}
	json_object_set_new(status, "client_features", ours);
}

/* ---- requests from the control socket ---- */

struct request {
	struct xmppd *x;
	disco_cb cb;
	void *ud;
	bool items;
	bool ping;
	bool to_server;		/* ping: a server answered */
	uint64_t start_ns;
};

/* Errors that a pinged entity itself may answer with, so they prove it
 * is there; service-unavailable is not one of them for a full JID, since
 * the server answers with it for a resource that is gone (RFC 6121
 * 8.5.3.1). A server's own answer, whatever it is, proves the server. */
static bool proves_alive(const struct request *r, const char *cond)
{
	static const char *const absent[] = {
		"service-unavailable", "recipient-unavailable", "item-not-found",
		"remote-server-not-found", "remote-server-timeout", "gone",
		"redirect", NULL,
	};
	if (r->to_server) {
		return true;
	}
	for (size_t i = 0; absent[i] != NULL; i++) {
		if (strcmp(cond, absent[i]) == 0) {
			return false;
		}
	}
	return true;
}

static json_t *ping_json(const struct request *r, const char *error)
{
	json_t *o = json_object();
	uint64_t ns = uv_hrtime() - r->start_ns;
	json_object_set_new(o, "rtt_ms", json_integer((json_int_t)(ns / 1000000)));
	if (error != NULL) {
		json_object_set_new(o, "error", json_string(error));
	}
	return o;
}

static void request_reply(void *ud, const struct xml *reply, const char *condition,
	const char *text)
{
	struct request *r = ud;
	const char *type = reply ? xml_attr(reply, "type") : NULL;
	if (reply == NULL) {
		r->cb(r->ud, NULL, condition, text);
	} else if (type != NULL && strcmp(type, "error") == 0) {
		char *etext;
		const char *cond = stanza_error(reply, &etext);
		if (r->ping && proves_alive(r, cond)) {
			r->cb(r->ud, ping_json(r, cond), NULL, NULL);
		} else {
			r->cb(r->ud, NULL, cond, etext ? etext : cond);
		}
		free(etext);
	} else if (r->ping) {
		r->cb(r->ud, ping_json(r, NULL), NULL, NULL);
	} else if (r->items) {
		r->cb(r->ud, items_json(xml_child(reply, "query", NS_DISCO_ITEMS)),
			NULL, NULL);
	} else {
		r->cb(r->ud, info_json(xml_child(reply, "query", NS_DISCO_INFO)),
			NULL, NULL);
	}
	free(r);
}

static int send_request(struct request *r, const char *to, const struct xml *payload,
	struct xerr *e)
{
	char *text = xml_to_string(payload, NS_CLIENT);
	if (text == NULL) {
		free(r);
		return xerr_set(e, "bad-request", "the node holds characters XML cannot carry");
	}
	r->start_ns = uv_hrtime();
	int rc = iq_request(r->x, to, "get", text, 0, request_reply, r, e);
	free(text);
	if (rc < 0) {
		free(r);
	}
	return rc;
}

int disco_query(struct xmppd *x, const char *to, const char *node, bool items,
	disco_cb cb, void *ud, struct xerr *e)
{
	struct request *r = xcalloc(1, sizeof(*r));
	*r = (struct request){ .x = x, .cb = cb, .ud = ud, .items = items };
	struct xml *q = xml_new("query", items ? NS_DISCO_ITEMS : NS_DISCO_INFO);
	xml_set_attr(q, "node", node);
	int rc = send_request(r, to != NULL ? to : x->domain, q, e);
	xml_free(q);
	return rc;
}

/* A JID with neither localpart nor resource: a server or service. */
static bool is_domain(const char *to)
{
	struct jid j;
	if (!jid_parse(&j, to, NULL)) {
		return false;
	}
	bool domain = j.local == NULL && j.resource == NULL;
	jid_finish(&j);
	return domain;
}

int disco_ping(struct xmppd *x, const char *to, disco_cb cb, void *ud,
	struct xerr *e)
{
	struct request *r = xcalloc(1, sizeof(*r));
	*r = (struct request){ .x = x, .cb = cb, .ud = ud, .ping = true };
	r->to_server = to == NULL || is_domain(to);
	struct xml *q = xml_new("ping", NS_PING);
	int rc = send_request(r, to != NULL ? to : x->domain, q, e);
	xml_free(q);
	return rc;
}
