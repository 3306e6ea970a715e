#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/alloc.h"

static void oom(void)
{
	fputs("xmppd: out of memory\n", stderr);
	abort();
}

void *xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (p == NULL) {
		oom();
	}
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (p == NULL) {
		oom();
	}
	return p;
}

void *xrealloc(void *p, size_t size)
{
	p = realloc(p, size ? size : 1);
	if (p == NULL) {
		oom();
	}
	return p;
}

void *xgrow(void *p, size_t *cap, size_t min, size_t elem)
{
	if (min <= *cap) {
		return p;
	}
	size_t n = *cap ? *cap : 8;
	while (n < min) {
		n *= 2;
	}
	if (n > ((size_t)-1) / elem) {
		oom();
	}
	*cap = n;
	return xrealloc(p, n * elem);
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	/* Format into a stack buffer first: most strings fit, and gcc 12
	 * with sanitizers wrongly warns about vsnprintf(NULL, 0, ...). */
	char small[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		oom();
	}
	char *p = xmalloc((size_t)n + 1);
	if ((size_t)n < sizeof(small)) {
		memcpy(p, small, (size_t)n + 1);
		return p;
	}
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

void xwipe(void *p, size_t size)
{
	volatile unsigned char *v = p;
	while (size--) {
		*v++ = 0;
	}
}

void freezero_str(char *s)
{
	if (s == NULL) {
		return;
	}
	xwipe(s, strlen(s));
	free(s);
}
