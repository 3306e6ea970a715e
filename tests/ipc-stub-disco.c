/*
 * Stand-ins for the discovery and blocking calls the control socket
 * makes (daemon/disco.h, daemon/blocking.h), for test-ipc: each refuses
 * at once, as a core without a server connection would.
 */
#include "daemon/blocking.h"
#include "daemon/disco.h"

int disco_query(struct xmppd *x, const char *to, const char *node, bool items,
	disco_cb cb, void *ud, struct xerr *e)
{
	return xerr_set(e, "not-connected", "stub");
}

int disco_ping(struct xmppd *x, const char *to, disco_cb cb, void *ud,
	struct xerr *e)
{
	return xerr_set(e, "not-connected", "stub");
}

int blocking_change(struct xmppd *x, bool block, const char *const *jids,
	size_t n, disco_cb cb, void *ud, struct xerr *e)
{
	return xerr_set(e, "not-connected", "stub");
}

int blocking_list(struct xmppd *x, disco_cb cb, void *ud, struct xerr *e)
{
	return xerr_set(e, "not-connected", "stub");
}
