#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/alloc.h"
#include "proto/buf.h"

void buf_init(struct buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void buf_finish(struct buf *b)
{
	free(b->data);
	buf_init(b);
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data != NULL) {
		b->data[0] = '\0';
	}
}

/* A first allocation of 128 bytes: most buffers hold a line or a stanza,
 * and growing from 8 costs a realloc per doubling. */
static void reserve(struct buf *b, size_t extra)
{
	size_t min = b->len + extra + 1;
	b->data = xgrow(b->data, &b->cap, b->cap == 0 && min < 128 ? 128 : min, 1);
}

void buf_reserve(struct buf *b, size_t extra)
{
	reserve(b, extra);
}

void buf_append(struct buf *b, const void *data, size_t len)
{
	reserve(b, len);
	if (len > 0) {
		memcpy(b->data + b->len, data, len);
	}
	b->len += len;
	b->data[b->len] = '\0';
}

void buf_puts(struct buf *b, const char *s)
{
	buf_append(b, s, strlen(s));
}

void buf_putc(struct buf *b, char c)
{
	buf_append(b, &c, 1);
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n <= 0) {
		return;
	}
	reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		buf_reset(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = '\0';
}

char *buf_steal(struct buf *b, size_t *len)
{
	char *p = b->data ? b->data : xstrdup("");
	if (len != NULL) {
		*len = b->len;
	}
	buf_init(b);
	return p;
}
