/*
 * Compact JSON encoding of jansson values, byte for byte what jansson's
 * json_dumps(JSON_COMPACT) writes, but fast: see jsonenc.c.
 */
#ifndef XMPPD_DAEMON_JSONENC_H
#define XMPPD_DAEMON_JSONENC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/buf.h"

/* Appends v (an object or an array) without a newline; false, and out
 * unchanged, when jansson would refuse to encode it. */
bool jsonenc_append(struct buf *out, const json_t *v);
/* Appends {"event":name,"seq":seq,...ev's members...}, the line a sink
 * writes for an event (without its newline); false as above. */
bool jsonenc_event(struct buf *out, const char *name, uint64_t seq,
	const json_t *ev);
/* Appends s (len bytes, NULs allowed) as a quoted, escaped JSON string;
 * false, and out unchanged, when s is not valid UTF-8. */
bool jsonenc_string(struct buf *out, const char *s, size_t len);
/* Appends ,"key":"s" (key klen bytes that need no escape, s len bytes);
 * false, and out unchanged, when s is not valid UTF-8. */
bool jsonenc_member_string(struct buf *out, const char *key, size_t klen,
	const char *s, size_t len);
/* Appends v in decimal, as jansson writes an integer. */
void jsonenc_integer(struct buf *out, json_int_t v);
/* Appends any value (string, number, object...); false, and out
 * unchanged, when jansson would refuse to encode it. */
bool jsonenc_value(struct buf *out, const json_t *v);
/* Length of the valid UTF-8 sequence (RFC 3629) at s, or 0 when s
 * does not start one; s is NUL-terminated. */
size_t jsonenc_utf8_len(const unsigned char *s);

#endif
