/*
 * The client side of one XMPP stream: a state machine driven by the
 * reader's callbacks. Each state that awaits an element has a handler in
 * a table; a <stream:error/> is handled the same way in every state.
 *
 * Reentrancy: the owner may call stream_send() or stream_close() from
 * inside cb.online and cb.stanza, so the state is always updated before a
 * callback runs, and nothing the reader may still be walking is freed
 * while it walks (the reader owns stanzas; we keep copies). Once
 * cb.failed has run the stream ignores everything.
 *
 * Negotiation elements are written by hand in the exact form the server
 * sees in the transcripts (single quotes, fixed ids); stanzas from the
 * owner go through the serializer.
 *
 * Stream management (XEP-0198) lives in the caller's struct sm, which
 * outlives streams: this stream only sets sm->enabled while it manages
 * the session itself (sm_enabled), and counts inbound stanzas from the
 * moment it sends <enable/> or gets <resumed/> (sm_counting), so that
 * stanzas racing <enabled/> are counted as the XEP says.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/alloc.h"
#include "proto/buf.h"
#include "proto/ns.h"
#include "proto/reader.h"
#include "proto/sasl.h"
#include "proto/sm.h"
#include "proto/stream.h"
#include "proto/xml.h"

#define MAX_MECHS 32
#define MAX_CB_TYPES 16
#define MAX_JID 3071

struct stream {
	const struct stream_cb *cb;
	void *ud;
	enum stream_state state;
	char *jid;		/* bare account JID */
	char *local;		/* authcid */
	char *domain;
	char *resource;		/* wanted, NULL: server-assigned */
	char *password;
	bool cfg_refuse_plain;	/* stream_config.refuse_plain */
	bool tls_required;
	bool direct_tls;
	bool no_tls;
	struct reader *reader;

	bool tls_up;
	struct stream_tls_info tls;	/* binding bytes owned below */
	unsigned char *tls_unique;
	unsigned char *tls_exporter;

	struct sasl *sasl;
	char *mechanism;
	bool authenticated;
	bool bind_retried;
	bool session_needed;
	bool was_online;
	char *bound_jid;
	struct xml *features;	/* of the current stream, a copy */

	struct sm *sm;		/* the caller's, or NULL */
	bool sm_counting;	/* inbound stanzas count toward sm->h_in */
	bool sm_enabled;	/* <enabled/> or <resumed/> on this stream */
	unsigned sm_unrequested; /* stanzas sent since our last <r/> */
};

static const char *const state_names[] = {
	[STREAM_INIT] = "init",
	[STREAM_HEADER] = "header",
	[STREAM_FEATURES] = "features",
	[STREAM_STARTTLS] = "starttls",
	[STREAM_TLS] = "tls",
	[STREAM_AUTH] = "auth",
	[STREAM_BIND] = "bind",
	[STREAM_SESSION] = "session",
	[STREAM_ENABLE] = "enable",
	[STREAM_RESUME] = "resume",
	[STREAM_ONLINE] = "online",
	[STREAM_CLOSING] = "closing",
	[STREAM_CLOSED] = "closed",
	[STREAM_FAILED] = "failed",
};

/* Every state change goes through here, so cb.state sees all of them. */
static void enter(struct stream *s, enum stream_state st)
{
	enum stream_state old = s->state;
	if (old == st) {
		return;
	}
	s->state = st;
	if (s->cb->state != NULL) {
		s->cb->state(s->ud, old, st);
	}
}

static bool is_over(const struct stream *s)
{
	return s->state == STREAM_FAILED || s->state == STREAM_CLOSED;
}

/* Writes bytes; trace (if not NULL) is what the trace shows instead. */
static void emit(struct stream *s, const char *data, size_t len,
	const char *trace)
{
	s->cb->send(s->ud, data, len);
	if (s->cb->trace != NULL) {
		if (trace == NULL) {
			s->cb->trace(s->ud, true, data, len);
		} else {
			s->cb->trace(s->ud, true, trace, strlen(trace));
		}
	}
}

static void emit_str(struct stream *s, const char *data)
{
	emit(s, data, strlen(data), NULL);
}

static void emit_buf(struct stream *s, struct buf *b)
{
	emit(s, b->data, b->len, NULL);
	buf_finish(b);
}

/* Can bytes still go to the server on the plaintext layer? */
static bool can_send(const struct stream *s)
{
	return s->state != STREAM_INIT && s->state != STREAM_TLS
		&& s->state != STREAM_CLOSING && !is_over(s);
}

/* The stream no longer manages the session (it stays resumable). */
static void sm_detach(struct stream *s)
{
	if (s->sm_enabled) {
		s->sm->enabled = false;
	}
	s->sm_enabled = false;
	s->sm_counting = false;
}

/*
 * Ends the stream: optionally sends a stream error (error is what goes
 * inside <stream:error/>), closes our side if it is still open, and
 * reports exactly once. cond and text may point into the element being
 * handled: they are used before anything is freed.
 */
static void fail_with(struct stream *s, enum stream_fail kind,
	const char *error, const char *cond, const char *text)
{
	if (is_over(s)) {
		return;
	}
	if (can_send(s)) {
		struct buf b;
		buf_init(&b);
		if (error != NULL) {
			buf_printf(&b, "<stream:error>%s</stream:error>", error);
		}
		buf_puts(&b, "</stream:stream>");
		emit_buf(s, &b);
	}
	enter(s, STREAM_FAILED);
	sm_detach(s);
	if (s->reader != NULL) {
		/* Stops the parser: nothing more is delivered from this feed. */
		reader_restart(s->reader);
	}
	s->cb->failed(s->ud, kind, cond, text);
}

static void fail(struct stream *s, enum stream_fail kind, const char *cond,
	const char *text)
{
	fail_with(s, kind, NULL, cond, text);
}

/* Our own protocol complaint: a stream error to the server, then fail. */
static void fail_protocol(struct stream *s, const char *cond, const char *text)
{
	char *error = xasprintf("<%s xmlns='%s'/>", cond, NS_STREAM_ERRORS);
	fail_with(s, STREAM_FAIL_PROTOCOL, error, cond, text);
	free(error);
}

static bool is_element(const struct xml *x, const char *name, const char *ns)
{
	return x->kind == XML_ELEMENT && strcmp(x->name, name) == 0
		&& x->ns != NULL && strcmp(x->ns, ns) == 0;
}

/* The name of the first element child in ns other than <text/>. */
static const char *condition_of(const struct xml *x, const char *ns,
	const char *fallback)
{
	for (struct xml *c = xml_first_element(x); c != NULL;
			c = xml_next_element(c)) {
		if (c->ns != NULL && strcmp(c->ns, ns) == 0
				&& strcmp(c->name, "text") != 0) {
			return c->name;
		}
	}
	return fallback;
}

/* ---- tracing ---- */

static bool is_sasl_payload(const struct xml *x)
{
	static const char *const names[] = {
		"auth", "response", "challenge", "success",
	};
	if (x->ns == NULL || strcmp(x->ns, NS_SASL) != 0) {
		return false;
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(x->name, names[i]) == 0) {
			return true;
		}
	}
	return false;
}

/* An element without a namespace of its own is in its parent's. */
static const char *ns_of(const struct xml *x)
{
	while (x->ns == NULL && x->parent != NULL) {
		x = x->parent;
	}
	return x->ns;
}

/* A XEP-0363 put header that carries a credential (an upload slot's
 * Authorization or Cookie). */
static bool is_secret_header(const struct xml *x)
{
	const char *ns = ns_of(x);
	const char *name = xml_attr(x, "name");
	return strcmp(x->name, "header") == 0 && ns != NULL &&
		strcmp(ns, NS_HTTP_UPLOAD) == 0 && name != NULL &&
		(strcasecmp(name, "Authorization") == 0 ||
		strcasecmp(name, "Cookie") == 0);
}

static bool has_secret_header(const struct xml *x)
{
	for (const struct xml *c = xml_first_element(x); c != NULL;
			c = xml_next_element(c)) {
		if (is_secret_header(c) || has_secret_header(c)) {
			return true;
		}
	}
	return false;
}

/* Replaces the value of every secret header below x with [redacted]. */
static void redact_headers(struct xml *x)
{
	for (struct xml *c = xml_first_element(x); c != NULL;
			c = xml_next_element(c)) {
		if (!is_secret_header(c)) {
			redact_headers(c);
			continue;
		}
		while (c->children != NULL) {
			struct xml *t = c->children;
			xml_unlink(t);
			xml_free(t);
		}
		xml_add_text(c, "[redacted]", 10);
	}
}

static void trace_in(struct stream *s, const struct xml *x)
{
	if (s->cb->trace == NULL) {
		return;
	}
	struct xml *shown = NULL;
	if (is_sasl_payload(x) && x->children != NULL) {
		shown = xml_new(x->name, x->ns);
		for (size_t i = 0; i < x->nattrs; i++) {
			xml_set_attr(shown, x->attrs[i].name, x->attrs[i].value);
		}
		xml_add_text(shown, "[redacted]", 10);
		x = shown;
	} else if (has_secret_header(x)) {
		shown = xml_copy(x);
		redact_headers(shown);
		x = shown;
	}
	struct buf b;
	buf_init(&b);
	if (!xml_serialize(x, NS_CLIENT, &b)) {
		buf_puts(&b, "<!-- unserializable element -->");
	}
	s->cb->trace(s->ud, false, b.data, b.len);
	buf_finish(&b);
	xml_free(shown);
}

static void trace_header_in(struct stream *s, const struct xml *h)
{
	if (s->cb->trace == NULL) {
		return;
	}
	struct buf b;
	buf_init(&b);
	buf_puts(&b, "<stream:stream");
	for (size_t i = 0; i < h->nattrs; i++) {
		buf_printf(&b, " %s='", h->attrs[i].name);
		if (!xml_escape(&b, h->attrs[i].value, strlen(h->attrs[i].value))) {
			buf_puts(&b, "?");
		}
		buf_putc(&b, '\'');
	}
	buf_putc(&b, '>');
	s->cb->trace(s->ud, false, b.data, b.len);
	buf_finish(&b);
}

/* ---- sending negotiation elements ---- */

static void put_escaped(struct buf *b, const char *s)
{
	if (!xml_escape(b, s, strlen(s))) {
		buf_puts(b, "invalid");
	}
}

static void send_header(struct stream *s)
{
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "<?xml version='1.0'?><stream:stream xmlns='%s' "
		"xmlns:stream='%s' to='", NS_CLIENT, NS_STREAMS);
	put_escaped(&b, s->domain);
	if (s->tls_up) {
		buf_puts(&b, "' from='");
		put_escaped(&b, s->jid);
	}
	buf_puts(&b, "' version='1.0' xml:lang='en'>");
	emit_buf(s, &b);
	enter(s, STREAM_HEADER);
}

/* <NAME xmlns=SASL [mechanism=M]>PAYLOAD</NAME>, payload redacted in
 * the trace and wiped from memory. */
static void send_sasl(struct stream *s, const char *name, const char *mech,
	const char *payload)
{
	struct buf b, t;
	buf_init(&b);
	buf_init(&t);
	buf_printf(&b, "<%s xmlns='%s'", name, NS_SASL);
	if (mech != NULL) {
		buf_printf(&b, " mechanism='%s'", mech);
	}
	if (payload[0] == '\0') {
		buf_puts(&b, "/>");
		emit(s, b.data, b.len, NULL);
	} else {
		buf_append(&t, b.data, b.len);
		buf_printf(&t, ">[redacted]</%s>", name);
		buf_printf(&b, ">%s</%s>", payload, name);
		emit(s, b.data, b.len, t.data);
	}
	xwipe(b.data, b.len);
	buf_finish(&b);
	buf_finish(&t);
}

static void send_bind(struct stream *s, const char *id, const char *resource)
{
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "<iq type='set' id='%s'><bind xmlns='%s'", id, NS_BIND);
	if (resource == NULL) {
		buf_puts(&b, "/></iq>");
	} else {
		buf_puts(&b, "><resource>");
		put_escaped(&b, resource);
		buf_puts(&b, "</resource></bind></iq>");
	}
	emit_buf(s, &b);
	enter(s, STREAM_BIND);
}

/* ---- features ---- */

static void start_auth(struct stream *s, const struct xml *features);
static void start_bind(struct stream *s, const struct xml *features);
static bool can_resume(const struct stream *s, const struct xml *features);
static void send_resume(struct stream *s);

static void on_features(struct stream *s, struct xml *x)
{
	if (!is_element(x, "features", NS_STREAMS)) {
		fail_protocol(s, "unsupported-stanza-type",
			"expected <stream:features/>");
		return;
	}
	xml_free(s->features);
	s->features = xml_copy(x);
	if (!s->tls_up && !s->no_tls) {
		if (xml_child(x, "starttls", NS_TLS) != NULL) {
			emit_str(s, "<starttls xmlns='" NS_TLS "'/>");
			enter(s, STREAM_STARTTLS);
			return;
		}
		if (s->tls_required) {
			fail(s, STREAM_FAIL_TLS, "policy-violation",
				"server does not offer STARTTLS");
			return;
		}
	}
	if (!s->authenticated) {
		start_auth(s, x);
	} else if (can_resume(s, x)) {
		send_resume(s);
	} else {
		start_bind(s, x);
	}
}

static void on_starttls_answer(struct stream *s, struct xml *x)
{
	if (is_element(x, "proceed", NS_TLS)) {
		enter(s, STREAM_TLS);
		/* Whatever follows <proceed/> in this feed is dropped by the
		 * restart: it would be injected before TLS. */
		reader_restart(s->reader);
		s->cb->start_tls(s->ud);
	} else if (is_element(x, "failure", NS_TLS)) {
		fail(s, STREAM_FAIL_TLS, "failure", "server refused STARTTLS");
	} else {
		fail_protocol(s, "unsupported-stanza-type",
			"expected <proceed/> or <failure/>");
	}
}

/* ---- SASL ---- */

static char *trimmed_text(const struct xml *x)
{
	char *t = xml_text(x);
	size_t start = strspn(t, " \t\r\n");
	size_t end = strlen(t);
	while (end > start && strchr(" \t\r\n", t[end - 1]) != NULL) {
		end--;
	}
	char *out = xstrndup(t + start, end - start);
	free(t);
	return out;
}

/* Collects up to max texts of children (name, ns), or attribute attr. */
static size_t collect(const struct xml *parent, const char *name,
	const char *ns, const char *attr, char **out, size_t max)
{
	size_t n = 0;
	if (parent == NULL) {
		return 0;
	}
	for (struct xml *c = xml_first_element(parent); c != NULL && n < max;
			c = xml_next_element(c)) {
		if (!is_element(c, name, ns)) {
			continue;
		}
		if (attr == NULL) {
			out[n++] = trimmed_text(c);
		} else if (xml_attr(c, attr) != NULL) {
			out[n++] = xstrdup(xml_attr(c, attr));
		}
	}
	return n;
}

static void free_list(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(list[i]);
	}
}

static struct sasl *new_sasl(struct stream *s, const struct xml *features,
	const char **err)
{
	char *mechs[MAX_MECHS], *types[MAX_CB_TYPES];
	const struct xml *m = xml_child(features, "mechanisms", NS_SASL);
	const struct xml *cb = xml_child(features, "sasl-channel-binding",
		NS_SASL_CB);
	struct sasl_offer offer = {
		.mechs = (const char *const *)mechs,
		.nmechs = collect(m, "mechanism", NS_SASL, NULL, mechs, MAX_MECHS),
		.cb_listed = cb != NULL,
		.cb_types = (const char *const *)types,
		.ncb_types = collect(cb, "channel-binding", NS_SASL_CB, "type",
			types, MAX_CB_TYPES),
		.refuse_plain = s->cfg_refuse_plain,
	};
	struct sasl *sasl = NULL;
	if (m == NULL) {
		*err = "server offers no SASL mechanisms";
	} else {
		sasl = sasl_new(&offer, s->tls_up ? &s->tls : NULL, s->local,
			s->password, err);
	}
	free_list(mechs, offer.nmechs);
	free_list(types, offer.ncb_types);
	return sasl;
}

static void start_auth(struct stream *s, const struct xml *features)
{
	const char *err = NULL;
	if (s->local == NULL) {
		fail(s, STREAM_FAIL_AUTH, "invalid-mechanism",
			"the account JID has no localpart");
		return;
	}
	s->sasl = new_sasl(s, features, &err);
	if (s->sasl == NULL) {
		fail(s, STREAM_FAIL_AUTH, "invalid-mechanism", err);
		return;
	}
	free(s->mechanism);
	s->mechanism = xstrdup(sasl_mechanism(s->sasl));
	char *out = NULL;
	if (sasl_start(s->sasl, &out, &err) == SASL_ERROR) {
		fail(s, STREAM_FAIL_AUTH, "mutual-auth-failed", err);
		return;
	}
	enter(s, STREAM_AUTH);
	send_sasl(s, "auth", s->mechanism, out);
	freezero_str(out);
}

static void on_challenge(struct stream *s, struct xml *x)
{
	const char *err = NULL;
	char *in = xml_text(x);
	char *out = NULL;
	enum sasl_status st = sasl_step(s->sasl, in, &out, &err);
	free(in);
	if (st == SASL_ERROR) {
		fail(s, STREAM_FAIL_AUTH, "mutual-auth-failed", err);
		return;
	}
	send_sasl(s, "response", NULL, out);
	freezero_str(out);
}

static void on_auth_success(struct stream *s, struct xml *x)
{
	const char *err = NULL;
	char *in = xml_text(x);
	bool ok = sasl_success(s->sasl, in, &err);
	free(in);
	if (!ok) {
		fail(s, STREAM_FAIL_AUTH, "mutual-auth-failed", err);
		return;
	}
	s->authenticated = true;
	sasl_free(s->sasl);
	s->sasl = NULL;
	freezero_str(s->password);
	s->password = NULL;
	reader_restart(s->reader);
	send_header(s);
}

static void on_auth_failure(struct stream *s, struct xml *x)
{
	char *text = xml_child_text(x, "text", NS_SASL);
	fail(s, STREAM_FAIL_AUTH, condition_of(x, NS_SASL,
		"undefined-condition"), text);
	free(text);
}

static void on_sasl(struct stream *s, struct xml *x)
{
	if (is_element(x, "challenge", NS_SASL)) {
		on_challenge(s, x);
	} else if (is_element(x, "success", NS_SASL)) {
		on_auth_success(s, x);
	} else if (is_element(x, "failure", NS_SASL)) {
		on_auth_failure(s, x);
	} else {
		fail_protocol(s, "unsupported-stanza-type",
			"unexpected element during SASL");
	}
}

/* ---- bind and session ---- */

static void start_bind(struct stream *s, const struct xml *features)
{
	if (xml_child(features, "bind", NS_BIND) == NULL) {
		fail(s, STREAM_FAIL_BIND, "feature-not-implemented",
			"server does not offer resource binding");
		return;
	}
	const struct xml *sess = xml_child(features, "session", NS_SESSION);
	s->session_needed = sess != NULL
		&& xml_child(sess, "optional", NS_SESSION) == NULL;
	send_bind(s, "bind_1", s->resource);
}

static void go_online(struct stream *s)
{
	enter(s, STREAM_ONLINE);
	s->was_online = true;
	s->cb->online(s->ud, s->bound_jid);
}

static void maybe_enable(struct stream *s);

/* Is x the result or error of our IQ with this id? */
static bool is_reply(const struct xml *x, const char *id)
{
	const char *type = xml_attr(x, "type");
	const char *xid = xml_attr(x, "id");
	return is_element(x, "iq", NS_CLIENT) && xid != NULL
		&& strcmp(xid, id) == 0 && type != NULL
		&& (strcmp(type, "result") == 0 || strcmp(type, "error") == 0);
}

static bool is_error(const struct xml *x)
{
	return strcmp(xml_attr(x, "type"), "error") == 0;
}

/* A stanza error: STREAM_FAIL_BIND with its condition and text. */
static void fail_iq(struct stream *s, const struct xml *iq)
{
	const struct xml *e = xml_child(iq, "error", NS_CLIENT);
	const char *cond = "undefined-condition";
	char *text = NULL;
	if (e != NULL) {
		cond = condition_of(e, NS_STANZA_ERRORS, cond);
		text = xml_child_text(e, "text", NS_STANZA_ERRORS);
	}
	fail(s, STREAM_FAIL_BIND, cond, text);
	free(text);
}

/* A full JID of sane length with a non-empty resource. */
static bool is_full_jid(const char *j)
{
	size_t len = strlen(j);
	const char *slash = strchr(j, '/');
	return len > 0 && len <= MAX_JID && slash != NULL && slash > j
		&& slash[1] != '\0';
}

static void on_bind_result(struct stream *s, struct xml *x)
{
	const char *id = s->bind_retried ? "bind_2" : "bind_1";
	if (!is_reply(x, id)) {
		fail_protocol(s, "unsupported-stanza-type",
			"expected the bind result");
		return;
	}
	if (is_error(x)) {
		const struct xml *e = xml_child(x, "error", NS_CLIENT);
		if (!s->bind_retried && s->resource != NULL && e != NULL
				&& xml_child(e, "conflict", NS_STANZA_ERRORS) != NULL) {
			s->bind_retried = true;
			send_bind(s, "bind_2", NULL);
			return;
		}
		fail_iq(s, x);
		return;
	}
	char *jid = xml_child_text(xml_child(x, "bind", NS_BIND), "jid", NS_BIND);
	if (jid == NULL || !is_full_jid(jid)) {
		free(jid);
		fail_protocol(s, "bad-format", "bind result without a full JID");
		return;
	}
	s->bound_jid = jid;
	if (s->session_needed) {
		emit_str(s, "<iq type='set' id='sess_1'><session xmlns='"
			NS_SESSION "'/></iq>");
		enter(s, STREAM_SESSION);
		return;
	}
	maybe_enable(s);
}

static void on_session_result(struct stream *s, struct xml *x)
{
	if (!is_reply(x, "sess_1")) {
		fail_protocol(s, "unsupported-stanza-type",
			"expected the session result");
	} else if (is_error(x)) {
		fail_iq(s, x);
	} else {
		maybe_enable(s);
	}
}

/* ---- stream management ---- */

static bool is_stanza(const struct xml *x)
{
	return x->kind == XML_ELEMENT && x->ns != NULL
		&& strcmp(x->ns, NS_CLIENT) == 0
		&& (strcmp(x->name, "message") == 0
			|| strcmp(x->name, "presence") == 0
			|| strcmp(x->name, "iq") == 0);
}

/* An xs:unsignedInt: 1 to 10 digits, at most 2^32 - 1. */
static bool parse_u32(const char *v, uint32_t *out)
{
	size_t n = v != NULL ? strspn(v, "0123456789") : 0;
	if (n == 0 || n > 10 || v[n] != '\0') {
		return false;
	}
	unsigned long long u = strtoull(v, NULL, 10);
	if (u > UINT32_MAX) {
		return false;
	}
	*out = (uint32_t)u;
	return true;
}

/* Hands a stanza to the owner; it counts once cb.stanza has handled it. */
static void deliver(struct stream *s, struct xml *x)
{
	s->cb->stanza(s->ud, x);
	if (s->sm_counting && is_stanza(x)) {
		s->sm->h_in++;
	}
}

static void send_r(struct stream *s)
{
	emit_str(s, "<r xmlns='" NS_SM "'/>");
	s->sm_unrequested = 0;
}

/* One more stanza went out under management: ask for an ack now and
 * then, so a burst is acknowledged without the owner's timer. */
static void count_sent(struct stream *s)
{
	if (++s->sm_unrequested >= STREAM_SM_REQUEST_EVERY) {
		send_r(s);
	}
}

/* The server acknowledged more than we sent: XEP-0198 section 4. */
static void fail_too_high(struct stream *s, uint32_t h)
{
	char *error = xasprintf("<undefined-condition xmlns='%s'/>"
		"<text xmlns='%s'>h too high</text>"
		"<handled-count-too-high xmlns='%s' h='%" PRIu32 "' "
		"send-count='%" PRIu32 "'/>", NS_STREAM_ERRORS,
		NS_STREAM_ERRORS, NS_SM, h, s->sm->h_out);
	fail_with(s, STREAM_FAIL_PROTOCOL, error, "undefined-condition",
		"h too high");
	free(error);
}

/* sm_ack with cb.acked; false (the stream failed) if h is too high. */
static bool apply_ack(struct stream *s, uint32_t h)
{
	if (!sm_ack(s->sm, h, s->cb->acked, s->ud)) {
		fail_too_high(s, h);
		return false;
	}
	return true;
}

static void on_r(struct stream *s)
{
	if (!can_send(s)) {
		return;
	}
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "<a xmlns='%s' h='%" PRIu32 "'/>", NS_SM, s->sm->h_in);
	emit_buf(s, &b);
}

static void on_a(struct stream *s, const struct xml *x)
{
	uint32_t h;
	if (!parse_u32(xml_attr(x, "h"), &h)) {
		fail_protocol(s, "bad-format", "<a/> without a valid h");
		return;
	}
	apply_ack(s, h);
}

/* Handles <r/> and <a/> while counting; false if x is something else. */
static bool on_sm_nonza(struct stream *s, const struct xml *x)
{
	if (!s->sm_counting || x->ns == NULL || strcmp(x->ns, NS_SM) != 0) {
		return false;
	}
	if (strcmp(x->name, "r") == 0) {
		on_r(s);
		return true;
	}
	if (strcmp(x->name, "a") == 0) {
		on_a(s, x);
		return true;
	}
	return false;
}

/* After bind (and session): a fresh session, managed if offered. */
static void maybe_enable(struct stream *s)
{
	if (s->sm == NULL) {
		go_online(s);
		return;
	}
	/* Whatever session the state held is abandoned now; the queue stays
	 * for the owner. */
	sm_reset_session(s->sm);
	if (xml_child(s->features, "sm", NS_SM) == NULL) {
		go_online(s);
		return;
	}
	s->sm_counting = true;
	emit_str(s, "<enable xmlns='" NS_SM "' resume='true'/>");
	enter(s, STREAM_ENABLE);
}

static char *attr_copy(const struct xml *x, const char *name)
{
	const char *v = xml_attr(x, name);
	return v != NULL && v[0] != '\0' ? xstrdup(v) : NULL;
}

static void on_enabled(struct stream *s, const struct xml *x)
{
	struct sm *sm = s->sm;
	const char *resume = xml_attr(x, "resume");
	free(sm->id);
	free(sm->location);
	free(sm->jid);
	sm->id = attr_copy(x, "id");
	sm->location = attr_copy(x, "location");
	sm->jid = xstrdup(s->bound_jid);
	if (!parse_u32(xml_attr(x, "max"), &sm->max)) {
		sm->max = 0;
	}
	sm->resumable = sm->id != NULL && resume != NULL
		&& (strcmp(resume, "true") == 0 || strcmp(resume, "1") == 0);
	sm->enabled = true;
	s->sm_enabled = true;
	s->sm_unrequested = 0;
	go_online(s);
}

static void on_enable_answer(struct stream *s, struct xml *x)
{
	if (on_sm_nonza(s, x)) {
		return;
	}
	if (is_stanza(x)) {
		deliver(s, x);
	} else if (is_element(x, "enabled", NS_SM)) {
		on_enabled(s, x);
	} else if (is_element(x, "failed", NS_SM)) {
		s->sm_counting = false;
		go_online(s);
	} else {
		fail_protocol(s, "unsupported-stanza-type",
			"expected <enabled/> or <failed/>");
	}
}

static bool can_resume(const struct stream *s, const struct xml *features)
{
	return s->sm != NULL && s->sm->resumable && s->sm->id != NULL
		&& s->sm->jid != NULL && xml_child(features, "sm", NS_SM) != NULL;
}

static void send_resume(struct stream *s)
{
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "<resume xmlns='%s' h='%" PRIu32 "' previd='", NS_SM,
		s->sm->h_in);
	put_escaped(&b, s->sm->id);
	buf_puts(&b, "'/>");
	emit_buf(s, &b);
	enter(s, STREAM_RESUME);
}

/* The stanzas of this session the server did not count, in order and
 * byte for byte; they keep their seq. */
static void resend_queue(struct stream *s)
{
	for (size_t i = sm_session_first(s->sm); i < s->sm->nqueue; i++) {
		const struct sm_entry *e = &s->sm->queue[i];
		emit(s, e->data, e->len, NULL);
		count_sent(s);
	}
}

static void on_resumed(struct stream *s, const struct xml *x)
{
	uint32_t h;
	const char *previd = xml_attr(x, "previd");
	if (!parse_u32(xml_attr(x, "h"), &h)) {
		fail_protocol(s, "bad-format", "<resumed/> without a valid h");
		return;
	}
	if (previd == NULL || strcmp(previd, s->sm->id) != 0) {
		fail_protocol(s, "undefined-condition",
			"the server resumed another session");
		return;
	}
	if (!apply_ack(s, h) || s->state != STREAM_RESUME) {
		return;
	}
	s->sm_counting = true;
	s->sm_enabled = true;
	s->sm->enabled = true;
	s->sm_unrequested = 0;
	resend_queue(s);
	free(s->bound_jid);
	s->bound_jid = xstrdup(s->sm->jid);
	enter(s, STREAM_ONLINE);
	s->was_online = true;
	if (s->cb->resumed != NULL) {
		s->cb->resumed(s->ud, s->bound_jid);
	} else {
		s->cb->online(s->ud, s->bound_jid);
	}
}

/* The old session is gone: acknowledge what its h covers (if it came
 * and is sane), forget it, and bind a fresh one. */
static void on_resume_failed(struct stream *s, const struct xml *x)
{
	uint32_t h;
	if (parse_u32(xml_attr(x, "h"), &h)) {
		sm_ack(s->sm, h, s->cb->acked, s->ud);
	}
	if (s->state != STREAM_RESUME) {
		return;
	}
	sm_reset_session(s->sm);
	if (s->cb->resume_failed != NULL) {
		s->cb->resume_failed(s->ud);
	}
	if (s->state == STREAM_RESUME) {
		start_bind(s, s->features);
	}
}

static void on_resume_answer(struct stream *s, struct xml *x)
{
	if (is_element(x, "resumed", NS_SM)) {
		on_resumed(s, x);
	} else if (is_element(x, "failed", NS_SM)) {
		on_resume_failed(s, x);
	} else {
		fail_protocol(s, "unsupported-stanza-type",
			"expected <resumed/> or <failed/>");
	}
}

/* ---- online and closing ---- */

static void on_online_stanza(struct stream *s, struct xml *x)
{
	if (!on_sm_nonza(s, x)) {
		deliver(s, x);
	}
}

/* After our </stream:stream> the server may still flush stanzas (and
 * acknowledge ours). */
static void on_closing_stanza(struct stream *s, struct xml *x)
{
	if (s->was_online && !on_sm_nonza(s, x)) {
		deliver(s, x);
	}
}

/* The text of a stream error is the condition element's own content when
 * it has some (see-other-host carries the new host there), else <text/>. */
static void on_stream_error(struct stream *s, struct xml *x)
{
	const char *cond = condition_of(x, NS_STREAM_ERRORS,
		"undefined-condition");
	char *text = xml_child_text(x, cond, NS_STREAM_ERRORS);
	if (text != NULL) {
		char *t = trimmed_text(xml_child(x, cond, NS_STREAM_ERRORS));
		free(text);
		text = t;
	}
	if (text == NULL || text[0] == '\0') {
		free(text);
		text = xml_child_text(x, "text", NS_STREAM_ERRORS);
	}
	fail(s, STREAM_FAIL_STREAM_ERROR, cond, text);
	free(text);
}

typedef void handler_fn(struct stream *s, struct xml *x);

static handler_fn *const handlers[] = {
	[STREAM_FEATURES] = on_features,
	[STREAM_STARTTLS] = on_starttls_answer,
	[STREAM_AUTH] = on_sasl,
	[STREAM_BIND] = on_bind_result,
	[STREAM_SESSION] = on_session_result,
	[STREAM_ENABLE] = on_enable_answer,
	[STREAM_RESUME] = on_resume_answer,
	[STREAM_ONLINE] = on_online_stanza,
	[STREAM_CLOSING] = on_closing_stanza,
};

/* ---- reader callbacks ---- */

/* "1.0" or a later 1.x: RFC 6120 4.7.5. */
static bool is_version_1(const char *v)
{
	if (v == NULL || strncmp(v, "1.", 2) != 0 || v[2] == '\0') {
		return false;
	}
	return strspn(v + 2, "0123456789") == strlen(v + 2);
}

/* The reader reports the header's default namespace as "xmlns". */
static bool has_client_ns(const struct xml *header)
{
	const char *ns = xml_attr(header, "xmlns");
	return ns != NULL && strcmp(ns, NS_CLIENT) == 0;
}

static void on_stream_open(void *ud, const struct xml *header)
{
	struct stream *s = ud;
	if (is_over(s)) {
		return;
	}
	trace_header_in(s, header);
	if (s->state != STREAM_HEADER) {
		fail_protocol(s, "bad-format", "unexpected stream header");
	} else if (header->ns == NULL || strcmp(header->ns, NS_STREAMS) != 0
			|| strcmp(header->name, "stream") != 0) {
		fail_protocol(s, "invalid-namespace", "bad stream namespace");
	} else if (!has_client_ns(header)) {
		fail_protocol(s, "invalid-namespace",
			"stream content namespace is not jabber:client");
	} else if (!is_version_1(xml_attr(header, "version"))) {
		fail_protocol(s, "unsupported-version",
			"server does not speak XMPP 1.0");
	} else {
		enter(s, STREAM_FEATURES);
	}
}

static void on_reader_stanza(void *ud, struct xml *x)
{
	struct stream *s = ud;
	if (is_over(s)) {
		return;
	}
	trace_in(s, x);
	if (is_element(x, "error", NS_STREAMS)) {
		on_stream_error(s, x);
		return;
	}
	handler_fn *h = NULL;
	if ((size_t)s->state < sizeof(handlers) / sizeof(handlers[0])) {
		h = handlers[s->state];
	}
	if (h == NULL) {
		fail_protocol(s, "unsupported-stanza-type", "unexpected element");
		return;
	}
	h(s, x);
}

static void on_reader_close(void *ud)
{
	struct stream *s = ud;
	if (is_over(s)) {
		return;
	}
	if (s->cb->trace != NULL) {
		s->cb->trace(s->ud, false, "</stream:stream>", 16);
	}
	if (s->state == STREAM_CLOSING) {
		enter(s, STREAM_CLOSED);
		sm_detach(s);
		s->cb->closed(s->ud);
		return;
	}
	fail(s, STREAM_FAIL_CLOSED, "stream-closed",
		"server closed the stream");
}

static void on_reader_error(void *ud, const char *cond, const char *text)
{
	struct stream *s = ud;
	fail_protocol(s, cond, text);
}

static const struct reader_cb reader_callbacks = {
	.stream_open = on_stream_open,
	.stanza = on_reader_stanza,
	.stream_close = on_reader_close,
	.error = on_reader_error,
};

/* ---- public ---- */

static void split_jid(struct stream *s, const char *jid)
{
	size_t n = strcspn(jid, "/");
	s->jid = xstrndup(jid, n);
	char *at = strchr(s->jid, '@');
	if (at != NULL) {
		s->local = xstrndup(s->jid, (size_t)(at - s->jid));
		s->domain = xstrdup(at + 1);
	} else {
		s->domain = xstrdup(s->jid);
	}
}

/* A new stream in STREAM_INIT; the config is copied. */
struct stream *stream_new(const struct stream_config *cfg,
	const struct stream_cb *cb, void *ud)
{
	struct stream *s = xcalloc(1, sizeof(*s));
	s->cb = cb;
	s->ud = ud;
	s->state = STREAM_INIT;
	split_jid(s, cfg->jid != NULL ? cfg->jid : "");
	s->resource = cfg->resource != NULL ? xstrdup(cfg->resource) : NULL;
	s->password = xstrdup(cfg->password != NULL ? cfg->password : "");
	s->cfg_refuse_plain = cfg->refuse_plain;
	s->tls_required = cfg->tls_required;
	s->direct_tls = cfg->direct_tls;
	s->no_tls = cfg->no_tls && !cfg->tls_required && !cfg->direct_tls;
	s->reader = reader_new(&reader_callbacks, s, &cfg->limits);
	s->sm = cfg->sm;
	return s;
}

/* Frees the stream, wiping the password and binding data. */
void stream_free(struct stream *s)
{
	if (s == NULL) {
		return;
	}
	sm_detach(s);
	reader_free(s->reader);
	sasl_free(s->sasl);
	freezero_str(s->password);
	if (s->tls_unique != NULL) {
		xwipe(s->tls_unique, s->tls.tls_unique_len);
	}
	if (s->tls_exporter != NULL) {
		xwipe(s->tls_exporter, s->tls.tls_exporter_len);
	}
	free(s->tls_unique);
	free(s->tls_exporter);
	free(s->jid);
	free(s->local);
	free(s->domain);
	free(s->resource);
	free(s->mechanism);
	free(s->bound_jid);
	xml_free(s->features);
	free(s);
}

/* Sends the first header over plain TCP. */
void stream_start(struct stream *s)
{
	if (s->state != STREAM_INIT || s->direct_tls) {
		return;
	}
	send_header(s);
}

static unsigned char *copy_bytes(const unsigned char *p, size_t len)
{
	if (p == NULL || len == 0) {
		return NULL;
	}
	unsigned char *c = xmalloc(len);
	memcpy(c, p, len);
	return c;
}

/* TLS is up: remember what channel binding can use, send a new header. */
void stream_tls_ready(struct stream *s, const struct stream_tls_info *info)
{
	bool direct = s->state == STREAM_INIT && s->direct_tls;
	if (s->tls_up || (s->state != STREAM_TLS && !direct)) {
		return;
	}
	s->tls_up = true;
	s->tls.version = info->version;
	s->tls_unique = copy_bytes(info->tls_unique, info->tls_unique_len);
	s->tls.tls_unique = s->tls_unique;
	s->tls.tls_unique_len = s->tls_unique ? info->tls_unique_len : 0;
	s->tls_exporter = copy_bytes(info->tls_exporter, info->tls_exporter_len);
	s->tls.tls_exporter = s->tls_exporter;
	s->tls.tls_exporter_len = s->tls_exporter ? info->tls_exporter_len : 0;
	send_header(s);
}

/* Feeds plaintext from the server; false once the stream has failed. */
bool stream_feed(struct stream *s, const char *data, size_t len)
{
	if (s->state == STREAM_FAILED) {
		return false;
	}
	if (s->state == STREAM_CLOSED || len == 0) {
		return true;
	}
	if (s->state == STREAM_INIT || s->state == STREAM_TLS) {
		fail(s, STREAM_FAIL_PROTOCOL, "bad-format",
			"data from the server before the stream started");
		return false;
	}
	reader_feed(s->reader, data, len);
	return s->state != STREAM_FAILED;
}

/* Serializes and sends a stanza while online. */
bool stream_send(struct stream *s, const struct xml *stanza)
{
	return stream_send_tagged(s, stanza, 0);
}

/* Serializes and sends a stanza, queueing it while managed. */
bool stream_send_tagged(struct stream *s, const struct xml *stanza,
	uint64_t tag)
{
	if (s->state != STREAM_ONLINE) {
		return false;
	}
	struct buf b;
	buf_init(&b);
	if (!xml_serialize(stanza, NS_CLIENT, &b)) {
		buf_finish(&b);
		return false;
	}
	if (s->sm_enabled) {
		sm_push(s->sm, tag, b.data, b.len);
	}
	emit_buf(s, &b);
	if (s->sm_enabled) {
		count_sent(s);
	}
	return true;
}

bool stream_send_nonza(struct stream *s, const struct xml *el)
{
	if (s->state != STREAM_ONLINE) {
		return false;
	}
	struct buf b;
	buf_init(&b);
	if (!xml_serialize(el, NS_CLIENT, &b)) {
		buf_finish(&b);
		return false;
	}
	emit_buf(s, &b);
	return true;
}

/* Sends <r/> while online and managed. */
bool stream_request_ack(struct stream *s)
{
	if (s->state != STREAM_ONLINE || !s->sm_enabled) {
		return false;
	}
	send_r(s);
	return true;
}

/* Whether this stream manages the session now. */
bool stream_sm_enabled(const struct stream *s)
{
	return s->sm_enabled;
}

/* Closes our side; cb.closed follows the server's </stream:stream>. */
void stream_close(struct stream *s)
{
	if (is_over(s) || s->state == STREAM_CLOSING) {
		return;
	}
	if (s->state == STREAM_INIT || s->state == STREAM_TLS) {
		/* Nothing can be written on the plaintext layer now. */
		enter(s, STREAM_CLOSED);
		s->cb->closed(s->ud);
		return;
	}
	emit_str(s, "</stream:stream>");
	if (s->sm != NULL && (s->sm_enabled || s->state == STREAM_ENABLE
			|| s->state == STREAM_RESUME)) {
		/* The server discards the session on a clean close. */
		s->sm->resumable = false;
	}
	enter(s, STREAM_CLOSING);
}

/* The current state. */
enum stream_state stream_state(const struct stream *s)
{
	return s->state;
}

/* A short name for logs. */
const char *stream_state_name(enum stream_state st)
{
	if ((size_t)st >= sizeof(state_names) / sizeof(state_names[0])
			|| state_names[st] == NULL) {
		return "unknown";
	}
	return state_names[st];
}

/* The chosen SASL mechanism, or NULL. */
const char *stream_mechanism(const struct stream *s)
{
	return s->mechanism;
}

/* The bound full JID, or NULL. */
const char *stream_jid(const struct stream *s)
{
	return s->bound_jid;
}

/* The last <stream:features/> received, or NULL. */
const struct xml *stream_features(const struct stream *s)
{
	return s->features;
}
