#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/jsonenc.h"
#include "ipc/json.h"
#include "proto/alloc.h"

json_t *ipc_json_parse(const char *line, size_t len, json_t **error)
{
	json_error_t jerr;
	json_t *req = json_loadb(line, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
		&jerr);
	if (req == NULL) {
		*error = ipc_json_error(NULL, "bad-request", "invalid JSON: %s",
			jerr.text);
		return NULL;
	}
	if (!json_is_object(req)) {
		json_decref(req);
		*error = ipc_json_error(NULL, "bad-request",
			"a request must be a JSON object");
		return NULL;
	}
	return req;
}

json_t *ipc_json_ok(json_t *id)
{
	json_t *r = json_object();
	if (id != NULL) {
		json_object_set(r, "id", id);
	}
	json_object_set_new(r, "ok", json_true());
	return r;
}

json_t *ipc_json_error(json_t *id, const char *condition, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);

	json_t *err = json_object();
	json_object_set_new(err, "condition", ipc_json_string(condition));
	json_object_set_new(err, "text", ipc_json_string(text));
	json_t *r = json_object();
	if (id != NULL) {
		json_object_set(r, "id", id);
	}
	json_object_set_new(r, "ok", json_false());
	json_object_set_new(r, "error", err);
	return r;
}

json_t *ipc_json_string(const char *s)
{
	json_t *j = json_string(s);
	if (j != NULL) {
		return j;
	}
	char *copy = xstrdup(s);
	unsigned char *p = (unsigned char *)copy;
	while (*p != '\0') {
		size_t n = jsonenc_utf8_len(p);
		if (n == 0) {
			*p = '?';
			n = 1;
		}
		p += n;
	}
	j = json_string(copy);
	free(copy);
	return j;
}

bool ipc_json_encode(const json_t *obj, struct buf *out)
{
	size_t mark = out->len;
	if (!jsonenc_append(out, obj)) {
		return false;
	}
	if (out->len == mark) {
		return false;
	}
	buf_putc(out, '\n');
	return true;
}
