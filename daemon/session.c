/*
 * One connection attempt: a transport (TCP, TLS) and a stream (XMPP
 * negotiation and stanzas) wired together, with the deadlines the stream
 * itself cannot keep because proto/ has no clock.
 *
 * Teardown is never done from inside a transport or stream callback: the
 * session marks itself finished and a zero-delay timer ends it on the
 * next loop turn, when neither is on the stack.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"
#include "daemon/core.h"
#include "daemon/log.h"
#include "daemon/transport.h"
#include "proto/alloc.h"
#include "proto/stream.h"

#define NEGOTIATION_TIMEOUT_MS (30 * 1000)
#define CLOSE_TIMEOUT_MS (3 * 1000)

struct session {
	struct xmppd *x;
	struct transport *transport;
	struct stream *stream;
	uv_timer_t timer;	/* negotiation deadline, then close wait */
	uv_timer_t reap;	/* ends the session outside callbacks */
	int handles;		/* open uv handles, freed at 0 */
	bool ended;
	enum xmppd_state end_state;	/* OFFLINE, AUTH_FAILED, TLS_FAILED */
	char *end_reason;
	bool end_retry;
	void (*close_done)(struct xmppd *x);
};

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
	bool retry = s->end_retry;
	s->end_reason = NULL;
	xmppd_session_ended(x, retry);	/* frees s */
	xmppd_enter_state(x, st, reason);
	free(reason);
}

/* Ends the session from wherever we are: the work happens in reap_cb. */
static void finish(struct session *s, enum xmppd_state st, bool retry,
	const char *reason)
{
	if (s->ended) {
		return;
	}
	s->ended = true;
	s->end_state = st;
	s->end_retry = retry;
	s->end_reason = reason ? xstrdup(reason) : NULL;
	uv_timer_stop(&s->timer);
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

static void stream_online_cb(void *ud, const char *jid)
{
	struct session *s = ud;
	uv_timer_stop(&s->timer);
	log_info("online as %s (%s, %s)", jid,
		stream_mechanism(s->stream) ? stream_mechanism(s->stream) : "?",
		transport_tls_desc(s->transport) ? transport_tls_desc(s->transport) : "no TLS");
	xmppd_session_online(s->x, jid);
}

static void stream_stanza_cb(void *ud, struct xml *stanza)
{
	struct session *s = ud;
	dispatch_stanza(s->x, stanza);
}

/*
 * What a failure means for retrying: credentials and TLS problems stop
 * until the user acts; a conflict (another client took our resource)
 * would only fight back and forth, so it stops too; anything else is
 * retried with backoff.
 */
static void stream_failed_cb(void *ud, enum stream_fail kind,
	const char *condition, const char *text)
{
	struct session *s = ud;
	char *reason = xasprintf("%s%s%s", condition ? condition : "error",
		text ? ": " : "", text ? text : "");
	switch (kind) {
	case STREAM_FAIL_AUTH:
		log_error("authentication failed: %s", reason);
		finish(s, XMPPD_AUTH_FAILED, false, reason);
		break;
	case STREAM_FAIL_TLS:
		log_error("TLS: %s", reason);
		finish(s, XMPPD_TLS_FAILED, false, reason);
		break;
	case STREAM_FAIL_STREAM_ERROR:
		log_warnx("stream error: %s", reason);
		finish(s, XMPPD_OFFLINE, condition == NULL ||
			strcmp(condition, "conflict") != 0, reason);
		break;
	default:
		log_warnx("stream ended: %s", reason);
		finish(s, XMPPD_OFFLINE, true, reason);
		break;
	}
	free(reason);
}

static void stream_closed_cb(void *ud)
{
	struct session *s = ud;
	transport_shutdown(s->transport);
	if (s->close_done == NULL) {
		finish(s, XMPPD_OFFLINE, true, "the server closed the stream");
	} else {
		uv_timer_stop(&s->timer);
		uv_timer_start(&s->reap, reap_cb, 0, 0);
	}
}

static void stream_trace_cb(void *ud, bool out, const char *data, size_t len)
{
	log_info("%s %.*s", out ? "SEND" : "RECV", (int)len, data);
}

static void stream_state_cb(void *ud, enum stream_state old, enum stream_state new)
{
	log_debug("stream %s -> %s", stream_state_name(old), stream_state_name(new));
}

static const struct stream_cb stream_callbacks = {
	.send = stream_send_cb,
	.start_tls = stream_start_tls_cb,
	.online = stream_online_cb,
	.stanza = stream_stanza_cb,
	.failed = stream_failed_cb,
	.closed = stream_closed_cb,
	.state = stream_state_cb,
};

static const struct stream_cb stream_callbacks_traced = {
	.send = stream_send_cb,
	.start_tls = stream_start_tls_cb,
	.online = stream_online_cb,
	.stanza = stream_stanza_cb,
	.failed = stream_failed_cb,
	.closed = stream_closed_cb,
	.trace = stream_trace_cb,
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

static void transport_data_cb(void *ud, const char *data, size_t len)
{
	struct session *s = ud;
	if (!s->ended) {
		stream_feed(s->stream, data, len);
	}
}

static void transport_tls_ready_cb(void *ud, const struct stream_tls_info *tls)
{
	struct session *s = ud;
	stream_tls_ready(s->stream, tls);
}

static void transport_error_cb(void *ud, enum transport_error err, const char *reason)
{
	struct session *s = ud;
	if (s->close_done != NULL) {
		uv_timer_stop(&s->timer);
		uv_timer_start(&s->reap, reap_cb, 0, 0);
		return;
	}
	if (err == TRANSPORT_ERR_TLS) {
		log_error("TLS failed: %s", reason);
		finish(s, XMPPD_TLS_FAILED, false, reason);
	} else {
		log_warnx("connection: %s", reason);
		finish(s, XMPPD_OFFLINE, true, reason);
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
	finish(s, XMPPD_OFFLINE, true, "timed out while logging in");
}

static void close_timeout_cb(uv_timer_t *t)
{
	struct session *s = t->data;
	log_debug("no </stream:stream> from the server in time; closing");
	uv_timer_start(&s->reap, reap_cb, 0, 0);
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
	struct stream_config sc = {
		.jid = x->bare_jid,
		.resource = cfg->resource,
		.password = password,
		.tls_required = true,
		.direct_tls = cfg->tls == CONFIG_TLS_DIRECT,
		.limits = { .max_stanza = cfg->max_stanza },
	};
	s->stream = stream_new(&sc, cfg->log_xml ? &stream_callbacks_traced :
		&stream_callbacks, s);
	freezero_str(password);

	int port = cfg->port;
	if (port == 0) {
		port = cfg->tls == CONFIG_TLS_DIRECT ? 5223 : 5222;
	}
	struct transport_config tc = {
		.host = cfg->host ? cfg->host : x->domain,
		.port = port,
		.direct_tls = cfg->tls == CONFIG_TLS_DIRECT,
		.server_name = x->domain,
		.ca_file = cfg->ca_file,
		.priority = cfg->tls_priority,
		.verify = true,
	};
	s->transport = transport_new(x->loop, &tc, &transport_callbacks, s);
	uv_timer_init(x->loop, &s->timer);
	uv_timer_init(x->loop, &s->reap);
	s->timer.data = s;
	s->reap.data = s;
	s->handles = 2;
	uv_timer_start(&s->timer, negotiation_timeout_cb, NEGOTIATION_TIMEOUT_MS, 0);
	log_info("connecting to %s port %d (%s)", tc.host, port,
		tc.direct_tls ? "direct TLS" : "STARTTLS");
	transport_connect(s->transport);
	return s;
}

static void handle_closed(uv_handle_t *h)
{
	struct session *s = h->data;
	if (--s->handles == 0) {
		free(s->end_reason);
		free(s);
	}
}

void session_free(struct session *s)
{
	if (s == NULL) {
		return;
	}
	transport_free(s->transport);
	stream_free(s->stream);
	s->transport = NULL;
	s->stream = NULL;
	uv_close((uv_handle_t *)&s->timer, handle_closed);
	uv_close((uv_handle_t *)&s->reap, handle_closed);
}

bool session_send(struct session *s, const struct xml *stanza)
{
	if (s->ended) {
		return false;
	}
	return stream_send(s->stream, stanza);
}

void session_close(struct session *s, void (*done)(struct xmppd *x))
{
	s->close_done = done;
	if (s->ended || stream_state(s->stream) != STREAM_ONLINE) {
		uv_timer_stop(&s->timer);
		uv_timer_start(&s->reap, reap_cb, 0, 0);
		return;
	}
	s->ended = true;
	stream_close(s->stream);
	uv_timer_stop(&s->timer);
	uv_timer_start(&s->timer, close_timeout_cb, CLOSE_TIMEOUT_MS, 0);
}

const char *session_mechanism(const struct session *s)
{
	return stream_mechanism(s->stream);
}

const char *session_tls_desc(const struct session *s)
{
	return transport_tls_desc(s->transport);
}
