/*
 * Messages: building what the send command asks for, and publishing what
 * arrives as message events.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon/core.h"
#include "daemon/events.h"
#include "daemon/log.h"
#include "proto/alloc.h"
#include "proto/jid.h"
#include "proto/ns.h"

static const char *const message_types[] = {
	"chat", "normal", "headline", "groupchat", NULL,
};

static bool valid_type(const char *type)
{
	for (size_t i = 0; message_types[i] != NULL; i++) {
		if (strcmp(type, message_types[i]) == 0) {
			return true;
		}
	}
	return false;
}

static struct xml *build(const struct message_args *m, const char *to,
	const char *type, const char *id)
{
	struct xml *msg = xml_new("message", NS_CLIENT);
	xml_set_attr(msg, "to", to);
	xml_set_attr(msg, "type", type);
	xml_set_attr(msg, "id", id);
	if (m->subject != NULL) {
		xml_add_text_child(msg, "subject", NULL, m->subject);
	}
	if (m->body != NULL) {
		xml_add_text_child(msg, "body", NULL, m->body);
	}
	if (m->thread != NULL) {
		xml_add_text_child(msg, "thread", NULL, m->thread);
	}
	struct xml *origin = xml_add(msg, "origin-id", NS_SID);
	xml_set_attr(origin, "id", id);
	return msg;
}

int message_send(struct xmppd *x, const struct message_args *m,
	char **msg_id, struct xerr *e)
{
	const char *type = m->type ? m->type : "chat";
	if (!valid_type(type)) {
		return xerr_set(e, "bad-request",
			"type must be chat, normal, headline or groupchat");
	}
	const char *err = NULL;
	char *to = jid_prep(m->to, false, &err);
	if (to == NULL) {
		return xerr_set(e, "invalid-jid", "to: %s", err);
	}
	if (x->quitting) {
		free(to);
		return xerr_set(e, "not-connected", "the daemon is stopping");
	}
	char *id = m->msg_id ? xstrdup(m->msg_id) : xmppd_new_id();
	struct xml *msg = build(m, to, type, id);
	free(to);
	char *check = xml_to_string(msg, NS_CLIENT);
	if (check == NULL) {
		xml_free(msg);
		free(id);
		return xerr_set(e, "bad-request",
			"the message holds characters XML cannot carry");
	}
	free(check);
	if (!outbox_add(x, id, msg)) {
		free(id);
		return xerr_set(e, "resource-constraint",
			"%zu messages are already waiting to be sent",
			outbox_count(&x->outbox));
	}
	*msg_id = id;
	return 0;
}

static void set_text(json_t *ev, const char *key, const struct xml *stanza,
	const char *name, const char *ns)
{
	char *text = xml_child_text(stanza, name, ns);
	if (text != NULL) {
		json_object_set_new(ev, key, json_string(text));
		free(text);
	}
}

static void set_attr(json_t *ev, const char *key, const char *value)
{
	if (value != NULL) {
		json_object_set_new(ev, key, json_string(value));
	}
}

/* A stanza-id counts only when our own server assigned it (XEP-0359 3):
 * its 'by' is our bare JID. */
static const char *own_stanza_id(const struct xmppd *x, const struct xml *stanza)
{
	for (const struct xml *c = xml_first_element(stanza); c != NULL;
			c = xml_next_element(c)) {
		if (strcmp(c->name, "stanza-id") != 0 || c->ns == NULL ||
				strcmp(c->ns, NS_SID) != 0) {
			continue;
		}
		const char *by = xml_attr(c, "by");
		char *prepped = by ? jid_prep(by, true, NULL) : NULL;
		bool ours = prepped != NULL && strcmp(prepped, x->bare_jid) == 0;
		free(prepped);
		if (ours) {
			return xml_attr(c, "id");
		}
	}
	return NULL;
}

static void set_error(json_t *ev, const struct xml *stanza)
{
	const struct xml *err = xml_child(stanza, "error", NULL);
	if (err == NULL) {
		return;
	}
	for (const struct xml *c = xml_first_element(err); c != NULL;
			c = xml_next_element(c)) {
		if (c->ns != NULL && strcmp(c->ns, NS_STANZA_ERRORS) == 0 &&
				strcmp(c->name, "text") != 0) {
			json_object_set_new(ev, "error", json_string(c->name));
			break;
		}
	}
	set_text(ev, "error_text", err, "text", NS_STANZA_ERRORS);
}

/*
 * Has this message been published already? A sender that re-sends after
 * a failed stream resumption repeats its origin-id (XEP-0359), or at
 * least its id; the key is that id with the sender's bare JID. Messages
 * with neither cannot be recognised and always pass.
 */
static bool seen_before(struct xmppd *x, const struct xml *stanza)
{
	const struct xml *origin = xml_child(stanza, "origin-id", NS_SID);
	const char *id = origin ? xml_attr(origin, "id") : xml_attr(stanza, "id");
	const char *from = xml_attr(stanza, "from");
	if (id == NULL || id[0] == '\0' || from == NULL) {
		return false;
	}
	char *bare = jid_prep(from, true, NULL);
	if (bare == NULL) {
		return false;
	}
	char *key = xasprintf("%s%c%s%c%s", bare, '\0', origin ? "o" : "i", '\0', id);
	size_t len = strlen(bare) + 3 + strlen(id);
	bool dup = !dedup_add(&x->seen, key, len);
	free(key);
	free(bare);
	return dup;
}

void message_handle(struct xmppd *x, const struct xml *stanza)
{
	const char *type = xml_attr(stanza, "type");
	type = type ? type : "normal";
	bool has_body = xml_child(stanza, "body", NS_CLIENT) != NULL;
	bool has_subject = xml_child(stanza, "subject", NS_CLIENT) != NULL;
	bool error = strcmp(type, "error") == 0;
	if (!has_body && !has_subject && !error) {
		log_debug("ignoring a message without body or subject");
		return;
	}
	if (!error && seen_before(x, stanza)) {
		log_debug("dropping a message published before");
		return;
	}
	json_t *ev = json_object();
	set_attr(ev, "from", xml_attr(stanza, "from"));
	set_attr(ev, "to", xml_attr(stanza, "to"));
	json_object_set_new(ev, "type", json_string(type));
	set_text(ev, "body", stanza, "body", NS_CLIENT);
	set_text(ev, "subject", stanza, "subject", NS_CLIENT);
	set_text(ev, "thread", stanza, "thread", NS_CLIENT);
	set_attr(ev, "msg_id", xml_attr(stanza, "id"));
	set_attr(ev, "stanza_id", own_stanza_id(x, stanza));
	const struct xml *delay = xml_child(stanza, "delay", NS_DELAY);
	if (delay != NULL) {
		set_attr(ev, "delay", xml_attr(delay, "stamp"));
	}
	if (error) {
		set_error(ev, stanza);
	}
	events_publish("message", ev);
}
