/*
 * SRV lookups with c-ares on the libuv loop.
 *
 * c-ares tells us through its socket-state callback which sockets it wants
 * watched and for what; each gets a struct watch holding a uv_poll_t, in a
 * list on the resolver. A uv timer follows ares_timeout() so c-ares can
 * retransmit and time out, and a second one enforces the caller's deadline.
 *
 * Each lookup gets a fresh channel, so a changed /etc/resolv.conf (a laptop
 * on another network) is read again and the channel's timeouts follow the
 * caller's. The channel is destroyed before the caller's callback runs,
 * and that callback is only ever called from a libuv callback after c-ares
 * has returned, never from inside c-ares: the callback may then free the
 * resolver or start another lookup.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <idn2.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/resolve.h"
#include "proto/alloc.h"

#define SERVICE_XMPPS 0		/* _xmpps-client: direct TLS (XEP-0368) */
#define SERVICE_XMPP 1		/* _xmpp-client: STARTTLS (RFC 6120) */
#define NSERVICES 2
#define FALLBACK_PORT 5222
#define HOST_MAX 253
#define ARES_TRIES 2
#define TRY_SHARES 3		/* two tries wait t + 2t per server */
#define TRY_MIN_MS 20

static const char *const service_prefix[NSERVICES] = {
	[SERVICE_XMPPS] = "_xmpps-client._tcp.",
	[SERVICE_XMPP] = "_xmpp-client._tcp.",
};

enum answer {
	ANSWER_PENDING,
	ANSWER_RECORDS,	/* usable SRV records */
	ANSWER_DOT,	/* one record, target ".": the service is absent */
	ANSWER_NONE,	/* NXDOMAIN or no SRV records */
	ANSWER_FAIL,	/* timeout, server failure, malformed answer */
};

struct record {
	char *host;
	unsigned short priority;
	unsigned short weight;
	unsigned short port;
};

struct service {
	struct resolver *r;
	enum answer answer;
	struct record recs[RESOLVE_MAX_TARGETS];
	size_t n;
};

struct watch {
	uv_poll_t poll;
	struct resolver *r;
	ares_socket_t fd;
	struct watch *next;
};

struct resolver {
	uv_loop_t *loop;
	char *server;			/* "IP[:PORT]" or NULL */
	ares_channel channel;		/* only while a lookup runs */
	uv_timer_t ares_timer;		/* c-ares' retransmissions */
	uv_timer_t deadline;		/* the caller's timeout */
	struct watch *watches;
	unsigned open_handles;		/* not yet through their close callback */
	bool freeing;

	bool busy;			/* a lookup awaits its callback */
	struct service svc[NSERVICES];
	char *fallback_host;		/* ASCII domain or IP literal */
	char *error;			/* set: report this, no targets */
	resolve_cb cb;
	void *ud;
};

static void after_process(struct resolver *r);
static void on_ares_timer(uv_timer_t *t);

/* libuv handles. */

static void on_handle_closed(uv_handle_t *h)
{
	struct resolver *r = h->data;

	if (h->type == UV_POLL) {
		free(h);	/* the uv_poll_t is the first member of a watch */
	}
	if (--r->open_handles == 0 && r->freeing) {
		free(r->server);
		free(r);
		ares_library_cleanup();
	}
}

static void watch_close(struct watch *w)
{
	uv_close((uv_handle_t *)&w->poll, on_handle_closed);
}

static struct watch **watch_find(struct resolver *r, ares_socket_t fd)
{
	struct watch **p = &r->watches;

	while (*p != NULL && (*p)->fd != fd) {
		p = &(*p)->next;
	}
	return p;
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct watch *w = (struct watch *)h;
	struct resolver *r = w->r;

	if (r->channel == NULL) {
		return;
	}
	/* On an error let c-ares try both directions and see it. */
	bool rd = status < 0 || (events & (UV_READABLE | UV_DISCONNECT)) != 0;
	bool wr = status < 0 || (events & UV_WRITABLE) != 0;
	ares_process_fd(r->channel, rd ? w->fd : ARES_SOCKET_BAD,
		wr ? w->fd : ARES_SOCKET_BAD);
	after_process(r);
}

static struct watch *watch_new(struct resolver *r, ares_socket_t fd)
{
	struct watch *w = xcalloc(1, sizeof(*w));

	int rc = uv_poll_init_socket(r->loop, &w->poll, fd);
	if (rc < 0) {
		log_error("cannot watch DNS socket %d: %s", fd, uv_strerror(rc));
		free(w);
		return NULL;
	}
	w->poll.data = r;
	w->r = r;
	w->fd = fd;
	w->next = r->watches;
	r->watches = w;
	r->open_handles++;
	return w;
}

/* c-ares' ARES_OPT_SOCK_STATE_CB: start, change or stop watching fd. It
 * is called before c-ares closes a socket, so the poll stops first. */
static void on_sock_state(void *data, ares_socket_t fd, int readable,
	int writable)
{
	struct resolver *r = data;
	struct watch **p = watch_find(r, fd);
	struct watch *w = *p;

	if (!readable && !writable) {
		if (w != NULL) {
			*p = w->next;
			watch_close(w);
		}
		return;
	}
	if (w == NULL && (w = watch_new(r, fd)) == NULL) {
		return;		/* c-ares times the query out */
	}
	int events = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);
	int rc = uv_poll_start(&w->poll, events, on_poll);
	if (rc < 0) {
		log_error("cannot poll DNS socket %d: %s", fd, uv_strerror(rc));
	}
}

static void close_watches(struct resolver *r)
{
	while (r->watches != NULL) {
		struct watch *w = r->watches;
		r->watches = w->next;
		watch_close(w);
	}
}

/* Follows ares_timeout() with the c-ares timer. */
static void rearm(struct resolver *r)
{
	struct timeval buf;
	struct timeval *tv = ares_timeout(r->channel, NULL, &buf);

	if (tv == NULL) {
		uv_timer_stop(&r->ares_timer);
		return;
	}
	uint64_t ms = (uint64_t)tv->tv_sec * 1000 + ((uint64_t)tv->tv_usec + 999) / 1000;
	uv_timer_start(&r->ares_timer, on_ares_timer, ms, 0);
}

/* Channels. */

static size_t count_servers(ares_channel ch)
{
	struct ares_addr_port_node *servers = NULL;
	size_t n = 0;

	if (ares_get_servers_ports(ch, &servers) == ARES_SUCCESS) {
		for (struct ares_addr_port_node *s = servers; s != NULL; s = s->next) {
			n++;
		}
		ares_free_data(servers);
	}
	return n;
}

/* A channel reporting its sockets to r, asking r->server if set, waiting
 * try_ms for each of its ARES_TRIES rounds over the servers. */
static int channel_init(struct resolver *r, unsigned try_ms, ares_channel *out)
{
	struct ares_options o;
	memset(&o, 0, sizeof(o));
	o.sock_state_cb = on_sock_state;
	o.sock_state_cb_data = r;
	o.tries = ARES_TRIES;
	o.timeout = (int)(try_ms < TRY_MIN_MS ? TRY_MIN_MS : try_ms);
	o.lookups = (char *)"b";	/* DNS only: /etc/hosts has no SRV */
	int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TRIES | ARES_OPT_TIMEOUTMS |
		ARES_OPT_LOOKUPS;

	int rc = ares_init_options(out, &o, mask);
	if (rc != ARES_SUCCESS) {
		return rc;
	}
	if (r->server != NULL) {
		rc = ares_set_servers_ports_csv(*out, r->server);
	}
	if (rc != ARES_SUCCESS) {
		ares_destroy(*out);
		*out = NULL;
	}
	return rc;
}

/*
 * A channel that gives up within about timeout_ms. c-ares 1.18 makes
 * ARES_TRIES rounds over its n servers, waiting t per try in the first
 * round and 2t in the second: 3nt in all. n is known only once the
 * channel has read its configuration, so a channel with several servers
 * is made again with a shorter t (our deadline timer is the real bound).
 */
static int channel_new(struct resolver *r, unsigned timeout_ms, ares_channel *out)
{
	int rc = channel_init(r, timeout_ms / TRY_SHARES, out);
	if (rc != ARES_SUCCESS) {
		return rc;
	}
	size_t n = count_servers(*out);
	if (n > 1) {
		ares_destroy(*out);
		unsigned div = TRY_SHARES * (unsigned)(n > 16 ? 16 : n);
		rc = channel_init(r, timeout_ms / div, out);
	}
	return rc;
}

/* Answers. */

/* A target c-ares expanded to a plain host name: letters, digits, '-',
 * '_' and non-empty labels; anything escaped is refused here. */
static bool is_host_name(const char *s)
{
	size_t len = strlen(s);

	return len > 0 && len <= HOST_MAX && s[0] != '.' && strstr(s, "..") == NULL &&
		strspn(s, "abcdefghijklmnopqrstuvwxyz"
			"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == len;
}

static bool is_root(const char *host)
{
	return host[0] == '\0' || strcmp(host, ".") == 0;
}

/* Keeps the usable records of an SRV answer, at most RESOLVE_MAX_TARGETS. */
static enum answer take_records(struct service *s, struct ares_srv_reply *list)
{
	if (list != NULL && list->next == NULL && is_root(list->host)) {
		return ANSWER_DOT;
	}
	for (struct ares_srv_reply *p = list; p != NULL; p = p->next) {
		if (s->n == RESOLVE_MAX_TARGETS) {
			break;
		}
		size_t len = strlen(p->host);
		if (len > 0 && p->host[len - 1] == '.') {
			len--;
		}
		char *host = xstrndup(p->host, len);
		if (p->port == 0 || !is_host_name(host)) {
			log_debug("SRV target '%s' port %u ignored", p->host, p->port);
			free(host);
			continue;
		}
		s->recs[s->n++] = (struct record){
			.host = host, .priority = p->priority,
			.weight = p->weight, .port = p->port,
		};
	}
	return s->n > 0 ? ANSWER_RECORDS : ANSWER_NONE;
}

static enum answer classify(struct service *s, int status,
	const unsigned char *abuf, int alen)
{
	if (status == ARES_ENOTFOUND || status == ARES_ENODATA) {
		return ANSWER_NONE;
	}
	if (status != ARES_SUCCESS) {
		return ANSWER_FAIL;
	}
	struct ares_srv_reply *list = NULL;
	int rc = ares_parse_srv_reply(abuf, alen, &list);
	if (rc != ARES_SUCCESS) {
		return rc == ARES_ENODATA ? ANSWER_NONE : ANSWER_FAIL;
	}
	enum answer a = take_records(s, list);
	ares_free_data(list);
	return a;
}

/* ares_query's callback: records the answer; the lookup ends later, once
 * c-ares has returned (see after_process). */
static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf,
	int alen)
{
	struct service *s = arg;
	struct resolver *r = s->r;

	if (!r->busy || s->answer != ANSWER_PENDING) {
		return;		/* cancelled or destroyed */
	}
	s->answer = classify(s, status, abuf, alen);
	log_debug("SRV %s: %s, %zu records", s == &r->svc[SERVICE_XMPPS] ?
		"xmpps-client" : "xmpp-client", ares_strerror(status), s->n);
}

/* Ordering (RFC 2782). */

/* By priority, and within one the weight-0 records first, as RFC 2782's
 * selection wants them; an insertion sort keeps it stable. */
static bool goes_before(const struct record *a, const struct record *b)
{
	if (a->priority != b->priority) {
		return a->priority < b->priority;
	}
	return a->weight == 0 && b->weight != 0;
}

static void sort_records(struct record *recs, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct record x = recs[i];
		size_t j = i;
		while (j > 0 && goes_before(&x, &recs[j - 1])) {
			recs[j] = recs[j - 1];
			j--;
		}
		recs[j] = x;
	}
}

/* Picks one of recs[0..n) by RFC 2782's running sum of weights against a
 * random number in [0, sum], so weight 0 keeps a small chance. */
static size_t pick_weighted(const struct record *recs, size_t n)
{
	uint32_t sum = 0;
	for (size_t i = 0; i < n; i++) {
		sum += recs[i].weight;
	}
	uint32_t want = arc4random_uniform(sum + 1);
	uint32_t running = 0;
	for (size_t i = 0; i < n; i++) {
		running += recs[i].weight;
		if (running >= want) {
			return i;
		}
	}
	return n - 1;
}

/* Orders one priority group recs[0..n) in place. */
static void order_group(struct record *recs, size_t n)
{
	for (size_t done = 0; done + 1 < n; done++) {
		size_t k = done + pick_weighted(recs + done, n - done);
		struct record x = recs[k];
		memmove(recs + done + 1, recs + done, (k - done) * sizeof(*recs));
		recs[done] = x;
	}
}

/* Appends a service's records to out in RFC 2782 order. */
static size_t order_service(struct service *s, bool direct_tls,
	struct resolve_target *out)
{
	sort_records(s->recs, s->n);
	for (size_t i = 0, j; i < s->n; i = j) {
		for (j = i + 1; j < s->n && s->recs[j].priority == s->recs[i].priority; j++) {
		}
		order_group(s->recs + i, j - i);
	}
	for (size_t i = 0; i < s->n; i++) {
		out[i] = (struct resolve_target){
			.host = xstrdup(s->recs[i].host),
			.port = s->recs[i].port,
			.direct_tls = direct_tls,
		};
	}
	return s->n;
}

/* Ending a lookup. */

static void clear_lookup(struct resolver *r)
{
	for (size_t i = 0; i < NSERVICES; i++) {
		struct service *s = &r->svc[i];
		for (size_t k = 0; k < s->n; k++) {
			free(s->recs[k].host);
		}
		s->n = 0;
		s->answer = ANSWER_PENDING;
	}
	free(r->fallback_host);
	r->fallback_host = NULL;
	free(r->error);
	r->error = NULL;
	r->busy = false;
	r->cb = NULL;
	r->ud = NULL;
}

/* Destroys the channel, which tells on_sock_state to stop every watch;
 * never called from inside c-ares. */
static void stop_lookup(struct resolver *r)
{
	uv_timer_stop(&r->ares_timer);
	uv_timer_stop(&r->deadline);
	if (r->channel != NULL) {
		ares_channel ch = r->channel;
		r->channel = NULL;
		ares_destroy(ch);
	}
	close_watches(r);
}

static bool is_done(const struct resolver *r)
{
	return r->svc[SERVICE_XMPPS].answer != ANSWER_PENDING &&
		r->svc[SERVICE_XMPP].answer != ANSWER_PENDING;
}

/*
 * The targets, or NULL with *error set. Without any record: "." for
 * _xmpp-client, or for _xmpps-client with no _xmpp-client records, says
 * there is no service; otherwise RFC 6120 3.2.2's fallback to the domain.
 */
static struct resolve_target *make_targets(struct resolver *r, size_t *n,
	const char **error)
{
	enum answer tls = r->svc[SERVICE_XMPPS].answer;
	enum answer plain = r->svc[SERVICE_XMPP].answer;
	struct resolve_target *t = xcalloc(NSERVICES * RESOLVE_MAX_TARGETS, sizeof(*t));

	*n = 0;
	*error = r->error;
	if (r->error != NULL) {
		return t;
	}
	if (tls == ANSWER_RECORDS || plain == ANSWER_RECORDS) {
		*n = order_service(&r->svc[SERVICE_XMPPS], true, t);
		*n += order_service(&r->svc[SERVICE_XMPP], false, t + *n);
	} else if (plain == ANSWER_DOT || (tls == ANSWER_DOT && plain == ANSWER_NONE)) {
		*error = "the domain says it has no XMPP service";
	} else {
		t[0] = (struct resolve_target){ .host = xstrdup(r->fallback_host),
			.port = FALLBACK_PORT, .direct_tls = false };
		*n = 1;
	}
	return t;
}

/* Ends the lookup and calls back last: the callback may free r. */
static void finish(struct resolver *r)
{
	size_t n;
	const char *error;

	stop_lookup(r);
	struct resolve_target *t = make_targets(r, &n, &error);
	char *error_copy = error != NULL ? xstrdup(error) : NULL;
	resolve_cb cb = r->cb;
	void *ud = r->ud;
	clear_lookup(r);
	if (error_copy != NULL) {
		log_debug("SRV lookup: %s", error_copy);
	} else {
		log_debug("SRV lookup: %zu targets, first %s:%d%s", n, t[0].host,
			t[0].port, t[0].direct_tls ? " (direct TLS)" : "");
	}
	cb(ud, t, n, error_copy);
	for (size_t i = 0; i < n; i++) {
		free(t[i].host);
	}
	free(t);
	free(error_copy);
}

/* After c-ares has processed: end the lookup, or follow its timeouts. */
static void after_process(struct resolver *r)
{
	if (!r->busy) {
		return;
	}
	if (is_done(r)) {
		finish(r);
	} else if (r->channel != NULL) {
		rearm(r);
	}
}

static void on_ares_timer(uv_timer_t *t)
{
	struct resolver *r = t->data;

	if (r->channel != NULL) {
		ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	}
	after_process(r);
}

/* The caller's timeout: what has not answered counts as failed. */
static void on_deadline(uv_timer_t *t)
{
	struct resolver *r = t->data;

	if (!r->busy) {
		return;
	}
	log_debug("SRV lookup timed out");
	if (r->channel != NULL) {
		ares_cancel(r->channel);	/* on_answer: ARES_ECANCELLED */
	}
	for (size_t i = 0; i < NSERVICES; i++) {
		if (r->svc[i].answer == ANSWER_PENDING) {
			r->svc[i].answer = ANSWER_FAIL;
		}
	}
	finish(r);
}

/* Starting a lookup. */

/* An IP address domain ("192.0.2.1", "[2001:db8::1]") has no SRV records;
 * returns the address to connect to, or NULL. */
static char *ip_literal(const char *domain)
{
	unsigned char addr[sizeof(struct in6_addr)];
	size_t len = strlen(domain);

	if (inet_pton(AF_INET, domain, addr) == 1) {
		return xstrdup(domain);
	}
	if (len > 2 && domain[0] == '[' && domain[len - 1] == ']') {
		char *inner = xstrndup(domain + 1, len - 2);
		if (inet_pton(AF_INET6, inner, addr) == 1) {
			return inner;
		}
		free(inner);
	}
	return NULL;
}

/* The A-label form of a domain (IDNA2008 via libidn2), without a trailing
 * dot; NULL if it is not a valid host name. */
static char *domain_to_ascii(const char *domain)
{
	char *a = NULL;

	if (idn2_lookup_u8((const uint8_t *)domain, (uint8_t **)&a,
			IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL) != IDN2_OK) {
		return NULL;
	}
	size_t len = strlen(a);
	if (len > 0 && a[len - 1] == '.') {
		a[--len] = '\0';
	}
	char *res = NULL;
	if (len > 0 && len <= HOST_MAX && a[0] != '.' && strstr(a, "..") == NULL &&
		strspn(a, "abcdefghijklmnopqrstuvwxyz0123456789-.") == len) {
		res = xstrdup(a);
	}
	idn2_free(a);
	return res;
}

/* Sends both queries; an answer may come back at once (e.g. a bad name). */
static void start_queries(struct resolver *r, unsigned timeout_ms)
{
	int rc = channel_new(r, timeout_ms, &r->channel);
	if (rc != ARES_SUCCESS) {
		log_warnx("cannot start a DNS lookup: %s", ares_strerror(rc));
		r->svc[SERVICE_XMPPS].answer = ANSWER_FAIL;
		r->svc[SERVICE_XMPP].answer = ANSWER_FAIL;
		return;
	}
	for (size_t i = 0; i < NSERVICES; i++) {
		char *name = xasprintf("%s%s", service_prefix[i], r->fallback_host);
		log_debug("SRV query %s", name);
		ares_query(r->channel, name, ns_c_in, ns_t_srv, on_answer, &r->svc[i]);
		free(name);
	}
}

/* Starts the lookups described in resolve.h. */
void resolve_srv(struct resolver *r, const char *domain, unsigned timeout_ms,
	resolve_cb cb, void *ud)
{
	resolve_cancel(r);
	r->busy = true;
	r->cb = cb;
	r->ud = ud;
	uv_timer_start(&r->deadline, on_deadline, timeout_ms, 0);

	if ((r->fallback_host = ip_literal(domain)) != NULL) {
		r->svc[SERVICE_XMPPS].answer = ANSWER_NONE;
		r->svc[SERVICE_XMPP].answer = ANSWER_NONE;
	} else if ((r->fallback_host = domain_to_ascii(domain)) == NULL) {
		r->error = xasprintf("invalid domain '%s'", domain);
		r->svc[SERVICE_XMPPS].answer = ANSWER_FAIL;
		r->svc[SERVICE_XMPP].answer = ANSWER_FAIL;
	} else {
		start_queries(r, timeout_ms);
	}
	if (is_done(r)) {
		uv_timer_start(&r->ares_timer, on_ares_timer, 0, 0);	/* never call back from here */
	} else {
		rearm(r);
	}
}

/* Stops the lookup in flight without calling back. */
void resolve_cancel(struct resolver *r)
{
	if (r == NULL) {
		return;
	}
	r->busy = false;	/* on_answer ignores what ares_destroy reports */
	stop_lookup(r);
	clear_lookup(r);
}

/* Whether a lookup awaits its callback. */
bool resolve_is_busy(const struct resolver *r)
{
	return r != NULL && r->busy;
}

/* A resolver on loop; see resolve.h. */
struct resolver *resolver_new(uv_loop_t *loop, const char *server, char **cause)
{
	int rc = ares_library_init(ARES_LIB_INIT_ALL);
	if (rc != ARES_SUCCESS) {
		*cause = xasprintf("c-ares: %s", ares_strerror(rc));
		return NULL;
	}
	struct resolver *r = xcalloc(1, sizeof(*r));
	r->loop = loop;
	r->server = server != NULL ? xstrdup(server) : NULL;

	ares_channel probe;	/* a bad server or resolv.conf shows now */
	rc = channel_init(r, TRY_MIN_MS, &probe);
	if (rc != ARES_SUCCESS) {
		*cause = server != NULL ?
			xasprintf("DNS server '%s': %s", server, ares_strerror(rc)) :
			xasprintf("DNS configuration: %s", ares_strerror(rc));
		free(r->server);
		free(r);
		ares_library_cleanup();
		return NULL;
	}
	ares_destroy(probe);
	uv_timer_init(loop, &r->ares_timer);
	uv_timer_init(loop, &r->deadline);
	r->ares_timer.data = r;
	r->deadline.data = r;
	r->open_handles = 2;
	for (size_t i = 0; i < NSERVICES; i++) {
		r->svc[i].r = r;
	}
	return r;
}

/* Cancels, closes the handles and frees r from their close callbacks. */
void resolver_free(struct resolver *r)
{
	if (r == NULL) {
		return;
	}
	resolve_cancel(r);
	r->freeing = true;
	uv_close((uv_handle_t *)&r->ares_timer, on_handle_closed);
	uv_close((uv_handle_t *)&r->deadline, on_handle_closed);
}
