/*
 * A growable byte buffer. data is always NUL-terminated (not counted in
 * len) so it can be handed to string functions.
 */
#ifndef XMPPD_PROTO_BUF_H
#define XMPPD_PROTO_BUF_H

#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
};

void buf_init(struct buf *b);
void buf_finish(struct buf *b);
void buf_reset(struct buf *b);
void buf_append(struct buf *b, const void *data, size_t len);
/* Makes room for extra more bytes (and the NUL) without writing them. */
void buf_reserve(struct buf *b, size_t extra);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes. */
void buf_consume(struct buf *b, size_t n);
/* Hands the contents to the caller (free() it) and resets b. */
char *buf_steal(struct buf *b, size_t *len);

#endif
