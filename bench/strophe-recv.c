/*
 * strophe-recv: the libstrophe side of the benchmarks (bench/README).
 * Logs in to the blaster, sends its initial presence, counts <message/>
 * stanzas until N have arrived, then disconnects. Reports on stdout, one
 * JSON object a line: "online", then "done" with the CLOCK_MONOTONIC
 * times (nanoseconds) of the first and last message.
 *
 *   strophe-recv PORT none|starttls|direct N [JID [PASSWORD]]
 *
 * Certificates are not checked (XMPP_CONN_FLAG_TRUST_TLS): the blaster's
 * is a throwaway one.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <strophe.h>

static unsigned long long want;
static unsigned long long got;
static uint64_t first_ns;
static uint64_t last_ns;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int on_message(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
	uint64_t t = now_ns();
	if (got++ == 0) {
		first_ns = t;
	}
	last_ns = t;
	if (got == want) {
		printf("{\"event\":\"done\",\"n\":%llu,\"first_ns\":%" PRIu64
			",\"last_ns\":%" PRIu64 "}\n", got, first_ns, last_ns);
		fflush(stdout);
		xmpp_disconnect(conn);
	}
	return 1;
}

static void on_conn(xmpp_conn_t *conn, xmpp_conn_event_t status, int error,
	xmpp_stream_error_t *stream_error, void *ud)
{
	xmpp_ctx_t *ctx = ud;
	if (status == XMPP_CONN_CONNECT) {
		xmpp_stanza_t *pres = xmpp_presence_new(ctx);
		xmpp_send(conn, pres);
		xmpp_stanza_release(pres);
		printf("{\"event\":\"online\"}\n");
		fflush(stdout);
	} else {
		xmpp_stop(ctx);
	}
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: strophe-recv PORT none|starttls|direct N "
			"[JID [PASSWORD]]\n");
		return 2;
	}
	unsigned short port = (unsigned short)atoi(argv[1]);
	long flags = XMPP_CONN_FLAG_TRUST_TLS;
	if (strcmp(argv[2], "none") == 0) {
		flags = XMPP_CONN_FLAG_DISABLE_TLS;
	} else if (strcmp(argv[2], "direct") == 0) {
		flags |= XMPP_CONN_FLAG_LEGACY_SSL;
	}
	want = strtoull(argv[3], NULL, 10);
	xmpp_initialize();
	xmpp_ctx_t *ctx = xmpp_ctx_new(NULL, NULL);
	xmpp_conn_t *conn = xmpp_conn_new(ctx);
	xmpp_conn_set_flags(conn, flags);
	xmpp_conn_set_jid(conn, argc > 4 ? argv[4] : "strophe@localhost/bench");
	xmpp_conn_set_pass(conn, argc > 5 ? argv[5] : "bench");
	xmpp_handler_add(conn, on_message, NULL, "message", NULL, ctx);
	if (xmpp_connect_client(conn, "127.0.0.1", port, on_conn, ctx) != 0) {
		fprintf(stderr, "strophe-recv: cannot connect\n");
		return 1;
	}
	xmpp_run(ctx);
	xmpp_conn_release(conn);
	xmpp_ctx_free(ctx);
	xmpp_shutdown();
	return got == want ? 0 : 1;
}
