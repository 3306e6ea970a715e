/*
 * The client side of one XMPP stream (RFC 6120): header, features,
 * STARTTLS, SASL, restarts, resource binding, and then stanzas both ways.
 * It does no I/O: the owner feeds it the plaintext it receives
 * (stream_feed) and it answers through callbacks: bytes to write, "start
 * TLS now", "online", each stanza, failure.
 *
 * Typical life (STARTTLS):
 *   stream_new -> transport connects -> stream_start (header out)
 *   -> features -> <starttls/> -> <proceed/> -> cb.start_tls
 *   -> transport handshakes -> stream_tls_ready -> header out
 *   -> features -> <auth/> ... <success/> -> header out -> features
 *   -> bind (-> session) -> cb.online -> stanzas
 * With direct TLS the owner calls stream_tls_ready() instead of
 * stream_start() once the handshake is done.
 *
 * Stream management (XEP-0198), only when cfg.sm is set and the server
 * offers it after authentication:
 *   fresh:  bind (-> session) -> <enable/> -> <enabled/> or <failed/>
 *           -> cb.online
 *   resume: (sm->resumable) <resume/> -> <resumed/> -> acks, the
 *           unacknowledged stanzas re-sent -> cb.resumed
 *           or <failed/> -> cb.resume_failed -> bind as fresh
 * While enabled the stream counts the stanzas it delivers, answers <r/>,
 * applies <a/> (cb.acked per stanza), queues what the owner sends in
 * cfg.sm and asks for an ack after every STREAM_SM_REQUEST_EVERY
 * stanzas. A clean stream_close() ends the session (not resumable); a
 * failure or a freed stream leaves it resumable for the next stream.
 *
 * Errors: a server <stream:error/>, a SASL <failure/>, a parse error, a
 * missing STARTTLS when TLS is required, or a failed bind end the stream
 * through cb.failed (exactly once); after that the stream does nothing
 * but can be freed. The owner keeps the clock: negotiation deadlines and
 * the bounded wait for the server's </stream:stream> live in daemon/.
 */
#ifndef XMPPD_PROTO_STREAM_H
#define XMPPD_PROTO_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/reader.h"
#include "proto/sm.h"
#include "proto/xml.h"

/* The stream sends <r/> by itself after this many stanzas since its last
 * request. */
#define STREAM_SM_REQUEST_EVERY 5

enum stream_state {
	STREAM_INIT,		/* nothing sent yet */
	STREAM_HEADER,		/* header sent, waiting for the server's */
	STREAM_FEATURES,	/* waiting for <stream:features/> */
	STREAM_STARTTLS,	/* <starttls/> sent, waiting for <proceed/> */
	STREAM_TLS,		/* the transport is handshaking */
	STREAM_AUTH,		/* SASL exchange in progress */
	STREAM_BIND,		/* bind IQ sent */
	STREAM_SESSION,		/* legacy session IQ sent */
	STREAM_ENABLE,		/* <enable/> sent (XEP-0198) */
	STREAM_RESUME,		/* <resume/> sent (XEP-0198) */
	STREAM_ONLINE,		/* stanzas flow */
	STREAM_CLOSING,		/* we sent </stream:stream> */
	STREAM_CLOSED,		/* both sides closed */
	STREAM_FAILED,		/* ended by an error */
};

/* What ended a stream, for the owner to decide about retrying. */
enum stream_fail {
	STREAM_FAIL_PROTOCOL,	/* malformed or unexpected input */
	STREAM_FAIL_TLS,	/* TLS required but not offered, or refused */
	STREAM_FAIL_AUTH,	/* SASL failure, or no usable mechanism */
	STREAM_FAIL_STREAM_ERROR, /* the server sent <stream:error/> */
	STREAM_FAIL_BIND,	/* resource binding or session failed */
	STREAM_FAIL_CLOSED,	/* the server closed the stream unasked */
};

/* What the TLS layer can offer, for channel binding. */
struct stream_tls_info {
	int version;		/* 12 for TLS 1.2, 13 for TLS 1.3 */
	const unsigned char *tls_unique;	/* NULL when unavailable */
	size_t tls_unique_len;
	const unsigned char *tls_exporter;	/* NULL when unavailable */
	size_t tls_exporter_len;
};

struct stream_config {
	const char *jid;	/* the account, prepared bare JID */
	const char *resource;	/* wanted resource, NULL: server-assigned */
	const char *password;	/* copied, wiped on free */
	bool tls_required;	/* fail when no STARTTLS is offered */
	bool direct_tls;	/* TLS is up before the first header */
	/* Never start TLS, even when offered (tls = none: a loopback server
	 * for benchmarks); PLAIN stays refused without TLS. */
	bool no_tls;
	struct reader_limits limits;
	/* Never use PLAIN (the account is known to support SCRAM: a server
	 * offering only PLAIN now is a downgrade). */
	bool refuse_plain;
	/* Stream management state, owned by the caller and outliving the
	 * stream; NULL: never use stream management. */
	struct sm *sm;
};

struct stream_cb {
	/* Bytes to write to the server, in order. */
	void (*send)(void *ud, const char *data, size_t len);
	/* <proceed/> arrived: start the TLS handshake, then call
	 * stream_tls_ready(). */
	void (*start_tls)(void *ud);
	/* Negotiation finished; jid is the bound full JID. */
	void (*online)(void *ud, const char *jid);
	/* A stanza arrived while online, or between <enable/> and
	 * <enabled/>, before cb.online, when stream_send() still fails
	 * (the reader owns it). */
	void (*stanza)(void *ud, struct xml *stanza);
	/* The stream ended with an error (see enum stream_fail); condition
	 * is the stream error, SASL failure or stanza error name; text is
	 * the server's text or our explanation, maybe NULL. */
	void (*failed)(void *ud, enum stream_fail kind, const char *condition,
		const char *text);
	/* The stream closed cleanly after stream_close(). */
	void (*closed)(void *ud);
	/* Optional: every element in or out, serialized, with SASL
	 * payloads replaced by "[redacted]". Only set it when tracing. */
	void (*trace)(void *ud, bool out, const char *data, size_t len);
	/* Optional: each state change, for logs. */
	void (*state)(void *ud, enum stream_state old, enum stream_state new);
	/* Optional: the server acknowledged the stanza sent with this tag
	 * (stream_send_tagged), oldest first. */
	void (*acked)(void *ud, uint64_t tag);
	/* The previous session was resumed (instead of cb.online); jid is
	 * the session's full JID. If NULL, cb.online is called instead. */
	void (*resumed)(void *ud, const char *jid);
	/* Optional: the server refused to resume (for logs); the stream
	 * binds a fresh session next and the unacknowledged stanzas stay in
	 * cfg.sm's queue for the owner to take after cb.online. */
	void (*resume_failed)(void *ud);
};

/* A new stream; cfg is copied, cb must outlive the stream. */
struct stream *stream_new(const struct stream_config *cfg,
	const struct stream_cb *cb, void *ud);
/* Frees the stream and wipes secrets; accepts NULL. Not from inside one
 * of its callbacks. */
void stream_free(struct stream *s);
/* Sends the initial header (plain TCP connected, STARTTLS mode). */
void stream_start(struct stream *s);
/* The TLS handshake finished (after start_tls, or for direct TLS before
 * anything else); info may be freed after the call returns. */
void stream_tls_ready(struct stream *s, const struct stream_tls_info *info);
/* Feeds received plaintext. Returns false once the stream has failed. */
bool stream_feed(struct stream *s, const char *data, size_t len);
/* Sends a stanza while online; false if not online or not
 * serializable. Same as stream_send_tagged() with tag 0. */
bool stream_send(struct stream *s, const struct xml *stanza);
/* Sends a stanza while online; with stream management enabled it is
 * also queued in cfg.sm under tag until acknowledged (cb.acked). False
 * if not online or not serializable (nothing sent or queued). */
bool stream_send_tagged(struct stream *s, const struct xml *stanza,
	uint64_t tag);
/* Sends an element that is not a stanza (XEP-0352 <active/>, ...) while
 * online: stream management neither counts nor queues it. False if not
 * online or not serializable. */
bool stream_send_nonza(struct stream *s, const struct xml *el);
/* Sends <r/> to ask for an acknowledgement; false (nothing sent) unless
 * online with stream management enabled. */
bool stream_request_ack(struct stream *s);
/* Is stream management enabled on this stream (<enabled/> or <resumed/>
 * arrived, and the stream has not ended)? */
bool stream_sm_enabled(const struct stream *s);
/* Sends </stream:stream> (after any presence the owner wants to send);
 * cb.closed follows when the server answers in kind. A managed session
 * ends with it: cfg.sm is no longer resumable (its queue stays). */
void stream_close(struct stream *s);
enum stream_state stream_state(const struct stream *s);
const char *stream_state_name(enum stream_state st);
/* The SASL mechanism used, or NULL before authentication. */
const char *stream_mechanism(const struct stream *s);
/* The bound full JID, or NULL before binding. */
const char *stream_jid(const struct stream *s);
/* The <stream:features/> of the current stream (after restarts, the
 * latest), or NULL before any; it lives until the next features arrive
 * or the stream is freed. */
const struct xml *stream_features(const struct stream *s);

#endif
