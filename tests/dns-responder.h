/*
 * A tiny UDP DNS server on 127.0.0.1 for tests: it answers SRV questions
 * from a table, NXDOMAIN, a "." target, an empty answer, SERVFAIL, or not
 * at all, and records the questions it was asked. It runs in a thread.
 */
#ifndef XMPPD_TESTS_DNS_RESPONDER_H
#define XMPPD_TESTS_DNS_RESPONDER_H

#include <stddef.h>

enum dns_kind {
	DNS_NXDOMAIN,	/* rcode 3 */
	DNS_SRV,	/* the entry's records */
	DNS_DOT,	/* one SRV record whose target is "." */
	DNS_NODATA,	/* rcode 0, no answer records */
	DNS_SERVFAIL,	/* rcode 2 */
	DNS_DROP,	/* no response at all */
};

struct dns_srv {
	unsigned short priority;
	unsigned short weight;
	unsigned short port;
	const char *target;
};

struct dns_entry {
	const char *name;	/* question name, no trailing dot */
	enum dns_kind kind;
	const struct dns_srv *srv;
	size_t nsrv;
};

#define DNS_MAX_QUESTIONS 64

struct dns_responder;

/* Starts answering from table[0..n) (borrowed until stop); names not in
 * the table get dflt (DNS_SRV there means an empty answer). */
struct dns_responder *dns_responder_start(const struct dns_entry *table, size_t n,
	enum dns_kind dflt);
/* "127.0.0.1:PORT", for resolver_new(). */
const char *dns_responder_addr(const struct dns_responder *d);
/* The number of questions received so far (at most DNS_MAX_QUESTIONS kept). */
size_t dns_responder_count(struct dns_responder *d);
/* Copies question i's name ("" if none) into buf of size len; returns its
 * type. */
int dns_responder_question(struct dns_responder *d, size_t i, char *buf, size_t len);
/* Stops the thread and frees d. */
void dns_responder_stop(struct dns_responder *d);

#endif
