/*
 * blaster: a fake XMPP server on loopback, for benchmarks (bench/README).
 *
 * It accepts one client at a time on 127.0.0.1, logs it in whatever its
 * JID (plain TCP, STARTTLS or direct TLS through GnuTLS; SCRAM-SHA-1 from
 * GNU SASL's server side, so that it works without TLS too, where clients
 * refuse PLAIN), binds the resource it asks for, enables XEP-0198 and
 * answers its acks requests, serves a roster of a chosen size, answers
 * every other IQ request with service-unavailable. Then it does what
 * lines on stdin say, and reports on stdout, one JSON object a line:
 *
 *   blast N B    write N <message/>s with B-byte bodies as fast as the
 *                socket takes them, in batches of about 64 KiB;
 *                reports "blasted" with the first and last write times
 *   rate N B R   the same, one message every 1/R s (latency runs)
 *   sink N       count N messages from the client; reports "sunk" with
 *                the first and last read times and, for bodies starting
 *                "t=NANOSECONDS ", the latency percentiles
 *   quit         close the stream and exit (so does EOF on stdin)
 *
 * With -s each message carries a <stanza-id/> (XEP-0359) by the client's
 * bare JID, as a server with an archive puts on every message, and with
 * -o an <origin-id/> too; both ids are unique to this blaster's run.
 *
 * Every body starts "t=" and the CLOCK_MONOTONIC time of its write in
 * nanoseconds, so a reader on this machine can measure latency. Times in
 * reports are CLOCK_MONOTONIC nanoseconds too (Python's
 * time.monotonic_ns()). Other reports: "listening" (port), "online"
 * (the client's first presence), "roster" (when the roster was written),
 * "closed".
 *
 * Blocking sockets and one thread: while a batch is written nothing is
 * read, which a client that reads continuously never notices.
 */
#define _GNU_SOURCE	/* ppoll */
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gsasl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proto/alloc.h"
#include "proto/buf.h"
#include "proto/ns.h"
#include "proto/reader.h"
#include "proto/xml.h"

#define BATCH (64 * 1024)
#define MAX_SAMPLES 1000000

enum mode {
	MODE_NONE,
	MODE_STARTTLS,
	MODE_DIRECT,
};

struct opts {
	int port;
	enum mode mode;
	const char *cert;
	const char *key;
	const char *password;
	const char *domain;
	unsigned roster;
	bool stanza_id;		/* -s: <stanza-id by=the client's bare JID/> */
	bool origin_id;		/* -o: <origin-id/> */
	uint64_t run;		/* makes the ids unique to this run */
};

struct conn {
	int fd;
	gnutls_session_t tls;
	bool tls_up;
	struct reader *reader;
	Gsasl_session *sasl;
	char *user;
	char *jid;
	bool authed;
	bool online;
	bool sm;
	bool eof;
	uint64_t h_in;
	struct buf out;

	uint64_t blast_left;
	uint64_t blast_n;
	size_t body;
	uint64_t seq;
	uint64_t interval_ns;	/* 0: as fast as possible */
	uint64_t next_at;
	uint64_t first_out;
	uint64_t last_out;

	uint64_t sink_want;
	uint64_t sink_got;
	uint64_t first_in;
	uint64_t last_in;
	uint64_t *lat;
	size_t nlat;
};

static struct opts opt = {
	.mode = MODE_NONE,
	.password = "bench",
	.domain = "localhost",
};
static gnutls_certificate_credentials_t creds;
static Gsasl *gsasl;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void report(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void die(const char *what)
{
	fprintf(stderr, "blaster: %s\n", what);
	exit(1);
}

/* ---- output ---- */

static bool write_all(struct conn *c, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n;
		if (c->tls_up) {
			n = gnutls_record_send(c->tls, p, len);
			if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
				continue;
			}
		} else {
			n = send(c->fd, p, len, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR) {
				continue;
			}
		}
		if (n <= 0) {
			c->eof = true;
			return false;
		}
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static void flush(struct conn *c)
{
	if (c->out.len > 0 && !c->eof) {
		write_all(c, c->out.data, c->out.len);
	}
	buf_reset(&c->out);
}

static void emit(struct conn *c, const char *s)
{
	buf_puts(&c->out, s);
}

/* ---- negotiation ---- */

static void send_features(struct conn *c)
{
	buf_printf(&c->out, "<?xml version='1.0'?><stream:stream "
		"xmlns='" NS_CLIENT "' xmlns:stream='" NS_STREAMS "' id='b%d' "
		"from='%s' version='1.0' xml:lang='en'><stream:features>",
		rand(), opt.domain);
	if (opt.mode == MODE_STARTTLS && !c->tls_up) {
		emit(c, "<starttls xmlns='" NS_TLS "'><required/></starttls>");
	} else if (!c->authed) {
		emit(c, "<mechanisms xmlns='" NS_SASL "'>"
			"<mechanism>SCRAM-SHA-1</mechanism></mechanisms>");
	} else {
		emit(c, "<bind xmlns='" NS_BIND "'/><sm xmlns='" NS_SM "'/>");
	}
	emit(c, "</stream:features>");
}

static bool handshake(struct conn *c)
{
	gnutls_init(&c->tls, GNUTLS_SERVER);
	gnutls_set_default_priority(c->tls);
	gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, creds);
	gnutls_transport_set_int(c->tls, c->fd);
	gnutls_handshake_set_timeout(c->tls, GNUTLS_DEFAULT_HANDSHAKE_TIMEOUT);
	int rc;
	do {
		rc = gnutls_handshake(c->tls);
	} while (rc < 0 && gnutls_error_is_fatal(rc) == 0);
	if (rc < 0) {
		fprintf(stderr, "blaster: handshake: %s\n", gnutls_strerror(rc));
		return false;
	}
	c->tls_up = true;
	return true;
}

static void on_starttls(struct conn *c)
{
	emit(c, "<proceed xmlns='" NS_TLS "'/>");
	flush(c);
	reader_restart(c->reader);
	if (!handshake(c)) {
		c->eof = true;
	}
}

static int sasl_cb(Gsasl *ctx, Gsasl_session *s, Gsasl_property prop)
{
	if (prop == GSASL_PASSWORD) {
		gsasl_property_set(s, GSASL_PASSWORD, opt.password);
		return GSASL_OK;
	}
	return GSASL_NO_CALLBACK;
}

static void sasl_step(struct conn *c, const struct xml *x)
{
	char *in = xml_text(x);
	char *out = NULL;
	int rc = gsasl_step64(c->sasl, in, &out);
	free(in);
	if (rc == GSASL_NEEDS_MORE) {
		buf_printf(&c->out, "<challenge xmlns='" NS_SASL "'>%s</challenge>",
			out);
	} else if (rc == GSASL_OK) {
		buf_printf(&c->out, "<success xmlns='" NS_SASL "'>%s</success>",
			out != NULL ? out : "");
		const char *user = gsasl_property_fast(c->sasl, GSASL_AUTHID);
		c->user = xstrdup(user != NULL ? user : "bench");
		c->authed = true;
		reader_restart(c->reader);
	} else {
		emit(c, "<failure xmlns='" NS_SASL "'><not-authorized/></failure>");
	}
	gsasl_free(out);
}

static void on_auth(struct conn *c, const struct xml *x)
{
	const char *mech = xml_attr(x, "mechanism");
	if (c->sasl != NULL || mech == NULL ||
			gsasl_server_start(gsasl, mech, &c->sasl) != GSASL_OK) {
		emit(c, "<failure xmlns='" NS_SASL "'><invalid-mechanism/></failure>");
		return;
	}
	sasl_step(c, x);
}

/* ---- stanzas from the client ---- */

/* Answers come from where the request went (xmppd matches on both). */
static void iq_start(struct conn *c, const struct xml *iq, const char *type)
{
	const char *to = xml_attr(iq, "to");
	buf_printf(&c->out, "<iq type='%s' id='%s'", type, xml_attr(iq, "id"));
	if (to != NULL) {
		buf_puts(&c->out, " from='");
		xml_escape(&c->out, to, strlen(to));
		buf_putc(&c->out, '\'');
	}
}

static void iq_error(struct conn *c, const struct xml *iq)
{
	iq_start(c, iq, "error");
	emit(c, "><error type='cancel'><service-unavailable xmlns='"
		NS_STANZA_ERRORS "'/></error></iq>");
}

static void on_bind(struct conn *c, const char *id, const struct xml *bind)
{
	char *res = xml_child_text(bind, "resource", NS_BIND);
	free(c->jid);
	c->jid = xasprintf("%s@%s/%s", c->user, opt.domain,
		res != NULL && res[0] != '\0' ? res : "blasted");
	free(res);
	buf_printf(&c->out, "<iq type='result' id='%s'><bind xmlns='" NS_BIND
		"'><jid>%s</jid></bind></iq>", id, c->jid);
}

static void on_roster(struct conn *c, const char *id)
{
	buf_printf(&c->out, "<iq type='result' id='%s'><query xmlns='"
		NS_ROSTER "'>", id);
	for (unsigned i = 0; i < opt.roster; i++) {
		buf_printf(&c->out, "<item jid='contact%u@%s' name='Contact %u' "
			"subscription='both'><group>Bench</group></item>",
			i, opt.domain, i);
	}
	emit(c, "</query></iq>");
	flush(c);
	report("{\"event\":\"roster\",\"items\":%u,\"written_ns\":%" PRIu64 "}",
		opt.roster, now_ns());
}

static void on_iq(struct conn *c, const struct xml *x)
{
	const char *type = xml_attr(x, "type");
	const char *id = xml_attr(x, "id");
	if (type == NULL || id == NULL ||
			(strcmp(type, "get") != 0 && strcmp(type, "set") != 0)) {
		return;
	}
	const struct xml *child = xml_first_element(x);
	const char *ns = child != NULL && child->ns != NULL ? child->ns : "";
	if (strcmp(ns, NS_BIND) == 0) {
		on_bind(c, id, child);
	} else if (strcmp(ns, NS_SESSION) == 0 || strcmp(ns, NS_PING) == 0) {
		iq_start(c, x, "result");
		emit(c, "/>");
	} else if (strcmp(ns, NS_ROSTER) == 0 && strcmp(type, "get") == 0) {
		on_roster(c, id);
	} else {
		iq_error(c, x);
	}
}

static void sink_done(struct conn *c);

static void on_message(struct conn *c, const struct xml *x)
{
	if (c->sink_want == 0) {
		return;
	}
	uint64_t t = now_ns();
	char *body = xml_child_text(x, "body", NS_CLIENT);
	if (body == NULL) {
		return;
	}
	if (c->sink_got++ == 0) {
		c->first_in = t;
	}
	c->last_in = t;
	if (strncmp(body, "t=", 2) == 0 && c->nlat < MAX_SAMPLES) {
		uint64_t sent = strtoull(body + 2, NULL, 10);
		if (sent > 0 && sent <= t) {
			c->lat[c->nlat++] = t - sent;
		}
	}
	free(body);
	if (c->sink_got == c->sink_want) {
		sink_done(c);
	}
}

static void on_presence(struct conn *c, const struct xml *x)
{
	if (!c->online && xml_attr(x, "to") == NULL &&
			xml_attr(x, "type") == NULL) {
		c->online = true;
		report("{\"event\":\"online\",\"jid\":\"%s\"}",
			c->jid != NULL ? c->jid : "");
	}
}

static void on_sm(struct conn *c, const struct xml *x)
{
	if (strcmp(x->name, "enable") == 0) {
		c->sm = true;
		emit(c, "<enabled xmlns='" NS_SM "' id='blaster' resume='true'/>");
	} else if (strcmp(x->name, "r") == 0) {
		buf_printf(&c->out, "<a xmlns='" NS_SM "' h='%" PRIu64 "'/>",
			c->h_in);
	}
}

static bool is(const struct xml *x, const char *name, const char *ns)
{
	return strcmp(x->name, name) == 0 && x->ns != NULL &&
		strcmp(x->ns, ns) == 0;
}

static void on_stanza(void *ud, struct xml *x)
{
	struct conn *c = ud;
	if (is(x, "starttls", NS_TLS)) {
		on_starttls(c);
	} else if (is(x, "auth", NS_SASL)) {
		on_auth(c, x);
	} else if (is(x, "response", NS_SASL) && c->sasl != NULL) {
		sasl_step(c, x);
	} else if (x->ns != NULL && strcmp(x->ns, NS_SM) == 0) {
		on_sm(c, x);
	} else if (x->ns != NULL && strcmp(x->ns, NS_CLIENT) == 0) {
		c->h_in += c->sm;
		if (strcmp(x->name, "iq") == 0) {
			on_iq(c, x);
		} else if (strcmp(x->name, "message") == 0) {
			on_message(c, x);
		} else if (strcmp(x->name, "presence") == 0) {
			on_presence(c, x);
		}
	}
}

static void on_open(void *ud, const struct xml *header)
{
	send_features(ud);
}

static void on_close(void *ud)
{
	struct conn *c = ud;
	emit(c, "</stream:stream>");
	flush(c);
	c->eof = true;
}

static void on_error(void *ud, const char *cond, const char *text)
{
	struct conn *c = ud;
	fprintf(stderr, "blaster: client stream: %s: %s\n", cond, text);
	c->eof = true;
}

static const struct reader_cb reader_callbacks = {
	.stream_open = on_open,
	.stanza = on_stanza,
	.stream_close = on_close,
	.error = on_error,
};

/* ---- reading ---- */

static void read_some(struct conn *c)
{
	char buf[65536];
	ssize_t n;
	if (c->tls_up) {
		n = gnutls_record_recv(c->tls, buf, sizeof(buf));
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
			return;
		}
	} else {
		n = recv(c->fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR) {
			return;
		}
	}
	if (n <= 0) {
		c->eof = true;
		return;
	}
	reader_feed(c->reader, buf, (size_t)n);
}

/* ---- sending messages ---- */

static void add_message(struct conn *c, uint64_t t)
{
	struct buf *b = &c->out;
	buf_printf(b, "<message from='blaster@%s/bench' to='%s' type='chat' "
		"id='m%" PRIu64 "'><body>t=%" PRIu64 " ", opt.domain,
		c->jid != NULL ? c->jid : opt.domain, c->seq++, t);
	size_t used = 23;	/* about "t=" and 20 digits and a space */
	for (size_t i = used; i < c->body; i++) {
		buf_putc(b, 'x');
	}
	buf_puts(b, "</body>");
	if (opt.stanza_id) {
		buf_printf(b, "<stanza-id xmlns='urn:xmpp:sid:0' by='%s@%s' "
			"id='%" PRIx64 "-%" PRIu64 "'/>", c->user ? c->user : "bench",
			opt.domain, opt.run, c->seq - 1);
	}
	if (opt.origin_id) {
		buf_printf(b, "<origin-id xmlns='urn:xmpp:sid:0' id='o%" PRIx64
			"-%" PRIu64 "'/>", opt.run, c->seq - 1);
	}
	buf_puts(b, "</message>");
}

static void blast_batch(struct conn *c)
{
	uint64_t t = now_ns();
	if (c->blast_left == c->blast_n) {
		c->first_out = t;
	}
	while (c->blast_left > 0 && c->out.len < BATCH) {
		add_message(c, t);
		c->blast_left--;
	}
	flush(c);
	c->last_out = now_ns();
}

static void blast_report(struct conn *c)
{
	report("{\"event\":\"blasted\",\"n\":%" PRIu64 ",\"first_ns\":%"
		PRIu64 ",\"last_ns\":%" PRIu64 "}", c->blast_n, c->first_out,
		c->last_out);
	c->blast_n = 0;
}

static void rate_tick(struct conn *c)
{
	uint64_t t = now_ns();
	while (c->blast_left > 0 && t >= c->next_at) {
		if (c->blast_left == c->blast_n) {
			c->first_out = t;
		}
		add_message(c, now_ns());
		flush(c);
		c->last_out = now_ns();
		c->blast_left--;
		c->next_at += c->interval_ns;
		t = now_ns();
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t pct(const uint64_t *v, size_t n, double p)
{
	if (n == 0) {
		return 0;
	}
	size_t i = (size_t)(p * (double)n + 0.999999);
	return v[i == 0 ? 0 : i - 1];
}

static void sink_done(struct conn *c)
{
	qsort(c->lat, c->nlat, sizeof(c->lat[0]), cmp_u64);
	report("{\"event\":\"sunk\",\"n\":%" PRIu64 ",\"first_ns\":%" PRIu64
		",\"last_ns\":%" PRIu64 ",\"samples\":%zu,\"p50_ns\":%" PRIu64
		",\"p99_ns\":%" PRIu64 ",\"max_ns\":%" PRIu64 "}", c->sink_got,
		c->first_in, c->last_in, c->nlat, pct(c->lat, c->nlat, 0.5),
		pct(c->lat, c->nlat, 0.99), c->nlat ? c->lat[c->nlat - 1] : 0);
	c->sink_want = 0;
}

/* ---- control lines on stdin ---- */

static bool command(struct conn *c, const char *line)
{
	unsigned long long n = 0, b = 0, r = 0;
	if (sscanf(line, "blast %llu %llu", &n, &b) == 2) {
		c->blast_left = c->blast_n = n;
		c->body = b;
		c->interval_ns = 0;
	} else if (sscanf(line, "rate %llu %llu %llu", &n, &b, &r) == 3 && r > 0) {
		c->blast_left = c->blast_n = n;
		c->body = b;
		c->interval_ns = 1000000000ull / r;
		c->next_at = now_ns();
	} else if (sscanf(line, "sink %llu", &n) == 1) {
		c->sink_want = n;
		c->sink_got = 0;
		c->nlat = 0;
	} else if (strncmp(line, "quit", 4) == 0) {
		return false;
	} else {
		fprintf(stderr, "blaster: unknown command: %s", line);
	}
	return true;
}

static bool read_commands(struct conn *c)
{
	static char line[256];
	static size_t len;
	ssize_t n = read(0, line + len, sizeof(line) - 1 - len);
	if (n <= 0) {
		return false;
	}
	len += (size_t)n;
	line[len] = '\0';
	char *nl;
	while ((nl = strchr(line, '\n')) != NULL) {
		*nl = '\0';
		if (!command(c, line)) {
			return false;
		}
		size_t rest = len - (size_t)(nl + 1 - line);
		memmove(line, nl + 1, rest + 1);
		len = rest;
	}
	if (len == sizeof(line) - 1) {
		len = 0;
	}
	return true;
}

/* ---- one connection ---- */

/* How long poll may wait: NULL for ever. To the nanosecond, so that a
 * rate run sleeps until its next message instead of spinning through the
 * last millisecond (which took a core from xmppd and the reader). */
static struct timespec *wait_for(const struct conn *c, struct timespec *ts)
{
	*ts = (struct timespec){ 0, 0 };
	if (c->tls_up && gnutls_record_check_pending(c->tls) > 0) {
		return ts;
	}
	if (c->blast_left == 0) {
		return NULL;
	}
	uint64_t t = now_ns();
	if (c->interval_ns != 0 && c->next_at > t) {
		ts->tv_sec = (time_t)((c->next_at - t) / 1000000000u);
		ts->tv_nsec = (long)((c->next_at - t) % 1000000000u);
	}
	return ts;
}

/* Serves one client; false when stdin says to stop. */
static bool serve(int fd)
{
	struct conn c = { .fd = fd };
	buf_init(&c.out);
	c.reader = reader_new(&reader_callbacks, &c, NULL);
	c.lat = xcalloc(MAX_SAMPLES, sizeof(c.lat[0]));
	bool go_on = true;
	if (opt.mode == MODE_DIRECT && !handshake(&c)) {
		c.eof = true;
	}
	while (!c.eof && go_on) {
		struct pollfd p[2] = { { fd, POLLIN, 0 }, { 0, POLLIN, 0 } };
		struct timespec ts;
		if (ppoll(p, 2, wait_for(&c, &ts), NULL) < 0 && errno != EINTR) {
			break;
		}
		bool pending = c.tls_up && gnutls_record_check_pending(c.tls) > 0;
		if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) || pending) {
			read_some(&c);
		}
		if (p[1].revents & (POLLIN | POLLHUP)) {
			go_on = read_commands(&c);
		}
		flush(&c);
		if (c.blast_left > 0 && c.jid != NULL) {
			if (c.interval_ns == 0) {
				blast_batch(&c);
			} else {
				rate_tick(&c);
			}
			if (c.blast_left == 0) {
				blast_report(&c);
			}
		}
	}
	if (!go_on) {
		emit(&c, "</stream:stream>");
		flush(&c);
	}
	report("{\"event\":\"closed\"}");
	if (c.tls != NULL) {
		gnutls_deinit(c.tls);
	}
	reader_free(c.reader);
	gsasl_finish(c.sasl);
	buf_finish(&c.out);
	free(c.lat);
	free(c.user);
	free(c.jid);
	close(fd);
	return go_on;
}

static int listen_on(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = { .sin_family = AF_INET,
		.sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
			listen(fd, 4) != 0) {
		die("cannot listen");
	}
	socklen_t len = sizeof(a);
	getsockname(fd, (struct sockaddr *)&a, &len);
	report("{\"event\":\"listening\",\"port\":%d}", ntohs(a.sin_port));
	return fd;
}

static void usage(void)
{
	fprintf(stderr, "usage: blaster [-p port] [-t none|starttls|direct] "
		"[-c cert.pem -k key.pem] [-w password] [-d domain] "
		"[-r roster-items] [-s] [-o]\n");
	exit(2);
}

static void parse_args(int argc, char **argv)
{
	int ch;
	while ((ch = getopt(argc, argv, "p:t:c:k:w:d:r:so")) != -1) {
		switch (ch) {
		case 'p': opt.port = atoi(optarg); break;
		case 'c': opt.cert = optarg; break;
		case 'k': opt.key = optarg; break;
		case 'w': opt.password = optarg; break;
		case 'd': opt.domain = optarg; break;
		case 'r': opt.roster = (unsigned)atoi(optarg); break;
		case 's': opt.stanza_id = true; break;
		case 'o': opt.origin_id = true; break;
		case 't':
			opt.mode = strcmp(optarg, "starttls") == 0 ? MODE_STARTTLS :
				strcmp(optarg, "direct") == 0 ? MODE_DIRECT : MODE_NONE;
			break;
		default: usage();
		}
	}
	if (opt.mode != MODE_NONE && (opt.cert == NULL || opt.key == NULL)) {
		usage();
	}
}

static void init_libs(void)
{
	if (gsasl_init(&gsasl) != GSASL_OK) {
		die("gsasl_init failed");
	}
	gsasl_callback_set(gsasl, sasl_cb);
	gnutls_global_init();
	gnutls_certificate_allocate_credentials(&creds);
	if (opt.mode != MODE_NONE && gnutls_certificate_set_x509_key_file(creds,
			opt.cert, opt.key, GNUTLS_X509_FMT_PEM) < 0) {
		die("cannot load the certificate or key");
	}
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	opt.run = now_ns();
	signal(SIGPIPE, SIG_IGN);
	init_libs();
	int lfd = listen_on(opt.port);
	bool go_on = true;
	while (go_on) {
		struct pollfd p[2] = { { lfd, POLLIN, 0 }, { 0, POLLIN, 0 } };
		if (poll(p, 2, -1) < 0 && errno != EINTR) {
			break;
		}
		if (p[1].revents & (POLLIN | POLLHUP)) {
			struct conn none = { .fd = -1 };
			go_on = read_commands(&none);
			continue;
		}
		if (p[0].revents & POLLIN) {
			int fd = accept(lfd, NULL, NULL);
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			go_on = fd < 0 || serve(fd);
		}
	}
	close(lfd);
	gnutls_certificate_free_credentials(creds);
	gsasl_done(gsasl);
	return 0;
}
