/*
 * The history command. It currently asks the server's message archive
 * (XEP-0313, daemon/mam.c) and waits for the network: the handler holds
 * the client's reply slot and the core's answer fills it, merged into
 * {"id","ok":true}, or the client has gone and the answer is dropped.
 * The arguments leave room for a local message log answering the same
 * command (a "since" sequence number) later.
 */
#include "daemon/mam.h"
#include "daemon/xmppd.h"
#include "ipc/client.h"
#include "ipc/cmd.h"
#include "ipc/json.h"

#define DEFAULT_MAX 50

static json_t *cmd_history(struct ipc_client *c, json_t *req, json_t *id)
{
	json_t *refused = NULL;
	struct cmd_wait *w = cmd_wait_new(c, id, &refused);
	if (w == NULL) {
		return refused;
	}
	json_t *max = json_object_get(req, "max");
	struct mam_history_args a = {
		.with = cmd_str_arg(req, "with"),
		.start = cmd_str_arg(req, "start"),
		.end = cmd_str_arg(req, "end"),
		.before = cmd_str_arg(req, "before"),
		.after = cmd_str_arg(req, "after"),
		.max = json_is_integer(max) ? (unsigned)json_integer_value(max) :
			DEFAULT_MAX,
	};
	struct xerr e = { 0 };
	if (mam_history(c->ipc->x, &a, cmd_wait_answered, w, &e) < 0) {
		cmd_wait_fail(w, &e);
	}
	return NULL;
}

static const struct arg history_args[] = {
	{ "with", ARG_JID, false, NULL, 0, 0 },
	{ "start", ARG_STRING, false, NULL, 0, 0 },
	{ "end", ARG_STRING, false, NULL, 0, 0 },
	{ "before", ARG_STRING, false, NULL, 0, 0 },
	{ "after", ARG_STRING, false, NULL, 0, 0 },
	{ "max", ARG_INT, false, NULL, 1, MAM_HISTORY_MAX },
	{ .name = NULL },
};

/* Sorted by name: looked up with bsearch. */
static const struct cmd history_rows[] = {
	{ "history", cmd_history, history_args, CMD_ONLINE },
};

const struct cmd_table history_commands = {
	history_rows, sizeof(history_rows) / sizeof(history_rows[0]),
};
