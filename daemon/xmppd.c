/*
 * The daemon core: the account's state, connection attempts with backoff,
 * shutdown, and the small parts of the API that belong to no subsystem.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "daemon/config.h"
#include "daemon/core.h"
#include "daemon/events.h"
#include "daemon/log.h"
#include "proto/alloc.h"
#include "proto/jid.h"
#include "proto/ns.h"
#include "proto/reader.h"

#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS (300 * 1000)

static const char *const state_names[] = {
	[XMPPD_OFFLINE] = "offline",
	[XMPPD_CONNECTING] = "connecting",
	[XMPPD_ONLINE] = "online",
	[XMPPD_AUTH_FAILED] = "auth-failed",
	[XMPPD_TLS_FAILED] = "tls-failed",
	[XMPPD_STOPPING] = "stopping",
};

const char *xmppd_state_name(enum xmppd_state st)
{
	return state_names[st];
}

int xerr_set(struct xerr *e, const char *condition, const char *fmt, ...)
{
	e->condition = condition;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->text, sizeof(e->text), fmt, ap);
	va_end(ap);
	return -1;
}

char *xmppd_new_id(void)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
	unsigned char raw[12];
	size_t got = 0;
	while (got < sizeof(raw)) {
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
		if (n > 0) {
			got += (size_t)n;
		}
	}
	char *id = xmalloc(sizeof(raw) + 1);
	for (size_t i = 0; i < sizeof(raw); i++) {
		id[i] = alphabet[raw[i] & 31];
	}
	id[sizeof(raw)] = '\0';
	return id;
}

static void publish_state(struct xmppd *x)
{
	json_t *ev = json_object();
	json_object_set_new(ev, "state", json_string(state_names[x->state]));
	if (x->reason != NULL) {
		json_object_set_new(ev, "reason", json_string(x->reason));
	}
	if (x->state == XMPPD_OFFLINE && uv_is_active((uv_handle_t *)&x->retry_timer)) {
		uint64_t now = uv_now(x->loop);
		uint64_t in = x->retry_at_ms > now ? x->retry_at_ms - now : 0;
		json_object_set_new(ev, "retry_in", json_integer((json_int_t)((in + 999) / 1000)));
	}
	if (x->state == XMPPD_ONLINE) {
		json_object_set_new(ev, "jid", json_string(x->full_jid));
	}
	events_publish("state", ev);
}

void xmppd_enter_state(struct xmppd *x, enum xmppd_state st, const char *reason)
{
	enum xmppd_state old = x->state;
	free(x->reason);
	x->reason = reason ? xstrdup(reason) : NULL;
	x->state = st;
	if (reason != NULL) {
		log_info("state %s -> %s: %s", state_names[old], state_names[st], reason);
	} else {
		log_info("state %s -> %s", state_names[old], state_names[st]);
	}
	publish_state(x);
}

static void connect_now(struct xmppd *x)
{
	char *cause = NULL;
	xmppd_enter_state(x, XMPPD_CONNECTING, NULL);
	x->session = session_new(x, &cause);
	if (x->session == NULL) {
		/* A local problem (password command failed...): retry later. */
		free(x->reason);
		x->reason = NULL;
		xmppd_session_ended(x, true);
		xmppd_enter_state(x, XMPPD_OFFLINE, cause);
		free(cause);
	}
}

static void retry_cb(uv_timer_t *t)
{
	struct xmppd *x = t->data;
	if (!x->quitting && x->session == NULL) {
		connect_now(x);
	}
}

/* Exponential backoff with jitter: the next delay is between half and all
 * of a doubling interval, capped. */
static void schedule_retry(struct xmppd *x)
{
	unsigned base = x->retry_delay_ms ? x->retry_delay_ms : RETRY_MIN_MS;
	unsigned r;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r)) {
		r = 0;
	}
	unsigned delay = base / 2 + r % (base / 2 + 1);
	x->retry_delay_ms = base * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : base * 2;
	x->retry_at_ms = uv_now(x->loop) + delay;
	uv_timer_start(&x->retry_timer, retry_cb, delay, 0);
}

void xmppd_session_online(struct xmppd *x, const char *jid)
{
	free(x->full_jid);
	x->full_jid = xstrdup(jid);
	x->retry_delay_ms = 0;
	xmppd_enter_state(x, XMPPD_ONLINE, NULL);
	presence_send_initial(x);
}

void xmppd_session_ended(struct xmppd *x, bool retry)
{
	session_free(x->session);
	x->session = NULL;
	free(x->full_jid);
	x->full_jid = NULL;
	iq_fail_all(x, "not-connected", "the connection was lost");
	if (x->quitting) {
		return;
	}
	if (retry) {
		schedule_retry(x);
	}
}

struct xmppd *xmppd_new(uv_loop_t *loop, struct config *cfg)
{
	struct xmppd *x = xcalloc(1, sizeof(*x));
	x->loop = loop;
	x->cfg = cfg;
	x->state = XMPPD_OFFLINE;
	x->bare_jid = xstrdup(cfg->jid);
	const char *at = strchr(x->bare_jid, '@');
	x->domain = xstrdup(at ? at + 1 : x->bare_jid);
	uv_timer_init(loop, &x->retry_timer);
	x->retry_timer.data = x;
	return x;
}

static void retry_timer_closed(uv_handle_t *h)
{
	struct xmppd *x = h->data;
	free(x->reason);
	free(x->bare_jid);
	free(x->full_jid);
	free(x->domain);
	free(x);
}

void xmppd_free(struct xmppd *x)
{
	if (x == NULL) {
		return;
	}
	session_free(x->session);
	x->session = NULL;
	x->quitting = true;
	iq_fail_all(x, "not-connected", "the daemon is stopping");
	uv_close((uv_handle_t *)&x->retry_timer, retry_timer_closed);
}

void xmppd_start(struct xmppd *x)
{
	connect_now(x);
}

void xmppd_on_stopped(struct xmppd *x, void (*cb)(void *ud), void *ud)
{
	x->stopped_cb = cb;
	x->stopped_ud = ud;
}

static void stopped(struct xmppd *x)
{
	session_free(x->session);
	x->session = NULL;
	if (x->stopped_cb != NULL) {
		x->stopped_cb(x->stopped_ud);
	}
}

void xmppd_quit(struct xmppd *x)
{
	if (x->quitting) {
		return;
	}
	x->quitting = true;
	uv_timer_stop(&x->retry_timer);
	if (x->state == XMPPD_ONLINE) {
		presence_send_unavailable(x);
	}
	xmppd_enter_state(x, XMPPD_STOPPING, NULL);
	if (x->session == NULL) {
		stopped(x);
		return;
	}
	session_close(x->session, stopped);
}

enum xmppd_state xmppd_state(const struct xmppd *x)
{
	return x->state;
}

const char *xmppd_jid(const struct xmppd *x)
{
	return x->full_jid ? x->full_jid : x->bare_jid;
}

json_t *xmppd_status(const struct xmppd *x)
{
	json_t *o = json_object();
	json_object_set_new(o, "state", json_string(state_names[x->state]));
	json_object_set_new(o, "jid", json_string(xmppd_jid(x)));
	if (x->reason != NULL) {
		json_object_set_new(o, "reason", json_string(x->reason));
	}
	if (x->session != NULL && x->state == XMPPD_ONLINE) {
		const char *mech = session_mechanism(x->session);
		const char *tls = session_tls_desc(x->session);
		if (mech != NULL) {
			json_object_set_new(o, "mechanism", json_string(mech));
		}
		if (tls != NULL) {
			json_object_set_new(o, "tls", json_string(tls));
		}
	}
	json_object_set_new(o, "sm", json_false());
	json_t *features = json_array();
	for (size_t i = 0; disco_features[i] != NULL; i++) {
		json_array_append_new(features, json_string(disco_features[i]));
	}
	json_object_set_new(o, "features", features);
	return o;
}

bool xmppd_send(struct xmppd *x, const struct xml *stanza)
{
	if (x->session == NULL || x->state != XMPPD_ONLINE) {
		return false;
	}
	return session_send(x->session, stanza);
}

int xmppd_send_raw(struct xmppd *x, const char *text, struct xerr *e)
{
	if (x->state != XMPPD_ONLINE) {
		return xerr_set(e, "not-connected", "the account is %s",
			state_names[x->state]);
	}
	const char *err = NULL;
	struct xml *st = reader_parse_element(text, strlen(text), NS_CLIENT, &err);
	if (st == NULL) {
		return xerr_set(e, "bad-request", "not a well-formed stanza: %s", err);
	}
	int rc = 0;
	if (st->ns == NULL || strcmp(st->ns, NS_CLIENT) != 0 ||
			(strcmp(st->name, "message") != 0 &&
			strcmp(st->name, "presence") != 0 &&
			strcmp(st->name, "iq") != 0)) {
		rc = xerr_set(e, "bad-request",
			"only message, presence and iq stanzas in jabber:client can be sent");
	} else if (!xmppd_send(x, st)) {
		rc = xerr_set(e, "bad-request", "the stanza could not be serialized");
	}
	xml_free(st);
	return rc;
}
