/*
 * Transport tests: the client transport runs on a uv loop in the test
 * thread against a small blocking GnuTLS server in a second thread on
 * loopback. The certificates (a test CA, a good server certificate for
 * localhost/127.0.0.1, one from an unknown CA, a self-signed one, an
 * expired one, a not yet valid one and one for the wrong name; every leaf
 * shares one key, so one pin fits them all) are generated at test time;
 * only the CA is written to a temporary directory, as the ca_file the
 * transport loads.
 *
 * Each test describes a scenario: the server's mode and a few client
 * hooks. The client ends a scenario by freeing the transport from inside
 * its callback (which the transport allows), so the server thread sees
 * the connection close and returns. A watchdog timer turns a stall into a
 * failed assertion instead of a hang.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <uv.h>

#include "daemon/log.h"
#include "daemon/transport.h"
#include "proto/alloc.h"
#include "proto/buf.h"

#define BURST_SIZE (1024 * 1024)
#define ECHO_SIZE (200 * 1024)
#define WATCHDOG_MS 8000
#define TLS12 "NORMAL:-VERS-ALL:+VERS-TLS1.2"
#define PIN_SIZE 64

/* Certificates ------------------------------------------------------------ */

struct certs {
	gnutls_x509_privkey_t ca_key;
	gnutls_x509_crt_t ca;
	gnutls_x509_privkey_t rogue_key;
	gnutls_x509_crt_t rogue;
	gnutls_x509_privkey_t key;	/* the server's, for every leaf */
	gnutls_x509_crt_t good;
	gnutls_x509_crt_t unknown_ca;
	gnutls_x509_crt_t self_signed;
	gnutls_x509_crt_t expired;
	gnutls_x509_crt_t future;
	gnutls_x509_crt_t wrong_name;
	char dir[64];
	char ca_file[128];
};

static struct certs certs;

static gnutls_x509_privkey_t make_key(void)
{
	gnutls_x509_privkey_t k;
	cr_assert(eq(int, gnutls_x509_privkey_init(&k), 0));
	cr_assert(eq(int, gnutls_x509_privkey_generate(k, GNUTLS_PK_ECDSA,
		GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0), 0));
	return k;
}

struct leaf {
	const char *cn;
	const char *dns;	/* subjectAltName dNSName, or NULL */
	const char *ip;		/* subjectAltName iPAddress, or NULL */
	long from_days;		/* validity relative to now */
	long to_days;
};

static void set_common(gnutls_x509_crt_t c, gnutls_x509_privkey_t key, const char *cn,
	long from_days, long to_days)
{
	static unsigned char serial;
	unsigned char sn[2] = { 0x01, ++serial };
	time_t now = time(NULL);
	cr_assert(eq(int, gnutls_x509_crt_set_version(c, 3), 0));
	cr_assert(eq(int, gnutls_x509_crt_set_key(c, key), 0));
	cr_assert(eq(int, gnutls_x509_crt_set_serial(c, sn, sizeof(sn)), 0));
	cr_assert(eq(int, gnutls_x509_crt_set_dn_by_oid(c, GNUTLS_OID_X520_COMMON_NAME,
		0, cn, strlen(cn)), 0));
	gnutls_x509_crt_set_activation_time(c, now + from_days * 86400);
	gnutls_x509_crt_set_expiration_time(c, now + to_days * 86400);
}

static gnutls_x509_crt_t make_ca(gnutls_x509_privkey_t key, const char *cn)
{
	gnutls_x509_crt_t c;
	cr_assert(eq(int, gnutls_x509_crt_init(&c), 0));
	set_common(c, key, cn, -1, 30);
	gnutls_x509_crt_set_basic_constraints(c, 1, -1);
	gnutls_x509_crt_set_key_usage(c, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN);
	cr_assert(eq(int, gnutls_x509_crt_sign2(c, c, key, GNUTLS_DIG_SHA256, 0), 0));
	return c;
}

/* A leaf with the server's key, signed by issuer (by itself if NULL). */
static gnutls_x509_crt_t make_leaf(const struct leaf *l, gnutls_x509_crt_t issuer,
	gnutls_x509_privkey_t issuer_key)
{
	gnutls_x509_crt_t c;
	cr_assert(eq(int, gnutls_x509_crt_init(&c), 0));
	set_common(c, certs.key, l->cn, l->from_days, l->to_days);
	gnutls_x509_crt_set_basic_constraints(c, 0, -1);
	gnutls_x509_crt_set_key_usage(c, GNUTLS_KEY_DIGITAL_SIGNATURE);
	gnutls_x509_crt_set_key_purpose_oid(c, GNUTLS_KP_TLS_WWW_SERVER, 0);
	if (l->dns != NULL) {
		cr_assert(eq(int, gnutls_x509_crt_set_subject_alt_name(c, GNUTLS_SAN_DNSNAME,
			l->dns, strlen(l->dns), GNUTLS_FSAN_APPEND), 0));
	}
	if (l->ip != NULL) {
		unsigned char a[4];
		cr_assert(eq(int, inet_pton(AF_INET, l->ip, a), 1));
		cr_assert(eq(int, gnutls_x509_crt_set_subject_alt_name(c,
			GNUTLS_SAN_IPADDRESS, a, sizeof(a), GNUTLS_FSAN_APPEND), 0));
	}
	cr_assert(eq(int, gnutls_x509_crt_sign2(c, issuer ? issuer : c,
		issuer ? issuer_key : certs.key, GNUTLS_DIG_SHA256, 0), 0));
	return c;
}

static void write_ca_file(void)
{
	gnutls_datum_t pem;
	snprintf(certs.dir, sizeof(certs.dir), "/tmp/xmppd-transport-XXXXXX");
	cr_assert(not(zero(ptr, mkdtemp(certs.dir))));
	snprintf(certs.ca_file, sizeof(certs.ca_file), "%s/ca.pem", certs.dir);
	cr_assert(eq(int, gnutls_x509_crt_export2(certs.ca, GNUTLS_X509_FMT_PEM, &pem), 0));
	FILE *f = fopen(certs.ca_file, "w");
	cr_assert(not(zero(ptr, f)));
	cr_assert(eq(sz, fwrite(pem.data, 1, pem.size, f), (size_t)pem.size));
	fclose(f);
	gnutls_free(pem.data);
}

static void make_certs(void)
{
	static const struct leaf good = { "localhost", "localhost", "127.0.0.1", -1, 30 };
	static const struct leaf expired = { "localhost", "localhost", "127.0.0.1", -20, -10 };
	static const struct leaf future = { "localhost", "localhost", "127.0.0.1", 10, 20 };
	static const struct leaf wrong = { "other.example", "other.example", NULL, -1, 30 };
	certs.ca_key = make_key();
	certs.ca = make_ca(certs.ca_key, "xmppd test CA");
	certs.rogue_key = make_key();
	certs.rogue = make_ca(certs.rogue_key, "xmppd rogue CA");
	certs.key = make_key();
	certs.good = make_leaf(&good, certs.ca, certs.ca_key);
	certs.unknown_ca = make_leaf(&good, certs.rogue, certs.rogue_key);
	certs.self_signed = make_leaf(&good, NULL, NULL);
	certs.expired = make_leaf(&expired, certs.ca, certs.ca_key);
	certs.future = make_leaf(&future, certs.ca, certs.ca_key);
	certs.wrong_name = make_leaf(&wrong, certs.ca, certs.ca_key);
	write_ca_file();
}

static void free_certs(void)
{
	gnutls_x509_crt_t crts[] = { certs.ca, certs.rogue, certs.good, certs.unknown_ca,
		certs.self_signed, certs.expired, certs.future, certs.wrong_name };
	for (size_t i = 0; i < sizeof(crts) / sizeof(crts[0]); i++) {
		gnutls_x509_crt_deinit(crts[i]);
	}
	gnutls_x509_privkey_deinit(certs.ca_key);
	gnutls_x509_privkey_deinit(certs.rogue_key);
	gnutls_x509_privkey_deinit(certs.key);
	unlink(certs.ca_file);
	rmdir(certs.dir);
}

/* The server thread ------------------------------------------------------- */

enum srv_mode {
	SRV_ECHO,	/* TLS, echo everything */
	SRV_STARTTLS,	/* plain until <starttls/>, <proceed/>, then echo */
	SRV_BURST,	/* TLS, 1 MiB with key updates, then only wait */
	SRV_CLOSE,	/* TLS, "bye", close without close_notify */
	SRV_BYE,	/* TLS, "bye", close_notify, then wait */
	SRV_SINK,	/* TLS, read until close_notify, then the TCP FIN */
	SRV_SILENT,	/* accept, never answer */
	SRV_PLAIN_CLOSE, /* no TLS: "hello", then close */
};

struct server {
	enum srv_mode mode;
	gnutls_x509_crt_t crt;
	const char *priority;
	int lfd;
	int port;
	pthread_t thread;
	gnutls_certificate_credentials_t cred;
	gnutls_datum_t ticket_key;
	/* results, read after the join */
	bool handshake_ok;
	char sni[256];
	char alpn[64];
	struct buf got;
	bool got_close_notify;
	bool got_fin;
	gnutls_datum_t unique;	/* the server's view of the bindings */
	gnutls_datum_t exporter;
};

static struct server srv;

static unsigned char pattern(size_t i)
{
	return (unsigned char)((i * 7) ^ (i >> 9));
}

static void set_timeout(int fd)
{
	struct timeval tv = { .tv_sec = 15 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int listen_loopback(bool do_listen, int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert(fd >= 0);
	cr_assert(eq(int, bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0));
	cr_assert(eq(int, getsockname(fd, (struct sockaddr *)&sa, &len), 0));
	if (do_listen) {
		cr_assert(eq(int, listen(fd, 4), 0));
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

static bool srv_starttls(int fd)
{
	char b[256];
	struct buf in;
	buf_init(&in);
	while (strstr(in.data ? in.data : "", "<starttls/>") == NULL) {
		ssize_t n = recv(fd, b, sizeof(b), 0);
		if (n <= 0) {
			buf_finish(&in);
			return false;
		}
		buf_append(&in, b, (size_t)n);
	}
	buf_append(&srv.got, in.data, in.len);
	buf_finish(&in);
	return send(fd, "<proceed/>", 10, MSG_NOSIGNAL) == 10;
}

static gnutls_session_t srv_session(int fd)
{
	gnutls_session_t s;
	gnutls_datum_t alpn = { (unsigned char *)"xmpp-client", 11 };
	gnutls_init(&s, GNUTLS_SERVER);
	gnutls_priority_set_direct(s, srv.priority ? srv.priority : "NORMAL", NULL);
	gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, srv.cred);
	gnutls_alpn_set_protocols(s, &alpn, 1, 0);
	gnutls_session_ticket_enable_server(s, &srv.ticket_key);
	gnutls_transport_set_int(s, fd);
	return s;
}

static void srv_record_names(gnutls_session_t s)
{
	size_t len = sizeof(srv.sni);
	unsigned type;
	gnutls_datum_t alpn;
	if (gnutls_server_name_get(s, srv.sni, &len, &type, 0) < 0) {
		srv.sni[0] = '\0';
	}
	if (gnutls_alpn_get_selected_protocol(s, &alpn) == 0) {
		snprintf(srv.alpn, sizeof(srv.alpn), "%.*s", (int)alpn.size, alpn.data);
	}
	gnutls_session_channel_binding(s, GNUTLS_CB_TLS_UNIQUE, &srv.unique);
	gnutls_session_channel_binding(s, GNUTLS_CB_TLS_EXPORTER, &srv.exporter);
}

static void srv_send(gnutls_session_t s, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = gnutls_record_send(s, p, len);
		if (n <= 0) {
			return;
		}
		p += n;
		len -= (size_t)n;
	}
}

/* Reads until the client's close_notify or the connection ends. */
static void srv_read_all(gnutls_session_t s, bool echo)
{
	char b[16384];
	for (;;) {
		ssize_t n = gnutls_record_recv(s, b, sizeof(b));
		if (n == 0) {
			srv.got_close_notify = true;
			return;
		}
		if (n < 0) {
			return;
		}
		buf_append(&srv.got, b, (size_t)n);
		if (echo) {
			srv_send(s, b, (size_t)n);
		}
	}
}

static void cork(int fd, int on)
{
	setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
}

/* Records of many sizes up to 16 KiB, with a TLS 1.3 key update halfway
 * (asking the client to answer) and one right before the last record (GnuTLS
 * refuses more than 8 a second), all corked into as few segments as possible:
 * a post-handshake message followed by application data in the same read
 * is what strands data in a drain loop that stops at GNUTLS_E_AGAIN. */
static void srv_burst(gnutls_session_t s, int fd)
{
	unsigned char *data = xmalloc(BURST_SIZE);
	size_t off = 0;
	size_t step = 1;
	bool halfway = false;
	for (size_t i = 0; i < BURST_SIZE; i++) {
		data[i] = pattern(i);
	}
	cork(fd, 1);
	while (off < BURST_SIZE) {
		size_t n = step < BURST_SIZE - off ? step : BURST_SIZE - off;
		if (!halfway && off >= BURST_SIZE / 2) {
			gnutls_session_key_update(s, GNUTLS_KU_PEER);
			halfway = true;
		} else if (off + n == BURST_SIZE) {
			gnutls_session_key_update(s, 0);
		}
		srv_send(s, data + off, n);
		off += n;
		step = step * 3 % 16384 + 1;
	}
	cork(fd, 0);
	free(data);
	srv_read_all(s, false);
}

static void srv_wait_fin(int fd)
{
	char b[256];
	for (;;) {
		ssize_t n = recv(fd, b, sizeof(b), 0);
		if (n == 0) {
			srv.got_fin = true;
		}
		if (n <= 0) {
			return;
		}
	}
}

static void srv_run_tls(gnutls_session_t s, int fd)
{
	switch (srv.mode) {
	case SRV_ECHO:
	case SRV_STARTTLS:
		srv_read_all(s, true);
		break;
	case SRV_BURST:
		srv_burst(s, fd);
		break;
	case SRV_CLOSE:
		srv_send(s, "bye", 3);
		break;
	case SRV_BYE:
		srv_send(s, "bye", 3);
		gnutls_bye(s, GNUTLS_SHUT_WR);
		srv_read_all(s, false);
		break;
	case SRV_SINK:
		srv_read_all(s, false);
		srv_wait_fin(fd);
		break;
	case SRV_SILENT:
	case SRV_PLAIN_CLOSE:
		break;
	}
}

static void srv_serve(int fd)
{
	if (srv.mode == SRV_SILENT) {
		srv_wait_fin(fd);
		return;
	}
	if (srv.mode == SRV_PLAIN_CLOSE) {
		send(fd, "hello", 5, MSG_NOSIGNAL);
		return;
	}
	if (srv.mode == SRV_STARTTLS && !srv_starttls(fd)) {
		return;
	}
	gnutls_session_t s = srv_session(fd);
	int r;
	do {
		r = gnutls_handshake(s);
	} while (r < 0 && !gnutls_error_is_fatal(r));
	if (r == 0) {
		srv.handshake_ok = true;
		srv_record_names(s);
		srv_run_tls(s, fd);
	}
	gnutls_deinit(s);
}

static void *srv_main(void *arg)
{
	int fd = accept(srv.lfd, NULL, NULL);
	if (fd < 0) {
		return NULL;
	}
	set_timeout(fd);
	srv_serve(fd);
	close(fd);
	return NULL;
}

static void srv_start(enum srv_mode mode, gnutls_x509_crt_t crt, const char *priority)
{
	srv.mode = mode;
	srv.crt = crt;
	srv.priority = priority;
	buf_init(&srv.got);
	cr_assert(eq(int, gnutls_certificate_allocate_credentials(&srv.cred), 0));
	cr_assert(eq(int, gnutls_certificate_set_x509_key(srv.cred, &crt, 1, certs.key), 0));
	cr_assert(eq(int, gnutls_session_ticket_key_generate(&srv.ticket_key), 0));
	srv.lfd = listen_loopback(true, &srv.port);
	set_timeout(srv.lfd);
	cr_assert(eq(int, pthread_create(&srv.thread, NULL, srv_main, NULL), 0));
}

static void srv_join(void)
{
	pthread_join(srv.thread, NULL);
	close(srv.lfd);
	gnutls_certificate_free_credentials(srv.cred);
	gnutls_free(srv.ticket_key.data);
}

/* The client side --------------------------------------------------------- */

struct client;

struct scenario {
	void (*connected)(struct client *c);
	void (*tls_ready)(struct client *c);
	void (*data)(struct client *c);
};

struct client {
	uv_loop_t loop;
	uv_timer_t watchdog;
	struct transport *t;
	struct transport_config cfg;
	const struct scenario *scn;
	bool done;
	bool timed_out;
	int connected;
	int tls_ready;
	int errors;
	int data_calls;
	int calls_after_done;
	bool connected_with_tls;
	enum transport_error err;
	char reason[512];
	struct buf got;
	size_t expect;		/* finish once this many bytes arrived */
	size_t pending_after_write;
	bool was_tls_before;
	struct stream_tls_info info;
	unsigned char unique[64];
	unsigned char exporter[64];
	char desc[64];
	char peer_pin[PIN_SIZE];	/* transport_peer_pin once TLS was up */
	bool pin_at_error;	/* transport_peer_pin was set in on_error */
};

static struct client cl;

static void finish(struct client *c)
{
	if (c->done) {
		return;
	}
	c->done = true;
	transport_free(c->t);
	uv_close((uv_handle_t *)&c->watchdog, NULL);
}

static void save_info(struct client *c, const struct stream_tls_info *tls)
{
	c->info = *tls;
	if (tls->tls_unique != NULL) {
		cr_assert(tls->tls_unique_len <= sizeof(c->unique));
		memcpy(c->unique, tls->tls_unique, tls->tls_unique_len);
	}
	if (tls->tls_exporter != NULL) {
		cr_assert(tls->tls_exporter_len <= sizeof(c->exporter));
		memcpy(c->exporter, tls->tls_exporter, tls->tls_exporter_len);
	}
	const char *desc = transport_tls_desc(c->t);
	snprintf(c->desc, sizeof(c->desc), "%s", desc ? desc : "");
	const char *pin = transport_peer_pin(c->t);
	snprintf(c->peer_pin, sizeof(c->peer_pin), "%s", pin ? pin : "");
}

static void on_connected(void *ud, const struct stream_tls_info *tls)
{
	struct client *c = ud;
	c->connected++;
	c->calls_after_done += c->done;
	if (tls != NULL) {
		c->connected_with_tls = true;
		save_info(c, tls);
	}
	if (c->scn->connected != NULL) {
		c->scn->connected(c);
	}
}

static void on_tls_ready(void *ud, const struct stream_tls_info *tls)
{
	struct client *c = ud;
	c->tls_ready++;
	c->calls_after_done += c->done;
	save_info(c, tls);
	if (c->scn->tls_ready != NULL) {
		c->scn->tls_ready(c);
	}
}

static void on_data(void *ud, const char *data, size_t len)
{
	struct client *c = ud;
	c->data_calls++;
	c->calls_after_done += c->done;
	buf_append(&c->got, data, len);
	if (c->scn->data != NULL) {
		c->scn->data(c);
	}
	if (c->expect > 0 && c->got.len >= c->expect) {
		finish(c);
	}
}

static void on_error(void *ud, enum transport_error err, const char *reason)
{
	struct client *c = ud;
	c->errors++;
	c->calls_after_done += c->done;
	c->err = err;
	c->pin_at_error = transport_peer_pin(c->t) != NULL;
	snprintf(c->reason, sizeof(c->reason), "%s", reason);
	finish(c);
}

static void on_watchdog(uv_timer_t *timer)
{
	struct client *c = timer->data;
	c->timed_out = true;
	finish(c);
}

static const struct transport_cb client_cb = {
	.connected = on_connected,
	.data = on_data,
	.tls_ready = on_tls_ready,
	.error = on_error,
};

static void client_config(bool direct_tls)
{
	cl.cfg = (struct transport_config){
		.host = "127.0.0.1",
		.port = srv.port,
		.direct_tls = direct_tls,
		.server_name = "localhost",
		.ca_file = certs.ca_file,
		.verify = true,
	};
}

static void client_start(const struct scenario *scn)
{
	cl.scn = scn;
	cr_assert(eq(int, uv_loop_init(&cl.loop), 0));
	uv_timer_init(&cl.loop, &cl.watchdog);
	cl.watchdog.data = &cl;
	uv_timer_start(&cl.watchdog, on_watchdog, WATCHDOG_MS, 0);
	cl.t = transport_new(&cl.loop, &cl.cfg, &client_cb, &cl);
	transport_connect(cl.t);
}

/* Runs the scenario to its end and checks that nothing is left behind. */
static void client_run(void)
{
	uv_run(&cl.loop, UV_RUN_DEFAULT);
	cr_assert(cl.done, "the loop ended before the scenario did");
	cr_assert(eq(int, uv_loop_close(&cl.loop), 0));
	cr_expect(not(cl.timed_out), "stalled: %zu bytes received", cl.got.len);
	cr_expect(eq(int, cl.calls_after_done, 0));
}

static void setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	log_init(LOG_WARN, 0);
	memset(&srv, 0, sizeof(srv));
	memset(&cl, 0, sizeof(cl));
	srv.lfd = -1;
	buf_init(&cl.got);
	make_certs();
}

static void teardown(void)
{
	buf_finish(&cl.got);
	buf_finish(&srv.got);
	gnutls_free(srv.unique.data);
	gnutls_free(srv.exporter.data);
	free_certs();
}

TestSuite(transport, .init = setup, .fini = teardown, .timeout = 60);

static bool got_equals(const struct buf *b, const char *s, size_t len)
{
	return b->len == len && memcmp(b->data, s, len) == 0;
}

/* Direct TLS echo --------------------------------------------------------- */

static char *echo_payload(void)
{
	char *p = xmalloc(ECHO_SIZE);
	for (size_t i = 0; i < ECHO_SIZE; i++) {
		p[i] = (char)pattern(i);
	}
	return p;
}

static void echo_connected(struct client *c)
{
	char *p = echo_payload();
	transport_write(c->t, p, ECHO_SIZE);
	c->pending_after_write = transport_pending(c->t);
	free(p);
}

static const struct scenario echo_scn = { .connected = echo_connected };

Test(transport, direct_tls_echo)
{
	srv_start(SRV_ECHO, certs.good, NULL);
	client_config(true);
	cl.expect = 5 + ECHO_SIZE;
	client_start(&echo_scn);
	transport_write(cl.t, "hello", 5);	/* before the link is up */
	cr_assert(eq(sz, transport_pending(cl.t), 5));
	client_run();
	srv_join();

	cr_assert(eq(int, cl.errors, 0), "error: %s", cl.reason);
	cr_assert(eq(int, cl.connected, 1));
	cr_assert(cl.connected_with_tls);
	cr_assert(eq(int, cl.tls_ready, 0));
	cr_assert(cl.pending_after_write >= ECHO_SIZE);
	cr_assert(eq(sz, cl.got.len, 5 + ECHO_SIZE));
	cr_assert(eq(int, memcmp(cl.got.data, "hello", 5), 0));
	char *p = echo_payload();
	cr_assert(eq(int, memcmp(cl.got.data + 5, p, ECHO_SIZE), 0));
	free(p);
	cr_assert(srv.handshake_ok);
	cr_assert(eq(str, srv.sni, "localhost"));
	cr_assert(eq(str, srv.alpn, "xmpp-client"));
	cr_assert(eq(int, strncmp(cl.desc, "TLS1.", 5), 0), "desc %s", cl.desc);
}

/* STARTTLS ---------------------------------------------------------------- */

static void starttls_connected(struct client *c)
{
	c->was_tls_before = transport_is_tls(c->t) || transport_tls_desc(c->t) != NULL ||
		transport_peer_pin(c->t) != NULL;
	transport_write(c->t, "<starttls/>", 11);
}

static void starttls_data(struct client *c)
{
	if (c->tls_ready == 0 && strstr(c->got.data, "<proceed/>") != NULL) {
		buf_reset(&c->got);
		transport_starttls(c->t);
		transport_write(c->t, "ping", 4);	/* during the handshake */
	}
}

static void starttls_ready(struct client *c)
{
	cr_assert(transport_is_tls(c->t));
	transport_write(c->t, "pong", 4);
}

static const struct scenario starttls_scn = {
	.connected = starttls_connected,
	.tls_ready = starttls_ready,
	.data = starttls_data,
};

Test(transport, starttls_echo)
{
	srv_start(SRV_STARTTLS, certs.good, NULL);
	client_config(false);
	cl.expect = 8;
	client_start(&starttls_scn);
	client_run();
	srv_join();

	cr_assert(eq(int, cl.errors, 0), "error: %s", cl.reason);
	cr_assert(eq(int, cl.connected, 1));
	cr_assert(not(cl.connected_with_tls));
	cr_assert(not(cl.was_tls_before));
	cr_assert(eq(int, cl.tls_ready, 1));
	cr_assert(got_equals(&cl.got, "pingpong", 8), "got %s", cl.got.data);
	cr_assert(got_equals(&srv.got, "<starttls/>pingpong", 19), "server got %s",
		srv.got.data);
	cr_assert(eq(str, srv.sni, "localhost"));
	cr_assert(eq(str, srv.alpn, ""), "no ALPN with STARTTLS");
}

/* Versions and channel binding -------------------------------------------- */

static void ping_connected(struct client *c)
{
	transport_write(c->t, "ping", 4);
}

static const struct scenario ping_scn = { .connected = ping_connected };

Test(transport, tls12_gives_tls_unique)
{
	srv_start(SRV_ECHO, certs.good, NULL);
	client_config(true);
	cl.cfg.priority = TLS12;
	cl.expect = 4;
	client_start(&ping_scn);
	client_run();
	srv_join();

	cr_assert(eq(int, cl.errors, 0), "error: %s", cl.reason);
	cr_assert(eq(int, cl.info.version, 12));
	cr_assert(not(zero(ptr, (void *)cl.info.tls_unique)));
	cr_assert(eq(sz, cl.info.tls_unique_len, 12));
	cr_assert(eq(sz, srv.unique.size, 12));
	cr_assert(eq(int, memcmp(cl.unique, srv.unique.data, 12), 0));
	cr_assert(eq(int, strncmp(cl.desc, "TLS1.2 ", 7), 0), "desc %s", cl.desc);
	cr_assert(got_equals(&cl.got, "ping", 4));
}

Test(transport, tls13_gives_exporter_only)
{
	log_init(LOG_DEBUG, TRACE_TLS);	/* runs the trace code too */
	srv_start(SRV_ECHO, certs.good, NULL);
	client_config(true);
	cl.expect = 4;
	client_start(&ping_scn);
	client_run();
	srv_join();

	cr_assert(eq(int, cl.errors, 0), "error: %s", cl.reason);
	cr_assert(eq(int, cl.info.version, 13));
	cr_assert(zero(ptr, (void *)cl.info.tls_unique));
	cr_assert(eq(sz, cl.info.tls_unique_len, 0));
	cr_assert(not(zero(ptr, (void *)cl.info.tls_exporter)));
	cr_assert(eq(sz, cl.info.tls_exporter_len, 32));
	cr_assert(eq(sz, srv.exporter.size, 32));
	cr_assert(eq(int, memcmp(cl.exporter, srv.exporter.data, 32), 0));
	cr_assert(eq(int, strncmp(cl.desc, "TLS1.3 ", 7), 0), "desc %s", cl.desc);
}

Test(transport, refuses_tls11)
{
	srv_start(SRV_ECHO, certs.good, "NORMAL:-VERS-ALL:+VERS-TLS1.1");
	client_config(true);
	client_start(&ping_scn);
	client_run();
	srv_join();

	cr_assert(eq(int, cl.errors, 1));
	cr_assert(eq(int, cl.err, TRANSPORT_ERR_TLS), "%s", cl.reason);
	cr_assert(eq(int, cl.connected, 0));
	cr_assert(not(srv.handshake_ok));
}

/* Certificate checks ------------------------------------------------------ */

static void expect_cert_failure(gnutls_x509_crt_t crt, const char *words)
{
	srv_start(SRV_ECHO, crt, NULL);
	client_config(true);
	client_start(&ping_scn);
	client_run();
	srv_join();

	cr_assert(eq(int, cl.errors, 1));
	cr_assert(eq(int, cl.err, TRANSPORT_ERR_TLS));
	cr_assert(eq(int, cl.connected, 0));
	cr_assert(not(zero(ptr, strstr(cl.reason, words))), "reason: %s", cl.reason);
	cr_assert(not(zero(ptr, strstr(cl.reason, "localhost"))), "reason: %s",
		cl.reason);
	cr_assert(eq(sz, srv.got.len, 0));
}

Test(transport, rejects_unknown_ca)
{
	expect_cert_failure(certs.unknown_ca, "issuer is unknown");
}

Test(transport, rejects_expired_certificate)
{
	expect_cert_failure(certs.expired, "expired");
}

Test(transport, rejects_wrong_name)
{
	expect_cert_failure(certs.wrong_name, "does not match");
}

Test(transport, rejects_without_ca_file)
{
	srv_start(SRV_ECHO, certs.good, NULL);
	client_config(true);
	cl.cfg.ca_file = NULL;	/* the system store knows nothing of our CA */
	client_start(&ping_scn);
	client_run();
	srv_join();

	cr_assert(eq(int, cl.err, TRANSPORT_ERR_TLS));
	cr_assert(not(zero(ptr, strstr(cl.reason, "NOT trusted"))), "reason: %s",
		cl.reason);
}

Test(transport, verify_false_accepts_wrong_name)
{
	srv_start(SRV_ECHO, certs.wrong_name, NULL);
	client_config(true);
	cl.cfg.verify = false;
	cl.expect = 4;
	client_start(&ping_scn);
	client_run();
	srv_join();

	cr_assert(eq(int, cl.errors, 0), "error: %s", cl.reason);
	cr_assert(got_equals(&cl.got, "ping", 4));
}

Test(transport, ip_address_name_checked_without_sni)
{
	srv_start(SRV_ECHO, certs.good, NULL);
	client_config(true);
	cl.cfg.server_name = "127.0.0.1";
	cl.expect = 4;
	client_start(&ping_scn);
	client_run();
	srv_join();

	cr_assert(eq(int, cl.errors, 0), "error: %s", cl.reason);
	cr_assert(eq(str, srv.sni, ""));
	cr_assert(got_equals(&cl.got, "ping", 4));
}

Test(transport, bad_ca_file)
{
	srv_start(SRV_ECHO, certs.good, NULL);
	client_config(true);
	cl.cfg.ca_file = "/nonexistent/ca.pem";
	client_start(&ping_scn);
	client_run();
	srv_join();

	cr_assert(eq(int, cl.err, TRANSPORT_ERR_TLS));
	cr_assert(not(zero(ptr, strstr(cl.reason, "/nonexistent/ca.pem"))), "reason: %s",
		cl.reason);
}

/* Pins -------------------------------------------------------------------- */

static void base64(const unsigned char *in, size_t n, char *out)
{
	static const char abc[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16 |
			(i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
		*out++ = abc[v >> 18 & 63];
		*out++ = abc[v >> 12 & 63];
		*out++ = i + 1 < n ? abc[v >> 6 & 63] : '=';
		*out++ = i + 2 < n ? abc[v & 63] : '=';
	}
	*out = '\0';
}

/* The pin computed apart from the transport's code: GnuTLS's SHA-256 key
 * ID is the digest of the DER SubjectPublicKeyInfo (the same value as
 * `openssl x509 -pubkey | openssl pkey -pubin -outform der | openssl
 * dgst -sha256 -binary | base64`), encoded here. */
static char *pin_of(gnutls_x509_crt_t crt, char *out)
{
	unsigned char id[32];
	size_t len = sizeof(id);
	cr_assert(eq(int, gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA256, id,
		&len), 0));
	cr_assert(eq(sz, len, 32));
	memcpy(out, "sha256/", 7);
	base64(id, len, out + 7);
	cr_assert(eq(sz, strlen(out), 51));
	return out;
}

static void early_write(void)
{
	transport_write(cl.t, "<stream>", 8);	/* before the handshake */
}

/* Direct TLS with a pin, the way a session starts: the stream header is
 * written before the link is up, "ping" once it is. */
static void run_pinned(gnutls_x509_crt_t crt, const char *pin, bool trust_ca)
{
	srv_start(SRV_ECHO, crt, NULL);
	client_config(true);
	cl.cfg.pin = pin;
	if (!trust_ca) {
		cl.cfg.ca_file = NULL;	/* the pin is all the trust there is */
	}
	cl.expect = 12;
	client_start(&ping_scn);
	early_write();
	client_run();
	srv_join();
}

static void expect_pinned_ok(gnutls_x509_crt_t crt)
{
	char pin[PIN_SIZE];
	run_pinned(crt, pin_of(crt, pin), false);

	cr_assert(eq(int, cl.errors, 0), "error: %s", cl.reason);
	cr_assert(eq(int, cl.connected, 1));
	cr_assert(got_equals(&cl.got, "<stream>ping", 12), "got %s", cl.got.data);
	cr_assert(eq(str, cl.peer_pin, pin));
}

/* A rejected handshake: the reason names the server and says why, and
 * not one byte of application data reached the server. */
static void expect_rejected(const char *words)
{
	cr_assert(eq(int, cl.errors, 1));
	cr_assert(eq(int, cl.err, TRANSPORT_ERR_TLS), "reason: %s", cl.reason);
	cr_assert(eq(int, cl.connected, 0));
	cr_assert(not(zero(ptr, strstr(cl.reason, words))), "reason: %s", cl.reason);
	cr_assert(not(zero(ptr, strstr(cl.reason, "localhost"))), "reason: %s",
		cl.reason);
	cr_assert(not(srv.handshake_ok), "the server finished the handshake");
	cr_assert(eq(sz, srv.got.len, 0), "the server got %zu bytes", srv.got.len);
	cr_assert(not(cl.pin_at_error), "a peer pin without TLS");
}

static void expect_pinned_failure(gnutls_x509_crt_t crt, const char *words)
{
	char pin[PIN_SIZE];
	run_pinned(crt, pin_of(crt, pin), false);
	expect_rejected(words);
}

Test(transport, pin_replaces_ca_trust_unknown_ca)
{
	expect_pinned_ok(certs.unknown_ca);
}

Test(transport, pin_replaces_ca_trust_self_signed)
{
	expect_pinned_ok(certs.self_signed);
}

Test(transport, pin_with_trusted_ca)
{
	char pin[PIN_SIZE];
	run_pinned(certs.good, pin_of(certs.good, pin), true);

	cr_assert(eq(int, cl.errors, 0), "error: %s", cl.reason);
	cr_assert(got_equals(&cl.got, "<stream>ping", 12), "got %s", cl.got.data);
}

Test(transport, pin_still_checks_name)
{
	expect_pinned_failure(certs.wrong_name, "does not match the expected");
}

Test(transport, pin_still_checks_expiry)
{
	expect_pinned_failure(certs.expired, "expired");
}

Test(transport, pin_still_checks_activation)
{
	expect_pinned_failure(certs.future, "not yet valid");
}

Test(transport, pin_mismatch_with_trusted_cert)
{
	char pin[PIN_SIZE];
	char actual[PIN_SIZE];
	run_pinned(certs.good, pin_of(certs.ca, pin), true);	/* the CA's key */

	expect_rejected("does not match the configured pin");
	cr_assert(not(zero(ptr, strstr(cl.reason, pin))), "reason: %s", cl.reason);
	cr_assert(not(zero(ptr, strstr(cl.reason, pin_of(certs.good, actual)))),
		"reason: %s", cl.reason);
}

Test(transport, pin_checked_without_verify)
{
	char pin[PIN_SIZE];
	srv_start(SRV_ECHO, certs.good, NULL);
	client_config(true);
	cl.cfg.verify = false;
	cl.cfg.pin = pin_of(certs.ca, pin);
	client_start(&ping_scn);
	early_write();
	client_run();
	srv_join();

	expect_rejected("does not match the configured pin");
}

Test(transport, malformed_pin_never_matches)
{
	char pin[PIN_SIZE];
	pin_of(certs.good, pin);
	pin[6] = ':';	/* "sha256:..." */
	run_pinned(certs.good, pin, true);

	expect_rejected("does not match the configured pin");
}

Test(transport, peer_pin_is_the_key_digest)
{
	char pin[PIN_SIZE];
	srv_start(SRV_ECHO, certs.good, NULL);
	client_config(true);
	cl.expect = 4;
	client_start(&ping_scn);
	cr_assert(zero(ptr, (void *)transport_peer_pin(cl.t)));
	client_run();
	srv_join();

	cr_assert(eq(int, cl.errors, 0), "error: %s", cl.reason);
	cr_assert(eq(str, cl.peer_pin, pin_of(certs.good, pin)));
}

Test(transport, peer_pin_after_starttls)
{
	char pin[PIN_SIZE];
	srv_start(SRV_STARTTLS, certs.good, NULL);
	client_config(false);
	cl.expect = 8;
	client_start(&starttls_scn);
	client_run();
	srv_join();

	cr_assert(eq(int, cl.errors, 0), "error: %s", cl.reason);
	cr_assert(not(cl.was_tls_before), "a pin before TLS");
	cr_assert(eq(str, cl.peer_pin, pin_of(certs.good, pin)));
}

Test(transport, unknown_ca_reason_shows_server_key)
{
	char pin[PIN_SIZE];
	srv_start(SRV_ECHO, certs.unknown_ca, NULL);
	client_config(true);
	client_start(&ping_scn);
	early_write();
	client_run();
	srv_join();

	expect_rejected("issuer is unknown");
	cr_assert(not(zero(ptr, strstr(cl.reason, pin_of(certs.unknown_ca, pin)))),
		"reason: %s", cl.reason);
}

/* Each rejection happens inside the handshake: the server never sees our
 * Finished, let alone the bytes written while it ran. */
Test(transport, no_data_after_rejection_tls12)
{
	char pin[PIN_SIZE];
	srv_start(SRV_ECHO, certs.good, TLS12);
	client_config(true);
	cl.cfg.pin = pin_of(certs.ca, pin);
	client_start(&ping_scn);
	early_write();
	client_run();
	srv_join();

	expect_rejected("does not match the configured pin");
}

static void starttls_reject_data(struct client *c)
{
	if (strstr(c->got.data, "<proceed/>") != NULL) {
		buf_reset(&c->got);
		transport_starttls(c->t);
		transport_write(c->t, "<stream>", 8);	/* during the handshake */
	}
}

static const struct scenario starttls_reject_scn = {
	.connected = starttls_connected,
	.data = starttls_reject_data,
};

static void run_starttls_rejected(gnutls_x509_crt_t crt, const char *pin)
{
	srv_start(SRV_STARTTLS, crt, NULL);
	client_config(false);
	cl.cfg.pin = pin;
	client_start(&starttls_reject_scn);
	client_run();
	srv_join();

	cr_assert(eq(int, cl.errors, 1));
	cr_assert(eq(int, cl.err, TRANSPORT_ERR_TLS), "reason: %s", cl.reason);
	cr_assert(eq(int, cl.tls_ready, 0));
	cr_assert(not(srv.handshake_ok), "the server finished the handshake");
	cr_assert(got_equals(&srv.got, "<starttls/>", 11), "server got %s", srv.got.data);
}

Test(transport, no_data_after_starttls_pin_rejection)
{
	char pin[PIN_SIZE];
	run_starttls_rejected(certs.good, pin_of(certs.ca, pin));
	cr_assert(not(zero(ptr, strstr(cl.reason, "configured pin"))), "reason: %s",
		cl.reason);
}

Test(transport, no_data_after_starttls_ca_rejection)
{
	run_starttls_rejected(certs.unknown_ca, NULL);
	cr_assert(not(zero(ptr, strstr(cl.reason, "issuer is unknown"))), "reason: %s",
		cl.reason);
}

/* Connecting -------------------------------------------------------------- */

/* By name: every address "localhost" has is tried in order (where it
 * also has ::1, the refused IPv6 attempt falls through to 127.0.0.1). */
Test(transport, connects_by_name)
{
	srv_start(SRV_ECHO, certs.good, NULL);
	client_config(true);
	cl.cfg.host = "localhost";
	cl.expect = 4;
	client_start(&ping_scn);
	client_run();
	srv_join();

	cr_assert(eq(int, cl.errors, 0), "error: %s", cl.reason);
	cr_assert(got_equals(&cl.got, "ping", 4));
}

Test(transport, connection_refused)
{
	int port;
	int fd = listen_loopback(false, &port);	/* bound, not listening */
	srv.port = port;
	client_config(false);
	client_start(&ping_scn);
	client_run();
	close(fd);

	cr_assert(eq(int, cl.errors, 1));
	cr_assert(eq(int, cl.err, TRANSPORT_ERR_CONNECT));
	cr_assert(eq(int, cl.connected, 0));
	cr_assert(not(zero(ptr, strstr(cl.reason, "connection refused"))), "reason: %s",
		cl.reason);
	cr_assert(not(zero(ptr, strstr(cl.reason, "127.0.0.1"))), "reason: %s", cl.reason);
}

/* A listener whose accept queue is full drops new SYNs, so a connection
 * attempt to it hangs until the transport's own deadline. */
static int full_listener(int *port, int *fillers, size_t n)
{
	int fd = listen_loopback(false, port);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(*port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert(eq(int, listen(fd, 0), 0));
	for (size_t i = 0; i < n; i++) {
		fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		cr_assert(fillers[i] >= 0);
		connect(fillers[i], (struct sockaddr *)&sa, sizeof(sa));
	}
	return fd;
}

Test(transport, connect_timeout)
{
	int fillers[4];
	int fd = full_listener(&srv.port, fillers, 4);
	client_config(true);
	cl.cfg.connect_timeout_ms = 300;
	client_start(&ping_scn);
	client_run();
	for (size_t i = 0; i < 4; i++) {
		close(fillers[i]);
	}
	close(fd);

	cr_assert(eq(int, cl.errors, 1));
	cr_assert(eq(int, cl.err, TRANSPORT_ERR_CONNECT), "%s", cl.reason);
	cr_assert(not(zero(ptr, strstr(cl.reason, "127.0.0.1: timed out"))), "reason: %s",
		cl.reason);
}

Test(transport, handshake_timeout)
{
	srv_start(SRV_SILENT, certs.good, NULL);
	client_config(true);
	cl.cfg.connect_timeout_ms = 200;
	client_start(&ping_scn);
	client_run();
	srv_join();

	cr_assert(eq(int, cl.err, TRANSPORT_ERR_TLS));
	cr_assert(not(zero(ptr, strstr(cl.reason, "timed out"))), "reason: %s", cl.reason);
}

/* Reading ----------------------------------------------------------------- */

static void check_burst(void)
{
	cr_assert(eq(sz, cl.got.len, BURST_SIZE));
	for (size_t i = 0; i < BURST_SIZE; i++) {
		if ((unsigned char)cl.got.data[i] != pattern(i)) {
			cr_fail("byte %zu differs", i);
		}
	}
}

Test(transport, burst_delivered_without_more_input)
{
	srv_start(SRV_BURST, certs.good, NULL);
	client_config(true);
	cl.expect = BURST_SIZE;
	client_start(&(const struct scenario){ 0 });
	client_run();
	srv_join();

	cr_assert(eq(int, cl.errors, 0), "error: %s", cl.reason);
	cr_assert(not(cl.timed_out), "stalled at %zu of %d bytes", cl.got.len, BURST_SIZE);
	check_burst();
}

Test(transport, burst_delivered_tls12)
{
	srv_start(SRV_BURST, certs.good, TLS12);
	client_config(true);
	cl.expect = BURST_SIZE;
	client_start(&(const struct scenario){ 0 });
	client_run();
	srv_join();

	cr_assert(eq(int, cl.errors, 0), "error: %s", cl.reason);
	cr_assert(not(cl.timed_out), "stalled at %zu of %d bytes", cl.got.len, BURST_SIZE);
	check_burst();
}

static void free_on_first(struct client *c)
{
	finish(c);
}

static const struct scenario free_scn = { .data = free_on_first };

Test(transport, free_inside_data_callback)
{
	srv_start(SRV_BURST, certs.good, NULL);
	client_config(true);
	client_start(&free_scn);
	client_run();
	srv_join();

	cr_assert(eq(int, cl.data_calls, 1));
	cr_assert(eq(int, cl.errors, 0));
}

Test(transport, server_close_is_eof)
{
	srv_start(SRV_CLOSE, certs.good, NULL);
	client_config(true);
	client_start(&(const struct scenario){ 0 });
	client_run();
	srv_join();

	cr_assert(eq(int, cl.errors, 1));
	cr_assert(eq(int, cl.err, TRANSPORT_ERR_EOF), "%d %s", cl.err, cl.reason);
	cr_assert(got_equals(&cl.got, "bye", 3));
}

Test(transport, server_close_notify_is_eof)
{
	srv_start(SRV_BYE, certs.good, NULL);
	client_config(true);
	client_start(&(const struct scenario){ 0 });
	client_run();
	srv_join();

	cr_assert(eq(int, cl.errors, 1));
	cr_assert(eq(int, cl.err, TRANSPORT_ERR_EOF), "%d %s", cl.err, cl.reason);
	cr_assert(got_equals(&cl.got, "bye", 3));
}

Test(transport, plain_server_close_is_eof)
{
	srv_start(SRV_PLAIN_CLOSE, certs.good, NULL);
	client_config(false);
	client_start(&(const struct scenario){ 0 });
	client_run();
	srv_join();

	cr_assert(eq(int, cl.connected, 1));
	cr_assert(eq(int, cl.errors, 1));
	cr_assert(eq(int, cl.err, TRANSPORT_ERR_EOF), "%d %s", cl.err, cl.reason);
	cr_assert(got_equals(&cl.got, "hello", 5));
}

/* Closing ----------------------------------------------------------------- */

static void shutdown_connected(struct client *c)
{
	char *p = echo_payload();
	transport_write(c->t, p, ECHO_SIZE);
	free(p);
	transport_shutdown(c->t);
	transport_write(c->t, "dropped", 7);
	finish(c);	/* free right away: the shutdown still completes */
}

static const struct scenario shutdown_scn = { .connected = shutdown_connected };

Test(transport, shutdown_flushes_and_sends_close_notify)
{
	srv_start(SRV_SINK, certs.good, NULL);
	client_config(true);
	client_start(&shutdown_scn);
	client_run();
	srv_join();

	cr_assert(eq(int, cl.errors, 0));
	cr_assert(eq(sz, srv.got.len, ECHO_SIZE));
	char *p = echo_payload();
	cr_assert(eq(int, memcmp(srv.got.data, p, ECHO_SIZE), 0));
	free(p);
	cr_assert(srv.got_close_notify);
	cr_assert(srv.got_fin);
}
