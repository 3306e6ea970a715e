/*
 * The test DNS server of dns-responder.h. Responses are built by hand:
 * the header, the question copied from the query, then SRV records whose
 * owner name is a compression pointer to the question (0xc00c). A UDP
 * answer over 512 bytes is sent truncated (TC) so that the client asks
 * again over TCP, on the same port, where messages carry a 2-byte length.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/dns-responder.h"

#define PACKET_MAX 4096
#define NAME_MAX_LEN 255
#define TYPE_SRV 33
#define UDP_MAX 512
#define MAX_CONNS 4

struct conn {
	int fd;			/* -1: free */
	unsigned char buf[2 + PACKET_MAX];
	size_t len;
};

struct question {
	char name[NAME_MAX_LEN + 1];
	int type;
};

struct dns_responder {
	int fd;
	int tcp_fd;
	struct conn conns[MAX_CONNS];
	int stop_pipe[2];
	pthread_t thread;
	const struct dns_entry *table;
	size_t n;
	enum dns_kind dflt;
	char addr[32];

	pthread_mutex_t lock;
	struct question questions[DNS_MAX_QUESTIONS];
	size_t count;
};

struct packet {
	unsigned char b[PACKET_MAX];
	size_t len;
	bool overflow;
};

static void put(struct packet *p, const void *data, size_t n)
{
	if (p->len + n > sizeof(p->b)) {
		p->overflow = true;
		return;
	}
	memcpy(p->b + p->len, data, n);
	p->len += n;
}

static void put16(struct packet *p, unsigned v)
{
	unsigned char b[2] = { (unsigned char)(v >> 8), (unsigned char)v };
	put(p, b, 2);
}

static void put32(struct packet *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p, v & 0xffff);
}

/* "a.b" as labels; "" or "." is the root. */
static void put_name(struct packet *p, const char *name)
{
	while (*name != '\0' && strcmp(name, ".") != 0) {
		size_t len = strcspn(name, ".");
		unsigned char l = (unsigned char)(len > 63 ? 63 : len);
		put(p, &l, 1);
		put(p, name, l);
		name += len;
		if (*name == '.') {
			name++;
		}
	}
	put(p, "", 1);
}

static void put_srv(struct packet *p, const struct dns_srv *s)
{
	put16(p, 0xc00c);	/* owner: the question's name */
	put16(p, TYPE_SRV);
	put16(p, 1);		/* IN */
	put32(p, 300);
	size_t rdlen_at = p->len;
	put16(p, 0);
	put16(p, s->priority);
	put16(p, s->weight);
	put16(p, s->port);
	put_name(p, s->target);
	if (!p->overflow) {
		size_t rdlen = p->len - rdlen_at - 2;
		p->b[rdlen_at] = (unsigned char)(rdlen >> 8);
		p->b[rdlen_at + 1] = (unsigned char)rdlen;
	}
}

/* Parses the question of q into name; returns the offset after QTYPE and
 * QCLASS, or 0 if the query is malformed. */
static size_t parse_question(const unsigned char *q, size_t len, char *name, int *type)
{
	size_t off = 12, out = 0;

	if (len < 12 || q[4] != 0 || q[5] != 1) {
		return 0;
	}
	while (off < len && q[off] != 0) {
		size_t l = q[off++];
		if (l > 63 || off + l > len || out + l + 1 > NAME_MAX_LEN) {
			return 0;
		}
		if (out > 0) {
			name[out++] = '.';
		}
		memcpy(name + out, q + off, l);
		out += l;
		off += l;
	}
	name[out] = '\0';
	if (off + 5 > len) {
		return 0;
	}
	*type = q[off + 1] << 8 | q[off + 2];
	return off + 5;
}

static const struct dns_entry *find(struct dns_responder *d, const char *name)
{
	for (size_t i = 0; i < d->n; i++) {
		if (strcasecmp(d->table[i].name, name) == 0) {
			return &d->table[i];
		}
	}
	return NULL;
}

static void record(struct dns_responder *d, const char *name, int type)
{
	pthread_mutex_lock(&d->lock);
	if (d->count < DNS_MAX_QUESTIONS) {
		snprintf(d->questions[d->count].name, sizeof(d->questions[0].name),
			"%s", name);
		d->questions[d->count].type = type;
	}
	d->count++;
	pthread_mutex_unlock(&d->lock);
}

static const struct dns_srv dot_record = { 0, 0, 0, "." };

/* Builds the response to query q; false to stay silent. */
static bool respond(struct dns_responder *d, const unsigned char *q, size_t len,
	struct packet *p)
{
	char name[NAME_MAX_LEN + 1];
	int type;
	size_t qend = parse_question(q, len, name, &type);
	if (qend == 0) {
		return false;
	}
	record(d, name, type);
	const struct dns_entry *e = find(d, name);
	enum dns_kind kind = e != NULL ? e->kind : d->dflt;
	if (kind == DNS_DROP) {
		return false;
	}
	const struct dns_srv *srv = e != NULL ? e->srv : NULL;
	size_t nsrv = e != NULL ? e->nsrv : 0;
	if (kind == DNS_DOT) {
		srv = &dot_record;
		nsrv = 1;
	} else if (kind != DNS_SRV || type != TYPE_SRV) {
		nsrv = 0;
	}
	unsigned rcode = kind == DNS_NXDOMAIN ? 3 : kind == DNS_SERVFAIL ? 2 : 0;

	put(p, q, 2);				/* id */
	put16(p, 0x8000 | (q[2] & 0x79) << 8 | 0x80 | rcode);	/* QR, opcode, RD; RA */
	put16(p, 1);
	put16(p, (unsigned)nsrv);
	put16(p, 0);
	put16(p, 0);
	put(p, q + 12, qend - 12);
	for (size_t i = 0; i < nsrv; i++) {
		put_srv(p, &srv[i]);
	}
	return !p->overflow;
}

/* Sends the response to one UDP query, truncated past UDP_MAX. */
static void serve_udp(struct dns_responder *d)
{
	unsigned char q[PACKET_MAX];
	struct sockaddr_storage from;
	socklen_t fromlen = sizeof(from);
	ssize_t n = recvfrom(d->fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fromlen);
	struct packet p = { .len = 0 };

	if (n <= 0 || !respond(d, q, (size_t)n, &p)) {
		return;
	}
	if (p.len > UDP_MAX) {
		char name[NAME_MAX_LEN + 1];
		int type;
		p.len = parse_question(q, (size_t)n, name, &type);
		p.b[2] |= 0x02;			/* TC */
		p.b[6] = p.b[7] = 0;		/* no answers */
	}
	sendto(d->fd, p.b, p.len, 0, (struct sockaddr *)&from, fromlen);
}

static void conn_close(struct conn *c)
{
	close(c->fd);
	c->fd = -1;
	c->len = 0;
}

static void serve_accept(struct dns_responder *d)
{
	int fd = accept(d->tcp_fd, NULL, NULL);

	if (fd < 0) {
		return;
	}
	for (size_t i = 0; i < MAX_CONNS; i++) {
		if (d->conns[i].fd < 0) {
			d->conns[i].fd = fd;
			d->conns[i].len = 0;
			return;
		}
	}
	close(fd);
}

/* Answers every complete length-prefixed query buffered on c. */
static void serve_tcp(struct dns_responder *d, struct conn *c)
{
	ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	if (n <= 0) {
		conn_close(c);
		return;
	}
	c->len += (size_t)n;
	while (c->len >= 2) {
		size_t qlen = (size_t)c->buf[0] << 8 | c->buf[1];
		if (qlen > PACKET_MAX) {
			conn_close(c);
			return;
		}
		if (c->len < 2 + qlen) {
			return;
		}
		struct packet p = { .len = 2 };
		if (respond(d, c->buf + 2, qlen, &p)) {
			p.b[0] = (unsigned char)((p.len - 2) >> 8);
			p.b[1] = (unsigned char)(p.len - 2);
			if (send(c->fd, p.b, p.len, MSG_NOSIGNAL) != (ssize_t)p.len) {
				conn_close(c);
				return;
			}
		}
		memmove(c->buf, c->buf + 2 + qlen, c->len - 2 - qlen);
		c->len -= 2 + qlen;
	}
}

static void *serve(void *arg)
{
	struct dns_responder *d = arg;

	for (;;) {
		struct pollfd fds[3 + MAX_CONNS] = {
			{ .fd = d->stop_pipe[0], .events = POLLIN },
			{ .fd = d->fd, .events = POLLIN },
			{ .fd = d->tcp_fd, .events = POLLIN },
		};
		for (size_t i = 0; i < MAX_CONNS; i++) {
			fds[3 + i] = (struct pollfd){ .fd = d->conns[i].fd, .events = POLLIN };
		}
		if (poll(fds, 3 + MAX_CONNS, -1) < 0 || fds[0].revents != 0) {
			break;
		}
		if (fds[1].revents != 0) {
			serve_udp(d);
		}
		if (fds[2].revents != 0) {
			serve_accept(d);
		}
		for (size_t i = 0; i < MAX_CONNS; i++) {
			if (fds[3 + i].fd >= 0 && fds[3 + i].revents != 0) {
				serve_tcp(d, &d->conns[i]);
			}
		}
	}
	return NULL;
}

/* Binds UDP to an ephemeral port and TCP to the same one, retrying while
 * that port is taken for TCP. */
static void bind_both(struct dns_responder *d, struct sockaddr_in *sin)
{
	for (int attempt = 0; attempt < 20; attempt++) {
		socklen_t len = sizeof(*sin);
		sin->sin_port = 0;
		d->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		d->tcp_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (d->fd < 0 || d->tcp_fd < 0 ||
			bind(d->fd, (struct sockaddr *)sin, sizeof(*sin)) != 0 ||
			getsockname(d->fd, (struct sockaddr *)sin, &len) != 0) {
			abort();
		}
		if (bind(d->tcp_fd, (struct sockaddr *)sin, sizeof(*sin)) == 0 &&
			listen(d->tcp_fd, MAX_CONNS) == 0) {
			return;
		}
		close(d->fd);
		close(d->tcp_fd);
	}
	abort();
}

/* Starts the responder; see dns-responder.h. */
struct dns_responder *dns_responder_start(const struct dns_entry *table, size_t n,
	enum dns_kind dflt)
{
	struct dns_responder *d = calloc(1, sizeof(*d));
	struct sockaddr_in sin = { .sin_family = AF_INET };

	if (d == NULL) {
		abort();
	}
	d->table = table;
	d->n = n;
	d->dflt = dflt;
	for (size_t i = 0; i < MAX_CONNS; i++) {
		d->conns[i].fd = -1;
	}
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind_both(d, &sin);
	if (pipe(d->stop_pipe) != 0) {
		abort();
	}
	snprintf(d->addr, sizeof(d->addr), "127.0.0.1:%u", ntohs(sin.sin_port));
	pthread_mutex_init(&d->lock, NULL);
	if (pthread_create(&d->thread, NULL, serve, d) != 0) {
		abort();
	}
	return d;
}

/* The address to give resolver_new(). */
const char *dns_responder_addr(const struct dns_responder *d)
{
	return d->addr;
}

/* How many questions arrived. */
size_t dns_responder_count(struct dns_responder *d)
{
	pthread_mutex_lock(&d->lock);
	size_t n = d->count;
	pthread_mutex_unlock(&d->lock);
	return n;
}

/* Copies question i. */
int dns_responder_question(struct dns_responder *d, size_t i, char *buf, size_t len)
{
	int type = 0;

	pthread_mutex_lock(&d->lock);
	if (i < d->count && i < DNS_MAX_QUESTIONS) {
		snprintf(buf, len, "%s", d->questions[i].name);
		type = d->questions[i].type;
	} else {
		snprintf(buf, len, "%s", "");
	}
	pthread_mutex_unlock(&d->lock);
	return type;
}

/* Stops and frees. */
void dns_responder_stop(struct dns_responder *d)
{
	if (d == NULL) {
		return;
	}
	if (write(d->stop_pipe[1], "x", 1) != 1) {
		abort();
	}
	pthread_join(d->thread, NULL);
	for (size_t i = 0; i < MAX_CONNS; i++) {
		if (d->conns[i].fd >= 0) {
			conn_close(&d->conns[i]);
		}
	}
	close(d->fd);
	close(d->tcp_fd);
	close(d->stop_pipe[0]);
	close(d->stop_pipe[1]);
	pthread_mutex_destroy(&d->lock);
	free(d);
}
