/*
 * Registered IQ namespaces and the requests waiting for their handler.
 *
 * regs is a short list of (namespace, owner, deliver). pending holds
 * the requests handed to a handler and not answered yet, oldest first;
 * every one waits the same iq_timeout, so the list is also in deadline
 * order and one timer, set for the head, serves them all. A request is
 * known to its handler by a random handle (iq_id), never by the
 * requester's own id, which a second requester could reuse.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"
#include "daemon/core.h"
#include "daemon/events.h"
#include "daemon/handlers.h"
#include "daemon/log.h"
#include "daemon/subsystems.h"
#include "proto/alloc.h"
#include "proto/ns.h"
#include "proto/reader.h"

#define MAX_REGS HANDLERS_MAX_REGS	/* namespaces registered, all clients */
#define MAX_PENDING 1024	/* requests waiting for handlers */
#define MAX_NS_LEN 1024

struct reg {
	struct reg *next;
	char *ns;
	char *type;		/* "get", "set", or NULL for both */
	void *owner;
	handlers_deliver_cb deliver;
};

struct pending {
	struct pending *next;
	char *handle;		/* the iq_id the handler answers with */
	void *owner;
	char *from;		/* the requester, NULL: our own account */
	char *id;		/* the request's id */
	uint64_t deadline;	/* loop time */
};

struct handlers {
	struct xmppd *x;
	struct reg *regs;
	size_t nregs;
	struct pending *pending;	/* oldest first */
	struct pending **tail;
	size_t npending;
	uv_timer_t *timer;		/* for the head's deadline */
};

/* RFC 6120 8.3.3: each defined condition and the error type it usually
 * goes with. */
static const struct {
	const char *condition;
	const char *type;
} conditions[] = {
	{ "bad-request", "modify" },
	{ "conflict", "cancel" },
	{ "feature-not-implemented", "cancel" },
	{ "forbidden", "auth" },
	{ "gone", "cancel" },
	{ "internal-server-error", "cancel" },
	{ "item-not-found", "cancel" },
	{ "jid-malformed", "modify" },
	{ "not-acceptable", "modify" },
	{ "not-allowed", "cancel" },
	{ "not-authorized", "auth" },
	{ "policy-violation", "modify" },
	{ "recipient-unavailable", "wait" },
	{ "redirect", "modify" },
	{ "registration-required", "auth" },
	{ "remote-server-not-found", "cancel" },
	{ "remote-server-timeout", "wait" },
	{ "resource-constraint", "wait" },
	{ "service-unavailable", "cancel" },
	{ "subscription-required", "auth" },
	{ "undefined-condition", "cancel" },
	{ "unexpected-request", "wait" },
};

static const char *error_type(const char *condition)
{
	for (size_t i = 0; i < sizeof(conditions) / sizeof(conditions[0]); i++) {
		if (strcmp(conditions[i].condition, condition) == 0) {
			return conditions[i].type;
		}
	}
	return NULL;
}

/* ---- the requests ---- */

static void pending_free(struct pending *p)
{
	free(p->handle);
	free(p->from);
	free(p->id);
	free(p);
}

/* Unlinks p (found through its link pp) and fixes the tail. */
static void pending_unlink(struct handlers *h, struct pending **pp)
{
	struct pending *p = *pp;
	*pp = p->next;
	if (h->tail == &p->next) {
		h->tail = pp;
	}
	h->npending--;
}

static void timeout_cb(uv_timer_t *t);

/* Sets the timer for the oldest request's deadline, or stops it. */
static void arm(struct handlers *h)
{
	if (h->pending == NULL) {
		uv_timer_stop(h->timer);
		return;
	}
	uint64_t now = uv_now(h->x->loop);
	uint64_t d = h->pending->deadline;
	uv_timer_start(h->timer, timeout_cb, d > now ? d - now : 0, 0);
}

/* <iq type='error'> to the requester of p, with condition and text. */
static struct xml *error_iq(const struct pending *p, const char *condition,
	const char *text)
{
	struct xml *iq = xml_new("iq", NS_CLIENT);
	xml_set_attr(iq, "type", "error");
	xml_set_attr(iq, "id", p->id);
	xml_set_attr(iq, "to", p->from);
	struct xml *err = xml_add(iq, "error", NULL);
	xml_set_attr(err, "type", error_type(condition));
	xml_add(err, condition, NS_STANZA_ERRORS);
	if (text != NULL && text[0] != '\0') {
		struct xml *t = xml_add_text_child(err, "text", NS_STANZA_ERRORS, text);
		xml_set_attr(t, "xml:lang", "en");
	}
	return iq;
}

/* Answers p with service-unavailable and forgets it (already unlinked). */
static void give_up(struct xmppd *x, struct pending *p, const char *why)
{
	log_debug("handlers: iq '%s' from '%s': %s", p->id,
		p->from ? p->from : "", why);
	struct xml *iq = error_iq(p, "service-unavailable", why);
	xmppd_send(x, iq);
	xml_free(iq);
	pending_free(p);
}

static void timeout_cb(uv_timer_t *t)
{
	struct handlers *h = t->data;
	uint64_t now = uv_now(h->x->loop);
	while (h->pending != NULL && h->pending->deadline <= now) {
		struct pending *p = h->pending;
		pending_unlink(h, &h->pending);
		give_up(h->x, p, "the handler did not answer in time");
	}
	arm(h);
}

/* Forgets every request (a fresh session: they were for the old one). */
static void drop_all(struct handlers *h)
{
	while (h->pending != NULL) {
		struct pending *p = h->pending;
		pending_unlink(h, &h->pending);
		pending_free(p);
	}
	arm(h);
}

static struct pending **find_pending(struct handlers *h, const char *handle)
{
	for (struct pending **pp = &h->pending; *pp != NULL; pp = &(*pp)->next) {
		if (strcmp((*pp)->handle, handle) == 0) {
			return pp;
		}
	}
	return NULL;
}

/* ---- registrations ---- */

/* Do two type filters (NULL: both get and set) have a type in common? */
static bool types_overlap(const char *a, const char *b)
{
	return a == NULL || b == NULL || strcmp(a, b) == 0;
}

static bool types_equal(const char *a, const char *b)
{
	return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

/* The registration of ns whose type filter overlaps type (exact: is
 * the same), or NULL. */
static struct reg **find_reg(struct handlers *h, const char *ns,
	const char *type, bool exact)
{
	for (struct reg **rp = &h->regs; *rp != NULL; rp = &(*rp)->next) {
		if (strcmp((*rp)->ns, ns) == 0 && (exact ?
				types_equal((*rp)->type, type) :
				types_overlap((*rp)->type, type))) {
			return rp;
		}
	}
	return NULL;
}

static bool ns_held(const struct handlers *h, const char *ns)
{
	for (const struct reg *r = h->regs; r != NULL; r = r->next) {
		if (strcmp(r->ns, ns) == 0) {
			return true;
		}
	}
	return false;
}

size_t handlers_namespaces(const struct xmppd *x, const char **out,
	size_t max)
{
	size_t n = 0;
	if (x->handlers == NULL) {
		return 0;
	}
	for (const struct reg *r = x->handlers->regs; r != NULL && n < max;
			r = r->next) {
		bool seen = false;
		for (size_t i = 0; i < n && !seen; i++) {
			seen = strcmp(out[i], r->ns) == 0;
		}
		if (!seen) {
			out[n++] = r->ns;
		}
	}
	return n;
}

int handlers_register(struct xmppd *x, const char *ns, const char *type,
	void *owner, handlers_deliver_cb deliver, struct xerr *e)
{
	struct handlers *h = x->handlers;
	if (ns[0] == '\0' || strlen(ns) > MAX_NS_LEN) {
		return xerr_set(e, "bad-request", "the namespace must have 1 to %d bytes",
			MAX_NS_LEN);
	}
	struct reg **rp = find_reg(h, ns, type, true);
	if (rp != NULL && (*rp)->owner == owner) {
		return 0;
	}
	rp = find_reg(h, ns, type, false);
	if (rp != NULL) {
		return xerr_set(e, "conflict", "%s handles '%.128s'%s%s",
			(*rp)->owner == owner ? "this client already" : "another client",
			ns, (*rp)->type ? " requests of type " : "",
			(*rp)->type ? (*rp)->type : "");
	}
	if (h->nregs >= MAX_REGS) {
		return xerr_set(e, "resource-constraint",
			"%d namespaces are already registered", MAX_REGS);
	}
	struct reg *r = xcalloc(1, sizeof(*r));
	r->ns = xstrdup(ns);
	r->type = type ? xstrdup(type) : NULL;
	r->owner = owner;
	r->deliver = deliver;
	bool fresh = !ns_held(h, ns);
	r->next = h->regs;
	h->regs = r;
	h->nregs++;
	log_debug("handlers: '%s' registered", ns);
	if (fresh) {
		presence_send_again(x);	/* a new feature: a new caps hash */
	}
	return 0;
}

static void reg_remove(struct handlers *h, struct reg **rp)
{
	struct reg *r = *rp;
	*rp = r->next;
	h->nregs--;
	log_debug("handlers: '%s' unregistered", r->ns);
	free(r->ns);
	free(r->type);
	free(r);
}

int handlers_unregister(struct xmppd *x, const char *ns, const char *type,
	void *owner, struct xerr *e)
{
	struct reg **rp = find_reg(x->handlers, ns, type, true);
	if (rp == NULL || (*rp)->owner != owner) {
		return xerr_set(e, "item-not-found", "this client does not handle '%.128s'",
			ns);
	}
	char *gone = xstrdup(ns);
	reg_remove(x->handlers, rp);
	if (!ns_held(x->handlers, gone)) {
		presence_send_again(x);
	}
	free(gone);
	return 0;
}

void handlers_drop(struct xmppd *x, void *owner)
{
	struct handlers *h = x->handlers;
	struct reg **rp = &h->regs;
	bool changed = false;
	while (*rp != NULL) {
		if ((*rp)->owner == owner) {
			char *ns = xstrdup((*rp)->ns);
			reg_remove(h, rp);
			changed |= !ns_held(h, ns);
			free(ns);
		} else {
			rp = &(*rp)->next;
		}
	}
	if (changed) {
		presence_send_again(x);
	}
	struct pending **pp = &h->pending;
	while (*pp != NULL) {
		if ((*pp)->owner == owner) {
			struct pending *p = *pp;
			pending_unlink(h, pp);
			give_up(x, p, "the handler went away");
		} else {
			pp = &(*pp)->next;
		}
	}
	arm(h);
}

json_t *handlers_list(struct xmppd *x, void *owner)
{
	json_t *a = json_array();
	for (struct reg *r = x->handlers->regs; r != NULL; r = r->next) {
		if (r->owner != owner) {
			continue;
		}
		if (r->type == NULL) {
			json_array_append_new(a, json_string(r->ns));
		} else {
			json_array_append_new(a, json_pack("{s:s,s:s}", "ns", r->ns,
				"type", r->type));
		}
	}
	return a;
}

/* ---- answers ---- */

/* The answer's stanza, or NULL with e filled. */
static struct xml *answer_iq(const struct pending *p,
	const struct handlers_answer *a, struct xerr *e)
{
	struct xml *body = NULL;
	if (a->payload != NULL && a->payload[0] != '\0') {
		const char *err = "invalid";
		body = reader_parse_element(a->payload, strlen(a->payload), NS_CLIENT,
			&err);
		if (body == NULL) {
			xerr_set(e, "bad-request", "payload: %s", err);
			return NULL;
		}
	}
	struct xml *iq;
	if (strcmp(a->type, "error") == 0) {
		iq = error_iq(p, a->condition, a->text);
		if (body != NULL) {
			/* RFC 6120 8.3.1: the original payload may come first. */
			struct xml *err = xml_first_element(iq);
			xml_unlink(err);
			xml_append(iq, body);
			xml_append(iq, err);
		}
		return iq;
	}
	iq = xml_new("iq", NS_CLIENT);
	xml_set_attr(iq, "type", "result");
	xml_set_attr(iq, "id", p->id);
	xml_set_attr(iq, "to", p->from);
	if (body != NULL) {
		xml_append(iq, body);
	}
	return iq;
}

static int check_answer(const struct handlers_answer *a, struct xerr *e)
{
	bool error = strcmp(a->type, "error") == 0;
	if (!error && strcmp(a->type, "result") != 0) {
		return xerr_set(e, "bad-request", "type must be result or error");
	}
	if (error && (a->condition == NULL || error_type(a->condition) == NULL)) {
		return xerr_set(e, "bad-request",
			"an error needs a stanza error condition");
	}
	if (!error && (a->condition != NULL || a->text != NULL)) {
		return xerr_set(e, "bad-request", "condition and text are for errors");
	}
	return 0;
}

int handlers_reply(struct xmppd *x, void *owner, const struct handlers_answer *a,
	struct xerr *e)
{
	struct handlers *h = x->handlers;
	if (check_answer(a, e) < 0) {
		return -1;
	}
	struct pending **pp = find_pending(h, a->iq_id);
	if (pp == NULL || (*pp)->owner != owner) {
		return xerr_set(e, "item-not-found",
			"no request '%.64s' waits for this client (answered, timed out "
			"or never sent)", a->iq_id);
	}
	struct xml *iq = answer_iq(*pp, a, e);
	if (iq == NULL) {
		return -1;
	}
	struct pending *p = *pp;
	pending_unlink(h, pp);
	arm(h);
	bool sent = xmppd_send(x, iq);
	xml_free(iq);
	pending_free(p);
	if (!sent) {
		return xerr_set(e, "not-connected", "the answer could not be sent");
	}
	return 0;
}

/* ---- requests in ---- */

static json_t *iq_event(const struct xml *iq, const struct xml *child,
	const char *handle)
{
	json_t *ev = json_object();
	json_object_set_new(ev, "event", json_string("iq"));
	const char *from = xml_attr(iq, "from");
	if (from != NULL) {
		json_object_set_new(ev, "from", json_string(from));
	}
	json_object_set_new(ev, "type", json_string(xml_attr(iq, "type")));
	json_object_set_new(ev, "iq_id", json_string(handle));
	json_object_set_new(ev, "ns", json_string(child->ns));
	char *text = xml_to_string(child, NS_CLIENT);
	json_object_set_new(ev, "xml", text ? json_string(text) : json_null());
	free(text);
	return ev;
}

bool handlers_dispatch(struct xmppd *x, const struct xml *iq)
{
	struct handlers *h = x->handlers;
	const struct xml *child = xml_first_element(iq);
	if (h == NULL || child == NULL || child->ns == NULL) {
		return false;
	}
	struct reg **rp = find_reg(h, child->ns, xml_attr(iq, "type"), false);
	if (rp == NULL) {
		return false;
	}
	if (xml_attr(iq, "id") == NULL) {
		dispatch_iq_error(x, iq, "modify", "bad-request");
		return true;
	}
	if (h->npending >= MAX_PENDING) {
		dispatch_iq_error(x, iq, "wait", "resource-constraint");
		return true;
	}
	struct pending *p = xcalloc(1, sizeof(*p));
	p->handle = xmppd_new_id();
	p->owner = (*rp)->owner;
	p->from = xml_attr(iq, "from") ? xstrdup(xml_attr(iq, "from")) : NULL;
	p->id = xstrdup(xml_attr(iq, "id"));
	p->deadline = uv_now(x->loop) + (uint64_t)x->cfg->iq_timeout * 1000;
	*h->tail = p;
	h->tail = &p->next;
	h->npending++;
	if (h->pending == p) {
		arm(h);
	}
	json_t *ev = iq_event(iq, child, p->handle);
	(*rp)->deliver((*rp)->owner, ev);
	json_decref(ev);
	return true;
}

/* ---- stanza events ---- */

/* The distinct namespaces of stanza's child elements, ours left out. */
static json_t *child_namespaces(const struct xml *stanza)
{
	json_t *a = json_array();
	for (const struct xml *c = xml_first_element(stanza); c != NULL;
			c = xml_next_element(c)) {
		if (c->ns == NULL || strcmp(c->ns, NS_CLIENT) == 0) {
			continue;
		}
		bool seen = false;
		size_t i;
		json_t *v;
		json_array_foreach(a, i, v) {
			seen = seen || strcmp(json_string_value(v), c->ns) == 0;
		}
		if (!seen) {
			json_array_append_new(a, json_string(c->ns));
		}
	}
	return a;
}

static void set_attr(json_t *ev, const char *key, const struct xml *stanza)
{
	const char *v = xml_attr(stanza, key);
	if (v != NULL) {
		json_object_set_new(ev, key, json_string(v));
	}
}

void handlers_stanza(struct xmppd *x, const struct xml *stanza)
{
	if (!events_wanted("stanza")) {
		return;
	}
	char *text = xml_to_string(stanza, NS_CLIENT);
	if (text == NULL) {
		return;
	}
	json_t *ev = json_object();
	json_object_set_new(ev, "kind", json_string(stanza->name));
	set_attr(ev, "from", stanza);
	set_attr(ev, "to", stanza);
	set_attr(ev, "type", stanza);
	json_object_set_new(ev, "ns", child_namespaces(stanza));
	json_t *s = json_string(text);
	free(text);
	if (s == NULL) {
		json_decref(ev);
		return;
	}
	json_object_set_new(ev, "xml", s);
	events_publish("stanza", ev);
}

/* ---- the subsystem ---- */

static void handlers_init(struct xmppd *x)
{
	struct handlers *h = xcalloc(1, sizeof(*h));
	h->x = x;
	h->tail = &h->pending;
	h->timer = xcalloc(1, sizeof(*h->timer));
	uv_timer_init(x->loop, h->timer);
	h->timer->data = h;
	x->handlers = h;
}

static void timer_closed(uv_handle_t *t)
{
	free(t);
}

static void handlers_free(struct xmppd *x)
{
	struct handlers *h = x->handlers;
	if (h == NULL) {
		return;
	}
	drop_all(h);
	while (h->regs != NULL) {
		reg_remove(h, &h->regs);
	}
	/* main.c may have closed every handle already (uv_walk), and the
	 * close callback has run by now: see muc_free. */
	if (uv_is_closing((uv_handle_t *)h->timer)) {
		free(h->timer);
	} else {
		uv_close((uv_handle_t *)h->timer, timer_closed);
	}
	free(h);
	x->handlers = NULL;
}

/* A fresh session: the requests came to the old one, whose answers
 * could no longer be matched; the registrations stay. */
static void handlers_online(struct xmppd *x, bool resumed)
{
	if (!resumed) {
		drop_all(x->handlers);
	}
}

const struct subsystem handlers_subsystem = {
	.name = "handlers",
	.init = handlers_init,
	.free = handlers_free,
	.online = handlers_online,
};
