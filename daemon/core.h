/*
 * The inside of the daemon core, shared by the daemon/ modules only. The
 * control socket sees the core through daemon/xmppd.h.
 *
 * One struct xmppd owns everything about the account: the configuration
 * (borrowed from main), the connection (struct session: transport plus
 * stream, replaced on every connect), and the subsystems' state. Modules
 * are file pairs named after what they hold; each takes the core pointer.
 */
#ifndef XMPPD_DAEMON_CORE_H
#define XMPPD_DAEMON_CORE_H

#include <stdbool.h>
#include <uv.h>

#include "daemon/dedup.h"
#include "daemon/outbox.h"
#include "daemon/xmppd.h"
#include "proto/sm.h"
#include "proto/xml.h"

struct session;
struct iq_pending;
struct disco;
struct blocking;
struct csi;
struct roster;
struct presence_table;
struct muc;
struct carbons;
struct mam;
struct upload;
struct handlers;
struct store;

struct xmppd {
	uv_loop_t *loop;
	struct config *cfg;
	enum xmppd_state state;
	char *reason;		/* why we are offline / failed, or NULL */
	char *bare_jid;		/* configured account, prepared */
	char *full_jid;		/* bound JID while online, else NULL */
	char *domain;

	struct session *session;	/* NULL when not connected */
	uv_timer_t retry_timer;		/* next connection attempt */
	uv_timer_t stable_timer;	/* resets the backoff once up a while */
	unsigned retry_delay_ms;	/* current backoff */
	uint64_t retry_at_ms;		/* loop time of the next attempt */
	char *redirect_host;		/* see-other-host, for the next attempt */
	int redirect_port;

	struct store *store;		/* daemon/store.c: never NULL */
	struct sm sm;			/* XEP-0198 state across streams */
	struct outbox outbox;		/* accepted messages not yet acked */
	struct dedup seen;		/* (sender, origin-id) published */

	/* Subsystems (daemon/subsystems.c), one pointer each, owned by
	 * their init/free hooks. */
	struct disco *disco;		/* daemon/disco.c */
	struct blocking *blocking;	/* daemon/blocking.c */
	struct csi *csi;		/* daemon/csi.c */
	struct roster *roster;		/* daemon/roster.c */
	struct presence_table *presences;	/* daemon/presence.c */
	struct muc *muc;		/* daemon/muc.c */
	struct carbons *carbons;	/* daemon/carbons.c */
	struct mam *mam;		/* daemon/mam.c */
	struct upload *upload;		/* daemon/upload.c */
	struct handlers *handlers;	/* daemon/handlers.c */

	struct iq_pending *iqs;		/* outstanding iq requests */
	unsigned iq_serial;

	bool resume_saved;		/* the store holds a session to resume */
	bool restored_session;		/* x->sm came from before a restart */
	int presence_holds;		/* see xmppd_hold_presence */
	bool presence_pending;		/* initial presence not sent yet */
	bool quitting;
	int closing;			/* handles still closing in xmppd_free */
	void (*stopped_cb)(void *ud);
	void *stopped_ud;
};

/* Enters a state, logs "old -> new" and publishes a state event. */
void xmppd_enter_state(struct xmppd *x, enum xmppd_state st, const char *reason);
/* Sends a stanza on the current session; false if offline. */
bool xmppd_send(struct xmppd *x, const struct xml *stanza);
/* A fresh random id for a stanza (caller frees). */
char *xmppd_new_id(void);
/* The connection went away: clean up and, unless retry_ms is negative,
 * try again after the backoff (or after at least retry_ms). */
void xmppd_session_ended(struct xmppd *x, int retry_ms);
/*
 * Holds back the initial presence of a fresh session (what arrives once
 * the server sees us available must come after, e.g., the archive
 * catch-up); each hold is released once, and the presence goes out when
 * the last is. Only from an online hook with resumed false.
 */
void xmppd_hold_presence(struct xmppd *x);
void xmppd_release_presence(struct xmppd *x);
/* The connection is online with the bound JID, resumed or fresh. */
void xmppd_session_online(struct xmppd *x, const char *jid, bool resumed);
/* Connect to host:port instead of the configured server next time. */
void xmppd_redirect(struct xmppd *x, const char *host, int port);

/* session.c: one connection attempt's transport and stream. */
struct session *session_new(struct xmppd *x, char **cause);
void session_free(struct session *s);
bool session_send(struct session *s, const struct xml *stanza);
/* Sends a stanza the outbox tracks; tag comes back through acks. */
bool session_send_tagged(struct session *s, const struct xml *stanza,
	uint64_t tag);
/* Is XEP-0198 enabled on the current stream? */
bool session_sm_enabled(const struct session *s);
/* Sends </stream:stream> and calls done when the server answers or after
 * a bounded wait. */
void session_close(struct session *s, void (*done)(struct xmppd *x));
const char *session_mechanism(const struct session *s);
const char *session_tls_desc(const struct session *s);
/* Sends an element that is not a stanza (XEP-0352 <active/>, ...): not
 * counted or queued by stream management; false if offline. */
bool session_send_nonza(struct session *s, const struct xml *el);
/* The current stream's <stream:features/>, or NULL. */
const struct xml *session_features(const struct session *s);

/* dispatch.c: routes a stanza received while online. */
void dispatch_stanza(struct xmppd *x, struct xml *stanza);
/* Replies to an iq get/set with an error of this condition. */
void dispatch_iq_error(struct xmppd *x, const struct xml *iq,
	const char *type, const char *condition);
/* Builds the result iq for a request (caller adds a payload, sends, frees). */
struct xml *dispatch_iq_result(const struct xml *iq);

/* iq.c: outstanding requests, matched on (id, from). */
bool iq_handle_reply(struct xmppd *x, const struct xml *iq);
/* Fails every outstanding request with condition (connection lost). */
void iq_fail_all(struct xmppd *x, const char *condition, const char *text);

/* Subsystem handlers for received stanzas. */
void message_handle(struct xmppd *x, const struct xml *stanza);
/* The line of the "message" event stanza m would give (with seq; carbon
 * "received", "sent" or NULL, forwarded its <forwarded/>, archive_id
 * for an archived one), written straight (direct) or through jansson and
 * jsonenc: both must agree byte for byte (tests). Caller frees. */
char *message_event_line(struct xmppd *x, const struct xml *m,
	const char *carbon, const struct xml *forwarded, const char *archive_id,
	uint64_t seq, bool direct);
void presence_handle(struct xmppd *x, const struct xml *stanza);
void presence_send_initial(struct xmppd *x);
/* Our current available presence (show, status, priority, caps), to
 * 'to' or broadcast (NULL); the caller sends and frees it. */
struct xml *presence_own(struct xmppd *x, const char *to);
/* Broadcasts our presence again, to contacts and joined rooms, when
 * what it carries changed (the caps); nothing before the initial one. */
void presence_send_again(struct xmppd *x);
void presence_send_unavailable(struct xmppd *x);
void disco_handle_info(struct xmppd *x, const struct xml *iq);
void disco_handle_ping(struct xmppd *x, const struct xml *iq);
void disco_handle_version(struct xmppd *x, const struct xml *iq);
void disco_handle_items(struct xmppd *x, const struct xml *iq);
void disco_handle_time(struct xmppd *x, const struct xml *iq);
void blocking_handle_push(struct xmppd *x, const struct xml *iq);
/* Feature namespaces we implement, NULL-terminated, for disco#info. */
extern const char *const disco_features[];

#endif
