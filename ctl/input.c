#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl/input.h"
#include "proto/alloc.h"

int input_read_all(int fd, size_t max, char **out, size_t *len,
	char **cause)
{
	size_t cap = 4096, n = 0;
	char *buf = xmalloc(cap);
	for (;;) {
		if (cap - n < 2) {
			buf = xgrow(buf, &cap, n + 4096, 1);
		}
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r == 0) {
			break;
		}
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r < 0) {
			*cause = xasprintf("cannot read standard input: %s",
				strerror(errno));
			goto err_buf;
		}
		n += (size_t)r;
		if (n > max) {
			*cause = xasprintf("the message on standard input is longer"
				" than %zu bytes", max);
			goto err_buf;
		}
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;

err_buf:
	free(buf);
	return -1;
}

void input_trim_newlines(char *s, size_t *len)
{
	while (*len > 0 && (s[*len - 1] == '\n' || s[*len - 1] == '\r')) {
		s[--*len] = '\0';
	}
}

bool input_parse_uint(const char *s, unsigned long long max,
	unsigned long long *out)
{
	if (s[0] < '0' || s[0] > '9') {
		return false;
	}
	unsigned long long v = 0;
	for (const char *p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9') {
			return false;
		}
		unsigned d = (unsigned)(*p - '0');
		if (d > max || v > (max - d) / 10) {
			return false;
		}
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

bool input_parse_seconds(const char *s, long long *ms)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end != '\0' || errno != 0 || !(v > 0 && v <= 86400)) {
		return false;
	}
	*ms = (long long)(v * 1000 + 0.999);
	return true;
}
