/*
 * Roster, subscription and presence-table commands: roster, roster-set,
 * roster-remove, subscription, subscriptions, presences. roster-set and
 * roster-remove answer once the server has (a reply slot held meanwhile,
 * as the iq command does).
 */
#include <stdlib.h>

#include "daemon/roster.h"
#include "daemon/xmppd.h"
#include "ipc/client.h"
#include "ipc/cmd.h"
#include "ipc/json.h"
#include "proto/alloc.h"

static json_t *cmd_presences(struct ipc_client *c, json_t *req, json_t *id)
{
	json_t *r = ipc_json_ok(id);
	json_object_set_new(r, "presences",
		presence_table_json(c->ipc->x, cmd_str_arg(req, "jid")));
	return r;
}

static json_t *cmd_roster(struct ipc_client *c, json_t *req, json_t *id)
{
	json_t *r = ipc_json_ok(id);
	json_t *roster = roster_json(c->ipc->x);
	json_object_update(r, roster);
	json_decref(roster);
	return r;
}

/* ---- roster-set and roster-remove: answered after the server ---- */

static void roster_done(void *ud, const char *condition, const char *text)
{
	struct cmd_wait *w = ud;
	if (condition == NULL) {
		cmd_wait_ok(w, NULL);
	} else {
		cmd_wait_done(w, ipc_json_error(w->id, condition, "%s",
			text ? text : condition));
	}
}

static json_t *cmd_roster_remove(struct ipc_client *c, json_t *req, json_t *id)
{
	json_t *refused = NULL;
	struct cmd_wait *w = cmd_wait_new(c, id, &refused);
	if (w == NULL) {
		return refused;
	}
	struct xerr e = { 0 };
	if (roster_remove(c->ipc->x, cmd_str_arg(req, "jid"), roster_done, w,
			&e) < 0) {
		cmd_wait_fail(w, &e);
	}
	return NULL;
}

static json_t *cmd_roster_set(struct ipc_client *c, json_t *req, json_t *id)
{
	json_t *groups = json_object_get(req, "groups");
	size_t n = json_is_array(groups) ? json_array_size(groups) : 0;
	const char **names = xcalloc(n + 1, sizeof(*names));
	for (size_t i = 0; i < n; i++) {
		names[i] = json_string_value(json_array_get(groups, i));
	}
	json_t *refused = NULL;
	struct cmd_wait *w = cmd_wait_new(c, id, &refused);
	if (w == NULL) {
		free(names);
		return refused;
	}
	struct xerr e = { 0 };
	if (roster_set(c->ipc->x, cmd_str_arg(req, "jid"),
			cmd_str_arg(req, "name"), names, n, roster_done, w, &e) < 0) {
		cmd_wait_fail(w, &e);
	}
	free(names);
	return NULL;
}

/* ---- subscriptions ---- */

static json_t *cmd_subscription(struct ipc_client *c, json_t *req, json_t *id)
{
	struct xerr e = { 0 };
	if (roster_subscription(c->ipc->x, cmd_str_arg(req, "jid"),
			cmd_str_arg(req, "action"), cmd_str_arg(req, "status"),
			&e) < 0) {
		return cmd_xerr_reply(id, &e);
	}
	return ipc_json_ok(id);
}

static json_t *cmd_subscriptions(struct ipc_client *c, json_t *req, json_t *id)
{
	json_t *r = ipc_json_ok(id);
	json_object_set_new(r, "pending", roster_pending_json(c->ipc->x));
	return r;
}

/* ---- the table ---- */

static const char *const actions[] = {
	"request", "approve", "deny", "cancel", "unsubscribe", "preapprove", NULL
};

static const struct arg no_args[] = {
	{ .name = NULL },
};
static const struct arg presences_args[] = {
	{ "jid", ARG_JID, false, NULL, 0, 0 },
	{ .name = NULL },
};
static const struct arg roster_remove_args[] = {
	{ "jid", ARG_JID, true, NULL, 0, 0 },
	{ .name = NULL },
};
static const struct arg roster_set_args[] = {
	{ "jid", ARG_JID, true, NULL, 0, 0 },
	{ "name", ARG_STRING, false, NULL, 0, 0 },
	{ "groups", ARG_STRINGS, false, NULL, 0, ROSTER_MAX_GROUPS },
	{ .name = NULL },
};
static const struct arg subscription_args[] = {
	{ "jid", ARG_JID, true, NULL, 0, 0 },
	{ "action", ARG_STRING, true, actions, 0, 0 },
	{ "status", ARG_STRING, false, NULL, 0, 0 },
	{ .name = NULL },
};

/* Sorted by name: looked up with bsearch. */
static const struct cmd roster_rows[] = {
	{ "presences", cmd_presences, presences_args, 0 },
	{ "roster", cmd_roster, no_args, 0 },
	{ "roster-remove", cmd_roster_remove, roster_remove_args, CMD_ONLINE },
	{ "roster-set", cmd_roster_set, roster_set_args, CMD_ONLINE },
	{ "subscription", cmd_subscription, subscription_args, CMD_ONLINE },
	{ "subscriptions", cmd_subscriptions, no_args, 0 },
};

const struct cmd_table roster_commands = {
	roster_rows, sizeof(roster_rows) / sizeof(roster_rows[0]),
};
