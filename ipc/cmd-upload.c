/*
 * HTTP File Upload (XEP-0363): upload-slot asks the server's upload
 * service for a slot and answers with its put and get URLs and the
 * headers the PUT must carry; the client does the HTTP transfer itself.
 * The handler holds the client's reply slot until the service answers.
 */
#include <stdint.h>
#include <string.h>

#include "daemon/upload.h"
#include "daemon/xmppd.h"
#include "ipc/client.h"
#include "ipc/cmd.h"
#include "ipc/json.h"

#define MAX_SIZE 9007199254740992.0	/* 2^53: exact in JSON numbers */

static json_t *cmd_upload_slot(struct ipc_client *c, json_t *req, json_t *id)
{
	const char *filename = cmd_str_arg(req, "filename");
	if (filename[0] == '\0') {
		return ipc_json_error(id, "bad-request", "argument 'filename' is empty");
	}
	if (strchr(filename, '/') != NULL) {
		/* Not every server refuses it (ejabberd 23.01 takes it). */
		return ipc_json_error(id, "bad-request",
			"argument 'filename' names a directory");
	}
	json_t *refused = NULL;
	struct cmd_wait *w = cmd_wait_new(c, id, &refused);
	if (w == NULL) {
		return refused;
	}
	struct upload_request r = {
		.filename = filename,
		.size = (uint64_t)json_integer_value(json_object_get(req, "size")),
		.content_type = cmd_str_arg(req, "content_type"),
	};
	struct xerr e = { 0 };
	if (upload_slot(c->ipc->x, &r, cmd_wait_answered, w, &e) < 0) {
		cmd_wait_fail(w, &e);
	}
	return NULL;
}

static const struct arg upload_slot_args[] = {
	{ "filename", ARG_STRING, true, NULL, 0, 0 },
	{ "size", ARG_INT, true, NULL, 0, MAX_SIZE },
	{ "content_type", ARG_STRING, false, NULL, 0, 0 },
	{ .name = NULL },
};

/* Sorted by name: looked up with bsearch. */
static const struct cmd upload_rows[] = {
	{ "upload-slot", cmd_upload_slot, upload_slot_args, CMD_ONLINE },
};

const struct cmd_table upload_commands = {
	upload_rows, sizeof(upload_rows) / sizeof(upload_rows[0]),
};
