/*
 * Commands of extensions that live outside the daemon: iq-handle,
 * iq-unhandle and iq-reply (daemon/handlers.h), and the namespace filter
 * of "stanza" events that subscribe takes. A client is the owner of what
 * it registers; its "iq" events are written to it alone, and when it
 * closes (cmd_ext_closed) its namespaces are given up.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon/handlers.h"
#include "daemon/log.h"
#include "daemon/xmppd.h"
#include "ipc/client.h"
#include "ipc/cmd.h"
#include "ipc/json.h"
#include "proto/buf.h"


/* An "iq" event for one client: written to it alone, never kept. */
static void deliver(void *owner, json_t *ev)
{
	struct ipc_client *c = owner;
	if (!ipc_client_alive(c) || c->dropping) {
		return;
	}
	struct buf b;
	buf_init(&b);
	if (ipc_json_encode(ev, &b)) {
		ipc_client_write(c, b.data, b.len);
	} else {
		log_warnx("ipc client %lu: an iq event could not be encoded", c->id);
	}
	buf_finish(&b);
}

static json_t *cmd_iq_handle(struct ipc_client *c, json_t *req, json_t *id)
{
	struct xerr e = { 0 };
	if (handlers_register(c->ipc->x, cmd_str_arg(req, "ns"),
			cmd_str_arg(req, "type"), c, deliver, &e) < 0) {
		return cmd_xerr_reply(id, &e);
	}
	json_t *r = ipc_json_ok(id);
	json_object_set_new(r, "handled", handlers_list(c->ipc->x, c));
	return r;
}

static json_t *cmd_iq_unhandle(struct ipc_client *c, json_t *req, json_t *id)
{
	struct xerr e = { 0 };
	if (handlers_unregister(c->ipc->x, cmd_str_arg(req, "ns"),
			cmd_str_arg(req, "type"), c, &e) < 0) {
		return cmd_xerr_reply(id, &e);
	}
	json_t *r = ipc_json_ok(id);
	json_object_set_new(r, "handled", handlers_list(c->ipc->x, c));
	return r;
}

static json_t *cmd_iq_reply(struct ipc_client *c, json_t *req, json_t *id)
{
	struct handlers_answer a = {
		.iq_id = cmd_str_arg(req, "iq_id"),
		.type = cmd_str_arg(req, "type"),
		.payload = cmd_str_arg(req, "payload"),
		.condition = cmd_str_arg(req, "condition"),
		.text = cmd_str_arg(req, "text"),
	};
	struct xerr e = { 0 };
	if (handlers_reply(c->ipc->x, c, &a, &e) < 0) {
		return cmd_xerr_reply(id, &e);
	}
	return ipc_json_ok(id);
}

void cmd_ext_closed(struct ipc_client *c)
{
	if (c->ipc != NULL && c->ipc->x != NULL) {
		handlers_drop(c->ipc->x, c);
	}
	json_decref(c->ns);
	c->ns = NULL;
}

void cmd_ext_subscribe(struct ipc_client *c, json_t *req)
{
	json_decref(c->ns);
	c->ns = NULL;
	json_t *ns = json_object_get(req, "ns");
	if (json_is_array(ns)) {
		c->ns = json_deep_copy(ns);
	}
}

static const char *const reply_types[] = { "result", "error", NULL };
static const char *const request_types[] = { "get", "set", NULL };

static const struct arg handle_args[] = {
	{ "ns", ARG_STRING, true, NULL, 0, 0 },
	{ "type", ARG_STRING, false, request_types, 0, 0 },
	{ .name = NULL },
};
static const struct arg reply_args[] = {
	{ "iq_id", ARG_STRING, true, NULL, 0, 0 },
	{ "type", ARG_STRING, true, reply_types, 0, 0 },
	{ "payload", ARG_STRING, false, NULL, 0, 0 },
	{ "condition", ARG_STRING, false, NULL, 0, 0 },
	{ "text", ARG_STRING, false, NULL, 0, 0 },
	{ .name = NULL },
};

/* Sorted by name: looked up with bsearch. */
static const struct cmd ext_rows[] = {
	{ "iq-handle", cmd_iq_handle, handle_args, 0 },
	{ "iq-reply", cmd_iq_reply, reply_args, 0 },
	{ "iq-unhandle", cmd_iq_unhandle, handle_args, 0 },
};

const struct cmd_table ext_commands = {
	ext_rows, sizeof(ext_rows) / sizeof(ext_rows[0]),
};
