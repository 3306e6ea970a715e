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

static void muc_done(void *ud, json_t *result, const struct xerr *e)
{
	struct cmd_wait *w = ud;
	if (result != NULL) {
		cmd_wait_ok(w, result);
		json_decref(result);
	} else {
		cmd_wait_fail(w, e);
	}
}

static json_t *cmd_muc_join(struct ipc_client *c, json_t *req, json_t *id)
{
	struct muc_join_args a = {
		.room = cmd_str_arg(req, "room"),
		.nick = cmd_str_arg(req, "nick"),
		.password = cmd_str_arg(req, "password"),
		.history = (int)json_integer_value(json_object_get(req, "history")),
	};
	json_t *refused = NULL;
	struct cmd_wait *w = cmd_wait_new(c, id, &refused);
	if (w == NULL) {
		return refused;
	}
	struct xerr e = { 0 };
	if (muc_join(c->ipc->x, &a, muc_done, w, &e) < 0) {
		cmd_wait_fail(w, &e);
	}
	return NULL;
}

static json_t *cmd_muc_leave(struct ipc_client *c, json_t *req, json_t *id)
{
	json_t *refused = NULL;
	struct cmd_wait *w = cmd_wait_new(c, id, &refused);
	if (w == NULL) {
		return refused;
	}
	struct xerr e = { 0 };
	if (muc_leave(c->ipc->x, cmd_str_arg(req, "room"), muc_done, w, &e) < 0) {
		cmd_wait_fail(w, &e);
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
