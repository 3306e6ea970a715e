/*
 * The client side of SASL (RFC 6120 section 6) as a thin layer over GNU
 * SASL. No I/O: the stream hands in the base64 text of <challenge/> and
 * <success/> and sends the base64 text this module returns.
 *
 * Mechanism choice happens once, in sasl_new(), before the first <auth>:
 * SCRAM-SHA-256-PLUS, SCRAM-SHA-1-PLUS, SCRAM-SHA-256, SCRAM-SHA-1, then
 * PLAIN (only over TLS), among the mechanisms the server offered. A -PLUS
 * mechanism is chosen only when a channel binding the server accepts can
 * be produced: tls-exporter only when the server lists it in XEP-0440
 * <sasl-channel-binding/>, tls-unique only under TLS 1.2 and when the
 * server either sends no XEP-0440 list or lists tls-unique. There is no
 * fallback: a failed attempt is a failed login.
 *
 * Success needs proof: for SCRAM the server signature must have been
 * verified (in a <challenge/> or in the <success/> data) before the
 * attempt counts as authenticated.
 */
#ifndef XMPPD_PROTO_SASL_H
#define XMPPD_PROTO_SASL_H

#include <stdbool.h>
#include <stddef.h>

struct stream_tls_info;
struct sasl;

/* What the server offered in its stream features. */
struct sasl_offer {
	const char *const *mechs;	/* <mechanism/> texts */
	size_t nmechs;
	bool cb_listed;		/* XEP-0440 <sasl-channel-binding/> present */
	const char *const *cb_types;	/* its <channel-binding type=''/> values */
	size_t ncb_types;
	bool refuse_plain;	/* this account has used SCRAM: never PLAIN */
};

enum sasl_status {
	SASL_CONTINUE,		/* send the output, wait for more */
	SASL_DONE,		/* send the output (if any), wait for <success/> */
	SASL_ERROR,		/* give up; *err says why */
};

/*
 * Chooses a mechanism for offer under tls (NULL without TLS) and, for a
 * -PLUS one, stores the binding type ("tls-unique", "tls-exporter") in
 * *cb_type (else NULL). Returns a static mechanism name or NULL.
 */
const char *sasl_choose(const struct sasl_offer *offer,
	const struct stream_tls_info *tls, const char **cb_type);

/*
 * A new client exchange with the mechanism sasl_choose() picks; tls may
 * be freed after the call. authcid and password are copied. Returns NULL
 * with *err set (static text) when no usable mechanism is offered or GNU
 * SASL fails.
 */
struct sasl *sasl_new(const struct sasl_offer *offer,
	const struct stream_tls_info *tls, const char *authcid,
	const char *password, const char **err);
/* Wipes secrets and frees; accepts NULL. */
void sasl_free(struct sasl *s);
/* The chosen mechanism name (lives as long as s). */
const char *sasl_mechanism(const struct sasl *s);
/* The channel binding type of a -PLUS mechanism, or NULL. */
const char *sasl_cb_type(const struct sasl *s);

/*
 * The initial response for <auth>: base64, "=" for an empty one
 * (RFC 6120 6.4.2). *out is the caller's to free. SASL_ERROR sets *err.
 */
enum sasl_status sasl_start(struct sasl *s, char **out, const char **err);
/*
 * Answers a <challenge/> whose text is in (base64, may be empty or "=").
 * *out is the base64 <response/> text (maybe ""), the caller's to free.
 */
enum sasl_status sasl_step(struct sasl *s, const char *in, char **out,
	const char **err);
/*
 * Checks <success/>: in is its additional data (NULL or "" when none).
 * True only when the exchange completed and, for SCRAM, the server
 * proved that it knows the password. False sets *err.
 */
bool sasl_success(struct sasl *s, const char *in, const char **err);

#endif
