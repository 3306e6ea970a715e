/*
 * Stand-in for the archive query the control socket makes
 * (daemon/mam.h), for test-ipc: it refuses at once, as a core without a
 * server connection would.
 */
#include "daemon/mam.h"

int mam_history(struct xmppd *x, const struct mam_history_args *a, disco_cb cb,
	void *ud, struct xerr *e)
{
	return xerr_set(e, "not-connected", "stub");
}
