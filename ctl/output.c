#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/output.h"
#include "proto/alloc.h"

void output_json(FILE *f, const json_t *obj)
{
	json_dumpf(obj, f, JSON_COMPACT);
	fputc('\n', f);
}

/* A string's bytes, NULs included (they end no line here). */
static void put_string(FILE *f, const json_t *s)
{
	fwrite(json_string_value(s), 1, json_string_length(s), f);
}

/* A scalar as text: strings as they are, true/false, numbers. */
static void put_scalar(FILE *f, const json_t *v)
{
	if (json_is_string(v)) {
		put_string(f, v);
	} else if (json_is_true(v)) {
		fputs("true", f);
	} else if (json_is_false(v)) {
		fputs("false", f);
	} else if (json_is_null(v)) {
		fputs("null", f);
	} else {
		json_dumpf(v, f, JSON_COMPACT | JSON_ENCODE_ANY);
	}
}

static bool is_scalar(const json_t *v)
{
	return !json_is_object(v) && !json_is_array(v);
}

static bool all_scalars(const json_t *arr)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) {
		if (!is_scalar(v)) {
			return false;
		}
	}
	return true;
}

static void put_field(FILE *f, const char *key, const json_t *v)
{
	fprintf(f, "%s:", key);
	if (is_scalar(v)) {
		fputc(' ', f);
		put_scalar(f, v);
	} else if (json_is_array(v) && all_scalars(v)) {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e) {
			fputs("\n\t", f);
			put_scalar(f, e);
		}
	} else {
		fputc(' ', f);
		json_dumpf(v, f, JSON_COMPACT);
	}
	fputc('\n', f);
}

void output_fields(FILE *f, const json_t *obj)
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)obj, key, v) {
		if (strcmp(key, "id") != 0 && strcmp(key, "ok") != 0) {
			put_field(f, key, v);
		}
	}
}

/* Text with every newline followed by a tab. */
static void put_indented(FILE *f, const json_t *s)
{
	const char *p = json_string_value(s);
	size_t len = json_string_length(s);
	for (size_t i = 0; i < len; i++) {
		fputc(p[i], f);
		if (p[i] == '\n') {
			fputc('\t', f);
		}
	}
}

void output_message(FILE *f, const json_t *ev)
{
	const json_t *from = json_object_get(ev, "from");
	const json_t *body = json_object_get(ev, "body");
	const json_t *subject = json_object_get(ev, "subject");
	if (json_is_string(from)) {
		put_string(f, from);
	} else {
		fputs("(unknown)", f);
	}
	fputs(":", f);
	if (json_is_string(body)) {
		fputc(' ', f);
		put_indented(f, body);
	} else if (json_is_string(subject)) {
		fputs(" [", f);
		put_indented(f, subject);
		fputc(']', f);
	}
	fputc('\n', f);
}

/* Strings of an array joined by sep. */
static void put_joined(FILE *f, const json_t *arr, const char *sep)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) {
		if (i > 0) {
			fputs(sep, f);
		}
		put_scalar(f, v);
	}
}

static void put_contact(FILE *f, const json_t *item)
{
	const json_t *name = json_object_get(item, "name");
	put_scalar(f, json_object_get(item, "jid"));
	fputc('\t', f);
	const json_t *sub = json_object_get(item, "subscription");
	fputs(json_is_string(sub) ? json_string_value(sub) : "none", f);
	if (json_object_get(item, "ask") != NULL) {
		fputs(" (asked)", f);
	}
	fputc('\t', f);
	if (json_is_string(name)) {
		put_string(f, name);
	}
	fputc('\t', f);
	put_joined(f, json_object_get(item, "groups"), ",");
	fputc('\n', f);
}

void output_roster(FILE *f, const json_t *reply)
{
	size_t i;
	json_t *item;
	json_array_foreach(json_object_get(reply, "items"), i, item) {
		put_contact(f, item);
	}
}

void output_history(FILE *f, const json_t *reply)
{
	const json_t *msgs = json_object_get(reply, "messages");
	if (!json_is_array(msgs)) {
		output_fields(f, reply);
		return;
	}
	size_t i;
	json_t *m;
	json_array_foreach(msgs, i, m) {
		const json_t *delay = json_object_get(m, "delay");
		if (json_is_string(delay)) {
			put_string(f, delay);
			fputc(' ', f);
		}
		output_message(f, m);
	}
}

void output_join(FILE *f, const json_t *reply)
{
	fputs("joined ", f);
	put_scalar(f, json_object_get(reply, "room"));
	fputs(" as ", f);
	put_scalar(f, json_object_get(reply, "nick"));
	const json_t *role = json_object_get(reply, "role");
	const json_t *aff = json_object_get(reply, "affiliation");
	if (json_is_string(role) && json_is_string(aff)) {
		fprintf(f, " (%s, %s)", json_string_value(role),
			json_string_value(aff));
	}
	if (json_is_true(json_object_get(reply, "created"))) {
		fputs(", created", f);
	}
	fputc('\n', f);
	const json_t *subject = json_object_get(reply, "subject");
	if (json_is_string(subject) && json_string_length(subject) > 0) {
		fputs("subject: ", f);
		put_indented(f, subject);
		fputc('\n', f);
	}
}
