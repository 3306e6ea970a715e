/*
 * The core commands of the control socket, and the lookup and argument
 * checks for every command. Each is a row of an alphabetised table: its
 * name, its handler, the arguments it takes and flags; other areas keep
 * their tables in ipc/cmd-*.c (see ipc/cmd.h). check_args() validates a request against the row before the
 * handler runs, so a handler reads its arguments without checking them.
 * A handler returns its reply, or NULL when it has queued it itself (or
 * holds a reply slot to fill later, as iq does).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/events.h"
#include "daemon/xmppd.h"
#include "ipc/client.h"
#include "ipc/cmd.h"
#include "ipc/commands.h"
#include "ipc/json.h"
#include "ipc/sink.h"
#include "proto/alloc.h"
#include "proto/error.h"
#include "proto/jid.h"
#include "proto/ns.h"
#include "proto/xml.h"

const char *cmd_str_arg(json_t *req, const char *name)
{
	return json_string_value(json_object_get(req, name));
}

bool cmd_has_arg(json_t *req, const char *name)
{
	json_t *v = json_object_get(req, name);
	return v != NULL && !json_is_null(v);
}

bool cmd_bool_arg(json_t *req, const char *name)
{
	return json_is_true(json_object_get(req, name));
}

struct cmd_wait *cmd_wait_new(struct ipc_client *c, json_t *id, json_t **refused)
{
	if (c->waiting >= IPC_MAX_WAITING) {
		*refused = ipc_json_error(id, "resource-constraint",
			"%u requests are already waiting", c->waiting);
		return NULL;
	}
	return cmd_wait_commit(c, id);
}

struct cmd_wait *cmd_wait_commit(struct ipc_client *c, json_t *id)
{
	struct cmd_wait *w = xcalloc(1, sizeof(*w));
	w->client = c;
	w->slot = ipc_client_reserve(c);
	w->id = id != NULL ? json_incref(id) : NULL;
	ipc_client_ref(c);
	return w;
}

void cmd_wait_done(struct cmd_wait *w, json_t *reply)
{
	if (ipc_client_alive(w->client)) {
		ipc_client_fill(w->client, w->slot, reply);
	} else {
		json_decref(reply);
	}
	ipc_client_unref(w->client);
	json_decref(w->id);
	free(w);
}

void cmd_wait_ok(struct cmd_wait *w, json_t *result)
{
	json_t *r = ipc_json_ok(w->id);
	if (result != NULL) {
		json_object_update_missing(r, result);
	}
	cmd_wait_done(w, r);
}

void cmd_wait_fail(struct cmd_wait *w, const struct xerr *e)
{
	cmd_wait_done(w, cmd_xerr_reply(w->id, e));
}

void cmd_wait_answered(void *ud, json_t *result, const char *condition,
	const char *text)
{
	struct cmd_wait *w = ud;
	if (result != NULL) {
		cmd_wait_ok(w, result);
		json_decref(result);
		return;
	}
	const char *cond = condition ? condition : "undefined-condition";
	cmd_wait_done(w, ipc_json_error(w->id, cond, "%s", text ? text : cond));
}

json_t *cmd_xerr_reply(json_t *id, const struct xerr *e)
{
	return ipc_json_error(id, e->condition ? e->condition : "internal-server-error",
		"%s", e->text);
}

/* ---- iq ---- */

static json_t *iq_reply_json(json_t *id, const struct xml *reply)
{
	const char *type = xml_attr(reply, "type");
	json_t *r;
	if (type != NULL && strcmp(type, "error") == 0) {
		char *text;
		const char *cond = stanza_error(reply, &text);
		r = ipc_json_error(id, cond, "%s", text ? text : cond);
		free(text);
	} else {
		r = ipc_json_ok(id);
	}
	json_object_set_new(r, "type", ipc_json_string(type ? type : "result"));
	const char *from = xml_attr(reply, "from");
	if (from != NULL) {
		json_object_set_new(r, "from", ipc_json_string(from));
	}
	char *xml = xml_to_string(reply, NS_CLIENT);
	if (xml != NULL) {
		json_object_set_new(r, "xml", ipc_json_string(xml));
		free(xml);
	}
	return r;
}

static void iq_done(void *ud, const struct xml *reply, const char *condition,
	const char *text)
{
	struct cmd_wait *w = ud;
	if (reply != NULL) {
		cmd_wait_done(w, iq_reply_json(w->id, reply));
		return;
	}
	const char *cond = condition ? condition : "undefined-condition";
	cmd_wait_done(w, ipc_json_error(w->id, cond, "%s", text ? text : cond));
}

static json_t *cmd_iq(struct ipc_client *c, json_t *req, json_t *id)
{
	json_t *refused = NULL;
	struct cmd_wait *w = cmd_wait_new(c, id, &refused);
	if (w == NULL) {
		return refused;
	}
	double secs = json_number_value(json_object_get(req, "timeout"));
	unsigned ms = secs > 0 ? (unsigned)(secs * 1000 + 0.5) : 0;
	struct xerr e = { 0 };
	if (iq_request(c->ipc->x, cmd_str_arg(req, "to"), cmd_str_arg(req, "type"),
			cmd_str_arg(req, "payload"), ms, iq_done, w, &e) < 0) {
		cmd_wait_fail(w, &e);
	}
	return NULL;
}

/* ---- the others ---- */

static json_t *cmd_presence(struct ipc_client *c, json_t *req, json_t *id)
{
	struct presence_args p = {
		.to = cmd_str_arg(req, "to"),
		.type = cmd_str_arg(req, "type"),
		.show = cmd_str_arg(req, "show"),
		.status = cmd_str_arg(req, "status"),
		.has_priority = cmd_has_arg(req, "priority"),
		.priority = (int)json_integer_value(json_object_get(req, "priority")),
	};
	struct xerr e = { 0 };
	if (presence_send(c->ipc->x, &p, &e) < 0) {
		return cmd_xerr_reply(id, &e);
	}
	return ipc_json_ok(id);
}

static json_t *cmd_quit(struct ipc_client *c, json_t *req, json_t *id)
{
	ipc_client_reply(c, ipc_json_ok(id));
	xmppd_quit(c->ipc->x);
	return NULL;
}

static json_t *cmd_reconnect(struct ipc_client *c, json_t *req, json_t *id)
{
	xmppd_reconnect(c->ipc->x);
	return ipc_json_ok(id);
}

static json_t *cmd_raw(struct ipc_client *c, json_t *req, json_t *id)
{
	struct xerr e = { 0 };
	if (xmppd_send_raw(c->ipc->x, cmd_str_arg(req, "xml"), &e) < 0) {
		return cmd_xerr_reply(id, &e);
	}
	return ipc_json_ok(id);
}

/* A send waiting for the store's commit. */
struct send_wait {
	struct cmd_wait *w;	/* set once message_send said it waits */
	char *msg_id;
};

static void send_done(void *ud, const char *error)
{
	struct send_wait *sw = ud;
	if (error == NULL) {
		json_t *r = json_object();
		json_object_set_new(r, "msg_id", ipc_json_string(sw->msg_id));
		cmd_wait_ok(sw->w, r);
		json_decref(r);
	} else {
		cmd_wait_done(sw->w, ipc_json_error(sw->w->id,
			strstr(error, "full") != NULL ? "resource-constraint" :
			"internal-server-error", "not accepted: the message store "
			"failed: %s", error));
	}
	free(sw->msg_id);
	free(sw);
}

static json_t *cmd_send(struct ipc_client *c, json_t *req, json_t *id)
{
	struct message_args m = {
		.to = cmd_str_arg(req, "to"),
		.body = cmd_str_arg(req, "body"),
		.type = cmd_str_arg(req, "type"),
		.subject = cmd_str_arg(req, "subject"),
		.thread = cmd_str_arg(req, "thread"),
		.msg_id = cmd_str_arg(req, "msg_id"),
		.receipt = cmd_bool_arg(req, "receipt"),
		.chatstate = cmd_str_arg(req, "chatstate"),
		.lang = cmd_str_arg(req, "lang"),
		.is_private = cmd_bool_arg(req, "private"),
	};
	struct send_wait *sw = xcalloc(1, sizeof(*sw));
	struct xerr e = { 0 };
	int rc = message_send(c->ipc->x, &m, &sw->msg_id, send_done, sw, &e);
	if (rc < 0) {
		free(sw->msg_id);
		free(sw);
		return cmd_xerr_reply(id, &e);
	}
	if (rc > 0) {
		/* The reply waits for the commit, later this loop turn. */
		sw->w = cmd_wait_commit(c, id);
		return NULL;
	}
	json_t *r = ipc_json_ok(id);
	if (sw->msg_id != NULL) {
		json_object_set_new(r, "msg_id", ipc_json_string(sw->msg_id));
	}
	free(sw->msg_id);
	free(sw);
	return r;
}

static json_t *cmd_status(struct ipc_client *c, json_t *req, json_t *id)
{
	json_t *r = ipc_json_ok(id);
	json_t *st = xmppd_status(c->ipc->x);
	if (json_is_object(st)) {
		json_object_update_missing(r, st);
	}
	json_decref(st);
	return r;
}

static uint32_t events_mask(json_t *req)
{
	uint32_t mask = 0;
	char err[128];
	sink_parse_events(json_object_get(req, "events"), &mask, err, sizeof(err));
	return mask;
}

static json_t *cmd_subscribe(struct ipc_client *c, json_t *req, json_t *id)
{
	c->events |= events_mask(req);
	events_listeners_changed();
	free(c->from);
	c->from = NULL;
	if (cmd_has_arg(req, "from")) {
		c->from = jid_prep(cmd_str_arg(req, "from"), true, NULL);
	}
	cmd_ext_subscribe(c, req);
	json_t *r = ipc_json_ok(id);
	bool gap = false;
	uint64_t oldest = 0;
	if (cmd_has_arg(req, "since")) {
		json_int_t since = json_integer_value(json_object_get(req, "since"));
		sink_replay(c->ipc, c, (uint64_t)since, &gap, &oldest);
	}
	json_object_set_new(r, "seq", json_integer((json_int_t)events_last_seq()));
	if (gap) {
		json_object_set_new(r, "gap", json_true());
		json_object_set_new(r, "oldest", json_integer((json_int_t)oldest));
	}
	return r;
}

static json_t *cmd_unsubscribe(struct ipc_client *c, json_t *req, json_t *id)
{
	if (cmd_has_arg(req, "events")) {
		c->events &= ~events_mask(req);
	} else {
		c->events = 0;
	}
	events_listeners_changed();
	if (c->events == 0) {
		free(c->from);
		c->from = NULL;
	}
	return ipc_json_ok(id);
}

/* Described from the tables below, so defined after them. */
static json_t *cmd_protocol(struct ipc_client *c, json_t *req, json_t *id);

/* ---- the table ---- */

static const char *const iq_types[] = { "get", "set", NULL };
static const char *const message_types[] = {
	"chat", "normal", "headline", "groupchat", NULL
};
static const char *const chat_states[] = {
	"active", "composing", "paused", "inactive", "gone", NULL
};
static const char *const presence_shows[] = { "away", "chat", "dnd", "xa", NULL };
static const char *const presence_types[] = { "unavailable", NULL };

static const struct arg no_args[] = {
	{ .name = NULL },
};
static const struct arg iq_args[] = {
	{ "to", ARG_JID, false, NULL, 0, 0 },
	{ "type", ARG_STRING, true, iq_types, 0, 0 },
	{ "payload", ARG_STRING, false, NULL, 0, 0 },
	{ "timeout", ARG_NUMBER, false, NULL, 0.001, 86400 },
	{ .name = NULL },
};
static const struct arg presence_args[] = {
	{ "to", ARG_JID, false, NULL, 0, 0 },
	{ "type", ARG_STRING, false, presence_types, 0, 0 },
	{ "show", ARG_STRING, false, presence_shows, 0, 0 },
	{ "status", ARG_STRING, false, NULL, 0, 0 },
	{ "priority", ARG_INT, false, NULL, -128, 127 },
	{ .name = NULL },
};
static const struct arg raw_args[] = {
	{ "xml", ARG_STRING, true, NULL, 0, 0 },
	{ .name = NULL },
};
static const struct arg send_args[] = {
	{ "to", ARG_JID, true, NULL, 0, 0 },
	{ "body", ARG_STRING, false, NULL, 0, 0 },
	{ "type", ARG_STRING, false, message_types, 0, 0 },
	{ "subject", ARG_STRING, false, NULL, 0, 0 },
	{ "thread", ARG_STRING, false, NULL, 0, 0 },
	{ "msg_id", ARG_STRING, false, NULL, 0, 0 },
	{ "receipt", ARG_BOOL, false, NULL, 0, 0 },
	{ "chatstate", ARG_STRING, false, chat_states, 0, 0 },
	{ "lang", ARG_STRING, false, NULL, 0, 0 },
	{ "private", ARG_BOOL, false, NULL, 0, 0 },
	{ .name = NULL },
};
static const struct arg subscribe_args[] = {
	{ "events", ARG_EVENTS, true, NULL, 0, 0 },
	{ "since", ARG_INT, false, NULL, 0, 9007199254740992.0 },
	{ "from", ARG_JID, false, NULL, 0, 0 },
	{ "ns", ARG_STRINGS, false, NULL, 0, 64 },
	{ .name = NULL },
};
static const struct arg unsubscribe_args[] = {
	{ "events", ARG_EVENTS, false, NULL, 0, 0 },
	{ .name = NULL },
};

/* Sorted by name: looked up with bsearch. */
static const struct cmd core_rows[] = {
	{ "iq", cmd_iq, iq_args, CMD_ONLINE },
	{ "presence", cmd_presence, presence_args, 0 },
	{ "protocol", cmd_protocol, no_args, 0 },
	{ "quit", cmd_quit, no_args, 0 },
	{ "raw", cmd_raw, raw_args, CMD_ONLINE },
	{ "reconnect", cmd_reconnect, no_args, 0 },
	{ "send", cmd_send, send_args, 0 },
	{ "status", cmd_status, no_args, 0 },
	{ "subscribe", cmd_subscribe, subscribe_args, 0 },
	{ "unsubscribe", cmd_unsubscribe, unsubscribe_args, 0 },
};

static const struct cmd_table core_commands = {
	core_rows, sizeof(core_rows) / sizeof(core_rows[0]),
};

/* Every table of commands: this file's and one per area (cmd-*.c). */
static const struct cmd_table *const tables[] = {
	&core_commands,
	&roster_commands,
	&muc_commands,
	&message_commands,
	&disco_commands,
	&history_commands,
	&upload_commands,
	&ext_commands,
};

static int cmd_compare(const void *key, const void *elem)
{
	return strcmp(key, ((const struct cmd *)elem)->name);
}

static const struct cmd *find_cmd(const char *name)
{
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		const struct cmd *c = bsearch(name, tables[i]->rows, tables[i]->n,
			sizeof(tables[i]->rows[0]), cmd_compare);
		if (c != NULL) {
			return c;
		}
	}
	return NULL;
}

/* ---- protocol: the tables described ---- */

static const char *arg_type_name(enum arg_type t)
{
	switch (t) {
	case ARG_STRING:
		return "string";
	case ARG_JID:
		return "jid";
	case ARG_INT:
		return "integer";
	case ARG_NUMBER:
		return "number";
	case ARG_EVENTS:
		return "events";
	case ARG_STRINGS:
		return "strings";
	case ARG_BOOL:
		return "boolean";
	}
	return "string";
}

/* A bound as JSON: an integer when it is one. */
static json_t *bound_json(double v)
{
	if (v == (double)(json_int_t)v) {
		return json_integer((json_int_t)v);
	}
	return json_real(v);
}

static json_t *arg_json(const struct arg *a)
{
	json_t *o = json_object();
	json_object_set_new(o, "name", json_string(a->name));
	json_object_set_new(o, "type", json_string(arg_type_name(a->type)));
	json_object_set_new(o, "required", json_boolean(a->required));
	if (a->choices != NULL) {
		json_t *ch = json_array();
		for (const char *const *s = a->choices; *s != NULL; s++) {
			json_array_append_new(ch, json_string(*s));
		}
		json_object_set_new(o, "choices", ch);
	}
	if (a->type == ARG_INT || a->type == ARG_NUMBER) {
		json_object_set_new(o, "min", bound_json(a->min));
	}
	if (a->type == ARG_INT || a->type == ARG_NUMBER || a->type == ARG_STRINGS) {
		json_object_set_new(o, "max", bound_json(a->max));
	}
	return o;
}

static json_t *cmd_json(const struct cmd *cmd)
{
	json_t *args = json_array();
	for (const struct arg *a = cmd->args; a->name != NULL; a++) {
		json_array_append_new(args, arg_json(a));
	}
	json_t *o = json_object();
	json_object_set_new(o, "name", json_string(cmd->name));
	json_object_set_new(o, "args", args);
	json_object_set_new(o, "needs_online", json_boolean(cmd->flags & CMD_ONLINE));
	return o;
}

static int cmd_ptr_compare(const void *a, const void *b)
{
	return strcmp((*(const struct cmd *const *)a)->name,
		(*(const struct cmd *const *)b)->name);
}

/* Every command of every table, sorted by name. */
static json_t *commands_json(void)
{
	size_t n = 0;
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
		n += tables[t]->n;
	}
	const struct cmd **all = xcalloc(n + 1, sizeof(*all));
	size_t k = 0;
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
		for (size_t i = 0; i < tables[t]->n; i++) {
			all[k++] = &tables[t]->rows[i];
		}
	}
	qsort(all, k, sizeof(*all), cmd_ptr_compare);
	json_t *cmds = json_array();
	for (size_t i = 0; i < k; i++) {
		json_array_append_new(cmds, cmd_json(all[i]));
	}
	free(all);
	return cmds;
}

static json_t *cmd_protocol(struct ipc_client *c, json_t *req, json_t *id)
{
	json_t *events = json_array();
	const char *name;
	for (size_t i = 0; (name = sink_event_name(i)) != NULL; i++) {
		json_array_append_new(events, json_string(name));
	}
	json_t *r = ipc_json_ok(id);
	json_object_set_new(r, "version", json_integer(IPC_PROTOCOL_VERSION));
	json_object_set_new(r, "commands", commands_json());
	json_object_set_new(r, "events", events);
	return r;
}

/* ---- argument checks ---- */

static const struct arg *find_arg(const struct arg *args, const char *name)
{
	for (; args->name != NULL; args++) {
		if (strcmp(args->name, name) == 0) {
			return args;
		}
	}
	return NULL;
}

static bool in_choices(const char *const *choices, const char *s)
{
	for (; *choices != NULL; choices++) {
		if (strcmp(*choices, s) == 0) {
			return true;
		}
	}
	return false;
}

static json_t *bad_choice(json_t *id, const struct arg *a)
{
	char list[256] = "";
	for (const char *const *ch = a->choices; *ch != NULL; ch++) {
		if (ch != a->choices) {
			strncat(list, ", ", sizeof(list) - strlen(list) - 1);
		}
		strncat(list, *ch, sizeof(list) - strlen(list) - 1);
	}
	return ipc_json_error(id, "bad-request", "argument '%s' must be one of: %s",
		a->name, list);
}

static json_t *check_string(json_t *id, const struct arg *a, json_t *v)
{
	const char *s = json_string_value(v);
	if (s == NULL) {
		return ipc_json_error(id, "bad-request", "argument '%s' must be a string",
			a->name);
	}
	if (a->choices != NULL && !in_choices(a->choices, s)) {
		return bad_choice(id, a);
	}
	if (a->type == ARG_JID) {
		struct jid j;
		const char *why = "invalid";
		if (!jid_parse(&j, s, &why)) {
			return ipc_json_error(id, "invalid-jid",
				"argument '%s' is not a valid JID: %s", a->name, why);
		}
		jid_finish(&j);
	}
	return NULL;
}

static json_t *check_number(json_t *id, const struct arg *a, json_t *v)
{
	bool ok = a->type == ARG_INT ? json_is_integer(v) : json_is_number(v);
	double n = json_number_value(v);
	if (ok && n >= a->min && n <= a->max) {
		return NULL;
	}
	if (a->type == ARG_INT) {
		return ipc_json_error(id, "bad-request",
			"argument '%s' must be an integer from %.0f to %.0f", a->name,
			a->min, a->max);
	}
	return ipc_json_error(id, "bad-request",
		"argument '%s' must be a number from %g to %g", a->name, a->min, a->max);
}

static json_t *check_strings(json_t *id, const struct arg *a, json_t *v)
{
	size_t i;
	json_t *s;
	bool ok = json_is_array(v) && json_array_size(v) <= a->max;
	json_array_foreach(v, i, s) {
		ok = ok && json_is_string(s);
	}
	if (ok) {
		return NULL;
	}
	return ipc_json_error(id, "bad-request",
		"argument '%s' must be an array of at most %.0f strings", a->name,
		a->max);
}

static json_t *check_arg(json_t *id, const struct arg *a, json_t *v)
{
	switch (a->type) {
	case ARG_STRING:
	case ARG_JID:
		return check_string(id, a, v);
	case ARG_INT:
	case ARG_NUMBER:
		return check_number(id, a, v);
	case ARG_BOOL:
		if (!json_is_boolean(v)) {
			return ipc_json_error(id, "bad-request",
				"argument '%s' must be true or false", a->name);
		}
		return NULL;
	case ARG_STRINGS:
		return check_strings(id, a, v);
	case ARG_EVENTS: {
		uint32_t mask;
		char err[128];
		if (!sink_parse_events(v, &mask, err, sizeof(err))) {
			return ipc_json_error(id, "bad-request", "argument '%s' %s",
				a->name, err);
		}
		return NULL;
	}
	}
	return NULL;
}

/* The one place arguments are checked: unknown ones, missing ones (a
 * null value counts as absent) and each one's type. NULL if all is well,
 * else the error reply. */
static json_t *check_args(const struct cmd *cmd, json_t *req, json_t *id)
{
	const char *key;
	json_t *v;
	json_object_foreach(req, key, v) {
		if (strcmp(key, "cmd") != 0 && strcmp(key, "id") != 0 &&
				find_arg(cmd->args, key) == NULL) {
			return ipc_json_error(id, "bad-request",
				"unknown argument '%.64s' for '%s'", key, cmd->name);
		}
	}
	for (const struct arg *a = cmd->args; a->name != NULL; a++) {
		v = json_object_get(req, a->name);
		if (v == NULL || json_is_null(v)) {
			if (a->required) {
				return ipc_json_error(id, "bad-request",
					"missing argument '%s'", a->name);
			}
			continue;
		}
		json_t *err = check_arg(id, a, v);
		if (err != NULL) {
			return err;
		}
	}
	return NULL;
}

static json_t *dispatch(struct ipc_client *c, json_t *req, json_t *id)
{
	json_t *name = json_object_get(req, "cmd");
	if (name == NULL) {
		return ipc_json_error(id, "bad-request", "missing argument 'cmd'");
	}
	if (!json_is_string(name)) {
		return ipc_json_error(id, "bad-request", "argument 'cmd' must be a string");
	}
	const struct cmd *cmd = find_cmd(json_string_value(name));
	if (cmd == NULL) {
		return ipc_json_error(id, "unknown-command", "no command '%.64s'",
			json_string_value(name));
	}
	json_t *err = check_args(cmd, req, id);
	if (err != NULL) {
		return err;
	}
	enum xmppd_state st = xmppd_state(c->ipc->x);
	if ((cmd->flags & CMD_ONLINE) && st != XMPPD_ONLINE) {
		return ipc_json_error(id, "not-connected", "not connected (%s)",
			xmppd_state_name(st));
	}
	return cmd->run(c, req, id);
}

void commands_run(struct ipc_client *c, json_t *req)
{
	json_t *r = dispatch(c, req, json_object_get(req, "id"));
	if (r != NULL) {
		ipc_client_reply(c, r);
	}
}
