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
#include "daemon/csi.h"
#include "daemon/disco.h"
#include "daemon/events.h"
#include "daemon/log.h"
#include "daemon/resume.h"
#include "daemon/roster.h"
#include "daemon/store.h"
#include "daemon/subsystems.h"
#include "daemon/upload.h"
#include "proto/alloc.h"
#include "proto/jid.h"
#include "proto/ns.h"
#include "proto/reader.h"

#define RETRY_MIN_MS 1000
#define DEDUP_KEYS 8192	/* recent inbound messages remembered */
#define STABLE_MS (60 * 1000)	/* up this long: the backoff starts over */

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

static void publish_state_named(struct xmppd *x, const char *name)
{
	json_t *ev = json_object();
	json_object_set_new(ev, "state", json_string(name));
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

static void publish_state(struct xmppd *x)
{
	publish_state_named(x, state_names[x->state]);
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
	uv_timer_stop(&x->retry_timer);
	xmppd_enter_state(x, XMPPD_CONNECTING, NULL);
	x->session = session_new(x, &cause);
	if (x->session == NULL) {
		/* A local problem (password command failed...): retry later. */
		xmppd_session_ended(x, 0);
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
 * of a doubling interval, capped; at least min_ms. */
static void schedule_retry(struct xmppd *x, unsigned min_ms)
{
	unsigned base = x->retry_delay_ms ? x->retry_delay_ms : RETRY_MIN_MS;
	unsigned r;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r)) {
		r = 0;
	}
	unsigned delay = base / 2 + r % (base / 2 + 1);
	if (delay < min_ms) {
		delay = min_ms;
	}
	unsigned cap = x->cfg->reconnect_max * 1000;
	if (delay > cap) {
		delay = cap;
	}
	x->retry_delay_ms = base * 2 > cap ? cap : base * 2;
	x->retry_at_ms = uv_now(x->loop) + delay;
	uv_timer_start(&x->retry_timer, retry_cb, delay, 0);
}

static void stable_cb(uv_timer_t *t)
{
	struct xmppd *x = t->data;
	x->retry_delay_ms = 0;
}

/* Messages the previous session left unacknowledged are in the outbox
 * too; the stream's copies are dropped and the outbox sends them again. */
static void drop_sm_queue(struct xmppd *x)
{
	size_t n = 0;
	struct sm_entry *q = sm_take_queue(&x->sm, &n);
	for (size_t i = 0; i < n; i++) {
		free(q[i].data);
	}
	free(q);
}

void xmppd_session_online(struct xmppd *x, const char *jid, bool resumed)
{
	free(x->full_jid);
	x->full_jid = xstrdup(jid);
	uv_timer_start(&x->stable_timer, stable_cb, STABLE_MS, 0);
	bool restored = x->restored_session;
	x->restored_session = false;
	if (resumed && restored) {
		/* The session outlived the daemon: the stream goes on, but
		 * nothing else of it is known here (features, roster, rooms,
		 * the presence to send). */
		log_info("state %s -> online (resumed after a restart)",
			state_names[x->state]);
		x->state = XMPPD_ONLINE;
		free(x->reason);
		x->reason = NULL;
		publish_state_named(x, "resumed");
		x->presence_holds = 0;
		x->presence_pending = true;
		xmppd_hold_presence(x);
		subsystems_online(x, false);
		xmppd_release_presence(x);
		outbox_flush(x);
		return;
	}
	if (resumed) {
		log_info("state %s -> online (resumed)", state_names[x->state]);
		x->state = XMPPD_ONLINE;
		free(x->reason);
		x->reason = NULL;
		publish_state_named(x, "resumed");
		subsystems_online(x, true);
		if (x->presence_pending) {
			/* Dropped while a catch-up held the presence back: the
			 * server kept the session, the presence is still due. */
			x->presence_holds = 1;
			xmppd_release_presence(x);
		}
		outbox_flush(x);
		return;
	}
	iq_fail_all(x, "not-connected", "the connection was lost");
	xmppd_enter_state(x, XMPPD_ONLINE, NULL);
	drop_sm_queue(x);
	outbox_fresh_session(x);
	x->presence_holds = 0;
	x->presence_pending = true;
	xmppd_hold_presence(x);
	subsystems_online(x, false);
	xmppd_release_presence(x);
	outbox_flush(x);
}

void xmppd_hold_presence(struct xmppd *x)
{
	x->presence_holds++;
}

void xmppd_release_presence(struct xmppd *x)
{
	if (x->presence_holds > 0 && --x->presence_holds > 0) {
		return;
	}
	if (!x->presence_pending || x->state != XMPPD_ONLINE) {
		return;
	}
	x->presence_pending = false;
	presence_send_initial(x);
	subsystems_available(x);
}

void xmppd_session_ended(struct xmppd *x, int retry_ms)
{
	bool was_online = x->session != NULL && x->state == XMPPD_ONLINE;
	session_free(x->session);
	x->session = NULL;
	uv_timer_stop(&x->stable_timer);
	if (was_online) {
		subsystems_offline(x);
	}
	if (!x->sm.resumable) {
		x->presence_pending = false;
		iq_fail_all(x, "not-connected", "the connection was lost");
	}
	if (x->quitting) {
		return;
	}
	if (retry_ms >= 0) {
		schedule_retry(x, (unsigned)retry_ms);
	}
}

void xmppd_redirect(struct xmppd *x, const char *host, int port)
{
	free(x->redirect_host);
	x->redirect_host = xstrdup(host);
	x->redirect_port = port;
}

void xmppd_reloaded(struct xmppd *x)
{
	bool stopped = x->session == NULL &&
		!uv_is_active((uv_handle_t *)&x->retry_timer);
	if (!x->quitting && stopped) {
		xmppd_reconnect(x);
	}
}

void xmppd_reconnect(struct xmppd *x)
{
	if (x->quitting) {
		return;
	}
	x->retry_delay_ms = 0;
	if (x->session != NULL) {
		session_free(x->session);
		x->session = NULL;
	}
	connect_now(x);
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
	uv_timer_init(loop, &x->stable_timer);
	x->retry_timer.data = x;
	x->stable_timer.data = x;
	sm_init(&x->sm);
	outbox_init(&x->outbox);
	dedup_init(&x->seen, DEDUP_KEYS);
	x->store = store_open(loop, cfg, x->bare_jid);
	subsystems_init(x);
	outbox_load(x);
	resume_load(x);
	return x;
}

/* Both timers live inside x: free it when the last one has closed
 * (libuv runs close callbacks in no promised order). */
static void timer_closed(uv_handle_t *h)
{
	struct xmppd *x = h->data;
	if (--x->closing > 0) {
		return;
	}
	subsystems_free(x);
	store_close(x->store);	/* commits what the subsystems saved */
	sm_finish(&x->sm);
	outbox_finish(&x->outbox);
	dedup_finish(&x->seen);
	free(x->redirect_host);
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
	store_stop(x->store);
	x->closing = 2;
	uv_close((uv_handle_t *)&x->retry_timer, timer_closed);
	uv_close((uv_handle_t *)&x->stable_timer, timer_closed);
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
	resume_forget(x);
	uv_timer_stop(&x->retry_timer);
	uv_timer_stop(&x->stable_timer);
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

bool xmppd_is_account(const struct xmppd *x, const char *jid)
{
	if (jid == NULL || x->bare_jid == NULL) {
		return false;
	}
	char *p = jid_prep(jid, false, NULL);
	bool own = p != NULL && strcmp(p, x->bare_jid) == 0;
	free(p);
	return own;
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
	json_object_set_new(o, "sm", json_boolean(x->session != NULL &&
		x->state == XMPPD_ONLINE && session_sm_enabled(x->session)));
	json_object_set_new(o, "outbox", json_integer((json_int_t)outbox_count(&x->outbox)));
	json_object_set_new(o, "pending", json_integer((json_int_t)roster_pending_count(x)));
	store_status(x->store, o);
	disco_status(x, o);
	csi_status(x, o);
	upload_status(x, o);
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

int xmppd_log_read(struct xmppd *x, const struct xmppd_log_query *q,
	xmppd_log_cb cb, void *ud, struct xerr *e)
{
	if (!store_enabled(x->store)) {
		return xerr_set(e, "service-unavailable",
			"there is no message log ([store] enabled = no)");
	}
	const char *why = store_error(x->store);
	struct store_query sq = {
		.after = q->after, .upto = q->upto, .sender = q->sender,
		.peer = q->peer, .inbound_only = q->inbound_only,
		.newest = q->newest, .max = q->max,
	};
	if (store_log_read(x->store, &sq, cb, ud) < 0) {
		return xerr_set(e, "internal-server-error",
			"the message log cannot be read: %s", why ? why : "error");
	}
	return 0;
}

uint64_t xmppd_log_pruned(struct xmppd *x)
{
	return store_enabled(x->store) ? store_pruned_upto(x->store) : 0;
}
