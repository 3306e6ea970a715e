/*
 * Answers to what others ask of this client: XEP-0030 disco#info (with
 * only what is really implemented), XEP-0199 ping, XEP-0092 version.
 */
#include <string.h>

#include "daemon/core.h"
#include "proto/ns.h"

const char *const disco_features[] = {
	NS_CHATSTATES,
	NS_DISCO_INFO,
	NS_PING,
	NS_RECEIPTS,
	NS_VERSION,
	NULL,
};

static bool is_get(const struct xml *iq)
{
	const char *type = xml_attr(iq, "type");
	return type != NULL && strcmp(type, "get") == 0;
}

void disco_handle_info(struct xmppd *x, const struct xml *iq)
{
	if (!is_get(iq)) {
		dispatch_iq_error(x, iq, "cancel", "bad-request");
		return;
	}
	const struct xml *q = xml_first_element(iq);
	if (xml_attr(q, "node") != NULL) {
		dispatch_iq_error(x, iq, "cancel", "item-not-found");
		return;
	}
	struct xml *r = dispatch_iq_result(iq);
	struct xml *query = xml_add(r, "query", NS_DISCO_INFO);
	struct xml *id = xml_add(query, "identity", NULL);
	xml_set_attr(id, "category", "client");
	xml_set_attr(id, "type", "bot");
	xml_set_attr(id, "name", "xmppd");
	for (size_t i = 0; disco_features[i] != NULL; i++) {
		struct xml *f = xml_add(query, "feature", NULL);
		xml_set_attr(f, "var", disco_features[i]);
	}
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
