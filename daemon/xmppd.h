/*
 * The daemon core: one account, its connection and the subsystems that
 * hold its state. This header is what the control socket (ipc/) may ask
 * of the daemon; the subsystems' own headers are for daemon/ alone.
 *
 * Functions that can fail return 0, or -1 and fill a struct xerr whose
 * condition is a stable token for the IPC error reply (DESIGN.md 4).
 */
#ifndef XMPPD_DAEMON_XMPPD_H
#define XMPPD_DAEMON_XMPPD_H

#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

#include "proto/xml.h"

struct config;
struct xmppd;

struct xerr {
	const char *condition;	/* static token: "not-connected", ... */
	char text[256];
};

/* Fills e and returns -1, for "return xerr_set(e, ...)". */
int xerr_set(struct xerr *e, const char *condition, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

enum xmppd_state {
	XMPPD_OFFLINE,		/* not connected; see reason / next retry */
	XMPPD_CONNECTING,
	XMPPD_ONLINE,
	XMPPD_AUTH_FAILED,	/* stopped: credentials refused */
	XMPPD_TLS_FAILED,	/* stopped: TLS could not be established/trusted */
	XMPPD_STOPPING,		/* shutting down */
};

const char *xmppd_state_name(enum xmppd_state st);

/* The daemon's core on loop, configured by cfg (which must outlive it). */
struct xmppd *xmppd_new(uv_loop_t *loop, struct config *cfg);
/* Frees the core once the loop has stopped; accepts NULL. */
void xmppd_free(struct xmppd *x);
/* Starts connecting. */
void xmppd_start(struct xmppd *x);
/* Begins a clean shutdown: unavailable presence, stream close, then
 * stop the loop (within a few seconds at most). */
void xmppd_quit(struct xmppd *x);
/* Registers what to call once the core has fully stopped (so main can
 * close the control socket and the loop can end). */
void xmppd_on_stopped(struct xmppd *x, void (*cb)(void *ud), void *ud);

/* Drops the current connection, if any, and connects at once (resuming
 * the stream when the server still holds it); also after auth-failed or
 * tls-failed, which otherwise stop retrying. */
void xmppd_reconnect(struct xmppd *x);

/* The configuration was reloaded in place (same account): a daemon that
 * stopped trying (auth-failed, tls-failed, a final stream error)
 * connects again at once. */
void xmppd_reloaded(struct xmppd *x);

enum xmppd_state xmppd_state(const struct xmppd *x);
/* The bound full JID when online, else the configured bare JID. */
const char *xmppd_jid(const struct xmppd *x);
/* Is jid our own account's bare JID, compared prepared (a full JID or
 * NULL is not)? The trust test for pushes, carbons and archive results. */
bool xmppd_is_account(const struct xmppd *x, const char *jid);
/* {"state":…, "jid":…, "reason"?:…, "tls"?:…, "mechanism"?:…,
 *  "features":[…]} — a new reference. */
json_t *xmppd_status(const struct xmppd *x);

/* An outgoing message, as the send command gives it. */
struct message_args {
	const char *to;		/* required */
	const char *body;	/* may be NULL (e.g. subject only) */
	const char *type;	/* chat (default), normal, headline, groupchat */
	const char *subject;
	const char *thread;
	const char *msg_id;	/* NULL: generated */
	bool receipt;		/* ask for a XEP-0184 receipt */
	const char *chatstate;	/* XEP-0085: active, composing, ...; alone
				 * (no body, no subject) it is sent at once,
				 * unstored, instead of through the outbox */
	const char *lang;	/* xml:lang of the message */
	bool is_private;	/* XEP-0280 private: no carbon copies */
};

/* Told once a message the store holds is committed (error NULL) or was
 * refused after all (error says why). */
typedef void (*message_done_cb)(void *ud, const char *error);

/*
 * Accepts a message into the outbox (sent at once when online, queued
 * otherwise); *msg_id receives its id (caller frees). Returns 0 when it
 * is accepted already (no store, or a chat state sent at once), 1 when
 * it waits for the store's commit (done is called, this loop turn), -1
 * with e when refused. "sent" events follow its lifecycle.
 */
int message_send(struct xmppd *x, const struct message_args *m,
	char **msg_id, message_done_cb done, void *ud, struct xerr *e);

/* A query of the message log (daemon/store.c): messages with seq in
 * (after, upto] (upto 0: no bound), from sender or with peer (bare
 * JIDs, or NULL), inbound only (the ones published as events), oldest
 * first or newest first, at most max (0: no limit). */
struct xmppd_log_query {
	uint64_t after;
	uint64_t upto;
	const char *sender;
	const char *peer;
	bool inbound_only;
	bool newest;
	unsigned max;
};
/* One message read back: its seq, whether we sent it, its event line
 * (JSON, borrowed for the call). Returns false to stop. */
typedef bool (*xmppd_log_cb)(void *ud, uint64_t seq, bool outbound,
	const char *line, size_t len);
/* Runs q; -1 with e when there is no usable message log. */
int xmppd_log_read(struct xmppd *x, const struct xmppd_log_query *q,
	xmppd_log_cb cb, void *ud, struct xerr *e);
/* The highest seq retention has pruned from the log (0: none). */
uint64_t xmppd_log_pruned(struct xmppd *x);

/* Own presence. show NULL means available; priority is used only when
 * has_priority. With to set, a directed presence to that JID only, and
 * type may be "unavailable" (NULL otherwise). */
struct presence_args {
	const char *to;
	const char *type;
	const char *show;
	const char *status;
	bool has_priority;
	int priority;
};

int presence_send(struct xmppd *x, const struct presence_args *p,
	struct xerr *e);

/* Sends one well-formed stanza (message, presence or iq) given as XML. */
int xmppd_send_raw(struct xmppd *x, const char *xml, struct xerr *e);

/* The answer to an iq request: reply is the result or error stanza
 * (borrowed for the call), or NULL with condition set (e.g.
 * "remote-server-timeout", "not-connected"). */
typedef void (*iq_reply_cb)(void *ud, const struct xml *reply,
	const char *condition, const char *text);

/* Sends <iq type=type to=to> with payload (XML text, may be NULL) and
 * calls cb exactly once with the reply matched on (id, from), or on
 * timeout (timeout_ms 0: the configured default), or when the connection
 * is lost. Returns -1 without calling cb if it could not be sent. */
int iq_request(struct xmppd *x, const char *to, const char *type,
	const char *payload, unsigned timeout_ms, iq_reply_cb cb, void *ud,
	struct xerr *e);

#endif
