/*
 * Message commands beyond send: chatstate, a standalone XEP-0085 chat
 * state (typing notifications), sent at once and never queued.
 */
#include <stdlib.h>

#include "daemon/xmppd.h"
#include "ipc/client.h"
#include "ipc/cmd.h"
#include "ipc/json.h"

static json_t *cmd_chatstate(struct ipc_client *c, json_t *req, json_t *id)
{
	struct message_args m = {
		.to = cmd_str_arg(req, "to"),
		.type = "chat",
		.thread = cmd_str_arg(req, "thread"),
		.chatstate = cmd_str_arg(req, "state"),
	};
	char *msg_id = NULL;
	struct xerr e = { 0 };
	/* A chat state alone is never stored: message_send answers now. */
	if (message_send(c->ipc->x, &m, &msg_id, NULL, NULL, &e) < 0) {
		return cmd_xerr_reply(id, &e);
	}
	free(msg_id);
	return ipc_json_ok(id);
}

static const char *const chat_states[] = {
	"active", "composing", "paused", "inactive", "gone", NULL
};

static const struct arg chatstate_args[] = {
	{ "to", ARG_JID, true, NULL, 0, 0 },
	{ "state", ARG_STRING, true, chat_states, 0, 0 },
	{ "thread", ARG_STRING, false, NULL, 0, 0 },
	{ .name = NULL },
};

/* Sorted by name: looked up with bsearch. */
static const struct cmd message_rows[] = {
	{ "chatstate", cmd_chatstate, chatstate_args, CMD_ONLINE },
};

const struct cmd_table message_commands = {
	message_rows, sizeof(message_rows) / sizeof(message_rows[0]),
};
