/*
 * libFuzzer entry point for proto/reader.c.
 *
 * The first input byte picks the chunk size (low six bits, plus one) and
 * whether small limits apply (bit 6); the rest is fed after a stream
 * header in chunks of that size. A stanza named "proceed" or "success"
 * restarts the reader from inside the callback, as STARTTLS and SASL do;
 * the harness then feeds a fresh header before the next chunk. Every
 * stanza must serialize and parse back to the same bytes, the error
 * callback must come at most once and nothing may follow it. The whole
 * input is also given to reader_parse_element.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. \
 *     tests/fuzz/fuzz-reader.c proto/alloc.c proto/buf.c proto/xml.c \
 *     proto/reader.c $(pkg-config --cflags --libs libxml-2.0)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/ns.h"
#include "proto/reader.h"
#include "proto/xml.h"

#define HEADER "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " \
	"xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct state {
	struct reader *r;
	bool restarted;
	bool failed;
	bool closed;
	int stanzas;
};

static void check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz-reader: %s\n", what);
		abort();
	}
}

static void on_open(void *ud, const struct xml *h)
{
	struct state *s = ud;
	check(!s->failed, "stream_open after error");
	check(strcmp(h->name, "stream") == 0 && h->children == NULL,
		"bad header element");
}

/* The stanza must serialize, and what it serializes to must parse back
 * into a tree that serializes the same way. */
static void check_round_trip(const struct xml *x)
{
	char *once = xml_to_string(x, NS_CLIENT);
	check(once != NULL, "a parsed stanza does not serialize");
	const char *err = NULL;
	struct xml *y = reader_parse_element(once, strlen(once), NS_CLIENT, &err);
	if (y == NULL) {
		fprintf(stderr, "fuzz-reader: %s: %s\n", err, once);
		abort();
	}
	char *twice = xml_to_string(y, NS_CLIENT);
	check(twice != NULL && strcmp(once, twice) == 0, "round trip differs");
	free(twice);
	xml_free(y);
	free(once);
}

static void on_stanza(void *ud, struct xml *x)
{
	struct state *s = ud;
	check(!s->failed, "stanza after error");
	s->stanzas++;
	check_round_trip(x);
	if (strcmp(x->name, "proceed") == 0 || strcmp(x->name, "success") == 0) {
		reader_restart(s->r);
		s->restarted = true;
	}
}

static void on_close(void *ud)
{
	struct state *s = ud;
	check(!s->failed, "close after error");
	s->closed = true;
}

static void on_error(void *ud, const char *condition, const char *text)
{
	struct state *s = ud;
	check(!s->failed, "second error");
	check(condition != NULL && text != NULL, "error without text");
	s->failed = true;
}

static const struct reader_cb cb = {
	.stream_open = on_open,
	.stanza = on_stanza,
	.stream_close = on_close,
	.error = on_error,
};

static void feed_stream(const uint8_t *data, size_t size, size_t chunk,
	const struct reader_limits *limits)
{
	struct state s = { 0 };
	s.r = reader_new(&cb, &s, limits);
	bool ok = reader_feed(s.r, HEADER, strlen(HEADER));
	for (size_t off = 0; off < size && ok; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;
		if (s.restarted) {
			s.restarted = false;
			ok = reader_feed(s.r, HEADER, strlen(HEADER));
		}
		ok = ok && reader_feed(s.r, (const char *)data + off, n);
		check(ok == !s.failed, "feed result disagrees with error callback");
	}
	check(reader_failed(s.r) == s.failed, "reader_failed disagrees");
	if (s.failed) {
		check(!reader_feed(s.r, "<a/>", 4), "feed after error succeeded");
	}
	reader_free(s.r);
}

/* Feeds one fuzz input as a stream and as a single element. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0) {
		return 0;
	}
	size_t chunk = (size_t)(data[0] & 0x3f) + 1;
	struct reader_limits small = { .max_stanza = 600, .max_depth = 8 };
	feed_stream(data + 1, size - 1, chunk, data[0] & 0x40 ? &small : NULL);
	struct xml *x = reader_parse_element((const char *)data + 1, size - 1,
		NS_CLIENT, NULL);
	if (x != NULL) {
		check_round_trip(x);
		xml_free(x);
	}
	return 0;
}
