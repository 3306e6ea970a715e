/*
 * Group chat (XEP-0045): the rooms the account is in, their occupants,
 * joins and leaves with a deferred answer, self-pings (XEP-0410) that
 * notice a silent drop, rejoins after a fresh session, and invitations
 * (XEP-0249 and mediated XEP-0045 ones) as muc events.
 *
 * The first part is what the control socket may call; the rest is for
 * daemon/ (the dispatcher's message and presence handlers and the
 * subsystem table).
 */
#ifndef XMPPD_DAEMON_MUC_H
#define XMPPD_DAEMON_MUC_H

#include <jansson.h>
#include <stdbool.h>

#include "daemon/xmppd.h"
#include "proto/xml.h"

struct subsystem;

/*
 * The answer to a join or a leave, called exactly once: result (a new
 * reference the callee takes) on success, else NULL and e describes the
 * failure (e is valid for the call only).
 */
typedef void (*muc_done_cb)(void *ud, json_t *result, const struct xerr *e);

struct muc_join_args {
	const char *room;	/* bare room JID, required */
	const char *nick;	/* required */
	const char *password;	/* may be NULL */
	int history;		/* stanzas of history wanted, 0: none */
};

/*
 * Sends the join presence. cb gets {"room","nick","role","affiliation",
 * "subject"?,"created"?} once the room's self-presence arrives, or the
 * room's error (conflict, not-authorized, registration-required,
 * forbidden, ...), or remote-server-timeout after [limits] iq_timeout.
 * Returns -1 without calling cb when the request is refused at once.
 */
int muc_join(struct xmppd *x, const struct muc_join_args *a, muc_done_cb cb,
	void *ud, struct xerr *e);
/* Leaves a room: cb gets {"room"} once the room confirmed (or after
 * iq_timeout, with "confirmed":false). -1 if we are not in the room. */
int muc_leave(struct xmppd *x, const char *room, muc_done_cb cb, void *ud,
	struct xerr *e);
/* The rooms (only room when not NULL) with their occupants, as a new
 * JSON array; NULL with e set if room is given and unknown. */
json_t *muc_rooms(struct xmppd *x, const char *room, struct xerr *e);

/* Takes messages group chat consumes itself (room subjects,
 * invitations): true if the message needs nothing more. */
bool muc_handle_message(struct xmppd *x, const struct xml *stanza);
/* The room (bare JID, valid until the next change of rooms) a message
 * came from, or NULL; *nick its sender's nick (caller frees, may be
 * NULL), *self whether that is us in a groupchat. The message event's
 * "room", "nick" and "self". */
const char *muc_message_room(struct xmppd *x, const struct xml *stanza,
	char **nick, bool *self);
/* Our presence changed (show, status, caps): tells the rooms we are in
 * (XEP-0045 7.7). */
void muc_presence_changed(struct xmppd *x);
/* Takes presence from the rooms we are in: true if it was one. */
bool muc_handle_presence(struct xmppd *x, const struct xml *stanza);

extern const struct subsystem muc_subsystem;

#endif
