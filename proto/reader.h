/*
 * The XML stream reader: a libxml2 SAX2 push parser that turns the bytes
 * of one XMPP stream into a stream header, complete stanzas (every element
 * at depth 1) and a stream close.
 *
 * A stanza is delivered from inside the reader_feed() call that feeds its
 * last byte. The reader owns the stanza until the callback returns; a
 * callback that wants to keep it copies it (xml_copy) or unlinks parts.
 *
 * Restricted XML (RFC 6120 11.1): DTDs, entity references other than the
 * predefined ones, comments and processing instructions are refused with
 * "restricted-xml". Malformed input is "not-well-formed". A stanza larger
 * than limits.max_stanza bytes or nested deeper than limits.max_depth is
 * "policy-violation". After an error the reader delivers nothing more.
 *
 * Stream restarts (after STARTTLS and SASL): call reader_restart(), which
 * may be called from inside a callback; the current parser stops at once,
 * the rest of that feed is discarded (nothing may legitimately follow the
 * element that caused a restart: dropping it defeats STARTTLS command
 * injection), and the next reader_feed() starts a fresh parser.
 */
#ifndef XMPPD_PROTO_READER_H
#define XMPPD_PROTO_READER_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/xml.h"

struct reader;

struct reader_limits {
	size_t max_stanza;	/* bytes per stanza; 0 = default 1 MiB */
	unsigned max_depth;	/* element depth below the stream; 0 = default 64 */
};

struct reader_cb {
	/* <stream:stream ...> arrived; header holds its attributes (its
	 * name is "stream", ns NS_STREAMS, no children). */
	void (*stream_open)(void *ud, const struct xml *header);
	/* A complete depth-1 element, including <stream:features/> and
	 * <stream:error/>. */
	void (*stanza)(void *ud, struct xml *stanza);
	/* </stream:stream> arrived. */
	void (*stream_close)(void *ud);
	/* The stream is broken: condition is a stream error name
	 * ("not-well-formed", "restricted-xml", "policy-violation",
	 * "invalid-namespace", "bad-format"...), text says what. */
	void (*error)(void *ud, const char *condition, const char *text);
};

/* A new reader; cb must outlive it. limits may be NULL for defaults. */
struct reader *reader_new(const struct reader_cb *cb, void *ud,
	const struct reader_limits *limits);
/* Frees the reader; accepts NULL. Not from inside a callback. */
void reader_free(struct reader *r);
/* Feeds bytes. Returns false once the stream has failed (the error
 * callback has then been called exactly once). */
bool reader_feed(struct reader *r, const char *data, size_t len);
/* Starts over with a fresh parser at the next feed (see above). */
void reader_restart(struct reader *r);
/* True after an error. */
bool reader_failed(const struct reader *r);

/*
 * Parses one complete element from a string (for stanzas handed in over
 * the control socket), under the same restrictions and limits as a
 * stream. Elements without a namespace get default_ns. Returns the element
 * (caller frees) or NULL with *err pointing at a static message.
 */
struct xml *reader_parse_element(const char *s, size_t len,
	const char *default_ns, const char **err);

#endif
