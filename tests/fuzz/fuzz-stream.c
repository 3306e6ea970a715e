/*
 * libFuzzer entry for the client stream: the input is what a hostile
 * server sends over an already established direct-TLS connection. The
 * first byte picks the TLS version offered for channel binding (bit 0)
 * and a chunk size (bits 1-7, 0 for none); the rest is cut into reads at
 * each 0xff byte (never valid in UTF-8, so no loss) and each read into
 * chunks, so split parsing, restarts after SASL (which drop the rest of
 * a read) and every negotiation state get exercised.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. \
 *     tests/fuzz/fuzz-stream.c proto/stream.c proto/sasl.c proto/reader.c \
 *     proto/xml.c proto/buf.c proto/alloc.c \
 *     $(pkg-config --cflags --libs libxml-2.0 libgsasl)
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/ns.h"
#include "proto/stream.h"
#include "proto/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz {
	struct stream *s;
	size_t sent;
	bool failed;
};

static void on_send(void *ud, const char *data, size_t len)
{
	struct fuzz *f = ud;
	f->sent += len;
	(void)data;
}

static void on_start_tls(void *ud)
{
	(void)ud;
}

static void on_online(void *ud, const char *jid)
{
	struct fuzz *f = ud;
	struct xml *x = xml_new("presence", NS_CLIENT);
	stream_send(f->s, x);
	xml_free(x);
	(void)jid;
}

static void on_stanza(void *ud, struct xml *x)
{
	struct fuzz *f = ud;
	/* Touch the whole tree, as a dispatcher would. */
	char *str = xml_to_string(x, NS_CLIENT);
	if (str != NULL && strlen(str) > 4096) {
		stream_close(f->s);
	}
	free(str);
}

static void on_failed(void *ud, enum stream_fail kind, const char *cond,
	const char *text)
{
	struct fuzz *f = ud;
	if (f->failed) {
		__builtin_trap();	/* cb.failed must run once */
	}
	f->failed = true;
	(void)kind;
	(void)cond;
	(void)text;
}

static void on_closed(void *ud)
{
	(void)ud;
}

static void on_trace(void *ud, bool out, const char *data, size_t len)
{
	(void)ud;
	(void)out;
	(void)data;
	(void)len;
}

static const struct stream_cb callbacks = {
	.send = on_send,
	.start_tls = on_start_tls,
	.online = on_online,
	.stanza = on_stanza,
	.failed = on_failed,
	.closed = on_closed,
	.trace = on_trace,
};

static const unsigned char unique[12] = "0123456789ab";
static const unsigned char exporter[32] = "exporter-exporter-exporter-expor";

/* Feeds one read in chunks; false once the stream has failed. */
static bool feed_read(struct stream *s, const uint8_t *p, size_t len,
	size_t chunk)
{
	for (size_t off = 0; off < len; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;
		if (!stream_feed(s, (const char *)p + off, n)) {
			return false;
		}
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1) {
		return 0;
	}
	struct stream_config cfg = {
		.jid = "juliet@example.com",
		.resource = "balcony",
		.password = "r0m30",
		.tls_required = true,
		.direct_tls = true,
		.limits = { .max_stanza = 65536, .max_depth = 32 },
	};
	bool tls12 = data[0] & 1;
	struct stream_tls_info tls = {
		.version = tls12 ? 12 : 13,
		.tls_unique = tls12 ? unique : NULL,
		.tls_unique_len = tls12 ? sizeof(unique) : 0,
		.tls_exporter = exporter,
		.tls_exporter_len = sizeof(exporter),
	};
	size_t chunk = data[0] >> 1 ? (size_t)(data[0] >> 1) : size;
	data++;
	size--;

	struct fuzz f = { 0 };
	f.s = stream_new(&cfg, &callbacks, &f);
	stream_tls_ready(f.s, &tls);
	while (size > 0) {
		const uint8_t *end = memchr(data, 0xff, size);
		size_t len = end != NULL ? (size_t)(end - data) : size;
		if (!feed_read(f.s, data, len, chunk)) {
			break;
		}
		size_t skip = end != NULL ? len + 1 : len;
		data += skip;
		size -= skip;
	}
	if (stream_state(f.s) == STREAM_ONLINE) {
		stream_close(f.s);
	}
	stream_free(f.s);
	return 0;
}
