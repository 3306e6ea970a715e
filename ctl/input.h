/*
 * What xmppctl takes from its user: numbers in its options, and a message
 * read from standard input, bounded.
 */
#ifndef XMPPD_CTL_INPUT_H
#define XMPPD_CTL_INPUT_H

#include <stdbool.h>
#include <stddef.h>

#define INPUT_MAX_BODY (1u << 20)	/* bytes of a message from stdin */

/*
 * Reads fd to its end into *out (a new NUL-terminated string, *len bytes
 * without the NUL). More than max bytes, or a read error, gives -1 with
 * *cause set (the caller frees it) and nothing in *out.
 */
int input_read_all(int fd, size_t max, char **out, size_t *len,
	char **cause);

/* Drops the newlines (and carriage returns) at the end of s. */
void input_trim_newlines(char *s, size_t *len);

/* Parses a decimal number without sign or spaces, at most max. */
bool input_parse_uint(const char *s, unsigned long long max,
	unsigned long long *out);

/* Parses seconds (a decimal number, more than 0 and at most 86400) into
 * milliseconds. */
bool input_parse_seconds(const char *s, long long *ms);

#endif
