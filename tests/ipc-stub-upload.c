/*
 * Stand-in for the slot request the control socket makes
 * (daemon/upload.h), for test-ipc: it refuses at once, as a core without
 * a server connection would.
 */
#include "daemon/upload.h"

int upload_slot(struct xmppd *x, const struct upload_request *r, disco_cb cb,
	void *ud, struct xerr *e)
{
	return xerr_set(e, "not-connected", "stub");
}
