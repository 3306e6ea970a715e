/*
 * The roster (RFC 6121 2, XEP-0237 versioning), presence subscriptions
 * (RFC 6121 3) and the table of contacts' resources (RFC 6121 4).
 *
 * The roster subsystem (roster.c) fetches the roster on every fresh
 * login, before the initial presence, sending the version it holds; it
 * applies pushes from the own bare JID (or no 'from') only, and keeps the
 * inbound subscription requests nobody has answered yet. The presence
 * subsystem (presence.c) keeps one entry per contact resource that is
 * available now; it is emptied when the session is lost for good.
 *
 * The functions returning json_t give a new reference; JIDs given in are
 * prepared here, so callers pass what the user typed.
 */
#ifndef XMPPD_DAEMON_ROSTER_H
#define XMPPD_DAEMON_ROSTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "proto/xml.h"

struct subsystem;
struct xerr;
struct xmppd;

/* Bounds on what a server or a peer can make us keep. */
#define ROSTER_MAX_ITEMS 20000
#define ROSTER_MAX_GROUPS 64		/* per item */
#define ROSTER_MAX_PENDING 1000		/* inbound subscription requests */
#define PRESENCE_MAX_RESOURCES 20000

/* The subsystem rows (daemon/subsystems.c). */
extern const struct subsystem roster_subsystem;
extern const struct subsystem presence_subsystem;

/* {"ver"?:…, "items":[{"jid","name"?,"subscription","ask"?,
 *  "groups":[…]}…]}, items sorted by JID. */
json_t *roster_json(const struct xmppd *x);

/* The outcome of a roster-set or roster-remove: condition is NULL on
 * success, else the server's stanza error (or not-connected,
 * remote-server-timeout) with its text (maybe NULL). */
typedef void (*roster_done_cb)(void *ud, const char *condition,
	const char *text);

/* Adds or updates jid with name (NULL: none) and groups; cb follows the
 * server's answer exactly once, unless -1 is returned. */
int roster_set(struct xmppd *x, const char *jid, const char *name,
	const char *const *groups, size_t ngroups, roster_done_cb cb, void *ud,
	struct xerr *e);
/* Is jid (any JID; its bare part counts) allowed to see our presence:
 * our own account, or a contact with subscription "from" or "both"? */
bool roster_shares_presence(const struct xmppd *x, const char *jid);
/* Removes jid from the roster (which also cancels subscriptions). */
int roster_remove(struct xmppd *x, const char *jid, roster_done_cb cb,
	void *ud, struct xerr *e);

/* Handles <iq type='get|set'><query xmlns='jabber:iq:roster'/></iq>. */
void roster_handle_iq(struct xmppd *x, const struct xml *iq);

/* Sends a subscription presence for action: request, approve, deny,
 * cancel, unsubscribe or preapprove; status goes with a request. */
int roster_subscription(struct xmppd *x, const char *jid, const char *action,
	const char *status, struct xerr *e);
/* An inbound subscription presence (subscribe, subscribed, unsubscribe,
 * unsubscribed): kept as pending or resolved, and published. */
void roster_handle_subscription(struct xmppd *x, const struct xml *presence);
/* [{"jid","status"?}…]: requests not answered yet, oldest first. */
json_t *roster_pending_json(const struct xmppd *x);
size_t roster_pending_count(const struct xmppd *x);

/* The presence table as [{"jid","show"?,"status"?,"priority",
 * "caps"?:{"node","ver"}}…], sorted by full JID; only bare's resources
 * when bare is not NULL (it must then be a valid JID). */
json_t *presence_table_json(const struct xmppd *x, const char *bare);

#endif
