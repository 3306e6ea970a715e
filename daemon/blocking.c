/*
 * XEP-0191 blocking. The list is a JSON array of prepared JIDs, NULL
 * until fetched. It is fetched after each fresh login once discovery
 * shows the server offers urn:xmpp:blocking (a client that asked for
 * the list is sent the server's pushes, 3.3), so it stays current; a
 * resumption keeps it.
 *
 * A change reaches us twice, as the server's push and as the result of
 * our own request, in either order; each changes the list only where it
 * differs and a "block" event is published only for what changed, so a
 * change is announced once.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon/blocking.h"
#include "daemon/core.h"
#include "daemon/events.h"
#include "daemon/log.h"
#include "daemon/subsystems.h"
#include "proto/alloc.h"
#include "proto/error.h"
#include "proto/jid.h"
#include "proto/ns.h"

/* A blocklist command waiting for the fetch. */
struct list_waiter {
	disco_cb cb;
	void *ud;
};

struct blocking {
	json_t *list;		/* prepared JIDs, NULL until fetched */
	bool fetching;
	struct list_waiter *waiters;
	size_t nwaiters;
	size_t waitcap;
};

/* A block or unblock request of ours, until the server answers. */
struct change {
	struct xmppd *x;
	bool block;
	json_t *jids;		/* prepared; empty for "unblock everyone" */
	disco_cb cb;
	void *ud;
};

static long find(const json_t *list, const char *jid)
{
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v) {
		if (strcmp(json_string_value(v), jid) == 0) {
			return (long)i;
		}
	}
	return -1;
}

static void publish(bool block, json_t *jids, bool all)
{
	json_t *ev = json_object();
	json_object_set_new(ev, "action", json_string(block ? "block" : "unblock"));
	json_object_set_new(ev, "jids", jids);
	if (all) {
		json_object_set_new(ev, "all", json_true());
	}
	events_publish("block", ev);
}

/*
 * Applies a change to the cached list and publishes what it changed
 * (everything it names while the list is unknown). jids: prepared, an
 * empty array unblocking everyone; borrowed.
 */
static void apply(struct xmppd *x, bool block, const json_t *jids)
{
	struct blocking *b = x->blocking;
	bool all = !block && json_array_size(jids) == 0;
	json_t *changed = json_array();
	if (b->list == NULL) {
		json_array_extend(changed, (json_t *)jids);
	} else if (all) {
		json_array_extend(changed, b->list);
		json_array_clear(b->list);
	} else {
		size_t i;
		json_t *v;
		json_array_foreach(jids, i, v) {
			long at = find(b->list, json_string_value(v));
			if (block && at < 0) {
				json_array_append(b->list, v);
				json_array_append(changed, v);
			} else if (!block && at >= 0) {
				json_array_remove(b->list, (size_t)at);
				json_array_append(changed, v);
			}
		}
	}
	if (json_array_size(changed) > 0 || (all && b->list == NULL)) {
		publish(block, changed, all);
	} else {
		json_decref(changed);
	}
}

/* The prepared JIDs of the <item/>s of a block/unblock/blocklist
 * element; items that are not JIDs are skipped with a warning. */
static json_t *items_jids(const struct xml *el)
{
	json_t *out = json_array();
	for (const struct xml *c = xml_first_element(el); c != NULL;
			c = xml_next_element(c)) {
		const char *jid = xml_attr(c, "jid");
		if (strcmp(c->name, "item") != 0 || jid == NULL) {
			continue;
		}
		char *p = jid_prep(jid, false, NULL);
		if (p == NULL) {
			log_warnx("blocking: ignoring the item '%.64s': not a JID", jid);
			continue;
		}
		if (find(out, p) < 0) {
			json_array_append_new(out, json_string(p));
		}
		free(p);
	}
	return out;
}

/* ---- pushes ---- */

/* A block or unblock push (iq set) from the server. */
void blocking_handle_push(struct xmppd *x, const struct xml *iq)
{
	const char *type = xml_attr(iq, "type");
	const char *from = xml_attr(iq, "from");
	if (from != NULL && !xmppd_is_account(x, from)) {
		log_warnx("blocking: ignoring a push from '%.128s', not our account",
			from);
		return;
	}
	if (type == NULL || strcmp(type, "set") != 0) {
		dispatch_iq_error(x, iq, "cancel", "bad-request");
		return;
	}
	const struct xml *el = xml_first_element(iq);
	json_t *jids = items_jids(el);
	apply(x, strcmp(el->name, "block") == 0, jids);
	json_decref(jids);
	struct xml *r = dispatch_iq_result(iq);
	xmppd_send(x, r);
	xml_free(r);
}

/* ---- the list ---- */

static void answer_waiters(struct xmppd *x, const char *condition,
	const char *text)
{
	struct blocking *b = x->blocking;
	struct list_waiter *w = b->waiters;
	size_t n = b->nwaiters;
	b->waiters = NULL;
	b->nwaiters = 0;
	b->waitcap = 0;
	for (size_t i = 0; i < n; i++) {
		if (b->list != NULL) {
			json_t *r = json_object();
			json_object_set_new(r, "jids", json_deep_copy(b->list));
			w[i].cb(w[i].ud, r, NULL, NULL);
		} else {
			w[i].cb(w[i].ud, NULL, condition, text);
		}
	}
	free(w);
}

static void fetched(void *ud, const struct xml *reply, const char *condition,
	const char *text)
{
	struct xmppd *x = ud;
	struct blocking *b = x->blocking;
	b->fetching = false;
	const char *type = reply ? xml_attr(reply, "type") : NULL;
	if (type != NULL && strcmp(type, "result") == 0) {
		const struct xml *el = xml_child(reply, "blocklist", NS_BLOCKING);
		json_decref(b->list);
		b->list = el != NULL ? items_jids(el) : json_array();
		log_debug("blocking: %zu JIDs blocked", json_array_size(b->list));
		answer_waiters(x, NULL, NULL);
		return;
	}
	char *etext = NULL;
	if (reply != NULL) {
		condition = stanza_error(reply, &etext);
		text = etext ? etext : condition;
	}
	log_info("blocking: the block list could not be fetched: %s", condition);
	answer_waiters(x, condition, text);
	free(etext);
}

static int fetch(struct xmppd *x, struct xerr *e)
{
	struct blocking *b = x->blocking;
	if (b->fetching) {
		return 0;
	}
	static const char payload[] = "<blocklist xmlns='" NS_BLOCKING "'/>";
	if (iq_request(x, NULL, "get", payload, 0, fetched, x, e) < 0) {
		return -1;
	}
	b->fetching = true;
	return 0;
}

/* Refuses when discovery has shown the server lacks blocking. */
static int check_supported(struct xmppd *x, struct xerr *e)
{
	if (x->state != XMPPD_ONLINE) {
		return xerr_set(e, "not-connected", "the account is %s",
			xmppd_state_name(x->state));
	}
	if (disco_known(x) && !disco_server_has(x, NS_BLOCKING)) {
		return xerr_set(e, "feature-not-implemented",
			"the server does not offer %s", NS_BLOCKING);
	}
	return 0;
}

int blocking_list(struct xmppd *x, disco_cb cb, void *ud, struct xerr *e)
{
	struct blocking *b = x->blocking;
	if (check_supported(x, e) < 0) {
		return -1;
	}
	if (b->list != NULL) {
		json_t *r = json_object();
		json_object_set_new(r, "jids", json_deep_copy(b->list));
		cb(ud, r, NULL, NULL);
		return 0;
	}
	if (fetch(x, e) < 0) {
		return -1;
	}
	b->waiters = xgrow(b->waiters, &b->waitcap, b->nwaiters + 1,
		sizeof(*b->waiters));
	b->waiters[b->nwaiters++] = (struct list_waiter){ .cb = cb, .ud = ud };
	return 0;
}

/* ---- changes ---- */

static void changed(void *ud, const struct xml *reply, const char *condition,
	const char *text)
{
	struct change *c = ud;
	const char *type = reply ? xml_attr(reply, "type") : NULL;
	if (type != NULL && strcmp(type, "result") == 0) {
		apply(c->x, c->block, c->jids);
		c->cb(c->ud, json_object(), NULL, NULL);
	} else if (reply != NULL) {
		char *etext;
		const char *cond = stanza_error(reply, &etext);
		c->cb(c->ud, NULL, cond, etext ? etext : cond);
		free(etext);
	} else {
		c->cb(c->ud, NULL, condition, text);
	}
	json_decref(c->jids);
	free(c);
}

/* The request's payload: <block/> or <unblock/> with an item per JID. */
static char *change_payload(bool block, const json_t *jids)
{
	struct xml *el = xml_new(block ? "block" : "unblock", NS_BLOCKING);
	size_t i;
	json_t *v;
	json_array_foreach(jids, i, v) {
		xml_set_attr(xml_add(el, "item", NULL), "jid", json_string_value(v));
	}
	char *s = xml_to_string(el, NS_CLIENT);
	xml_free(el);
	return s;
}

/* The prepared JIDs, or NULL with e filled. */
static json_t *prep_all(const char *const *jids, size_t n, struct xerr *e)
{
	json_t *out = json_array();
	for (size_t i = 0; i < n; i++) {
		const char *err = NULL;
		char *p = jid_prep(jids[i], false, &err);
		if (p == NULL) {
			json_decref(out);
			xerr_set(e, "invalid-jid", "'%.64s': %s", jids[i], err);
			return NULL;
		}
		if (find(out, p) < 0) {
			json_array_append_new(out, json_string(p));
		}
		free(p);
	}
	return out;
}

int blocking_change(struct xmppd *x, bool block, const char *const *jids,
	size_t n, disco_cb cb, void *ud, struct xerr *e)
{
	if (check_supported(x, e) < 0) {
		return -1;
	}
	if (block && n == 0) {
		return xerr_set(e, "bad-request", "no JID to block");
	}
	json_t *prepped = prep_all(jids, n, e);
	if (prepped == NULL) {
		return -1;
	}
	char *payload = change_payload(block, prepped);
	struct change *c = xcalloc(1, sizeof(*c));
	*c = (struct change){ .x = x, .block = block, .jids = prepped, .cb = cb,
		.ud = ud };
	int rc = payload == NULL ? xerr_set(e, "bad-request", "unserializable JID") :
		iq_request(x, NULL, "set", payload, 0, changed, c, e);
	free(payload);
	if (rc < 0) {
		json_decref(prepped);
		free(c);
	}
	return rc;
}

/* ---- the subsystem ---- */

static void discovered(struct xmppd *x, void *ud)
{
	struct xerr e = { 0 };
	if (disco_server_has(x, NS_BLOCKING) && fetch(x, &e) < 0) {
		log_warnx("blocking: cannot fetch the block list: %s", e.text);
	}
}

static void blocking_online(struct xmppd *x, bool resumed)
{
	struct blocking *b = x->blocking;
	if (resumed) {
		return;
	}
	json_decref(b->list);
	b->list = NULL;
	disco_when_ready(x, discovered, NULL);
}

static void blocking_init(struct xmppd *x)
{
	x->blocking = xcalloc(1, sizeof(*x->blocking));
}

static void blocking_free(struct xmppd *x)
{
	struct blocking *b = x->blocking;
	if (b == NULL) {
		return;
	}
	json_decref(b->list);
	free(b->waiters);
	free(b);
	x->blocking = NULL;
}

const struct subsystem blocking_subsystem = {
	.name = "blocking",
	.init = blocking_init,
	.free = blocking_free,
	.online = blocking_online,
};
