/*
 * Presence: our own (initial from [presence], changed by the presence
 * command, unavailable on the way out) and what contacts send, published
 * as presence events.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"
#include "daemon/core.h"
#include "daemon/events.h"
#include "daemon/log.h"
#include "daemon/muc.h"
#include "proto/alloc.h"
#include "proto/jid.h"
#include "proto/ns.h"

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

static struct xml *build(const char *to, const char *type, const char *show,
	const char *status, bool has_priority, int priority)
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
	return p;
}

void presence_send_initial(struct xmppd *x)
{
	const struct config *c = x->cfg;
	struct xml *p = build(NULL, NULL, c->show, c->status, c->priority != 0,
		c->priority);
	xmppd_send(x, p);
	xml_free(p);
}

void presence_send_unavailable(struct xmppd *x)
{
	struct xml *p = build(NULL, "unavailable", NULL, NULL, false, 0);
	xmppd_send(x, p);
	xml_free(p);
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
	struct xml *p = build(to, a->type, show, a->status, a->has_priority,
		a->priority);
	free(to);
	bool sent = xmppd_send(x, p);
	xml_free(p);
	if (!sent) {
		return xerr_set(e, "bad-request",
			"the presence holds characters XML cannot carry");
	}
	return 0;
}

void presence_handle(struct xmppd *x, const struct xml *stanza)
{
	if (muc_handle_presence(x, stanza)) {
		return;
	}
	json_t *ev = json_object();
	const char *from = xml_attr(stanza, "from");
	const char *type = xml_attr(stanza, "type");
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
		json_object_set_new(ev, "priority", json_integer(atoi(priority)));
	}
	free(show);
	free(status);
	free(priority);
	events_publish("presence", ev);
}
