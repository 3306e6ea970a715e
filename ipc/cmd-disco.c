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

struct wait {
	struct ipc_client *client;
	struct ipc_reply *slot;
	json_t *id;
};

static void answered(void *ud, json_t *result, const char *condition,
	const char *text)
{
	struct wait *w = ud;
	if (ipc_client_alive(w->client)) {
		json_t *r;
		if (result != NULL) {
			r = ipc_json_ok(w->id);
			json_object_update_missing(r, result);
		} else {
			const char *cond = condition ? condition : "undefined-condition";
			r = ipc_json_error(w->id, cond, "%s", text ? text : cond);
		}
		ipc_client_fill(w->client, w->slot, r);
	}
	json_decref(result);
	ipc_client_unref(w->client);
	json_decref(w->id);
	free(w);
}

/* A reply slot held for c, or NULL when c already waits for too much
 * (then *err is the reply). */
static struct wait *wait_new(struct ipc_client *c, json_t *id, json_t **err)
{
	if (c->waiting >= IPC_MAX_WAITING) {
		*err = ipc_json_error(id, "resource-constraint",
			"%u requests are already waiting", c->waiting);
		return NULL;
	}
	struct wait *w = xcalloc(1, sizeof(*w));
	w->client = c;
	w->slot = ipc_client_reserve(c);
	w->id = id != NULL ? json_incref(id) : NULL;
	ipc_client_ref(c);
	return w;
}

/* The core refused at once: answer in the slot and let the wait go. */
static void wait_fail(struct wait *w, const struct xerr *e)
{
	ipc_client_fill(w->client, w->slot, cmd_xerr_reply(w->id, e));
	ipc_client_unref(w->client);
	json_decref(w->id);
	free(w);
}

static json_t *cmd_disco(struct ipc_client *c, json_t *req, json_t *id)
{
	json_t *err = NULL;
	struct wait *w = wait_new(c, id, &err);
	if (w == NULL) {
		return err;
	}
	struct xerr e = { 0 };
	if (disco_query(c->ipc->x, cmd_str_arg(req, "to"), cmd_str_arg(req, "node"),
			cmd_bool_arg(req, "items"), answered, w, &e) < 0) {
		wait_fail(w, &e);
	}
	return NULL;
}

static json_t *cmd_ping(struct ipc_client *c, json_t *req, json_t *id)
{
	json_t *err = NULL;
	struct wait *w = wait_new(c, id, &err);
	if (w == NULL) {
		return err;
	}
	struct xerr e = { 0 };
	if (disco_ping(c->ipc->x, cmd_str_arg(req, "to"), answered, w, &e) < 0) {
		wait_fail(w, &e);
	}
	return NULL;
}

static json_t *cmd_blocklist(struct ipc_client *c, json_t *req, json_t *id)
{
	json_t *err = NULL;
	struct wait *w = wait_new(c, id, &err);
	if (w == NULL) {
		return err;
	}
	struct xerr e = { 0 };
	if (blocking_list(c->ipc->x, answered, w, &e) < 0) {
		wait_fail(w, &e);
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
	struct wait *w = wait_new(c, id, &err);
	if (w == NULL) {
		free(v);
		return err;
	}
	struct xerr e = { 0 };
	if (blocking_change(c->ipc->x, block, v, k, answered, w, &e) < 0) {
		wait_fail(w, &e);
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
