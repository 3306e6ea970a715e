/*
 * Group chat (XEP-0045), self-ping (XEP-0410) and invitations (XEP-0249).
 *
 * struct muc holds a list of rooms, each with its list of occupants (both
 * bounded). A room is JOINING from the join presence until the room's
 * self-presence (status 110), JOINED afterwards and LEAVING between the
 * unavailable presence and the room's answer. A join or leave command
 * waits in the room (cb, ud) until then; deadline bounds that wait.
 *
 * One timer serves every room: it is set to the nearest of the waits'
 * deadlines and the rooms' next self-ping, and recomputed after every
 * change. Replies to our iq requests (self-pings, the instant-room
 * configuration) carry the room's JID, not a pointer, and look the room
 * up again, since it may be gone by then.
 *
 * Only presence and messages whose sender's bare JID is a room we are in
 * (or joining) are treated as the room's; anything else is left to
 * presence.c and message.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"
#include "daemon/core.h"
#include "daemon/events.h"
#include "daemon/log.h"
#include "daemon/muc.h"
#include "daemon/subsystems.h"
#include "proto/alloc.h"
#include "proto/error.h"
#include "proto/jid.h"
#include "proto/ns.h"

#define MUC_MAX_ROOMS 256
#define MUC_MAX_OCCUPANTS 10000		/* per room */

enum muc_state {
	MUC_JOINING,
	MUC_JOINED,
	MUC_LEAVING,
};

struct occupant {
	struct occupant *next;
	char *nick;
	char *jid;		/* the real JID, when the room tells */
	char *role;
	char *affiliation;
	char *show;
	char *status;
};

struct room {
	struct room *next;
	char *jid;		/* bare, prepared */
	char *nick;		/* ours, as the room knows it (prepared) */
	char *password;
	enum muc_state state;
	char *role;
	char *affiliation;
	char *subject;
	bool created;		/* status 201 at our join */
	bool configuring;	/* the instant-room form is on its way */
	bool pinging;
	struct occupant *occupants;
	size_t noccupants;
	muc_done_cb cb;		/* a join or leave waiting, or NULL */
	void *ud;
	uint64_t deadline;	/* of cb, loop milliseconds */
	uint64_t next_ping;
};

struct muc {
	struct xmppd *x;
	struct room *rooms;
	size_t nrooms;
	uv_timer_t timer;
};

/* What an iq reply about a room needs to find it again. */
struct room_ref {
	struct xmppd *x;
	char *room;
	char *nick;
};

static const char *const state_names[] = {
	[MUC_JOINING] = "joining",
	[MUC_JOINED] = "joined",
	[MUC_LEAVING] = "leaving",
};

static void reschedule(struct muc *m);

/* ---- rooms and occupants ---- */

static void occupant_free(struct occupant *o)
{
	free(o->nick);
	free(o->jid);
	free(o->role);
	free(o->affiliation);
	free(o->show);
	free(o->status);
	free(o);
}

static void occupants_clear(struct room *r)
{
	while (r->occupants != NULL) {
		struct occupant *o = r->occupants;
		r->occupants = o->next;
		occupant_free(o);
	}
	r->noccupants = 0;
}

static struct occupant *occupant_find(const struct room *r, const char *nick)
{
	for (struct occupant *o = r->occupants; o != NULL; o = o->next) {
		if (strcmp(o->nick, nick) == 0) {
			return o;
		}
	}
	return NULL;
}

static void occupant_remove(struct room *r, struct occupant *o)
{
	struct occupant **pp = &r->occupants;
	while (*pp != o) {
		pp = &(*pp)->next;
	}
	*pp = o->next;
	r->noccupants--;
	occupant_free(o);
}

static struct room *room_find(const struct muc *m, const char *jid)
{
	for (struct room *r = m->rooms; r != NULL; r = r->next) {
		if (strcmp(r->jid, jid) == 0) {
			return r;
		}
	}
	return NULL;
}

static void room_free(struct room *r)
{
	occupants_clear(r);
	free(r->jid);
	free(r->nick);
	freezero_str(r->password);
	free(r->role);
	free(r->affiliation);
	free(r->subject);
	free(r);
}

/* Unlinks and frees r; its waiter must have been answered. */
static void room_remove(struct muc *m, struct room *r)
{
	struct room **pp = &m->rooms;
	while (*pp != r) {
		pp = &(*pp)->next;
	}
	*pp = r->next;
	m->nrooms--;
	room_free(r);
}

static void set_str(char **dst, const char *value)
{
	free(*dst);
	*dst = value != NULL ? xstrdup(value) : NULL;
}

static void enter(struct room *r, enum muc_state st)
{
	if (r->state != st) {
		log_debug("room %s: %s -> %s", r->jid, state_names[r->state],
			state_names[st]);
	}
	r->state = st;
}

/* ---- answers to waiting commands ---- */

static json_t *room_summary(const struct room *r)
{
	json_t *o = json_object();
	json_object_set_new(o, "room", json_string(r->jid));
	json_object_set_new(o, "nick", json_string(r->nick));
	if (r->role != NULL) {
		json_object_set_new(o, "role", json_string(r->role));
	}
	if (r->affiliation != NULL) {
		json_object_set_new(o, "affiliation", json_string(r->affiliation));
	}
	if (r->subject != NULL) {
		json_object_set_new(o, "subject", json_string(r->subject));
	}
	if (r->created) {
		json_object_set_new(o, "created", json_true());
	}
	return o;
}

/* Answers r's waiter, if any, with result (stolen) or e. */
static void answer(struct room *r, json_t *result, const struct xerr *e)
{
	muc_done_cb cb = r->cb;
	void *ud = r->ud;
	r->cb = NULL;
	r->ud = NULL;
	if (cb != NULL) {
		cb(ud, result, e);
	} else {
		json_decref(result);
	}
}

static void answer_error(struct room *r, const char *condition,
	const char *fmt, const char *arg)
{
	struct xerr e = { .condition = condition };
	snprintf(e.text, sizeof(e.text), fmt, arg);
	answer(r, NULL, &e);
}

/* ---- events ---- */

static void publish(json_t *ev)
{
	events_publish("muc", ev);
}

static void set_opt(json_t *ev, const char *key, const char *value)
{
	if (value != NULL) {
		json_object_set_new(ev, key, json_string(value));
	}
}

static json_t *room_event(const struct room *r, const char *action)
{
	json_t *ev = json_object();
	json_object_set_new(ev, "room", json_string(r->jid));
	if (action != NULL) {
		json_object_set_new(ev, "action", json_string(action));
	}
	return ev;
}

/* ---- sending ---- */

static char *occupant_jid(const struct room *r)
{
	return xasprintf("%s/%s", r->jid, r->nick);
}

/* The join carries our current presence, caps included (XEP-0045 7.2.1
 * allows any available presence), as a later change does. */
static void send_join(struct xmppd *x, struct room *r, int history)
{
	char *to = occupant_jid(r);
	struct xml *p = presence_own(x, to);
	free(to);
	struct xml *mx = xml_add(p, "x", NS_MUC);
	char num[16];
	snprintf(num, sizeof(num), "%d", history);
	struct xml *h = xml_add(mx, "history", NULL);
	xml_set_attr(h, "maxstanzas", num);
	if (r->password != NULL) {
		xml_add_text_child(mx, "password", NULL, r->password);
	}
	xmppd_send(x, p);
	xml_free(p);
}

static void send_leave(struct xmppd *x, struct room *r)
{
	struct xml *p = xml_new("presence", NS_CLIENT);
	char *to = occupant_jid(r);
	xml_set_attr(p, "to", to);
	xml_set_attr(p, "type", "unavailable");
	free(to);
	xmppd_send(x, p);
	xml_free(p);
}

static uint64_t ping_interval_ms(const struct xmppd *x)
{
	return (uint64_t)x->cfg->muc_self_ping * 1000;
}

static uint64_t wait_ms(const struct xmppd *x)
{
	return (uint64_t)x->cfg->iq_timeout * 1000;
}

/* Sends the join presence again (after a fresh session or a drop): the
 * occupants are announced anew. */
static void rejoin(struct muc *m, struct room *r, const char *why)
{
	log_info("room %s: rejoining (%s)", r->jid, why);
	occupants_clear(r);
	enter(r, MUC_JOINING);
	r->pinging = false;
	if (r->cb != NULL) {
		r->deadline = uv_now(m->x->loop) + wait_ms(m->x);
	}
	json_t *ev = room_event(r, "rejoin");
	json_object_set_new(ev, "nick", json_string(r->nick));
	json_object_set_new(ev, "reason", json_string(why));
	publish(ev);
	send_join(m->x, r, 0);
	reschedule(m);
}

/* ---- join, leave, list ---- */

/* Prepares room and nick; fills *room_out and *nick_out (caller frees). */
static int prep_names(const char *room, const char *nick, char **room_out,
	char **nick_out, struct xerr *e)
{
	struct jid j;
	const char *why = "invalid";
	if (!jid_parse(&j, room, &why)) {
		return xerr_set(e, "invalid-jid", "room: %s", why);
	}
	bool bare = j.resource == NULL && j.local != NULL;
	jid_finish(&j);
	if (!bare) {
		return xerr_set(e, "bad-request",
			"room must be a bare JID such as room@conference.example.org");
	}
	char *full = xasprintf("%s/%s", room, nick);
	bool ok = nick[0] != '\0' && jid_parse(&j, full, &why);
	free(full);
	if (!ok) {
		return xerr_set(e, "bad-request", "nick: %s",
			nick[0] == '\0' ? "empty" : why);
	}
	*room_out = jid_bare_string(&j);
	*nick_out = xstrdup(j.resource);
	jid_finish(&j);
	return 0;
}

static int join_existing(struct muc *m, struct room *r, const char *nick,
	muc_done_cb cb, void *ud, struct xerr *e)
{
	if (r->cb != NULL || r->state == MUC_LEAVING || r->configuring) {
		return xerr_set(e, "bad-request",
			"a join or leave of %s is already under way", r->jid);
	}
	if (strcmp(r->nick, nick) != 0) {
		return xerr_set(e, "bad-request",
			"already in %s as '%s'; leave it first", r->jid, r->nick);
	}
	r->cb = cb;
	r->ud = ud;
	if (r->state == MUC_JOINED) {
		answer(r, room_summary(r), NULL);
	} else {
		r->deadline = uv_now(m->x->loop) + wait_ms(m->x);
		reschedule(m);
	}
	return 0;
}

int muc_join(struct xmppd *x, const struct muc_join_args *a, muc_done_cb cb,
	void *ud, struct xerr *e)
{
	struct muc *m = x->muc;
	char *room = NULL, *nick = NULL;
	if (prep_names(a->room, a->nick, &room, &nick, e) < 0) {
		return -1;
	}
	int rc = 0;
	struct room *r = room_find(m, room);
	if (x->state != XMPPD_ONLINE) {
		rc = xerr_set(e, "not-connected", "the account is %s",
			xmppd_state_name(x->state));
	} else if (r != NULL) {
		rc = join_existing(m, r, nick, cb, ud, e);
	} else if (m->nrooms >= MUC_MAX_ROOMS) {
		rc = xerr_set(e, "resource-constraint", "already in %d rooms",
			MUC_MAX_ROOMS);
	}
	if (rc < 0 || r != NULL) {
		free(room);
		free(nick);
		return rc;
	}
	r = xcalloc(1, sizeof(*r));
	r->jid = room;
	r->nick = nick;
	r->password = a->password != NULL ? xstrdup(a->password) : NULL;
	r->state = MUC_JOINING;
	r->cb = cb;
	r->ud = ud;
	r->deadline = uv_now(x->loop) + wait_ms(x);
	r->next = m->rooms;
	m->rooms = r;
	m->nrooms++;
	log_info("room %s: joining as '%s'", r->jid, r->nick);
	send_join(x, r, a->history);
	reschedule(m);
	return 0;
}

int muc_leave(struct xmppd *x, const char *room, muc_done_cb cb, void *ud,
	struct xerr *e)
{
	struct muc *m = x->muc;
	char *bare = jid_prep(room, true, NULL);
	struct room *r = bare != NULL ? room_find(m, bare) : NULL;
	free(bare);
	if (r == NULL) {
		return xerr_set(e, "item-not-found", "not in room %s", room);
	}
	if (r->state == MUC_LEAVING) {
		return xerr_set(e, "bad-request", "already leaving %s", r->jid);
	}
	answer_error(r, "cancelled", "the join of %s was cancelled by a leave",
		r->jid);
	if (x->state != XMPPD_ONLINE) {
		json_t *res = json_object();
		json_object_set_new(res, "room", json_string(r->jid));
		room_remove(m, r);
		cb(ud, res, NULL);
		reschedule(m);
		return 0;
	}
	enter(r, MUC_LEAVING);
	r->cb = cb;
	r->ud = ud;
	r->deadline = uv_now(x->loop) + wait_ms(x);
	send_leave(x, r);
	reschedule(m);
	return 0;
}

static json_t *occupant_json(const struct occupant *o)
{
	json_t *j = json_object();
	json_object_set_new(j, "nick", json_string(o->nick));
	set_opt(j, "role", o->role);
	set_opt(j, "affiliation", o->affiliation);
	set_opt(j, "jid", o->jid);
	set_opt(j, "show", o->show);
	set_opt(j, "status", o->status);
	return j;
}

static json_t *room_json(const struct room *r)
{
	json_t *j = room_summary(r);
	json_object_set_new(j, "state", json_string(state_names[r->state]));
	json_t *occ = json_array();
	for (const struct occupant *o = r->occupants; o != NULL; o = o->next) {
		json_array_append_new(occ, occupant_json(o));
	}
	json_object_set_new(j, "occupants", occ);
	return j;
}

json_t *muc_rooms(struct xmppd *x, const char *room, struct xerr *e)
{
	struct muc *m = x->muc;
	char *bare = NULL;
	if (room != NULL) {
		bare = jid_prep(room, true, NULL);
		if (bare == NULL || room_find(m, bare) == NULL) {
			free(bare);
			xerr_set(e, "item-not-found", "not in room %s", room);
			return NULL;
		}
	}
	json_t *list = json_array();
	for (const struct room *r = m->rooms; r != NULL; r = r->next) {
		if (bare == NULL || strcmp(bare, r->jid) == 0) {
			json_array_append_new(list, room_json(r));
		}
	}
	free(bare);
	return list;
}

/* ---- presence from a room ---- */

static bool has_status(const struct xml *xu, const char *code)
{
	if (xu == NULL) {
		return false;
	}
	for (const struct xml *c = xml_first_element(xu); c != NULL;
			c = xml_next_element(c)) {
		const char *v = xml_attr(c, "code");
		if (strcmp(c->name, "status") == 0 && v != NULL &&
				strcmp(v, code) == 0) {
			return true;
		}
	}
	return false;
}

struct join_error {
	const char *condition;
	const char *text;	/* one %s: the room (conflict: the nick) */
};

static const struct join_error join_errors[] = {
	{ "conflict", "the nick '%s' is already in use in this room" },
	{ "not-authorized", "%s needs a password, or the one given is wrong" },
	{ "registration-required", "%s is members-only and we are not a member" },
	{ "forbidden", "we are banned from %s" },
	{ "item-not-found", "%s does not exist or is locked" },
	{ "not-allowed", "%s may not be created by us" },
	{ "service-unavailable", "%s is full or refuses occupants" },
	{ "not-acceptable", "%s wants a different nick (reserved nick?)" },
	{ "jid-malformed", "the nick was refused by %s" },
};

static void fail_join(struct muc *m, struct room *r, const char *cond,
	const char *text)
{
	struct xerr e = { .condition = cond };
	const char *fmt = "%s refused the join";
	for (size_t i = 0; i < sizeof(join_errors) / sizeof(join_errors[0]); i++) {
		if (strcmp(cond, join_errors[i].condition) == 0) {
			e.condition = join_errors[i].condition;
			fmt = join_errors[i].text;
		}
	}
	const char *arg = strcmp(e.condition, "conflict") == 0 ? r->nick : r->jid;
	int n = snprintf(e.text, sizeof(e.text), fmt, arg);
	if (text != NULL && n >= 0 && (size_t)n < sizeof(e.text)) {
		snprintf(e.text + n, sizeof(e.text) - (size_t)n, " (%s)", text);
	}
	log_warnx("room %s: join failed: %s: %s", r->jid, cond, e.text);
	if (r->cb == NULL) {
		json_t *ev = room_event(r, "error");
		json_object_set_new(ev, "condition", json_string(cond));
		json_object_set_new(ev, "text", json_string(e.text));
		publish(ev);
	}
	answer(r, NULL, &e);
	room_remove(m, r);
	reschedule(m);
}

static void presence_error(struct muc *m, struct room *r, const struct xml *st)
{
	char *text;
	const char *cond = stanza_error(st, &text);
	if (r->state == MUC_JOINING) {
		fail_join(m, r, cond, text);
	} else {
		log_warnx("room %s: error presence: %s%s%s", r->jid, cond,
			text ? ": " : "", text ? text : "");
	}
	free(text);
}

/* Updates o from an available presence. */
static void occupant_update(struct occupant *o, const struct xml *st,
	const struct xml *item)
{
	if (item != NULL) {
		set_str(&o->role, xml_attr(item, "role"));
		set_str(&o->affiliation, xml_attr(item, "affiliation"));
		if (xml_attr(item, "jid") != NULL) {
			set_str(&o->jid, xml_attr(item, "jid"));
		}
	}
	free(o->show);
	free(o->status);
	o->show = xml_child_text(st, "show", NS_CLIENT);
	o->status = xml_child_text(st, "status", NS_CLIENT);
}

static json_t *occupant_event(const struct room *r, const struct occupant *o,
	const char *action, bool self)
{
	json_t *ev = room_event(r, action);
	json_t *oj = occupant_json(o);
	json_object_update(ev, oj);
	json_decref(oj);
	if (self) {
		json_object_set_new(ev, "self", json_true());
	}
	return ev;
}

static void config_done(void *ud, const struct xml *reply,
	const char *condition, const char *text)
{
	struct room_ref *ref = ud;
	struct room *r = room_find(ref->x->muc, ref->room);
	const char *type = reply != NULL ? xml_attr(reply, "type") : "error";
	if (type == NULL || strcmp(type, "result") != 0) {
		log_warnx("room %s: the instant-room configuration failed: %s",
			ref->room, condition ? condition : "an error reply");
	}
	if (r != NULL && r->configuring) {
		r->configuring = false;
		answer(r, room_summary(r), NULL);
	}
	free(ref->room);
	free(ref->nick);
	free(ref);
}

/* A new room (status 201) stays locked until its owner configures it:
 * accept the defaults (XEP-0045 10.1.2), then answer the join. */
static void configure_instant(struct muc *m, struct room *r)
{
	struct room_ref *ref = xcalloc(1, sizeof(*ref));
	ref->x = m->x;
	ref->room = xstrdup(r->jid);
	struct xerr e = { 0 };
	r->configuring = true;
	if (iq_request(m->x, r->jid, "set",
			"<query xmlns='" NS_MUC_OWNER "'><x xmlns='jabber:x:data'"
			" type='submit'/></query>", 0, config_done, ref, &e) < 0) {
		log_warnx("room %s: cannot configure: %s", r->jid, e.text);
		r->configuring = false;
		free(ref->room);
		free(ref);
		answer(r, room_summary(r), NULL);
	}
}

static void self_joined(struct muc *m, struct room *r, const struct xml *xu)
{
	enter(r, MUC_JOINED);
	r->next_ping = uv_now(m->x->loop) + ping_interval_ms(m->x);
	log_info("room %s: joined as '%s' (%s, %s)", r->jid, r->nick,
		r->role ? r->role : "?", r->affiliation ? r->affiliation : "?");
	if (has_status(xu, "201")) {
		r->created = true;
		configure_instant(m, r);
	} else {
		answer(r, room_summary(r), NULL);
	}
	reschedule(m);
}

static void occupant_available(struct muc *m, struct room *r, const char *nick,
	const struct xml *st, const struct xml *xu)
{
	const struct xml *item = xu ? xml_child(xu, "item", NULL) : NULL;
	bool self = has_status(xu, "110") ||
		(r->state != MUC_JOINED && strcmp(nick, r->nick) == 0);
	struct occupant *o = occupant_find(r, nick);
	bool fresh = o == NULL;
	if (fresh) {
		if (r->noccupants >= MUC_MAX_OCCUPANTS) {
			log_warnx("room %s: over %d occupants, ignoring '%s'", r->jid,
				MUC_MAX_OCCUPANTS, nick);
			return;
		}
		o = xcalloc(1, sizeof(*o));
		o->nick = xstrdup(nick);
		o->next = r->occupants;
		r->occupants = o;
		r->noccupants++;
	}
	occupant_update(o, st, item);
	if (self) {
		set_str(&r->nick, nick);
		set_str(&r->role, o->role);
		set_str(&r->affiliation, o->affiliation);
	}
	publish(occupant_event(r, o, fresh ? "join" : "change", self));
	if (self && r->state == MUC_JOINING) {
		self_joined(m, r, xu);
	}
}

static const char *leave_action(const struct xml *xu)
{
	if (has_status(xu, "303")) {
		return "nick";
	}
	if (has_status(xu, "301")) {
		return "banned";
	}
	if (has_status(xu, "307")) {
		return "kicked";
	}
	return "leave";
}

/* We are out of the room: answer a waiting leave (or join) and forget
 * the room. */
static void self_left(struct muc *m, struct room *r, const char *action)
{
	log_info("room %s: left (%s)", r->jid, action);
	if (r->state == MUC_LEAVING) {
		json_t *res = json_object();
		json_object_set_new(res, "room", json_string(r->jid));
		answer(r, res, NULL);
	} else {
		answer_error(r, strcmp(action, "banned") == 0 ? "forbidden" :
			"not-allowed", "%s removed us", r->jid);
	}
	room_remove(m, r);
	reschedule(m);
}

static void occupant_unavailable(struct muc *m, struct room *r,
	const char *nick, const struct xml *xu)
{
	const struct xml *item = xu ? xml_child(xu, "item", NULL) : NULL;
	const char *action = leave_action(xu);
	bool self = has_status(xu, "110") || strcmp(nick, r->nick) == 0;
	struct occupant *o = occupant_find(r, nick);
	json_t *ev = room_event(r, action);
	json_object_set_new(ev, "nick", json_string(nick));
	if (o != NULL) {
		set_opt(ev, "role", "none");
		set_opt(ev, "affiliation", o->affiliation);
		set_opt(ev, "jid", o->jid);
	}
	char *reason = item ? xml_child_text(item, "reason", NULL) : NULL;
	set_opt(ev, "reason", reason);
	free(reason);
	const char *new_nick = item ? xml_attr(item, "nick") : NULL;
	bool renamed = strcmp(action, "nick") == 0 && new_nick != NULL &&
		new_nick[0] != '\0' && strlen(new_nick) < 1024;
	if (renamed) {
		json_object_set_new(ev, "new_nick", json_string(new_nick));
	}
	if (self) {
		json_object_set_new(ev, "self", json_true());
	}
	publish(ev);
	if (renamed) {
		if (o != NULL && occupant_find(r, new_nick) == NULL) {
			set_str(&o->nick, new_nick);
		}
		if (self) {
			set_str(&r->nick, new_nick);
		}
		return;
	}
	if (o != NULL) {
		occupant_remove(r, o);
	}
	if (self) {
		self_left(m, r, action);
	}
}

bool muc_handle_presence(struct xmppd *x, const struct xml *stanza)
{
	struct muc *m = x->muc;
	const char *from = xml_attr(stanza, "from");
	struct jid j;
	if (m == NULL || from == NULL || !jid_parse(&j, from, NULL)) {
		return false;
	}
	char *bare = jid_bare_string(&j);
	struct room *r = room_find(m, bare);
	free(bare);
	if (r == NULL) {
		jid_finish(&j);
		return false;
	}
	const char *type = xml_attr(stanza, "type");
	const struct xml *xu = xml_child(stanza, "x", NS_MUC_USER);
	if (type != NULL && strcmp(type, "error") == 0) {
		presence_error(m, r, stanza);
	} else if (j.resource == NULL) {
		log_debug("room %s: ignoring presence from the room itself", r->jid);
	} else if (type == NULL) {
		occupant_available(m, r, j.resource, stanza, xu);
	} else if (strcmp(type, "unavailable") == 0) {
		occupant_unavailable(m, r, j.resource, xu);
	}
	jid_finish(&j);
	return true;
}

/* ---- messages ---- */

/* A XEP-0249 invitation: anyone may send one, to a room named inside. */
static bool direct_invite(const struct xml *stanza)
{
	const struct xml *c = xml_child(stanza, "x", NS_X_CONFERENCE);
	const char *room = c ? xml_attr(c, "jid") : NULL;
	if (room == NULL) {
		return false;
	}
	char *bare = jid_prep(room, true, NULL);
	if (bare == NULL) {
		log_warnx("ignoring an invitation to an invalid room JID");
		return true;
	}
	json_t *ev = json_object();
	json_object_set_new(ev, "action", json_string("invite"));
	json_object_set_new(ev, "room", json_string(bare));
	set_opt(ev, "from", xml_attr(stanza, "from"));
	set_opt(ev, "reason", xml_attr(c, "reason"));
	set_opt(ev, "password", xml_attr(c, "password"));
	publish(ev);
	free(bare);
	return true;
}

/* A mediated invitation: the room itself (a bare JID) relays it, and
 * may add a XEP-0249 element for clients that know only that one. */
static bool mediated_invite(const struct xml *stanza)
{
	const struct xml *xu = xml_child(stanza, "x", NS_MUC_USER);
	const struct xml *inv = xu ? xml_child(xu, "invite", NULL) : NULL;
	if (inv == NULL) {
		return false;
	}
	const char *from = xml_attr(stanza, "from");
	struct jid j;
	if (from == NULL || !jid_parse(&j, from, NULL)) {
		return false;
	}
	bool from_room = j.local != NULL && j.resource == NULL;
	char *bare = jid_bare_string(&j);
	jid_finish(&j);
	if (!from_room) {
		log_warnx("ignoring a mediated invitation from '%s', not a room", from);
		free(bare);
		return true;
	}
	json_t *ev = json_object();
	json_object_set_new(ev, "action", json_string("invite"));
	json_object_set_new(ev, "room", json_string(bare));
	set_opt(ev, "from", xml_attr(inv, "from"));
	char *reason = xml_child_text(inv, "reason", NULL);
	char *password = xml_child_text(xu, "password", NULL);
	set_opt(ev, "reason", reason);
	set_opt(ev, "password", password);
	free(reason);
	free(password);
	publish(ev);
	free(bare);
	return true;
}

/* The room whose occupant (or which) sent stanza, and the nick. */
static struct room *sender_room(struct muc *m, const struct xml *stanza,
	char **nick)
{
	const char *from = xml_attr(stanza, "from");
	struct jid j;
	*nick = NULL;
	/* No room: nothing to parse (this runs for every message). */
	if (m == NULL || m->rooms == NULL || from == NULL ||
			!jid_parse(&j, from, NULL)) {
		return NULL;
	}
	char *bare = jid_bare_string(&j);
	struct room *r = room_find(m, bare);
	free(bare);
	if (r != NULL && j.resource != NULL) {
		*nick = xstrdup(j.resource);
	}
	jid_finish(&j);
	return r;
}

static bool is_groupchat(const struct xml *stanza)
{
	const char *type = xml_attr(stanza, "type");
	return type != NULL && strcmp(type, "groupchat") == 0;
}

/* A groupchat message with a subject and no body sets the subject. */
static bool subject_change(struct muc *m, const struct xml *stanza)
{
	if (!is_groupchat(stanza) || xml_child(stanza, "body", NS_CLIENT) != NULL) {
		return false;
	}
	const struct xml *subj = xml_child(stanza, "subject", NS_CLIENT);
	char *nick;
	struct room *r = subj != NULL ? sender_room(m, stanza, &nick) : NULL;
	if (r == NULL) {
		return false;
	}
	char *text = xml_text(subj);
	set_str(&r->subject, text);
	json_t *ev = room_event(r, "subject");
	json_object_set_new(ev, "subject", json_string(text));
	set_opt(ev, "nick", nick);
	publish(ev);
	free(text);
	free(nick);
	return true;
}

bool muc_handle_message(struct xmppd *x, const struct xml *stanza)
{
	const char *type = xml_attr(stanza, "type");
	if (type != NULL && strcmp(type, "error") == 0) {
		return false;
	}
	/* Both kinds of invitation come in an <x/>, which most messages
	 * lack: one look for it before two for each namespace. */
	bool invite = xml_child(stanza, "x", NULL) != NULL &&
		(mediated_invite(stanza) || direct_invite(stanza));
	return invite || (type != NULL && strcmp(type, "groupchat") == 0 &&
		subject_change(x->muc, stanza));
}

const char *muc_message_room(struct xmppd *x, const struct xml *stanza,
	char **nick, bool *self)
{
	*self = false;
	struct room *r = sender_room(x->muc, stanza, nick);
	if (r == NULL) {
		return NULL;
	}
	*self = *nick != NULL && is_groupchat(stanza) && strcmp(*nick, r->nick) == 0;
	return r->jid;
}

/* ---- self-ping (XEP-0410) ---- */

/* Errors that say we are no longer an occupant (XEP-0410 4). */
static bool means_dropped(const char *condition)
{
	return strcmp(condition, "not-acceptable") == 0 ||
		strcmp(condition, "item-not-found") == 0 ||
		strcmp(condition, "remote-server-not-found") == 0;
}

static void ping_done(void *ud, const struct xml *reply, const char *condition,
	const char *text)
{
	struct room_ref *ref = ud;
	struct muc *m = ref->x->muc;
	struct room *r = m != NULL ? room_find(m, ref->room) : NULL;
	if (r != NULL && r->state == MUC_JOINED && strcmp(r->nick, ref->nick) == 0) {
		r->pinging = false;
		r->next_ping = uv_now(ref->x->loop) + ping_interval_ms(ref->x);
		char *etext = NULL;
		const char *type = reply != NULL ? xml_attr(reply, "type") : NULL;
		const char *cond = condition;
		if (type != NULL && strcmp(type, "error") == 0) {
			cond = stanza_error(reply, &etext);
		}
		if (cond != NULL && reply != NULL && means_dropped(cond)) {
			rejoin(m, r, cond);
		} else if (cond != NULL) {
			log_debug("room %s: self-ping: %s (still joined)", r->jid, cond);
		}
		free(etext);
		reschedule(m);
	}
	free(ref->room);
	free(ref->nick);
	free(ref);
}

static void self_ping(struct muc *m, struct room *r)
{
	struct room_ref *ref = xcalloc(1, sizeof(*ref));
	ref->x = m->x;
	ref->room = xstrdup(r->jid);
	ref->nick = xstrdup(r->nick);
	char *to = occupant_jid(r);
	struct xerr e = { 0 };
	r->pinging = true;
	if (iq_request(m->x, to, "get", "<ping xmlns='" NS_PING "'/>", 0,
			ping_done, ref, &e) < 0) {
		log_debug("room %s: no self-ping: %s", r->jid, e.text);
		r->pinging = false;
		r->next_ping = uv_now(m->x->loop) + ping_interval_ms(m->x);
		free(ref->room);
		free(ref->nick);
		free(ref);
	}
	free(to);
}

/* ---- the timer ---- */

static bool ping_due(const struct muc *m, const struct room *r)
{
	return r->state == MUC_JOINED && !r->pinging &&
		ping_interval_ms(m->x) > 0 && m->x->state == XMPPD_ONLINE;
}

static void expire(struct muc *m, struct room *r)
{
	if (r->state == MUC_LEAVING) {
		json_t *res = json_object();
		json_object_set_new(res, "room", json_string(r->jid));
		json_object_set_new(res, "confirmed", json_false());
		answer(r, res, NULL);
		room_remove(m, r);
		return;
	}
	answer_error(r, "remote-server-timeout",
		"%s did not answer the join in time", r->jid);
	room_remove(m, r);
}

static void tick(uv_timer_t *t)
{
	struct muc *m = t->data;
	uint64_t now = uv_now(m->x->loop);
	struct room *next;
	for (struct room *r = m->rooms; r != NULL; r = next) {
		next = r->next;
		if (r->cb != NULL && !r->configuring && r->deadline <= now) {
			expire(m, r);
		} else if (ping_due(m, r) && r->next_ping <= now) {
			self_ping(m, r);
		}
	}
	reschedule(m);
}

static void reschedule(struct muc *m)
{
	uint64_t now = uv_now(m->x->loop);
	uint64_t soon = UINT64_MAX;
	for (const struct room *r = m->rooms; r != NULL; r = r->next) {
		if (r->cb != NULL && !r->configuring && r->deadline < soon) {
			soon = r->deadline;
		}
		if (ping_due(m, r) && r->next_ping < soon) {
			soon = r->next_ping;
		}
	}
	if (soon == UINT64_MAX) {
		uv_timer_stop(&m->timer);
		return;
	}
	uv_timer_start(&m->timer, tick, soon > now ? soon - now : 0, 0);
}

/* ---- the subsystem ---- */

static void muc_init(struct xmppd *x)
{
	struct muc *m = xcalloc(1, sizeof(*m));
	m->x = x;
	uv_timer_init(x->loop, &m->timer);
	m->timer.data = m;
	x->muc = m;
}

static void muc_closed(uv_handle_t *h)
{
	free(h->data);
}

static void muc_free(struct xmppd *x)
{
	struct muc *m = x->muc;
	if (m == NULL) {
		return;
	}
	x->muc = NULL;
	while (m->rooms != NULL) {
		struct room *r = m->rooms;
		answer_error(r, "not-connected", "the daemon is stopping (%s)", r->jid);
		room_remove(m, r);
	}
	/* main.c may have closed every handle already (uv_walk); those close
	 * callbacks ran before the core's own (libuv runs them last-closed
	 * first), so the timer is done with by now. */
	if (uv_is_closing((uv_handle_t *)&m->timer)) {
		free(m);
	} else {
		uv_close((uv_handle_t *)&m->timer, muc_closed);
	}
}

/* After a fresh session we are in no room: join again what we were in
 * and finish the leaves that were under way. */
static void muc_online(struct xmppd *x, bool resumed)
{
	reschedule(x->muc);
}

void muc_presence_changed(struct xmppd *x)
{
	for (struct room *r = x->muc->rooms; r != NULL; r = r->next) {
		if (r->state != MUC_JOINED) {
			continue;
		}
		char *to = occupant_jid(r);
		struct xml *p = presence_own(x, to);
		free(to);
		xmppd_send(x, p);
		xml_free(p);
	}
}

/* Rooms are rejoined once our own presence is out, as a person's client
 * does: the rooms then see the same caps and status as contacts. */
static void muc_available(struct xmppd *x)
{
	struct muc *m = x->muc;
	struct room *next;
	for (struct room *r = m->rooms; r != NULL; r = next) {
		next = r->next;
		r->configuring = false;
		if (r->state == MUC_LEAVING) {
			json_t *res = json_object();
			json_object_set_new(res, "room", json_string(r->jid));
			answer(r, res, NULL);
			room_remove(m, r);
		} else {
			rejoin(m, r, "new session");
		}
	}
	reschedule(m);
}

static void muc_offline(struct xmppd *x)
{
	struct muc *m = x->muc;
	for (struct room *r = m->rooms; r != NULL; r = r->next) {
		r->pinging = false;
	}
	reschedule(m);
}

const struct subsystem muc_subsystem = {
	.name = "muc",
	.init = muc_init,
	.free = muc_free,
	.online = muc_online,
	.available = muc_available,
	.offline = muc_offline,
};
