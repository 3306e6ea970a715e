/*
 * Allocators that abort on failure, so that the only error paths left are
 * the ones that matter (tmux xmalloc.c). Secrets are wiped before free.
 */
#ifndef XMPPD_PROTO_ALLOC_H
#define XMPPD_PROTO_ALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
/* Grows an array to at least min elements; *cap is updated. */
void *xgrow(void *p, size_t *cap, size_t min, size_t elem);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Overwrites size bytes of p so the compiler cannot elide it. */
void xwipe(void *p, size_t size);
/* Wipes a NUL-terminated secret and frees it; accepts NULL. */
void freezero_str(char *s);

#endif
