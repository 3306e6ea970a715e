/*
 * The transport: one TCP connection to the server, with GnuTLS driven
 * over memory (push/pull functions) once TLS starts, either directly
 * (XEP-0368) or after STARTTLS. Everything TLS stays inside transport.c;
 * its owner sees plaintext and a handful of events, as OpenSMTPD's ioev
 * gives its protocol code IO_TLSREADY and IO_DATAIN.
 *
 * Lifetime: transport_new -> transport_connect -> ... -> transport_free
 * (which may be called at any time except from inside a transport
 * callback for the same transport: mark it and free it after the
 * callback returns, or from a later loop turn). transport_free closes
 * the libuv handles and releases the memory from their close callbacks.
 *
 * Certificate checks: without a pin, the server's chain must lead to a
 * trust anchor (the system store or ca_file), its name must match
 * server_name (RFC 6125, iPAddress entries for an IP literal) and every
 * certificate must be within its validity period. With a pin, the leaf
 * certificate's public key must match the pin, always (even with verify
 * false); a match takes the place of CA trust, so a self-signed or
 * private-CA server works with the pin alone, but the name check and the
 * validity period of the leaf still apply (unless verify is false). All
 * checks run inside the handshake, before the client's Finished: no byte
 * written with transport_write leaves before they have passed. A failure
 * is TRANSPORT_ERR_TLS with a reason naming server_name and the problem:
 * "issuer is unknown", "does not match the expected" (name), "expired",
 * "not yet valid", or "server key sha256/... does not match the
 * configured pin sha256/...". Reasons for certificate rejections end
 * with "(server key sha256/...)" when the key is known, so a user can
 * learn what to pin (after checking it out of band).
 */
#ifndef XMPPD_DAEMON_TRANSPORT_H
#define XMPPD_DAEMON_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "proto/stream.h"

enum transport_error {
	TRANSPORT_ERR_RESOLVE,	/* name lookup failed */
	TRANSPORT_ERR_CONNECT,	/* no address accepted the connection */
	TRANSPORT_ERR_TLS,	/* handshake or certificate failure */
	TRANSPORT_ERR_IO,	/* read/write error after connecting */
	TRANSPORT_ERR_EOF,	/* the server closed the connection */
};

struct transport_config {
	const char *host;	/* to connect to */
	int port;
	bool direct_tls;	/* TLS from the first byte */
	const char *server_name; /* for SNI and RFC 6125 checks: the JID's domain */
	const char *ca_file;	/* extra trust anchors, or NULL */
	const char *priority;	/* GnuTLS priority string, or NULL for the
				 * default with TLS 1.2 as the minimum */
	unsigned connect_timeout_ms; /* per address; 0 = 10 s */
	bool verify;		/* false only in unit tests */
	const char *pin;	/* "sha256/" + base64 of the SHA-256 of the
				 * server key's DER SubjectPublicKeyInfo (as
				 * curl --pinnedpubkey), or NULL; see above */
};

struct transport_cb {
	/* The connection is ready for the stream header: TCP connected
	 * (STARTTLS mode), or TCP connected and TLS handshake done (direct
	 * TLS, tls is then non-NULL). */
	void (*connected)(void *ud, const struct stream_tls_info *tls);
	/* Plaintext from the server. Every byte already received is
	 * delivered before the transport returns to the loop. */
	void (*data)(void *ud, const char *data, size_t len);
	/* The STARTTLS handshake finished. */
	void (*tls_ready)(void *ud, const struct stream_tls_info *tls);
	/* The connection failed or ended. reason is for people, e.g.
	 * "certificate signer not found (unknown CA)". After this no
	 * callback fires again; the owner frees the transport. */
	void (*error)(void *ud, enum transport_error err, const char *reason);
};

struct transport *transport_new(uv_loop_t *loop,
	const struct transport_config *cfg, const struct transport_cb *cb,
	void *ud);
/* Starts the lookup and the connection attempts (every address in turn). */
void transport_connect(struct transport *t);
/* Queues plaintext for the server (encrypted when TLS is up). */
void transport_write(struct transport *t, const char *data, size_t len);
/* Begins the TLS handshake on a plain connection (after <proceed/>). */
void transport_starttls(struct transport *t);
/* Stops (true) or resumes (false) reading from the server; a no-op
 * before the connection is up or after it ended. */
void transport_pause(struct transport *t, bool pause);
/* True once TLS is up. */
bool transport_is_tls(const struct transport *t);
/* Closes gracefully: flushes pending writes, sends TLS close_notify,
 * shuts down the socket. No callbacks fire afterwards. */
void transport_shutdown(struct transport *t);
/* Closes at once and frees; accepts NULL. */
void transport_free(struct transport *t);
/* A description of the TLS session for status/logs, e.g.
 * "TLS1.3 AES-256-GCM", or NULL. */
const char *transport_tls_desc(const struct transport *t);
/* Bytes written but not yet acknowledged by libuv. */
size_t transport_pending(const struct transport *t);
/* The server key's pin in the form transport_config.pin takes,
 * "sha256/<base64>", once TLS is up, else NULL. The string lives as long
 * as the transport. */
const char *transport_peer_pin(const struct transport *t);

#endif
