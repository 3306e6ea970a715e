/*
 * Commands of discovery and blocking: disco, ping, block, unblock,
 * blocklist. Each waits for the network: the handler reserves the
 * client's reply slot, and the core's answer fills it (merged into
 * {"id","ok":true}), or the client has gone and the answer is dropped.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon/blocking.h"
#include "daemon/disco.h"
#include "daemon/xmppd.h"
#include "ipc/client.h"
#include "ipc/cmd.h"
#include "ipc/json.h"
#include "proto/alloc.h"

#define MAX_JIDS 1000	/* per block/unblock request */

static json_t *cmd_disco(struct ipc_client *c, json_t *req, json_t *id)
{
	json_t *err = NULL;
	struct cmd_wait *w = cmd_wait_new(c, id, &err);
	if (w == NULL) {
		return err;
	}
	struct xerr e = { 0 };
	if (disco_query(c->ipc->x, cmd_str_arg(req, "to"), cmd_str_arg(req, "node"),
			cmd_bool_arg(req, "items"), cmd_wait_answered, w, &e) < 0) {
		cmd_wait_fail(w, &e);
	}
	return NULL;
}

static json_t *cmd_ping(struct ipc_client *c, json_t *req, json_t *id)
{
	json_t *err = NULL;
	struct cmd_wait *w = cmd_wait_new(c, id, &err);
	if (w == NULL) {
		return err;
	}
	struct xerr e = { 0 };
	if (disco_ping(c->ipc->x, cmd_str_arg(req, "to"), cmd_wait_answered, w, &e) < 0) {
		cmd_wait_fail(w, &e);
	}
	return NULL;
}

static json_t *cmd_blocklist(struct ipc_client *c, json_t *req, json_t *id)
{
	json_t *err = NULL;
	struct cmd_wait *w = cmd_wait_new(c, id, &err);
	if (w == NULL) {
		return err;
	}
	struct xerr e = { 0 };
	if (blocking_list(c->ipc->x, cmd_wait_answered, w, &e) < 0) {
		cmd_wait_fail(w, &e);
	}
	return NULL;
}

/* block and unblock: "jid" (one) and/or "jids" (an array). */
static json_t *change(struct ipc_client *c, json_t *req, json_t *id, bool block)
{
	json_t *jids = json_object_get(req, "jids");
	const char *one = cmd_str_arg(req, "jid");
	size_t n = json_array_size(jids) + (one != NULL ? 1 : 0);
	const char **v = xcalloc(n + 1, sizeof(*v));
	size_t k = 0;
	if (one != NULL) {
		v[k++] = one;
	}
	for (size_t i = 0; i < json_array_size(jids); i++) {
		v[k++] = json_string_value(json_array_get(jids, i));
	}
	json_t *err = NULL;
	struct cmd_wait *w = cmd_wait_new(c, id, &err);
	if (w == NULL) {
		free(v);
		return err;
	}
	struct xerr e = { 0 };
	if (blocking_change(c->ipc->x, block, v, k, cmd_wait_answered, w, &e) < 0) {
		cmd_wait_fail(w, &e);
	}
	free(v);
	return NULL;
}

static json_t *cmd_block(struct ipc_client *c, json_t *req, json_t *id)
{
	if (!cmd_has_arg(req, "jid") && json_array_size(json_object_get(req, "jids")) == 0) {
		return ipc_json_error(id, "bad-request", "give 'jid' or 'jids'");
	}
	return change(c, req, id, true);
}

static json_t *cmd_unblock(struct ipc_client *c, json_t *req, json_t *id)
{
	return change(c, req, id, false);
}

static const struct arg disco_args[] = {
	{ "to", ARG_JID, false, NULL, 0, 0 },
	{ "node", ARG_STRING, false, NULL, 0, 0 },
	{ "items", ARG_BOOL, false, NULL, 0, 0 },
	{ .name = NULL },
};
static const struct arg ping_args[] = {
	{ "to", ARG_JID, false, NULL, 0, 0 },
	{ .name = NULL },
};
static const struct arg block_args[] = {
	{ "jid", ARG_JID, false, NULL, 0, 0 },
	{ "jids", ARG_STRINGS, false, NULL, 0, MAX_JIDS },
	{ .name = NULL },
};
static const struct arg no_args[] = {
	{ .name = NULL },
};

/* Sorted by name: looked up with bsearch. */
static const struct cmd disco_rows[] = {
	{ "block", cmd_block, block_args, CMD_ONLINE },
	{ "blocklist", cmd_blocklist, no_args, CMD_ONLINE },
	{ "disco", cmd_disco, disco_args, CMD_ONLINE },
	{ "ping", cmd_ping, ping_args, CMD_ONLINE },
	{ "unblock", cmd_unblock, block_args, CMD_ONLINE },
};

const struct cmd_table disco_commands = {
	disco_rows, sizeof(disco_rows) / sizeof(disco_rows[0]),
};
