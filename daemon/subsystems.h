/*
 * The subsystems that hold the account's IM state (roster, group chat,
 * carbons, ...). Each is a file pair with one struct hung off struct
 * xmppd, and a row in subsystems.c: the core calls every row's hooks, in
 * table order, so adding a subsystem never touches the core.
 */
#ifndef XMPPD_DAEMON_SUBSYSTEMS_H
#define XMPPD_DAEMON_SUBSYSTEMS_H

#include <stdbool.h>

struct xmppd;

struct subsystem {
	const char *name;
	/* At xmppd_new: allocate the state. */
	void (*init)(struct xmppd *x);
	/* At xmppd_free: release it. */
	void (*free)(struct xmppd *x);
	/* Online: after a fresh bind (resumed false), before the initial
	 * presence goes out; or after a resumption (resumed true), when the
	 * server kept the session's state. */
	void (*online)(struct xmppd *x, bool resumed);
	/* After a fresh login, once the initial presence went out (after
	 * any holds, see xmppd_hold_presence): join rooms and the like. */
	void (*available)(struct xmppd *x);
	/* The connection was lost (it may yet be resumed). */
	void (*offline)(struct xmppd *x);
};

extern const struct subsystem *const subsystems[];

void subsystems_init(struct xmppd *x);
void subsystems_free(struct xmppd *x);
void subsystems_online(struct xmppd *x, bool resumed);
void subsystems_available(struct xmppd *x);
void subsystems_offline(struct xmppd *x);

#endif
