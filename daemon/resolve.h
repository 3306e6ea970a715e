/*
 * Server discovery: the SRV lookups of RFC 6120 3.2.1 and XEP-0368 with
 * c-ares, driven by the libuv loop so a lookup never blocks it.
 *
 * resolve_srv() asks _xmpps-client._tcp.DOMAIN and _xmpp-client._tcp.DOMAIN
 * at once and answers with the ordered list of hosts to try: direct-TLS
 * targets first, then STARTTLS ones, each in RFC 2782 order (priority, then
 * a weighted random order). Without any SRV record the answer is the
 * domain itself on 5222 with STARTTLS; when the domain publishes "." for
 * the services it says it has none, and the answer is an error.
 */
#ifndef XMPPD_DAEMON_RESOLVE_H
#define XMPPD_DAEMON_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

/* Most targets kept per service; the rest of an answer is ignored. */
#define RESOLVE_MAX_TARGETS 32

struct resolve_target {
	char *host;		/* ASCII host name (A-labels), no trailing dot */
	int port;
	bool direct_tls;	/* from _xmpps-client: TLS from the first byte */
};

/*
 * The result of a lookup. targets is an ordered list to try, owned by the
 * resolver and valid during the call only. n is 0 when error is set (e.g.
 * "the domain says it has no XMPP service"); otherwise error is NULL and
 * n >= 1. The callback may call resolve_srv(), resolve_cancel() or
 * resolver_free() on its resolver.
 */
typedef void (*resolve_cb)(void *ud, const struct resolve_target *targets,
	size_t n, const char *error);

struct resolver;

/*
 * A resolver on loop that asks server, "IP[:PORT]" (IPv6 as "[addr]:port"),
 * or the servers of /etc/resolv.conf when server is NULL. On failure it
 * returns NULL and sets *cause (caller frees).
 */
struct resolver *resolver_new(uv_loop_t *loop, const char *server, char **cause);

/*
 * Starts both SRV lookups for domain (Unicode or ASCII; converted with
 * IDNA2008 before it is queried); cb fires exactly once, never from inside
 * this call, within about timeout_ms, unless resolve_cancel() or
 * resolver_free() comes first. A lookup still in flight is cancelled
 * first (its callback is not called): one lookup at a time per resolver.
 */
void resolve_srv(struct resolver *r, const char *domain, unsigned timeout_ms,
	resolve_cb cb, void *ud);

/* Stops the lookup in flight, if any; its callback is not called. */
void resolve_cancel(struct resolver *r);

/* Whether a lookup is in flight (its callback has yet to fire). */
bool resolve_is_busy(const struct resolver *r);

/*
 * Cancels any lookup (its callback is not called), closes the handles and
 * frees the resolver from their close callbacks, so the loop must run once
 * more before uv_loop_close(). Accepts NULL.
 */
void resolver_free(struct resolver *r);

#endif
