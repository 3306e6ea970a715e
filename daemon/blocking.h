/*
 * XEP-0191 blocking command: block and unblock JIDs, the block list
 * (fetched once per fresh session when the server offers
 * urn:xmpp:blocking, then kept current by the server's pushes) and
 * "block" events for every change.
 */
#ifndef XMPPD_DAEMON_BLOCKING_H
#define XMPPD_DAEMON_BLOCKING_H

#include <stddef.h>

#include "daemon/disco.h"
#include "daemon/xmppd.h"

extern const struct subsystem blocking_subsystem;

/*
 * Blocks (block true) or unblocks the n JIDs; unblocking none unblocks
 * everyone. cb gets {} once the server has agreed (the change itself
 * comes as a "block" event), or the error. Fails at once with
 * feature-not-implemented when the server does not offer blocking.
 */
int blocking_change(struct xmppd *x, bool block, const char *const *jids,
	size_t n, disco_cb cb, void *ud, struct xerr *e);
/* cb gets {"jids":[…]}: the block list, from the cache once fetched. */
int blocking_list(struct xmppd *x, disco_cb cb, void *ud, struct xerr *e);

#endif
