/*
 * The fake core behind test-ipc (see ipc-stub.h). Pending iq requests
 * are a FIFO; each has a real uv timer so a request with a timeout times
 * out on the loop as the core's would.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"
#include "daemon/muc.h"
#include "daemon/xmppd.h"
#include "proto/alloc.h"
#include "daemon/roster.h"
#include "tests/ipc-stub.h"

struct stub_iq {
	struct stub_iq *next;
	struct xmppd *x;
	uv_timer_t timer;
	iq_reply_cb cb;
	void *ud;
	char *id;
};

struct xmppd {
	uv_loop_t *loop;
	struct config *cfg;
	enum xmppd_state state;
	char *jid;
	json_t *sent;
	struct stub_iq *iqs;
	unsigned serial;
	bool quit;
	int reconnects;
	const char *fail_condition;
	char fail_text[256];
	void (*stopped_cb)(void *ud);
	void *stopped_ud;
};

int xerr_set(struct xerr *e, const char *condition, const char *fmt, ...)
{
	va_list ap;
	e->condition = condition;
	va_start(ap, fmt);
	vsnprintf(e->text, sizeof(e->text), fmt, ap);
	va_end(ap);
	return -1;
}

static const char *const state_names[] = {
	[XMPPD_OFFLINE] = "offline",
	[XMPPD_CONNECTING] = "connecting",
	[XMPPD_ONLINE] = "online",
	[XMPPD_AUTH_FAILED] = "auth-failed",
	[XMPPD_TLS_FAILED] = "tls-failed",
	[XMPPD_STOPPING] = "stopping",
};

const char *xmppd_state_name(enum xmppd_state st)
{
	return state_names[st];
}

struct xmppd *xmppd_new(uv_loop_t *loop, struct config *cfg)
{
	struct xmppd *x = xcalloc(1, sizeof(*x));
	x->loop = loop;
	x->cfg = cfg;
	x->state = XMPPD_ONLINE;
	x->jid = xstrdup("alice@example.org/test");
	x->sent = json_array();
	return x;
}

static void iq_closed(uv_handle_t *h)
{
	struct stub_iq *q = h->data;
	free(q->id);
	free(q);
}

/* Takes q off the list, closes its timer, then calls its callback. */
static void iq_finish(struct stub_iq *q, const struct xml *reply,
	const char *condition, const char *text)
{
	struct xmppd *x = q->x;
	for (struct stub_iq **p = &x->iqs; *p != NULL; p = &(*p)->next) {
		if (*p == q) {
			*p = q->next;
			break;
		}
	}
	uv_close((uv_handle_t *)&q->timer, iq_closed);
	q->cb(q->ud, reply, condition, text);
}

void xmppd_free(struct xmppd *x)
{
	if (x == NULL) {
		return;
	}
	while (x->iqs != NULL) {
		iq_finish(x->iqs, NULL, "not-connected", "the core is gone");
	}
	json_decref(x->sent);
	free(x->jid);
	free(x);
}

void xmppd_start(struct xmppd *x)
{
}

/* Stops at once, as the core does when it is offline. */
int stub_reconnects(const struct xmppd *x)
{
	return x->reconnects;
}

void xmppd_reconnect(struct xmppd *x)
{
	x->reconnects++;
}

void xmppd_quit(struct xmppd *x)
{
	x->quit = true;
	x->state = XMPPD_STOPPING;
	if (x->stopped_cb != NULL) {
		x->stopped_cb(x->stopped_ud);
	}
}

void xmppd_on_stopped(struct xmppd *x, void (*cb)(void *ud), void *ud)
{
	x->stopped_cb = cb;
	x->stopped_ud = ud;
}

enum xmppd_state xmppd_state(const struct xmppd *x)
{
	return x->state;
}

const char *xmppd_jid(const struct xmppd *x)
{
	return x->jid;
}

json_t *xmppd_status(const struct xmppd *x)
{
	json_t *o = json_object();
	json_object_set_new(o, "state", json_string(xmppd_state_name(x->state)));
	json_object_set_new(o, "jid", json_string(x->jid));
	json_object_set_new(o, "sm", json_true());
	json_object_set_new(o, "features", json_pack("[s]", "urn:xmpp:carbons:2"));
	return o;
}

/* Fails the call if the test asked for it. */
static bool failing(struct xmppd *x, struct xerr *e)
{
	if (x->fail_condition == NULL) {
		return false;
	}
	xerr_set(e, x->fail_condition, "%s", x->fail_text);
	x->fail_condition = NULL;
	return true;
}

static void record(struct xmppd *x, const char *kind, json_t *args)
{
	json_object_set_new(args, "kind", json_string(kind));
	json_array_append_new(x->sent, args);
}

static void put(json_t *o, const char *key, const char *value)
{
	if (value != NULL) {
		json_object_set_new(o, key, json_string(value));
	}
}

int message_send(struct xmppd *x, const struct message_args *m,
	char **msg_id, message_done_cb done, void *ud, struct xerr *e)
{
	if (failing(x, e)) {
		return -1;
	}
	*msg_id = m->msg_id ? xstrdup(m->msg_id) : xasprintf("stub%u", ++x->serial);
	json_t *o = json_object();
	put(o, "to", m->to);
	put(o, "body", m->body);
	put(o, "type", m->type);
	put(o, "subject", m->subject);
	put(o, "thread", m->thread);
	put(o, "msg_id", *msg_id);
	record(x, "message", o);
	return 0;
}

int presence_send(struct xmppd *x, const struct presence_args *p,
	struct xerr *e)
{
	if (failing(x, e)) {
		return -1;
	}
	json_t *o = json_object();
	put(o, "to", p->to);
	put(o, "type", p->type);
	put(o, "show", p->show);
	put(o, "status", p->status);
	if (p->has_priority) {
		json_object_set_new(o, "priority", json_integer(p->priority));
	}
	record(x, "presence", o);
	return 0;
}

int xmppd_send_raw(struct xmppd *x, const char *xml, struct xerr *e)
{
	if (failing(x, e)) {
		return -1;
	}
	json_t *o = json_object();
	put(o, "xml", xml);
	record(x, "raw", o);
	return 0;
}

/* Group chat: joins and leaves are answered at once. */
int muc_join(struct xmppd *x, const struct muc_join_args *a, muc_done_cb cb,
	void *ud, struct xerr *e)
{
	if (failing(x, e)) {
		return -1;
	}
	json_t *o = json_object();
	put(o, "room", a->room);
	put(o, "nick", a->nick);
	record(x, "muc-join", o);
	json_t *res = json_object();
	put(res, "room", a->room);
	put(res, "nick", a->nick);
	cb(ud, res, NULL);
	return 0;
}

int muc_leave(struct xmppd *x, const char *room, muc_done_cb cb, void *ud,
	struct xerr *e)
{
	if (failing(x, e)) {
		return -1;
	}
	json_t *res = json_object();
	put(res, "room", room);
	cb(ud, res, NULL);
	return 0;
}

json_t *muc_rooms(struct xmppd *x, const char *room, struct xerr *e)
{
	if (failing(x, e)) {
		return NULL;
	}
	return json_array();
}

static void iq_timeout_cb(uv_timer_t *t)
{
	iq_finish(t->data, NULL, "remote-server-timeout", "no reply in time");
}

int iq_request(struct xmppd *x, const char *to, const char *type,
	const char *payload, unsigned timeout_ms, iq_reply_cb cb, void *ud,
	struct xerr *e)
{
	if (failing(x, e)) {
		return -1;
	}
	struct stub_iq *q = xcalloc(1, sizeof(*q));
	q->x = x;
	q->cb = cb;
	q->ud = ud;
	q->id = xasprintf("iq%u", ++x->serial);
	uv_timer_init(x->loop, &q->timer);
	q->timer.data = q;
	unsigned ms = timeout_ms ? timeout_ms : x->cfg->iq_timeout * 1000;
	uv_timer_start(&q->timer, iq_timeout_cb, ms, 0);
	struct stub_iq **p = &x->iqs;
	while (*p != NULL) {
		p = &(*p)->next;
	}
	*p = q;

	json_t *o = json_object();
	put(o, "to", to);
	put(o, "type", type);
	put(o, "payload", payload);
	json_object_set_new(o, "timeout_ms", json_integer(timeout_ms));
	put(o, "iq_id", q->id);
	record(x, "iq", o);
	return 0;
}

void stub_set_state(struct xmppd *x, enum xmppd_state st)
{
	x->state = st;
}

void stub_set_jid(struct xmppd *x, const char *jid)
{
	free(x->jid);
	x->jid = xstrdup(jid);
}

void stub_fail_next(struct xmppd *x, const char *condition, const char *text)
{
	x->fail_condition = condition;
	snprintf(x->fail_text, sizeof(x->fail_text), "%s", text);
}

json_t *stub_sent(struct xmppd *x)
{
	return x->sent;
}

bool stub_quit_called(const struct xmppd *x)
{
	return x->quit;
}

size_t stub_iq_pending(const struct xmppd *x)
{
	size_t n = 0;
	for (const struct stub_iq *q = x->iqs; q != NULL; q = q->next) {
		n++;
	}
	return n;
}

bool stub_iq_answer(struct xmppd *x, struct xml *reply)
{
	if (x->iqs == NULL) {
		return false;
	}
	xml_set_attr(reply, "id", x->iqs->id);
	iq_finish(x->iqs, reply, NULL, NULL);
	return true;
}

bool stub_iq_fail(struct xmppd *x, const char *condition, const char *text)
{
	if (x->iqs == NULL) {
		return false;
	}
	iq_finish(x->iqs, NULL, condition, text);
	return true;
}

/* ---- daemon/roster.h: the roster commands reach these ---- */

json_t *roster_json(const struct xmppd *x)
{
	json_t *o = json_object();
	json_object_set_new(o, "items", json_array());
	return o;
}

int roster_set(struct xmppd *x, const char *jid, const char *name,
	const char *const *groups, size_t ngroups, roster_done_cb cb, void *ud,
	struct xerr *e)
{
	if (failing(x, e)) {
		return -1;
	}
	cb(ud, NULL, NULL);
	return 0;
}

int roster_remove(struct xmppd *x, const char *jid, roster_done_cb cb,
	void *ud, struct xerr *e)
{
	return roster_set(x, jid, NULL, NULL, 0, cb, ud, e);
}

int roster_subscription(struct xmppd *x, const char *jid, const char *action,
	const char *status, struct xerr *e)
{
	return failing(x, e) ? -1 : 0;
}

json_t *roster_pending_json(const struct xmppd *x)
{
	return json_array();
}

json_t *presence_table_json(const struct xmppd *x, const char *bare)
{
	return json_array();
}

int xmppd_log_read(struct xmppd *x, const struct xmppd_log_query *q,
	xmppd_log_cb cb, void *ud, struct xerr *e)
{
	return xerr_set(e, "service-unavailable", "the stub has no log");
}

uint64_t xmppd_log_pruned(struct xmppd *x)
{
	return 0;
}
