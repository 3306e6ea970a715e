/*
 * libFuzzer entry point for the JID parser. Beyond not crashing, a JID
 * that parses must be a fixed point: its string form parses again to an
 * equal JID with the same string form, or comparisons would depend on how
 * often an address had been through jid_parse().
 *
 *   clang -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -g -I. \
 *       -fsanitize=fuzzer,address,undefined tests/fuzz/fuzz-jid.c \
 *       proto/jid.c proto/alloc.c $(pkg-config --cflags --libs libidn2) \
 *       -lunistring -o fuzz-jid
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/jid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what, const char *s)
{
	if (!ok) {
		fprintf(stderr, "fuzz-jid: %s: '%s'\n", what, s);
		abort();
	}
}

static void check_fixed_point(const struct jid *j)
{
	char *s = jid_to_string(j);
	char *bare = jid_bare_string(j);
	struct jid again;
	const char *err = NULL;

	check(jid_parse(&again, s, &err), err != NULL ? err : "reparse", s);
	check(jid_equal(j, &again), "reparse differs", s);
	char *s2 = jid_to_string(&again);
	check(strcmp(s, s2) == 0, "string form differs", s);
	char *bare2 = jid_prep(bare, true, &err);
	check(bare2 != NULL && strcmp(bare, bare2) == 0, "bare form differs", bare);

	struct jid copy;
	jid_copy(&copy, &again);
	check(jid_equal(&copy, j) && jid_bare_equal(&copy, j), "copy differs", s);
	jid_finish(&copy);
	free(bare2);
	free(s2);
	jid_finish(&again);
	free(bare);
	free(s);
}

/* Parses one NUL-terminated input and checks a successful parse is stable. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	struct jid j;

	if (s == NULL) {
		return 0;
	}
	memcpy(s, data, size);
	s[size] = '\0';
	if (jid_parse(&j, s, NULL)) {
		check_fixed_point(&j);
		jid_finish(&j);
	} else {
		check(j.local == NULL && j.domain == NULL && j.resource == NULL,
			"failed parse left parts", s);
	}
	free(s);
	return 0;
}
