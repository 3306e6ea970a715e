/*
 * The history command, from one of two sources. "local": the daemon's
 * message log (daemon/store.c), answered at once, also offline: messages
 * after a seq ("since"), with a JID, at most max, every item the line of
 * the event it was (outbound ones with "outbound": true). "archive": the
 * server's message archive (XEP-0313, daemon/mam.c), which waits for the
 * network: the handler holds the client's reply slot and the core's
 * answer fills it, merged into {"id","ok":true}, or the client has gone
 * and the answer is dropped. Without "source", "since" picks the log and
 * anything else the archive.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon/mam.h"
#include "daemon/xmppd.h"
#include "ipc/client.h"
#include "ipc/cmd.h"
#include "ipc/json.h"
#include "proto/jid.h"

#define DEFAULT_MAX 50

/* Items of a local history reply. */
struct items {
	json_t *messages;
	uint64_t last;
};

static bool item_cb(void *ud, uint64_t seq, bool outbound, const char *line,
	size_t len)
{
	struct items *it = ud;
	json_t *o = json_loadb(line, len, 0, NULL);
	if (json_is_object(o)) {
		json_object_del(o, "event");
		json_array_append(it->messages, o);
	}
	json_decref(o);
	it->last = seq > it->last ? seq : it->last;
	return true;
}

/* Reverses a JSON array in place. */
static void reverse(json_t *a)
{
	size_t n = json_array_size(a);
	for (size_t i = 0; i < n / 2; i++) {
		json_t *x = json_incref(json_array_get(a, i));
		json_array_set(a, i, json_array_get(a, n - 1 - i));
		json_array_set_new(a, n - 1 - i, x);
	}
}

/* From the message log: after since (oldest first), or the newest max
 * without since; "complete" when nothing more matches, "last" the seq to
 * ask "since" for the next page. */
static json_t *history_local(struct ipc_client *c, json_t *req, json_t *id,
	unsigned max)
{
	char *with = NULL;
	if (cmd_has_arg(req, "with")) {
		with = jid_prep(cmd_str_arg(req, "with"), true, NULL);
	}
	bool has_since = cmd_has_arg(req, "since");
	struct xmppd_log_query q = {
		.after = (uint64_t)json_integer_value(json_object_get(req, "since")),
		.peer = with,
		.newest = !has_since,
		.max = max + 1,
	};
	struct items it = { .messages = json_array() };
	struct xerr e = { 0 };
	int rc = xmppd_log_read(c->ipc->x, &q, item_cb, &it, &e);
	free(with);
	if (rc < 0) {
		json_decref(it.messages);
		return cmd_xerr_reply(id, &e);
	}
	bool complete = json_array_size(it.messages) <= max;
	if (!complete) {
		json_array_remove(it.messages, max);
	}
	if (!has_since) {
		reverse(it.messages);
	}
	json_t *r = ipc_json_ok(id);
	size_t n = json_array_size(it.messages);
	json_t *lastv = n ? json_object_get(json_array_get(it.messages, n - 1),
		"seq") : NULL;
	json_object_set_new(r, "messages", it.messages);
	json_object_set_new(r, "complete", json_boolean(complete));
	json_object_set_new(r, "source", json_string("local"));
	if (lastv != NULL) {
		json_object_set(r, "last", lastv);
	}
	return r;
}

static bool wants_local(json_t *req)
{
	const char *src = cmd_str_arg(req, "source");
	if (src != NULL) {
		return strcmp(src, "local") == 0;
	}
	return cmd_has_arg(req, "since");
}

static json_t *cmd_history(struct ipc_client *c, json_t *req, json_t *id)
{
	json_t *max = json_object_get(req, "max");
	unsigned n = json_is_integer(max) ? (unsigned)json_integer_value(max) :
		DEFAULT_MAX;
	if (wants_local(req)) {
		if (cmd_has_arg(req, "start") || cmd_has_arg(req, "end") ||
				cmd_has_arg(req, "before") || cmd_has_arg(req, "after")) {
			return ipc_json_error(id, "bad-request", "start, end, before "
				"and after ask the archive, not the local log");
		}
		return history_local(c, req, id, n);
	}
	if (cmd_has_arg(req, "since")) {
		return ipc_json_error(id, "bad-request",
			"since asks the local log, not the archive");
	}
	if (xmppd_state(c->ipc->x) != XMPPD_ONLINE) {
		return ipc_json_error(id, "not-connected", "not connected (%s)",
			xmppd_state_name(xmppd_state(c->ipc->x)));
	}

	json_t *refused = NULL;
	struct cmd_wait *w = cmd_wait_new(c, id, &refused);
	if (w == NULL) {
		return refused;
	}
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

static const char *const sources[] = { "local", "archive", NULL };

static const struct arg history_args[] = {
	{ "source", ARG_STRING, false, sources, 0, 0 },
	{ "since", ARG_INT, false, NULL, 0, 9007199254740992.0 },
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
	{ "history", cmd_history, history_args, 0 },
};

const struct cmd_table history_commands = {
	history_rows, sizeof(history_rows) / sizeof(history_rows[0]),
};
