/*
 * Service discovery (XEP-0030): what the server and the account offer,
 * asked once per fresh session and kept across resumptions, plus the
 * disco and ping requests the control socket makes.
 */
#ifndef XMPPD_DAEMON_DISCO_H
#define XMPPD_DAEMON_DISCO_H

#include <jansson.h>
#include <stdbool.h>

#include "daemon/xmppd.h"
#include "proto/xml.h"

struct xmppd;

extern const struct subsystem disco_subsystem;

/* The answer to a request: result is a new reference the callback owns,
 * or NULL with condition (a stanza error or "not-connected", ...) and
 * text set. Called exactly once. */
typedef void (*disco_cb)(void *ud, json_t *result, const char *condition,
	const char *text);

/* Have the server and the account answered (or failed) this session? */
bool disco_known(struct xmppd *x);
/* Does the server (the domain's disco#info) offer this feature? False
 * until its answer is in. */
bool disco_server_has(struct xmppd *x, const char *feature);
/* Does the account (the own bare JID's disco#info: PEP, MAM, ...)? */
bool disco_account_has(struct xmppd *x, const char *feature);
/*
 * Calls cb once the server's and the account's features are known for
 * this session (at once if they are). If the connection is lost first
 * the call is dropped without calling cb: subsystems register again
 * from their online hook, so ud must not own memory.
 */
void disco_when_ready(struct xmppd *x, void (*cb)(struct xmppd *x, void *ud),
	void *ud);

/* Our own disco#info <query/> (identity, disco_features[] and the
 * namespaces of x's iq-handle registrations; x may be NULL), with node
 * set when not NULL; the caller frees it. */
struct xml *disco_own_info(struct xmppd *x, const char *node);

/* Adds "features" (what the server and the account offer, sorted) and
 * "client_features" (what we implement) to a status object. */
void disco_status(const struct xmppd *x, json_t *status);

/*
 * disco#info (items false) or disco#items of to (NULL: the server) at
 * node (may be NULL). The result is {"identities":[{category, type,
 * name?, lang?}], "features":[…]} or {"items":[{jid, node?, name?}]}.
 */
int disco_query(struct xmppd *x, const char *to, const char *node, bool items,
	disco_cb cb, void *ud, struct xerr *e);

/*
 * XEP-0199 ping of to (NULL: the server). The result is {"rtt_ms":N},
 * plus "error":condition when the entity answered with an error that
 * still shows it is there (see disco.c); otherwise the condition fails
 * the request.
 */
int disco_ping(struct xmppd *x, const char *to, disco_cb cb, void *ud,
	struct xerr *e);

#endif
