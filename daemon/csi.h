/*
 * XEP-0352 client state indication: the server is told <inactive/>
 * while no control-socket client listens for messages and <active/>
 * while one does, when it offers urn:xmpp:csi:0 in its stream features.
 * Anything waiting for the server's ack (outbox messages, and any other
 * stanza sent) also keeps the client active: Prosody 0.12
 * (mod_csi_simple) pauses every write to an inactive session, its acks
 * included, until something important arrives.
 */
#ifndef XMPPD_DAEMON_CSI_H
#define XMPPD_DAEMON_CSI_H

#include <jansson.h>

struct xmppd;

extern const struct subsystem csi_subsystem;

/* Adds "csi": "active" or "inactive" (what the server was last told in
 * this session) to a status object, if the server offers it. */
void csi_status(const struct xmppd *x, json_t *status);

/* The outbox or the stanzas awaiting acks went from empty to not or
 * back: the state may change. */
void csi_evaluate(struct xmppd *x);

#endif
