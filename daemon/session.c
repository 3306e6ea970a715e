/*
 * One connection: the server's targets tried in turn, each a transport
 * (TCP, TLS) wired to a stream (XMPP negotiation and stanzas), with the
 * deadlines and probes the stream itself cannot keep because proto/ has
 * no clock: the login deadline, the keepalive probe of a quiet stream,
 * the short delay before asking for an ack, the wait for the server's
 * </stream:stream>.
 *
 * Teardown is never done from inside a transport or stream callback: the
 * session marks itself finished and a zero-delay timer ends it on the
 * next loop turn, when neither is on the stack.
 */
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>	/* malloc_trim */
#endif

#include "daemon/config.h"
#include "daemon/console.h"
#include "daemon/core.h"
#include "daemon/csi.h"
#include "daemon/events.h"
#include "daemon/log.h"
#include "daemon/store.h"
#include "daemon/resolve.h"
#include "daemon/state.h"
#include "daemon/transport.h"
#include "proto/alloc.h"
#include "proto/ns.h"
#include "proto/stream.h"

#define NEGOTIATION_TIMEOUT_MS (30 * 1000)
#define CLOSE_TIMEOUT_MS (3 * 1000)
#define ACK_DELAY_MS 100
#define POLICY_RETRY_MS (60 * 1000)
#define MAX_TARGETS 64
#define RESOLVE_TIMEOUT_MS (10 * 1000)

struct target {
	char *host;
	int port;
	bool direct_tls;
};

struct session {
	struct xmppd *x;
	struct resolver *resolver;	/* while looking up SRV records */
	struct transport *transport;
	struct stream *stream;
	struct stream_cb cb;	/* its callbacks; trace switched at run time */
	char *password;		/* for each target's stream; wiped */
	struct target targets[MAX_TARGETS];
	size_t ntargets;
	size_t cur;		/* the target being tried */
	char *errors;		/* why earlier targets failed */

	uv_timer_t timer;	/* login deadline, then close wait */
	uv_timer_t reap;	/* ends the session outside callbacks */
	uv_timer_t idle;	/* quiet stream: probe it */
	uv_timer_t probe;	/* the probe's answer is late: dead */
	uv_timer_t ack;		/* ask for an ack shortly after sending */
	uv_timer_t overdue;	/* sent stanzas unacknowledged too long */
	uv_timer_t pressure;	/* reading paused for subscribers too long */
	uv_timer_t trim;	/* gives freed memory back after a burst */
	size_t fed;		/* bytes from the server since the last trim */
	bool pressure_expired;	/* read on until the pressure ends */
	int handles;		/* open uv handles, freed at 0 */

	bool scram_known;	/* this account has used SCRAM before */
	bool resumed;		/* this stream resumed an earlier session */
	bool acked;		/* the server acknowledged something since */
	bool online;
	bool ended;
	enum xmppd_state end_state;	/* OFFLINE, AUTH_FAILED, TLS_FAILED */
	char *end_reason;
	int end_retry_ms;		/* -1: no retry */
	void (*close_done)(struct xmppd *x);
};

static void connect_target(struct session *s);

static void reap_cb(uv_timer_t *t)
{
	struct session *s = t->data;
	struct xmppd *x = s->x;
	if (s->close_done != NULL) {
		void (*done)(struct xmppd *) = s->close_done;
		s->close_done = NULL;
		done(x);
		return;
	}
	enum xmppd_state st = s->end_state;
	char *reason = s->end_reason;
	int retry_ms = s->end_retry_ms;
	s->end_reason = NULL;
	xmppd_session_ended(x, retry_ms);	/* frees s */
	xmppd_enter_state(x, st, reason);
	free(reason);
}

static void stop_timers(struct session *s)
{
	uv_timer_stop(&s->timer);
	uv_timer_stop(&s->idle);
	uv_timer_stop(&s->probe);
	uv_timer_stop(&s->ack);
	uv_timer_stop(&s->overdue);
}

/* Ends the session from wherever we are: the work happens in reap_cb. */
static void finish(struct session *s, enum xmppd_state st, int retry_ms,
	const char *reason)
{
	if (s->ended) {
		return;
	}
	s->ended = true;
	s->end_state = st;
	s->end_retry_ms = retry_ms;
	s->end_reason = reason ? xstrdup(reason) : NULL;
	stop_timers(s);
	uv_timer_start(&s->reap, reap_cb, 0, 0);
}

static void stream_send_cb(void *ud, const char *data, size_t len)
{
	struct session *s = ud;
	transport_write(s->transport, data, len);
}

static void stream_start_tls_cb(void *ud)
{
	struct session *s = ud;
	transport_starttls(s->transport);
}

static void idle_cb(uv_timer_t *t);

/* Anything from the server proves the connection alive. */
static void heard_from_server(struct session *s)
{
	if (!s->online || s->ended) {
		return;
	}
	uv_timer_stop(&s->probe);
	uv_timer_start(&s->idle, idle_cb, s->x->cfg->keepalive * 1000, 0);
}

/* Ends a connection found dead (what is wrong: reason). A resumed
 * session that acknowledged nothing since is broken on the server's side
 * (Prosody 0.12 resumes into the old connection's parser, which swallows
 * everything when that connection ended inside a stanza): resuming it
 * again would loop, so the next connection starts a fresh one. */
static void drop_dead(struct session *s, const char *what, char *reason)
{
	log_warnx("%s: %s", reason, what);
	if (s->resumed && !s->acked) {
		log_warnx("the resumed session never acknowledged anything; the "
			"next connection starts a new session");
		s->x->sm.resumable = false;
	}
	finish(s, XMPPD_OFFLINE, 0, reason);
	free(reason);
}

static void overdue_cb(uv_timer_t *t)
{
	struct session *s = t->data;
	drop_dead(s, "the server does not read this stream",
		xasprintf("%zu stanzas unacknowledged for %u s",
		s->x->sm.nqueue, s->x->cfg->keepalive_timeout));
}

/*
 * Stanzas wait for acks: the server must acknowledge some within
 * keepalive_timeout. Hearing from the server is not enough: a stream it
 * no longer reads (Prosody 0.12 after a resumption into a parser left
 * inside a stanza) still carries its own traffic to us.
 */
static void watch_acks(struct session *s)
{
	if (!s->online || s->ended || !stream_sm_enabled(s->stream)) {
		return;
	}
	if (s->x->sm.nqueue == 0) {
		uv_timer_stop(&s->overdue);
	} else if (!uv_is_active((uv_handle_t *)&s->overdue)) {
		uv_timer_start(&s->overdue, overdue_cb,
			s->x->cfg->keepalive_timeout * 1000, 0);
	}
}

static void went_online(struct session *s, const char *jid, bool resumed)
{
	uv_timer_stop(&s->timer);
	s->online = true;
	s->resumed = resumed;
	const char *mech = stream_mechanism(s->stream);
	const char *tls = transport_tls_desc(s->transport);
	const char *pin = transport_peer_pin(s->transport);
	log_info("%s as %s (%s, %s%s)", resumed ? "resumed" : "online", jid,
		mech ? mech : "?", tls ? tls : "no TLS",
		stream_sm_enabled(s->stream) ? ", stream management" : "");
	if (pin != NULL) {
		log_info("server key: %s", pin);
	}
	if (!s->scram_known && mech != NULL && strncmp(mech, "SCRAM-", 6) == 0) {
		state_remember_scram(s->x->cfg, s->x->bare_jid);
		s->scram_known = true;
	}
	heard_from_server(s);
	watch_acks(s);
	xmppd_session_online(s->x, jid, resumed);
}

static void stream_online_cb(void *ud, const char *jid)
{
	went_online(ud, jid, false);
}

static void stream_resumed_cb(void *ud, const char *jid)
{
	went_online(ud, jid, true);
}

static void stream_resume_failed_cb(void *ud)
{
	log_info("the server could not resume the session; starting a new one");
}

static void stream_acked_cb(void *ud, uint64_t tag)
{
	struct session *s = ud;
	if (s->online) {
		s->acked = true;
		/* Progress: the deadline starts again for what still waits. */
		uv_timer_stop(&s->overdue);
		watch_acks(s);
		if (s->x->sm.nqueue == 0) {
			csi_evaluate(s->x);
		}
	}
	if (tag != 0) {
		outbox_acked(s->x, tag);
	}
}

static void stream_stanza_cb(void *ud, struct xml *stanza)
{
	struct session *s = ud;
	dispatch_stanza(s->x, stanza);
	if (s->x->sm.resumable) {
		/* The count of handled stanzas (h) is saved with this turn
		 * (daemon/resume.c): a resumption after a crash must not
		 * claim fewer than the acks we sent. */
		store_touch(s->x->store);
	}
}

/* "host", "host:port", "[v6]:port" from a see-other-host error. */
static bool parse_redirect(const char *text, char **host, int *port)
{
	if (text == NULL || text[0] == '\0' || strlen(text) > 255) {
		return false;
	}
	const char *colon = NULL;
	const char *start = text;
	const char *end;
	if (text[0] == '[') {
		end = strchr(text, ']');
		if (end == NULL) {
			return false;
		}
		start = text + 1;
		colon = end[1] == ':' ? end + 1 : NULL;
	} else {
		colon = strrchr(text, ':');
		end = colon ? colon : text + strlen(text);
	}
	*port = 0;
	if (colon != NULL) {
		char *stop = NULL;
		long p = strtol(colon + 1, &stop, 10);
		if (*stop != '\0' || p < 1 || p > 65535) {
			return false;
		}
		*port = (int)p;
	}
	*host = xstrndup(start, (size_t)(end - start));
	return (*host)[0] != '\0';
}

/* Stream errors after which trying again cannot help (RFC 6120 4.9.3):
 * the account or the address is wrong, or another client took over. */
static bool stream_error_is_final(const char *condition)
{
	static const char *const final[] = {
		"conflict", "host-unknown", "host-gone", "not-authorized",
		"improper-addressing", "invalid-from", "unsupported-version",
		NULL,
	};
	for (size_t i = 0; condition != NULL && final[i] != NULL; i++) {
		if (strcmp(condition, final[i]) == 0) {
			return true;
		}
	}
	return false;
}

static void on_stream_error(struct session *s, const char *condition,
	const char *text, const char *reason)
{
	char *host = NULL;
	int port = 0;
	if (condition != NULL && strcmp(condition, "see-other-host") == 0 &&
			parse_redirect(text, &host, &port)) {
		log_info("the server sends us to %s", text);
		xmppd_redirect(s->x, host, port);
		free(host);
		finish(s, XMPPD_OFFLINE, 1, reason);
		return;
	}
	log_warnx("stream error: %s", reason);
	if (stream_error_is_final(condition)) {
		finish(s, XMPPD_OFFLINE, -1, reason);
	} else if (condition != NULL && strcmp(condition, "policy-violation") == 0) {
		finish(s, XMPPD_OFFLINE, POLICY_RETRY_MS, reason);
	} else {
		finish(s, XMPPD_OFFLINE, 0, reason);
	}
}

/* What a failure means for retrying: credentials and TLS problems stop
 * until the user acts; stream errors depend on the condition; anything
 * else is retried with backoff (and the stream resumed if it can be). */
static void stream_failed_cb(void *ud, enum stream_fail kind,
	const char *condition, const char *text)
{
	struct session *s = ud;
	char *reason = xasprintf("%s%s%s", condition ? condition : "error",
		text ? ": " : "", text ? text : "");
	/* The stream has written its last bytes (a stream error, our
	 * </stream:stream>): shut down rather than close, so a server still
	 * sending (a flood, an oversized stanza) reads them before the
	 * socket goes; closing with unread input would send a reset, and
	 * the reset makes the server's kernel drop what we wrote. */
	transport_shutdown(s->transport);
	switch (kind) {
	case STREAM_FAIL_AUTH:
		log_error("authentication failed: %s", reason);
		finish(s, XMPPD_AUTH_FAILED, -1, reason);
		break;
	case STREAM_FAIL_TLS:
		log_error("TLS: %s", reason);
		finish(s, XMPPD_TLS_FAILED, -1, reason);
		break;
	case STREAM_FAIL_STREAM_ERROR:
		on_stream_error(s, condition, text, reason);
		break;
	default:
		log_warnx("stream ended: %s", reason);
		finish(s, XMPPD_OFFLINE, 0, reason);
		break;
	}
	free(reason);
}

static void stream_closed_cb(void *ud)
{
	struct session *s = ud;
	transport_shutdown(s->transport);
	if (s->close_done == NULL) {
		finish(s, XMPPD_OFFLINE, 0, "the server closed the stream");
	} else {
		stop_timers(s);
		uv_timer_start(&s->reap, reap_cb, 0, 0);
	}
}

static void stream_trace_cb(void *ud, bool out, const char *data, size_t len)
{
	console_trace(out, data, len);
}

/* The XML console's readers changed: trace the stream only while there
 * is one, so nothing is serialized for nobody. */
static void retrace(void *ud)
{
	struct session *s = ud;
	s->cb.trace = console_wanted() ? stream_trace_cb : NULL;
}

static void stream_state_cb(void *ud, enum stream_state old, enum stream_state new)
{
	log_debug("stream %s -> %s", stream_state_name(old), stream_state_name(new));
}

static const struct stream_cb stream_callbacks = {
	.send = stream_send_cb,
	.start_tls = stream_start_tls_cb,
	.online = stream_online_cb,
	.resumed = stream_resumed_cb,
	.resume_failed = stream_resume_failed_cb,
	.acked = stream_acked_cb,
	.stanza = stream_stanza_cb,
	.failed = stream_failed_cb,
	.closed = stream_closed_cb,
	.state = stream_state_cb,
};

static void transport_connected_cb(void *ud, const struct stream_tls_info *tls)
{
	struct session *s = ud;
	if (tls != NULL) {
		stream_tls_ready(s->stream, tls);
	} else {
		stream_start(s->stream);
	}
}

/* A big roster or a burst of stanzas leaves megabytes of freed heap
 * that malloc keeps (fragmentation pins the top of the heap): a second
 * after TRIM_AFTER bytes have come in, they go back to the system. */
#define TRIM_AFTER (256 * 1024)
#define TRIM_DELAY_MS 1000

static void trim_cb(uv_timer_t *t)
{
	struct session *s = t->data;
	s->fed = 0;
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}

static void transport_data_cb(void *ud, const char *data, size_t len)
{
	struct session *s = ud;
	if (!s->ended) {
		heard_from_server(s);
		stream_feed(s->stream, data, len);
	}
	s->fed += len;
	if (s->fed >= TRIM_AFTER && !uv_is_active((uv_handle_t *)&s->trim)) {
		uv_timer_start(&s->trim, trim_cb, TRIM_DELAY_MS, 0);
	}
}

static void transport_tls_ready_cb(void *ud, const struct stream_tls_info *tls)
{
	struct session *s = ud;
	stream_tls_ready(s->stream, tls);
}

/* The target could not be reached: try the next one, if any. */
static void next_target(struct session *s, const char *reason)
{
	char *errors = s->errors ? xasprintf("%s; %s", s->errors, reason) :
		xstrdup(reason);
	free(s->errors);
	s->errors = errors;
	if (s->cur + 1 >= s->ntargets) {
		finish(s, XMPPD_OFFLINE, 0, s->errors);
		return;
	}
	s->cur++;
	transport_free(s->transport);
	stream_free(s->stream);
	s->transport = NULL;
	s->stream = NULL;
	connect_target(s);
}

static void transport_error_cb(void *ud, enum transport_error err, const char *reason)
{
	struct session *s = ud;
	if (s->close_done != NULL) {
		stop_timers(s);
		uv_timer_start(&s->reap, reap_cb, 0, 0);
		return;
	}
	if (err == TRANSPORT_ERR_TLS) {
		log_error("TLS failed: %s", reason);
		finish(s, XMPPD_TLS_FAILED, -1, reason);
	} else if ((err == TRANSPORT_ERR_CONNECT || err == TRANSPORT_ERR_RESOLVE) &&
			!s->ended) {
		log_warnx("connection: %s", reason);
		next_target(s, reason);
	} else {
		log_warnx("connection: %s", reason);
		finish(s, XMPPD_OFFLINE, 0, reason);
	}
}

static const struct transport_cb transport_callbacks = {
	.connected = transport_connected_cb,
	.data = transport_data_cb,
	.tls_ready = transport_tls_ready_cb,
	.error = transport_error_cb,
};

static void negotiation_timeout_cb(uv_timer_t *t)
{
	struct session *s = t->data;
	finish(s, XMPPD_OFFLINE, 0, "timed out while logging in");
}

static void close_timeout_cb(uv_timer_t *t)
{
	struct session *s = t->data;
	log_debug("no </stream:stream> from the server in time; closing");
	uv_timer_start(&s->reap, reap_cb, 0, 0);
}

static void probe_timeout_cb(uv_timer_t *t)
{
	struct session *s = t->data;
	drop_dead(s, "the connection is dead",
		xasprintf("no answer from the server within %u s",
		s->x->cfg->keepalive_timeout));
}

/* The stream has been quiet for [server] keepalive seconds: ask for an
 * ack (or ping the server without stream management); anything heard
 * in time cancels the verdict. */
static void idle_cb(uv_timer_t *t)
{
	struct session *s = t->data;
	if (!stream_request_ack(s->stream)) {
		struct xml *ping = xml_new("iq", NS_CLIENT);
		char *id = xmppd_new_id();
		xml_set_attr(ping, "type", "get");
		xml_set_attr(ping, "id", id);
		xml_set_attr(ping, "to", s->x->domain);
		xml_add(ping, "ping", NS_PING);
		stream_send(s->stream, ping);
		xml_free(ping);
		free(id);
	}
	uv_timer_start(&s->probe, probe_timeout_cb,
		s->x->cfg->keepalive_timeout * 1000, 0);
}

static void ack_cb(uv_timer_t *t)
{
	struct session *s = t->data;
	stream_request_ack(s->stream);
}

static void connect_target(struct session *s)
{
	struct xmppd *x = s->x;
	const struct config *cfg = x->cfg;
	const struct target *tg = &s->targets[s->cur];
	struct stream_config sc = {
		.jid = x->bare_jid,
		.resource = cfg->resource,
		.password = s->password,
		.tls_required = cfg->tls != CONFIG_TLS_NONE,
		.no_tls = cfg->tls == CONFIG_TLS_NONE,
		.direct_tls = tg->direct_tls,
		.limits = { .max_stanza = cfg->max_stanza },
		.sm = cfg->stream_management ? &x->sm : NULL,
		.refuse_plain = s->scram_known,
	};
	s->cb = stream_callbacks;
	retrace(s);
	s->stream = stream_new(&sc, &s->cb, s);
	struct transport_config tc = {
		.host = tg->host,
		.port = tg->port,
		.direct_tls = tg->direct_tls,
		.server_name = x->domain,
		.ca_file = cfg->ca_file,
		.priority = cfg->tls_priority,
		.pin = cfg->pin,
		.connect_timeout_ms = cfg->connect_timeout * 1000,
		.verify = true,
	};
	s->transport = transport_new(x->loop, &tc, &transport_callbacks, s);
	log_info("connecting to %s port %d (%s)", tg->host, tg->port,
		cfg->tls == CONFIG_TLS_NONE ? "no TLS" :
		tg->direct_tls ? "direct TLS" : "STARTTLS");
	transport_connect(s->transport);
}

static void add_target(struct session *s, const char *host, int port, bool direct)
{
	if (s->ntargets == MAX_TARGETS) {
		return;
	}
	struct target *t = &s->targets[s->ntargets++];
	t->host = xstrdup(host);
	t->direct_tls = direct;
	t->port = port ? port : direct ? 5223 : 5222;
}

static void resolved_cb(void *ud, const struct resolve_target *targets,
	size_t n, const char *error)
{
	struct session *s = ud;
	if (n == 0) {
		log_warnx("%s: %s", s->x->domain, error ? error : "no targets");
		finish(s, XMPPD_OFFLINE, 0, error ? error : "no XMPP service found");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		log_debug("target %zu: %s port %d (%s)", i, targets[i].host,
			targets[i].port, targets[i].direct_tls ? "direct TLS" : "STARTTLS");
		add_target(s, targets[i].host, targets[i].port, targets[i].direct_tls);
	}
	connect_target(s);
}

/* No host configured: ask DNS (SRV, RFC 6120 3.2 and XEP-0368). */
static bool start_lookup(struct session *s, char **cause)
{
	s->resolver = resolver_new(s->x->loop, s->x->cfg->resolver, cause);
	if (s->resolver == NULL) {
		return false;
	}
	log_info("looking up the XMPP service of %s", s->x->domain);
	resolve_srv(s->resolver, s->x->domain, RESOLVE_TIMEOUT_MS, resolved_cb, s);
	return true;
}

/* Subscribers behind for this long: read from the server again, so that
 * one that never reads is dropped (ipc/server.c) instead of stalling
 * everyone. */
#define PRESSURE_MAX_MS 2000

static void pressure_timeout_cb(uv_timer_t *t)
{
	struct session *s = t->data;
	log_info("subscribers still behind after %d ms: reading on",
		PRESSURE_MAX_MS);
	s->pressure_expired = true;
	transport_pause(s->transport, false);
}

/* Back-pressure from the control socket: stop reading from the server
 * while its subscribers are behind (bounded by PRESSURE_MAX_MS). */
static void pressure_cb(void *ud, bool behind)
{
	struct session *s = ud;
	if (!behind) {
		s->pressure_expired = false;
		uv_timer_stop(&s->pressure);
		transport_pause(s->transport, false);
	} else if (!s->pressure_expired) {
		transport_pause(s->transport, true);
		uv_timer_start(&s->pressure, pressure_timeout_cb, PRESSURE_MAX_MS, 0);
	}
}

static void init_timer(struct session *s, uv_timer_t *t)
{
	uv_timer_init(s->x->loop, t);
	t->data = s;
	s->handles++;
}

struct session *session_new(struct xmppd *x, char **cause)
{
	const struct config *cfg = x->cfg;
	char *password = config_password(cfg, cause);
	if (password == NULL) {
		return NULL;
	}
	struct session *s = xcalloc(1, sizeof(*s));
	s->x = x;
	s->password = password;
	s->scram_known = state_scram_known(cfg, x->bare_jid);
	bool direct = cfg->tls == CONFIG_TLS_DIRECT;
	if (x->redirect_host != NULL && cfg->tls == CONFIG_TLS_NONE) {
		/* Plain text goes to the configured loopback host only. */
		log_warnx("ignoring the redirect to %s: tls = none", x->redirect_host);
		free(x->redirect_host);
		x->redirect_host = NULL;
	}
	if (x->redirect_host != NULL) {
		add_target(s, x->redirect_host, x->redirect_port, direct);
		free(x->redirect_host);
		x->redirect_host = NULL;
	} else if (cfg->host != NULL) {
		add_target(s, cfg->host, cfg->port, direct);
	} else if (!start_lookup(s, cause)) {
		freezero_str(password);
		free(s);
		return NULL;
	}
	init_timer(s, &s->timer);
	init_timer(s, &s->reap);
	init_timer(s, &s->idle);
	init_timer(s, &s->probe);
	init_timer(s, &s->ack);
	init_timer(s, &s->overdue);
	init_timer(s, &s->pressure);
	init_timer(s, &s->trim);
	uv_timer_start(&s->timer, negotiation_timeout_cb, NEGOTIATION_TIMEOUT_MS, 0);
	events_watch_listeners(retrace, s);
	events_on_pressure(pressure_cb, s);
	if (s->ntargets > 0) {
		connect_target(s);
	}
	return s;
}

static void handle_closed(uv_handle_t *h)
{
	struct session *s = h->data;
	if (--s->handles == 0) {
		for (size_t i = 0; i < s->ntargets; i++) {
			free(s->targets[i].host);
		}
		free(s->errors);
		free(s->end_reason);
		free(s);
	}
}

void session_free(struct session *s)
{
	if (s == NULL) {
		return;
	}
	events_unwatch_listeners(s);
	events_on_pressure(NULL, s);
	resolver_free(s->resolver);
	transport_free(s->transport);
	stream_free(s->stream);
	s->resolver = NULL;
	s->transport = NULL;
	s->stream = NULL;
	freezero_str(s->password);
	s->password = NULL;
	uv_close((uv_handle_t *)&s->timer, handle_closed);
	uv_close((uv_handle_t *)&s->reap, handle_closed);
	uv_close((uv_handle_t *)&s->idle, handle_closed);
	uv_close((uv_handle_t *)&s->probe, handle_closed);
	uv_close((uv_handle_t *)&s->ack, handle_closed);
	uv_close((uv_handle_t *)&s->overdue, handle_closed);
	uv_close((uv_handle_t *)&s->pressure, handle_closed);
	uv_close((uv_handle_t *)&s->trim, handle_closed);
}

bool session_send(struct session *s, const struct xml *stanza)
{
	return session_send_tagged(s, stanza, 0);
}

bool session_send_tagged(struct session *s, const struct xml *stanza, uint64_t tag)
{
	if (s->ended || !stream_send_tagged(s->stream, stanza, tag)) {
		return false;
	}
	if (stream_sm_enabled(s->stream) && !uv_is_active((uv_handle_t *)&s->ack)) {
		uv_timer_start(&s->ack, ack_cb, ACK_DELAY_MS, 0);
	}
	watch_acks(s);
	if (stream_sm_enabled(s->stream)) {
		csi_evaluate(s->x);	/* active while it waits for its ack */
	}
	return true;
}

bool session_send_nonza(struct session *s, const struct xml *el)
{
	return !s->ended && stream_send_nonza(s->stream, el);
}

bool session_sm_enabled(const struct session *s)
{
	return s->stream != NULL && stream_sm_enabled(s->stream);
}

void session_close(struct session *s, void (*done)(struct xmppd *x))
{
	s->close_done = done;
	stop_timers(s);
	if (s->ended || stream_state(s->stream) != STREAM_ONLINE) {
		uv_timer_start(&s->reap, reap_cb, 0, 0);
		return;
	}
	s->ended = true;
	stream_close(s->stream);
	uv_timer_start(&s->timer, close_timeout_cb, CLOSE_TIMEOUT_MS, 0);
}

const char *session_mechanism(const struct session *s)
{
	return s->stream ? stream_mechanism(s->stream) : NULL;
}

const char *session_tls_desc(const struct session *s)
{
	return s->transport ? transport_tls_desc(s->transport) : NULL;
}

const struct xml *session_features(const struct session *s)
{
	return s->stream ? stream_features(s->stream) : NULL;
}
