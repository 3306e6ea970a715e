/*
 * Server discovery against a DNS responder on loopback (dns-responder.c):
 * ordering, the "." service, fallbacks, timeouts, IDN domains, and that
 * every handle is closed however a lookup ends.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "daemon/resolve.h"
/* The responder is built into this test: tests/meson.build makes each
 * unit test from its one source file. */
#include "tests/dns-responder.c"

#define DOMAIN "example.org"
#define XMPPS "_xmpps-client._tcp.example.org"
#define XMPP "_xmpp-client._tcp.example.org"
#define NO_SERVICE "the domain says it has no XMPP service"

struct target_copy {
	char host[256];
	int port;
	bool direct_tls;
};

struct result {
	int calls;
	size_t n;
	struct target_copy t[2 * RESOLVE_MAX_TARGETS];
	char error[256];
	bool has_error;
	uint64_t at_ms;
};

static uv_loop_t loop;
static struct dns_responder *dns;
static struct resolver *res;
static struct result got;

static void on_result(void *ud, const struct resolve_target *t, size_t n,
	const char *error)
{
	struct result *out = ud;

	out->calls++;
	out->n = n;
	out->at_ms = uv_now(&loop);
	for (size_t i = 0; i < n && i < 2 * RESOLVE_MAX_TARGETS; i++) {
		snprintf(out->t[i].host, sizeof(out->t[i].host), "%s", t[i].host);
		out->t[i].port = t[i].port;
		out->t[i].direct_tls = t[i].direct_tls;
	}
	out->has_error = error != NULL;
	snprintf(out->error, sizeof(out->error), "%s", error != NULL ? error : "");
}

static void start(const struct dns_entry *table, size_t n, enum dns_kind dflt)
{
	char *cause = NULL;

	memset(&got, 0, sizeof(got));
	cr_assert(eq(int, uv_loop_init(&loop), 0));
	dns = dns_responder_start(table, n, dflt);
	res = resolver_new(&loop, dns_responder_addr(dns), &cause);
	cr_assert(not(eq(ptr, res, NULL)), "resolver_new: %s", cause);
}

/* Runs one lookup to its end. */
static void lookup(const char *domain, unsigned timeout_ms)
{
	memset(&got, 0, sizeof(got));
	resolve_srv(res, domain, timeout_ms, on_result, &got);
	cr_assert(eq(int, got.calls, 0), "called back from inside resolve_srv");
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert(eq(int, got.calls, 1));
}

/* Frees the resolver and checks nothing was left on the loop. */
static void finish(void)
{
	resolver_free(res);
	res = NULL;
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert(eq(int, uv_loop_close(&loop), 0));
	dns_responder_stop(dns);
	dns = NULL;
}

static void expect_target(size_t i, const char *host, int port, bool tls)
{
	cr_assert(lt(sz, i, got.n));
	cr_expect(eq(str, got.t[i].host, (char *)host), "target %zu", i);
	cr_expect(eq(int, got.t[i].port, port), "target %zu", i);
	cr_expect(eq(int, got.t[i].direct_tls, tls), "target %zu", i);
}

static void expect_fallback(const char *host)
{
	cr_assert(not(got.has_error), "error: %s", got.error);
	cr_assert(eq(sz, got.n, 1));
	expect_target(0, host, 5222, false);
}

#define ENTRY(name, kind, recs) { name, kind, recs, sizeof(recs) / sizeof(recs[0]) }

static const struct dns_srv tls_recs[] = {
	{ 20, 0, 5223, "tls-b.example.org" },
	{ 10, 0, 5223, "tls-a.example.org" },
};
static const struct dns_srv plain_recs[] = {
	{ 30, 0, 5222, "c.example.org" },
	{ 5, 0, 5222, "a.example.org" },
	{ 10, 0, 5269, "b.example.org." },
};

Test(resolve, both_services_direct_tls_first, .timeout = 10)
{
	const struct dns_entry table[] = {
		ENTRY(XMPPS, DNS_SRV, tls_recs),
		ENTRY(XMPP, DNS_SRV, plain_recs),
	};
	start(table, 2, DNS_NXDOMAIN);
	lookup(DOMAIN, 2000);
	cr_assert(not(got.has_error), "error: %s", got.error);
	cr_assert(eq(sz, got.n, 5));
	expect_target(0, "tls-a.example.org", 5223, true);
	expect_target(1, "tls-b.example.org", 5223, true);
	expect_target(2, "a.example.org", 5222, false);
	expect_target(3, "b.example.org", 5269, false);
	expect_target(4, "c.example.org", 5222, false);
	finish();
}

static const struct dns_srv weighted_recs[] = {
	{ 10, 1, 5222, "light.example.org" },
	{ 10, 9, 5222, "heavy.example.org" },
	{ 20, 0, 5222, "backup.example.org" },
};

Test(resolve, weights_favour_the_heavier, .timeout = 60)
{
	const struct dns_entry table[] = { ENTRY(XMPP, DNS_SRV, weighted_recs) };
	int heavy_first = 0;

	start(table, 1, DNS_NXDOMAIN);
	for (int i = 0; i < 200; i++) {
		lookup(DOMAIN, 2000);
		cr_assert(eq(sz, got.n, 3));
		heavy_first += strcmp(got.t[0].host, "heavy.example.org") == 0;
		cr_assert(eq(str, got.t[2].host, "backup.example.org"));
	}
	/* 9/11 expected with RFC 2782's [0, sum] draw. */
	cr_expect(gt(int, heavy_first, 120), "heavy first %d of 200", heavy_first);
	cr_expect(lt(int, heavy_first, 200), "the light record never came first");
	finish();
}

static const struct dns_srv zero_recs[] = {
	{ 10, 0, 5222, "zero.example.org" },
	{ 10, 10, 5222, "ten.example.org" },
};

Test(resolve, weight_zero_keeps_a_small_chance, .timeout = 60)
{
	const struct dns_entry table[] = { ENTRY(XMPP, DNS_SRV, zero_recs) };
	int zero_first = 0;

	start(table, 1, DNS_NXDOMAIN);
	for (int i = 0; i < 200; i++) {
		lookup(DOMAIN, 2000);
		cr_assert(eq(sz, got.n, 2));
		zero_first += strcmp(got.t[0].host, "zero.example.org") == 0;
	}
	/* 1/11 expected. */
	cr_expect(gt(int, zero_first, 0));
	cr_expect(lt(int, zero_first, 60), "zero first %d of 200", zero_first);
	finish();
}

Test(resolve, dot_for_both_means_no_service, .timeout = 10)
{
	const struct dns_entry table[] = {
		{ XMPPS, DNS_DOT, NULL, 0 },
		{ XMPP, DNS_DOT, NULL, 0 },
	};
	start(table, 2, DNS_NXDOMAIN);
	lookup(DOMAIN, 2000);
	cr_assert(eq(sz, got.n, 0));
	cr_assert(eq(str, got.error, NO_SERVICE));
	finish();
}

Test(resolve, dot_and_nxdomain_means_no_service, .timeout = 10)
{
	const struct dns_entry table[] = { { XMPPS, DNS_DOT, NULL, 0 } };
	start(table, 1, DNS_NXDOMAIN);
	lookup(DOMAIN, 2000);
	cr_assert(eq(sz, got.n, 0));
	cr_assert(eq(str, got.error, NO_SERVICE));
	finish();
}

Test(resolve, dot_for_xmpps_keeps_starttls, .timeout = 10)
{
	const struct dns_entry table[] = {
		{ XMPPS, DNS_DOT, NULL, 0 },
		ENTRY(XMPP, DNS_SRV, plain_recs),
	};
	start(table, 2, DNS_NXDOMAIN);
	lookup(DOMAIN, 2000);
	cr_assert(not(got.has_error), "error: %s", got.error);
	cr_assert(eq(sz, got.n, 3));
	expect_target(0, "a.example.org", 5222, false);
	expect_target(1, "b.example.org", 5269, false);
	expect_target(2, "c.example.org", 5222, false);
	finish();
}

Test(resolve, dot_for_xmpp_keeps_direct_tls, .timeout = 10)
{
	const struct dns_entry table[] = {
		ENTRY(XMPPS, DNS_SRV, tls_recs),
		{ XMPP, DNS_DOT, NULL, 0 },
	};
	start(table, 2, DNS_NXDOMAIN);
	lookup(DOMAIN, 2000);
	cr_assert(eq(sz, got.n, 2));
	expect_target(0, "tls-a.example.org", 5223, true);
	expect_target(1, "tls-b.example.org", 5223, true);
	finish();
}

Test(resolve, nxdomain_falls_back_to_domain, .timeout = 10)
{
	start(NULL, 0, DNS_NXDOMAIN);
	lookup(DOMAIN, 2000);
	expect_fallback(DOMAIN);
	cr_expect(eq(sz, dns_responder_count(dns), 2));
	finish();
}

Test(resolve, empty_answer_falls_back, .timeout = 10)
{
	start(NULL, 0, DNS_NODATA);
	lookup(DOMAIN, 2000);
	expect_fallback(DOMAIN);
	finish();
}

Test(resolve, servfail_falls_back, .timeout = 10)
{
	start(NULL, 0, DNS_SERVFAIL);
	lookup(DOMAIN, 2000);
	expect_fallback(DOMAIN);
	finish();
}

Test(resolve, unresponsive_server_falls_back_in_time, .timeout = 10)
{
	start(NULL, 0, DNS_DROP);
	uv_update_time(&loop);
	uint64_t t0 = uv_now(&loop);
	lookup(DOMAIN, 400);
	expect_fallback(DOMAIN);
	uint64_t took = got.at_ms - t0;
	cr_expect(ge(u64, took, 200), "gave up after %llu ms", (unsigned long long)took);
	cr_expect(le(u64, took, 1500), "gave up after %llu ms", (unsigned long long)took);
	cr_expect(ge(sz, dns_responder_count(dns), 2));
	finish();
}

Test(resolve, one_service_answering_is_enough, .timeout = 10)
{
	const struct dns_entry table[] = {
		{ XMPPS, DNS_DROP, NULL, 0 },
		ENTRY(XMPP, DNS_SRV, plain_recs),
	};
	start(table, 2, DNS_NXDOMAIN);
	lookup(DOMAIN, 300);
	cr_assert(eq(sz, got.n, 3));
	expect_target(0, "a.example.org", 5222, false);
	finish();
}

Test(resolve, idn_domain_is_queried_as_a_labels, .timeout = 10)
{
	char name[256];

	start(NULL, 0, DNS_NXDOMAIN);
	lookup("b\xc3\xbc" "cher.example", 2000);
	expect_fallback("xn--bcher-kva.example");
	cr_assert(eq(sz, dns_responder_count(dns), 2));
	bool seen[2] = { false, false };
	for (size_t i = 0; i < 2; i++) {
		cr_expect(eq(int, dns_responder_question(dns, i, name, sizeof(name)), 33));
		seen[0] |= strcmp(name, "_xmpps-client._tcp.xn--bcher-kva.example") == 0;
		seen[1] |= strcmp(name, "_xmpp-client._tcp.xn--bcher-kva.example") == 0;
	}
	cr_expect(seen[0] && seen[1], "questions were not in A-label form");
	finish();
}

Test(resolve, invalid_domain_is_an_error, .timeout = 10)
{
	start(NULL, 0, DNS_NXDOMAIN);
	lookup("bad..domain", 2000);
	cr_assert(eq(sz, got.n, 0));
	cr_assert(got.has_error);
	cr_expect(eq(sz, dns_responder_count(dns), 0));
	finish();
}

Test(resolve, ip_literal_skips_dns, .timeout = 10)
{
	start(NULL, 0, DNS_NXDOMAIN);
	lookup("127.0.0.1", 2000);
	expect_fallback("127.0.0.1");
	lookup("[::1]", 2000);
	expect_fallback("::1");
	cr_expect(eq(sz, dns_responder_count(dns), 0));
	finish();
}

static const struct dns_srv bad_recs[] = {
	{ 10, 0, 0, "zero-port.example.org" },
	{ 10, 0, 5222, "bad name.example.org" },
	{ 20, 0, 5222, "good.example.org" },
	{ 30, 0, 5222, "." },
};

Test(resolve, unusable_records_are_skipped, .timeout = 10)
{
	const struct dns_entry table[] = { ENTRY(XMPP, DNS_SRV, bad_recs) };
	start(table, 1, DNS_NXDOMAIN);
	lookup(DOMAIN, 2000);
	cr_assert(eq(sz, got.n, 1));
	expect_target(0, "good.example.org", 5222, false);
	finish();
}

static struct dns_srv many_recs[40];
static char many_names[40][32];

Test(resolve, at_most_32_targets_per_service, .timeout = 10)
{
	for (int i = 0; i < 40; i++) {
		snprintf(many_names[i], sizeof(many_names[i]), "h%d.example.org", i);
		many_recs[i] = (struct dns_srv){ (unsigned short)i, 0, 5222, many_names[i] };
	}
	const struct dns_entry table[] = {
		ENTRY(XMPPS, DNS_SRV, many_recs),
		ENTRY(XMPP, DNS_SRV, many_recs),
	};
	start(table, 2, DNS_NXDOMAIN);
	lookup(DOMAIN, 2000);
	cr_assert(eq(sz, got.n, 2 * RESOLVE_MAX_TARGETS));
	expect_target(0, "h0.example.org", 5222, true);
	expect_target(RESOLVE_MAX_TARGETS - 1, "h31.example.org", 5222, true);
	expect_target(RESOLVE_MAX_TARGETS, "h0.example.org", 5222, false);
	/* Too big for UDP: both questions were asked again over TCP. */
	cr_expect(eq(sz, dns_responder_count(dns), 4));
	finish();
}

/* Ending a lookup early, from a timer that waits for the questions. */

static void (*early_action)(struct resolver *r);

static void on_watch(uv_timer_t *t)
{
	if (dns_responder_count(dns) < 2) {
		return;
	}
	uv_close((uv_handle_t *)t, NULL);
	early_action(res);
}

static void run_until_asked(void (*action)(struct resolver *r))
{
	static uv_timer_t watch;

	early_action = action;
	uv_timer_init(&loop, &watch);
	uv_timer_start(&watch, on_watch, 1, 1);
	resolve_srv(res, DOMAIN, 5000, on_result, &got);
	uv_update_time(&loop);
	uint64_t t0 = uv_now(&loop);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert(eq(int, got.calls, 0), "callback after the lookup was stopped");
	cr_assert(lt(u64, uv_now(&loop) - t0, 2000), "the lookup kept the loop alive");
}

static void free_now(struct resolver *r)
{
	resolver_free(r);
	res = NULL;
}

Test(resolve, free_mid_lookup_closes_everything, .timeout = 10)
{
	start(NULL, 0, DNS_DROP);
	run_until_asked(free_now);
	cr_assert(eq(int, uv_loop_close(&loop), 0));
	dns_responder_stop(dns);
}

Test(resolve, cancel_mid_lookup, .timeout = 10)
{
	start(NULL, 0, DNS_DROP);
	run_until_asked(resolve_cancel);
	cr_assert(not(resolve_is_busy(res)));
	finish();
}

static void free_in_callback(void *ud, const struct resolve_target *t, size_t n,
	const char *error)
{
	on_result(ud, t, n, error);
	resolver_free(res);
	res = NULL;
}

Test(resolve, free_from_callback, .timeout = 10)
{
	start(NULL, 0, DNS_NXDOMAIN);
	resolve_srv(res, DOMAIN, 2000, free_in_callback, &got);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert(eq(int, got.calls, 1));
	cr_assert(eq(int, uv_loop_close(&loop), 0));
	dns_responder_stop(dns);
}

static struct result second;

static void again_in_callback(void *ud, const struct resolve_target *t, size_t n,
	const char *error)
{
	on_result(ud, t, n, error);
	resolve_srv(res, "other.example", 2000, on_result, &second);
}

Test(resolve, new_lookup_from_callback, .timeout = 10)
{
	memset(&second, 0, sizeof(second));
	start(NULL, 0, DNS_NXDOMAIN);
	resolve_srv(res, DOMAIN, 2000, again_in_callback, &got);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert(eq(int, got.calls, 1));
	cr_assert(eq(int, second.calls, 1));
	cr_assert(eq(str, second.t[0].host, "other.example"));
	finish();
}

Test(resolve, second_lookup_replaces_the_first, .timeout = 10)
{
	struct result first;

	memset(&first, 0, sizeof(first));
	start(NULL, 0, DNS_NXDOMAIN);
	resolve_srv(res, "first.example", 2000, on_result, &first);
	resolve_srv(res, DOMAIN, 2000, on_result, &got);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert(eq(int, first.calls, 0));
	cr_assert(eq(int, got.calls, 1));
	expect_fallback(DOMAIN);
	finish();
}

Test(resolve, bad_server_is_refused, .timeout = 10)
{
	char *cause = NULL;

	cr_assert(eq(int, uv_loop_init(&loop), 0));
	struct resolver *r = resolver_new(&loop, "not-an-address", &cause);
	cr_assert(eq(ptr, r, NULL));
	cr_assert(not(eq(ptr, cause, NULL)));
	free(cause);
	r = resolver_new(&loop, "[::1]:5353", &cause);
	cr_assert(not(eq(ptr, r, NULL)), "IPv6 with port: %s", cause);
	resolver_free(r);
	resolver_free(NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert(eq(int, uv_loop_close(&loop), 0));
}
