/*
 * libFuzzer entry for the client stream: the input is what a hostile
 * server sends over already established direct-TLS connections. The
 * first byte picks the TLS version offered for channel binding (bit 0)
 * and a chunk size (bits 1-7, 0 for none); the second the stream
 * management setup (see sm_setup). The rest is cut into connections at
 * each 0xfe byte, each connection into reads at each 0xff byte (neither
 * is ever valid in UTF-8, so no loss) and each read into chunks, so
 * split parsing, restarts after SASL (which drop the rest of a read),
 * every negotiation state and resumption with the state a previous
 * connection left get exercised.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. \
 *     tests/fuzz/fuzz-stream.c proto/stream.c proto/sm.c proto/sasl.c \
 *     proto/reader.c proto/xml.c proto/buf.c proto/alloc.c \
 *     $(pkg-config --cflags --libs libxml-2.0 libgsasl)
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/alloc.h"
#include "proto/ns.h"
#include "proto/sm.h"
#include "proto/stream.h"
#include "proto/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz {
	struct stream *s;
	struct sm *sm;
	size_t sent;
	bool failed;
	bool take_queue;	/* the owner takes the queue when online */
	uint64_t tag;
	uint64_t nacked;
};

static void send_presence(struct fuzz *f)
{
	struct xml *x = xml_new("presence", NS_CLIENT);
	stream_send_tagged(f->s, x, ++f->tag);
	xml_free(x);
}

static void take_queue(struct sm *sm)
{
	size_t n;
	struct sm_entry *q = sm_take_queue(sm, &n);
	for (size_t i = 0; i < n; i++) {
		free(q[i].data);
	}
	free(q);
}

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
	if (f->sm != NULL && f->take_queue) {
		take_queue(f->sm);
	}
	struct xml *x = xml_new("presence", NS_CLIENT);
	stream_send(f->s, x);
	xml_free(x);
	(void)jid;
}

static void on_resumed(void *ud, const char *jid)
{
	struct fuzz *f = ud;
	send_presence(f);
	stream_request_ack(f->s);
	(void)jid;
}

static void on_resume_failed(void *ud)
{
	(void)ud;
}

/* Each ack may let the owner send the next stanza, as its outbox would. */
static void on_acked(void *ud, uint64_t tag)
{
	struct fuzz *f = ud;
	if (tag > f->tag) {
		__builtin_trap();	/* never a tag we did not send */
	}
	if (++f->nacked % 3 == 0) {
		send_presence(f);
	}
}

static void on_stanza(void *ud, struct xml *x)
{
	struct fuzz *f = ud;
	/* Touch the whole tree, as a dispatcher would. */
	char *str = xml_to_string(x, NS_CLIENT);
	if (str != NULL && strlen(str) > 4096) {
		stream_close(f->s);
	} else if (str != NULL && strlen(str) % 2 == 1) {
		send_presence(f);
	} else if (str != NULL && strlen(str) % 7 == 0) {
		stream_request_ack(f->s);
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
	.acked = on_acked,
	.resumed = on_resumed,
	.resume_failed = on_resume_failed,
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

/*
 * Setup byte: bit 0 gives the streams a struct sm; bit 1 starts it as a
 * resumable session (id "sm-1") with bits 2-4 stanzas unacknowledged;
 * bit 5 makes the owner take the queue in cb.online; bits 6-7 move the
 * counters near 2^32 so they wrap.
 */
static void sm_setup(struct fuzz *f, struct sm *sm, uint8_t b)
{
	f->take_queue = b & 0x20;
	if (!(b & 1)) {
		return;
	}
	sm_init(sm);
	f->sm = sm;
	uint32_t base = (uint32_t)(b >> 6) * 0x55555555u;
	sm->h_in = base;
	sm->h_out = base;
	sm->acked = base;
	if (!(b & 2)) {
		return;
	}
	sm->resumable = true;
	sm->id = xstrdup("sm-1");
	sm->jid = xstrdup("juliet@example.com/balcony");
	for (unsigned i = 0; i < ((b >> 2) & 7u); i++) {
		sm_push(sm, ++f->tag, "<presence/>", 11);
	}
}

/* Feeds one connection's reads; false once its stream has failed. */
static bool feed_connection(struct stream *s, const uint8_t *data,
	size_t size, size_t chunk)
{
	while (size > 0) {
		const uint8_t *end = memchr(data, 0xff, size);
		size_t len = end != NULL ? (size_t)(end - data) : size;
		if (!feed_read(s, data, len, chunk)) {
			return false;
		}
		size_t skip = end != NULL ? len + 1 : len;
		data += skip;
		size -= skip;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2) {
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
	struct fuzz f = { 0 };
	struct sm sm;
	sm_setup(&f, &sm, data[1]);
	cfg.sm = f.sm;
	data += 2;
	size -= 2;

	do {
		const uint8_t *end = memchr(data, 0xfe, size);
		size_t len = end != NULL ? (size_t)(end - data) : size;
		f.failed = false;
		f.s = stream_new(&cfg, &callbacks, &f);
		stream_tls_ready(f.s, &tls);
		feed_connection(f.s, data, len, chunk);
		if (stream_state(f.s) == STREAM_ONLINE) {
			stream_close(f.s);
		}
		stream_free(f.s);
		f.s = NULL;
		size_t skip = end != NULL ? len + 1 : len;
		data += skip;
		size -= skip;
	} while (size > 0);
	if (f.sm != NULL) {
		sm_finish(f.sm);
	}
	return 0;
}
