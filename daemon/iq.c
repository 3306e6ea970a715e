/*
 * Outstanding iq requests. Each is matched on (id, sender): a reply with
 * the right id from the wrong JID, or of a type other than result/error,
 * is not an answer (the spoofing hole behind CVE-2024-46957). Each
 * request has its own timer; the callback runs exactly once.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"
#include "daemon/core.h"
#include "daemon/log.h"
#include "proto/alloc.h"
#include "proto/jid.h"
#include "proto/ns.h"
#include "proto/reader.h"

struct iq_pending {
	struct iq_pending *next;
	struct xmppd *x;
	char *id;
	char *to;		/* prepared full/bare JID, NULL: the account */
	iq_reply_cb cb;
	void *ud;
	uv_timer_t timer;
};

static void pending_closed(uv_handle_t *h)
{
	struct iq_pending *p = h->data;
	free(p->id);
	free(p->to);
	free(p);
}

/* Unlinks p from the list and schedules its memory to be freed. */
static void pending_remove(struct iq_pending *p)
{
	struct iq_pending **pp = &p->x->iqs;
	while (*pp != p) {
		pp = &(*pp)->next;
	}
	*pp = p->next;
	uv_timer_stop(&p->timer);
	uv_close((uv_handle_t *)&p->timer, pending_closed);
}

static void finish(struct iq_pending *p, const struct xml *reply,
	const char *condition, const char *text)
{
	iq_reply_cb cb = p->cb;
	void *ud = p->ud;
	pending_remove(p);
	cb(ud, reply, condition, text);
}

static void timeout_cb(uv_timer_t *t)
{
	struct iq_pending *p = t->data;
	finish(p, NULL, "remote-server-timeout", "no reply in time");
}

/*
 * Is from an acceptable sender for a request sent to p->to? A request
 * without 'to' goes to our own account, and the server answers it with no
 * 'from', our bare JID or our full JID (RFC 6120 10.3.3).
 */
static bool sender_matches(const struct xmppd *x, const struct iq_pending *p,
	const char *from)
{
	char *prepped = NULL;
	if (from != NULL) {
		prepped = jid_prep(from, false, NULL);
		if (prepped == NULL) {
			return false;
		}
	}
	bool ok;
	if (p->to == NULL || strcmp(p->to, x->bare_jid) == 0) {
		ok = prepped == NULL || strcmp(prepped, x->bare_jid) == 0 ||
			(x->full_jid != NULL && strcmp(prepped, x->full_jid) == 0);
	} else {
		ok = prepped != NULL && strcmp(prepped, p->to) == 0;
	}
	free(prepped);
	return ok;
}

bool iq_handle_reply(struct xmppd *x, const struct xml *iq)
{
	const char *type = xml_attr(iq, "type");
	const char *id = xml_attr(iq, "id");
	if (type == NULL || id == NULL ||
			(strcmp(type, "result") != 0 && strcmp(type, "error") != 0)) {
		return false;
	}
	for (struct iq_pending *p = x->iqs; p != NULL; p = p->next) {
		if (strcmp(p->id, id) != 0) {
			continue;
		}
		if (!sender_matches(x, p, xml_attr(iq, "from"))) {
			log_warnx("ignoring a reply to iq '%s' from '%s': it was sent to '%s'",
				id, xml_attr(iq, "from") ? xml_attr(iq, "from") : "",
				p->to ? p->to : x->bare_jid);
			return false;
		}
		finish(p, iq, NULL, NULL);
		return true;
	}
	return false;
}

void iq_fail_all(struct xmppd *x, const char *condition, const char *text)
{
	while (x->iqs != NULL) {
		finish(x->iqs, NULL, condition, text);
	}
}

int iq_request(struct xmppd *x, const char *to, const char *type,
	const char *payload, unsigned timeout_ms, iq_reply_cb cb, void *ud,
	struct xerr *e)
{
	if (x->state != XMPPD_ONLINE) {
		return xerr_set(e, "not-connected", "the account is %s",
			xmppd_state_name(x->state));
	}
	if (type == NULL || (strcmp(type, "get") != 0 && strcmp(type, "set") != 0)) {
		return xerr_set(e, "bad-request", "type must be get or set");
	}
	char *to_prepped = NULL;
	if (to != NULL) {
		const char *err = NULL;
		to_prepped = jid_prep(to, false, &err);
		if (to_prepped == NULL) {
			return xerr_set(e, "invalid-jid", "to: %s", err);
		}
	}
	struct xml *iq = xml_new("iq", NS_CLIENT);
	if (payload != NULL && payload[0] != '\0') {
		const char *err = NULL;
		struct xml *body = reader_parse_element(payload, strlen(payload),
			NS_CLIENT, &err);
		if (body == NULL) {
			xml_free(iq);
			free(to_prepped);
			return xerr_set(e, "bad-request", "payload: %s", err);
		}
		xml_append(iq, body);
	}
	char *id = xmppd_new_id();
	xml_set_attr(iq, "type", type);
	xml_set_attr(iq, "id", id);
	xml_set_attr(iq, "to", to_prepped);
	if (!xmppd_send(x, iq)) {
		xml_free(iq);
		free(id);
		free(to_prepped);
		return xerr_set(e, "bad-request", "the request could not be serialized");
	}
	xml_free(iq);

	struct iq_pending *p = xcalloc(1, sizeof(*p));
	p->x = x;
	p->id = id;
	p->to = to_prepped;
	p->cb = cb;
	p->ud = ud;
	p->next = x->iqs;
	x->iqs = p;
	uv_timer_init(x->loop, &p->timer);
	p->timer.data = p;
	if (timeout_ms == 0) {
		timeout_ms = x->cfg->iq_timeout * 1000;
	}
	uv_timer_start(&p->timer, timeout_cb, timeout_ms, 0);
	return 0;
}
