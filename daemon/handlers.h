/*
 * Extensions that live outside the daemon (DESIGN.md 4, iq-handle): a
 * control-socket client registers the namespace of IQ requests it
 * answers, receives each such request as an "iq" event (delivered to
 * that client alone) and answers it once with iq-reply. A request left
 * unanswered gets service-unavailable after [limits] iq_timeout, and
 * one whose handler goes away gets it at once, so the requester is never
 * left hanging. Built-in handlers (daemon/dispatch.c) come first; an IQ
 * nobody handles still gets service-unavailable from the dispatcher.
 *
 * Also the "stanza" events: incoming messages and presences, as XML,
 * with the namespaces of their child elements (the control socket
 * filters them per client).
 *
 * The owner of a registration is an opaque handle (the ipc client); the
 * daemon only compares it and passes it back to the deliver callback.
 */
#ifndef XMPPD_DAEMON_HANDLERS_H
#define XMPPD_DAEMON_HANDLERS_H

#include <jansson.h>
#include <stdbool.h>

#include "daemon/xmppd.h"
#include "proto/xml.h"

extern const struct subsystem handlers_subsystem;

/* Hands ev ({"event":"iq", ...}, borrowed for the call) to owner. */
typedef void (*handlers_deliver_cb)(void *owner, json_t *ev);

/* How an "iq" event's request is answered (iq-reply). */
struct handlers_answer {
	const char *iq_id;	/* the event's iq_id */
	const char *type;	/* "result" or "error" */
	const char *payload;	/* one element as XML text, or NULL */
	const char *condition;	/* type error: a stanza error condition */
	const char *text;	/* type error: optional human text */
};

/*
 * owner answers IQ get/set requests whose first child is in ns; they
 * reach it through deliver. Fails with conflict if another owner holds
 * ns, resource-constraint past the bound on registrations.
 */
int handlers_register(struct xmppd *x, const char *ns, const char *type,
	void *owner, handlers_deliver_cb deliver, struct xerr *e);
/* Gives ns up (item-not-found unless owner holds it). */
int handlers_unregister(struct xmppd *x, const char *ns, const char *type,
	void *owner, struct xerr *e);
/* Sends owner's answer to the request behind a->iq_id, once:
 * item-not-found for an unknown, foreign or already answered id. */
int handlers_reply(struct xmppd *x, void *owner,
	const struct handlers_answer *a, struct xerr *e);
/* owner has gone: its namespaces are free again and its unanswered
 * requests get service-unavailable now. */
void handlers_drop(struct xmppd *x, void *owner);
/* Bound on registrations, all clients together. */
#define HANDLERS_MAX_REGS 256

/* Fills out (at most max) with the distinct namespaces registered now,
 * borrowed until the next change; returns how many. */
size_t handlers_namespaces(const struct xmppd *x, const char **out,
	size_t max);

/* The namespaces owner holds, as a new JSON array. */
json_t *handlers_list(struct xmppd *x, void *owner);

/* dispatch.c: offers an iq get/set no built-in row took to the
 * registered handlers; false if none holds its namespace. */
bool handlers_dispatch(struct xmppd *x, const struct xml *iq);
/* dispatch.c: publishes a "stanza" event for an incoming message or
 * presence, if anyone listens. */
void handlers_stanza(struct xmppd *x, const struct xml *stanza);

#endif
