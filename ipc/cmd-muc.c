/*
 * Group chat commands: muc-join and muc-leave answer once the room has
 * (the reply slot is held meanwhile, as for iq), muc-rooms lists the
 * rooms and their occupants.
 */
#include <stdlib.h>

#include "daemon/muc.h"
#include "daemon/xmppd.h"
#include "ipc/client.h"
#include "ipc/cmd.h"
#include "ipc/json.h"
#include "proto/alloc.h"

struct muc_wait {
	struct ipc_client *client;
	struct ipc_reply *slot;
	json_t *id;
};

static void wait_free(struct muc_wait *w)
{
	ipc_client_unref(w->client);
	json_decref(w->id);
	free(w);
}

static void muc_done(void *ud, json_t *result, const struct xerr *e)
{
	struct muc_wait *w = ud;
	if (ipc_client_alive(w->client)) {
		json_t *r;
		if (result != NULL) {
			r = ipc_json_ok(w->id);
			json_object_update_missing(r, result);
		} else {
			r = cmd_xerr_reply(w->id, e);
		}
		ipc_client_fill(w->client, w->slot, r);
	}
	json_decref(result);
	wait_free(w);
}

static struct muc_wait *wait_new(struct ipc_client *c, json_t *id)
{
	struct muc_wait *w = xcalloc(1, sizeof(*w));
	w->client = c;
	w->slot = ipc_client_reserve(c);
	w->id = id != NULL ? json_incref(id) : NULL;
	ipc_client_ref(c);
	return w;
}

/* The request was refused before anything was sent. */
static void wait_refused(struct muc_wait *w, const struct xerr *e)
{
	ipc_client_fill(w->client, w->slot, cmd_xerr_reply(w->id, e));
	wait_free(w);
}

static json_t *too_many(struct ipc_client *c, json_t *id)
{
	return ipc_json_error(id, "resource-constraint",
		"%u requests are already waiting", c->waiting);
}

static json_t *cmd_muc_join(struct ipc_client *c, json_t *req, json_t *id)
{
	if (c->waiting >= IPC_MAX_WAITING) {
		return too_many(c, id);
	}
	struct muc_join_args a = {
		.room = cmd_str_arg(req, "room"),
		.nick = cmd_str_arg(req, "nick"),
		.password = cmd_str_arg(req, "password"),
		.history = (int)json_integer_value(json_object_get(req, "history")),
	};
	struct muc_wait *w = wait_new(c, id);
	struct xerr e = { 0 };
	if (muc_join(c->ipc->x, &a, muc_done, w, &e) < 0) {
		wait_refused(w, &e);
	}
	return NULL;
}

static json_t *cmd_muc_leave(struct ipc_client *c, json_t *req, json_t *id)
{
	if (c->waiting >= IPC_MAX_WAITING) {
		return too_many(c, id);
	}
	struct muc_wait *w = wait_new(c, id);
	struct xerr e = { 0 };
	if (muc_leave(c->ipc->x, cmd_str_arg(req, "room"), muc_done, w, &e) < 0) {
		wait_refused(w, &e);
	}
	return NULL;
}

static json_t *cmd_muc_rooms(struct ipc_client *c, json_t *req, json_t *id)
{
	struct xerr e = { 0 };
	json_t *rooms = muc_rooms(c->ipc->x, cmd_str_arg(req, "room"), &e);
	if (rooms == NULL) {
		return cmd_xerr_reply(id, &e);
	}
	json_t *r = ipc_json_ok(id);
	json_object_set_new(r, "rooms", rooms);
	return r;
}

static const struct arg muc_join_args[] = {
	{ "room", ARG_JID, true, NULL, 0, 0 },
	{ "nick", ARG_STRING, true, NULL, 0, 0 },
	{ "password", ARG_STRING, false, NULL, 0, 0 },
	{ "history", ARG_INT, false, NULL, 0, 1000 },
	{ .name = NULL },
};
static const struct arg muc_leave_args[] = {
	{ "room", ARG_JID, true, NULL, 0, 0 },
	{ .name = NULL },
};
static const struct arg muc_rooms_args[] = {
	{ "room", ARG_JID, false, NULL, 0, 0 },
	{ .name = NULL },
};

/* Sorted by name: looked up with bsearch. */
static const struct cmd muc_rows[] = {
	{ "muc-join", cmd_muc_join, muc_join_args, CMD_ONLINE },
	{ "muc-leave", cmd_muc_leave, muc_leave_args, 0 },
	{ "muc-rooms", cmd_muc_rooms, muc_rooms_args, 0 },
};

const struct cmd_table muc_commands = {
	muc_rows, sizeof(muc_rows) / sizeof(muc_rows[0]),
};
