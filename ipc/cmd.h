/*
 * What a file of control-socket commands needs: the argument spec that
 * commands.c checks before a handler runs, the row type, and small
 * helpers. commands.c holds the core commands; each further area (roster,
 * group chat, ...) keeps its handlers and its own sorted table in
 * ipc/cmd-AREA.c and adds one line to the list of tables in commands.c.
 */
#ifndef XMPPD_IPC_CMD_H
#define XMPPD_IPC_CMD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct ipc_client;
struct xerr;

enum arg_type {
	ARG_STRING,
	ARG_JID,		/* a string that must parse as a JID */
	ARG_INT,		/* an integer within [min, max] */
	ARG_NUMBER,		/* any number within [min, max] */
	ARG_EVENTS,		/* "*" or an array of event names */
	ARG_STRINGS,		/* an array of at most max strings */
	ARG_BOOL,		/* true or false */
};

struct arg {
	const char *name;
	enum arg_type type;
	bool required;
	const char *const *choices;	/* for strings: allowed values, NULL-ended */
	double min;
	double max;
};

/* Returns the reply, or NULL when the handler queued it itself (or holds
 * a reply slot to fill later, see ipc/client.h). */
typedef json_t *(*cmd_cb)(struct ipc_client *c, json_t *req, json_t *id);

enum {
	CMD_ONLINE = 1 << 0,	/* refused with not-connected unless online */
};

struct cmd {
	const char *name;
	cmd_cb run;
	const struct arg *args;	/* ends with a NULL name */
	unsigned flags;
};

/* A table of commands, sorted by name. */
struct cmd_table {
	const struct cmd *rows;
	size_t n;
};

/* The areas' tables (ipc/cmd-AREA.c), listed in commands.c. */
extern const struct cmd_table message_commands;
extern const struct cmd_table muc_commands;
extern const struct cmd_table roster_commands;
extern const struct cmd_table disco_commands;
extern const struct cmd_table history_commands;
extern const struct cmd_table upload_commands;
extern const struct cmd_table ext_commands;

/* ipc/cmd-ext.c: c is closing; what it registered is given up. */
void cmd_ext_closed(struct ipc_client *c);
/* ipc/cmd-ext.c: takes a subscribe request's "ns" filter (or its
 * absence) for c's "stanza" events. */
void cmd_ext_subscribe(struct ipc_client *c, json_t *req);

/*
 * A reply that comes later, when the network has answered: it holds the
 * client's next reply slot (later replies queue behind it) and a
 * reference to the client, which may be gone by then.
 */
struct cmd_wait {
	struct ipc_client *client;
	struct ipc_reply *slot;
	json_t *id;
};

/* A wait for c's request id; NULL, with *refused set to the error reply,
 * when c already has too many requests waiting. */
struct cmd_wait *cmd_wait_new(struct ipc_client *c, json_t *id,
	json_t **refused);
/* A wait that ends within this loop turn (a send waiting for the
 * store's commit): not limited by IPC_MAX_WAITING, since the turn's
 * input is bounded already. */
struct cmd_wait *cmd_wait_commit(struct ipc_client *c, json_t *id);
/* Answers with reply (stolen; dropped if the client has gone) and frees
 * w. */
void cmd_wait_done(struct cmd_wait *w, json_t *reply);
/* Answers {"id","ok":true} merged with result (borrowed; may be NULL). */
void cmd_wait_ok(struct cmd_wait *w, json_t *result);
/* Answers with the core's error. */
void cmd_wait_fail(struct cmd_wait *w, const struct xerr *e);
/* The core's answer to a request that waits (the shape of disco_cb):
 * result (stolen; merged into the ok reply) or condition and text. */
void cmd_wait_answered(void *ud, json_t *result, const char *condition,
	const char *text);

/* A string argument (already checked), or NULL when absent. */
const char *cmd_str_arg(json_t *req, const char *name);
/* Is the argument present and not null? */
bool cmd_has_arg(json_t *req, const char *name);
/* A boolean argument: false when absent. */
bool cmd_bool_arg(json_t *req, const char *name);
/* The error reply for a failure the core reported. */
json_t *cmd_xerr_reply(json_t *id, const struct xerr *e);

#endif
