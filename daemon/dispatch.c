/*
 * The dispatcher: every stanza received while online comes here. IQ
 * results and errors go to the request tracker first (matched on id and
 * sender); everything else is looked up by (stanza kind, namespace of the
 * first child element) in one table, so a new extension is a new row.
 * An iq get/set no row takes goes to the namespaces control-socket
 * clients registered (daemon/handlers.c); one nobody handles is answered
 * with service-unavailable, as RFC 6120 8.4 requires.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon/core.h"
#include "daemon/handlers.h"
#include "daemon/log.h"
#include "daemon/mam.h"
#include "daemon/roster.h"
#include "proto/alloc.h"
#include "proto/ns.h"

struct dispatch_row {
	const char *kind;	/* "message", "presence", "iq" */
	const char *ns;		/* first child's namespace, NULL: any */
	const char *child;	/* first child's name, NULL: any */
	void (*handle)(struct xmppd *x, const struct xml *stanza);
};

static const struct dispatch_row rows[] = {
	{ "iq", NS_BLOCKING, "block", blocking_handle_push },
	{ "iq", NS_BLOCKING, "unblock", blocking_handle_push },
	{ "iq", NS_DISCO_INFO, "query", disco_handle_info },
	{ "iq", NS_DISCO_ITEMS, "query", disco_handle_items },
	{ "iq", NS_PING, "ping", disco_handle_ping },
	{ "iq", NS_ROSTER, "query", roster_handle_iq },
	{ "iq", NS_TIME, "time", disco_handle_time },
	{ "iq", NS_VERSION, "query", disco_handle_version },
	{ "message", NS_MAM, "result", mam_handle_result },
	{ "message", NULL, NULL, message_handle },
	{ "presence", NULL, NULL, presence_handle },
};

static bool matches(const struct dispatch_row *row, const struct xml *stanza,
	const struct xml *child)
{
	if (row->kind[0] != stanza->name[0] ||
			strcmp(row->kind, stanza->name) != 0) {
		return false;	/* the first letters tell the three kinds apart */
	}
	if (row->ns == NULL) {
		return true;
	}
	return child != NULL && child->ns != NULL && strcmp(child->ns, row->ns) == 0 &&
		(row->child == NULL || strcmp(child->name, row->child) == 0);
}

struct xml *dispatch_iq_result(const struct xml *iq)
{
	struct xml *r = xml_new("iq", NS_CLIENT);
	xml_set_attr(r, "type", "result");
	xml_set_attr(r, "id", xml_attr(iq, "id"));
	xml_set_attr(r, "to", xml_attr(iq, "from"));
	return r;
}

void dispatch_iq_error(struct xmppd *x, const struct xml *iq, const char *type,
	const char *condition)
{
	struct xml *r = xml_new("iq", NS_CLIENT);
	xml_set_attr(r, "type", "error");
	xml_set_attr(r, "id", xml_attr(iq, "id"));
	xml_set_attr(r, "to", xml_attr(iq, "from"));
	struct xml *err = xml_add(r, "error", NULL);
	xml_set_attr(err, "type", type);
	xml_add(err, condition, NS_STANZA_ERRORS);
	xmppd_send(x, r);
	xml_free(r);
}

static bool is_request(const char *type)
{
	return type != NULL && (strcmp(type, "get") == 0 || strcmp(type, "set") == 0);
}

void dispatch_stanza(struct xmppd *x, struct xml *stanza)
{
	if (stanza->ns == NULL || strcmp(stanza->ns, NS_CLIENT) != 0) {
		log_debug("ignoring <%s/> in %s", stanza->name,
			stanza->ns ? stanza->ns : "no namespace");
		return;
	}
	const char *type = xml_attr(stanza, "type");
	bool iq = strcmp(stanza->name, "iq") == 0;
	if (iq && !is_request(type)) {
		if (!iq_handle_reply(x, stanza)) {
			log_debug("ignoring an unmatched iq %s id '%s' from '%s'",
				type ? type : "(no type)",
				xml_attr(stanza, "id") ? xml_attr(stanza, "id") : "",
				xml_attr(stanza, "from") ? xml_attr(stanza, "from") : "");
		}
		return;
	}
	const struct xml *child = xml_first_element(stanza);
	if (!iq) {
		handlers_stanza(x, stanza);
	}
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (matches(&rows[i], stanza, child)) {
			rows[i].handle(x, stanza);
			return;
		}
	}
	if (iq && !handlers_dispatch(x, stanza)) {
		dispatch_iq_error(x, stanza, "cancel", "service-unavailable");
	}
}
