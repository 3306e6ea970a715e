/*
 * Stream management across a restart of the daemon: the XEP-0198 state
 * (resumption id, location, bound JID, both counters and the stanzas the
 * server has not acknowledged) is written to the store with every commit,
 * so that after a crash the daemon first tries to resume the session the
 * server still holds, instead of binding afresh. Unacknowledged messages
 * are kept by reference to their outbox rows.
 *
 * A clean shutdown (SIGTERM, quit) closes the session, so it forgets the
 * state: the next start binds a new session and sends the outbox again.
 */
#ifndef XMPPD_DAEMON_RESUME_H
#define XMPPD_DAEMON_RESUME_H

struct xmppd;

/* Reads the saved state into x->sm (after the outbox is loaded) and
 * has every commit save it. */
void resume_load(struct xmppd *x);
/* The session ends cleanly: the saved state goes. */
void resume_forget(struct xmppd *x);

#endif
