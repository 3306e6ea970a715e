/*
 * The server's message archive (XEP-0313 with XEP-0059 paging): the
 * catch-up after every fresh session (what arrived since the last archive
 * id seen, published as "message" events with "archive" set, before the
 * initial presence goes out) and the history queries of the control
 * socket. Only the account's own archive is asked, and only results that
 * our own account sends (no 'from' or our bare JID) for a query we made
 * are believed.
 */
#ifndef XMPPD_DAEMON_MAM_H
#define XMPPD_DAEMON_MAM_H

#include <jansson.h>
#include <stdbool.h>

#include "daemon/disco.h"
#include "daemon/xmppd.h"
#include "proto/xml.h"

extern const struct subsystem mam_subsystem;

#define MAM_HISTORY_MAX 500	/* messages per history request */

/* A history request; every field but max may be NULL. */
struct mam_history_args {
	const char *with;	/* a JID: only the conversation with it */
	const char *start;	/* RFC 3339 date-time, inclusive */
	const char *end;
	const char *before;	/* an archive id; "" for the last page */
	const char *after;	/* an archive id */
	unsigned max;		/* 1..MAM_HISTORY_MAX */
};

/*
 * Queries the own archive; cb gets {"messages":[…], "complete":bool,
 * "first"?, "last"?} (archive ids of the page, for paging on), or the
 * error. Nothing is published.
 */
int mam_history(struct xmppd *x, const struct mam_history_args *a, disco_cb cb,
	void *ud, struct xerr *e);

/* A message arrived (live or as a carbon) with this stanza-id of our own
 * archive: the next catch-up starts after it. */
void mam_saw_id(struct xmppd *x, const char *id);

/* A <message/> whose first child is a MAM <result/>. */
void mam_handle_result(struct xmppd *x, const struct xml *stanza);

/* message.c: an archived message (the <message/> inside forwarded, which
 * holds the <delay/>), published once as a "message" event with
 * "archive" set and stanza_id archive_id. */
void message_handle_archived(struct xmppd *x, const struct xml *inner,
	const struct xml *forwarded, const char *archive_id);
/* message.c: the fields of a "message" event for an archived message
 * (a new object), for history replies. */
json_t *message_archived_json(struct xmppd *x, const struct xml *inner,
	const struct xml *forwarded, const char *archive_id);

#endif
