/*
 * Message carbons (XEP-0280): enabled on every fresh session, so that
 * messages this account's other clients send and receive reach us too.
 * Unwrapping the carbons that arrive is message.c's job; this subsystem
 * only asks the server and remembers the answer.
 */
#ifndef XMPPD_DAEMON_CARBONS_H
#define XMPPD_DAEMON_CARBONS_H

#include <stdbool.h>

#include "daemon/subsystems.h"

struct xmppd;

extern const struct subsystem carbons_subsystem;

/* Did the server accept <enable/> on the current session? */
bool carbons_enabled(const struct xmppd *x);

#endif
