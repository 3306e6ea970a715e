/*
 * JSON on the control socket (jansson): decoding request lines, building
 * replies and encoding any object as one compact line.
 */
#ifndef XMPPD_IPC_JSON_H
#define XMPPD_IPC_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "proto/buf.h"

/*
 * Decodes one request line (without its newline). Returns the request
 * object (caller decrefs), or NULL with *error set to a ready bad-request
 * reply (caller owns it) when the line is not JSON or not an object.
 */
json_t *ipc_json_parse(const char *line, size_t len, json_t **error);
/* {"id":id,"ok":true}; id (borrowed, may be NULL) is left out when NULL. */
json_t *ipc_json_ok(json_t *id);
/* {"id":id,"ok":false,"error":{"condition":…,"text":…}}; the text is
 * made valid UTF-8 if it is not. */
json_t *ipc_json_error(json_t *id, const char *condition, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A JSON string for s, with bytes that are not valid UTF-8 replaced by
 * '?', so text from elsewhere can never make encoding fail. */
json_t *ipc_json_string(const char *s);
/* Appends obj as one compact line ending in '\n' to out; false (out
 * unchanged) if jansson cannot encode it. */
bool ipc_json_encode(const json_t *obj, struct buf *out);

#endif
