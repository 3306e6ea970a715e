/*
 * Stand-ins for the registered IQ handlers the control socket calls
 * (daemon/handlers.h), for test-ipc: registrations are accepted and
 * answers refused, as a core that never received a request would.
 */
#include "daemon/handlers.h"

int handlers_register(struct xmppd *x, const char *ns, const char *type,
	void *owner, handlers_deliver_cb deliver, struct xerr *e)
{
	return 0;
}

int handlers_unregister(struct xmppd *x, const char *ns, const char *type,
	void *owner, struct xerr *e)
{
	return xerr_set(e, "item-not-found", "stub");
}

int handlers_reply(struct xmppd *x, void *owner,
	const struct handlers_answer *a, struct xerr *e)
{
	return xerr_set(e, "item-not-found", "stub");
}

void handlers_drop(struct xmppd *x, void *owner)
{
}

json_t *handlers_list(struct xmppd *x, void *owner)
{
	return json_array();
}
