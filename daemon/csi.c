/*
 * Client state. The state lives in the server's session: a fresh
 * session starts active (XEP-0352 4) with nothing said yet, a resumed
 * one keeps what the server last got, which may not be what we last
 * sent, so it is said again. It is re-evaluated whenever the control
 * socket's listeners change (events_listeners_changed), the outbox or
 * the stanzas awaiting acks empty or fill, and at every login, and sent
 * only when it differs from what the server was told.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon/core.h"
#include "daemon/csi.h"
#include "daemon/events.h"
#include "daemon/log.h"
#include "daemon/subsystems.h"
#include "proto/alloc.h"
#include "proto/ns.h"

enum csi_state {
	CSI_UNSAID,		/* nothing sent in this session */
	CSI_UNKNOWN,		/* resumed: the last word may have been lost */
	CSI_ACTIVE,
	CSI_INACTIVE,
};

struct csi {
	struct xmppd *x;
	bool offered;		/* the stream features list <csi/> */
	enum csi_state said;
};

static const char *const state_names[] = {
	[CSI_UNSAID] = "unsaid",
	[CSI_UNKNOWN] = "unknown",
	[CSI_ACTIVE] = "active",
	[CSI_INACTIVE] = "inactive",
};

static void evaluate(struct xmppd *x)
{
	struct csi *c = x->csi;
	if (!c->offered || x->state != XMPPD_ONLINE || x->session == NULL) {
		return;
	}
	bool busy = events_listening("message") || outbox_count(&x->outbox) > 0
		|| x->sm.nqueue > 0;
	enum csi_state want = busy ? CSI_ACTIVE : CSI_INACTIVE;
	/* A session starts active: nothing to say until it goes idle. */
	if (want == c->said || (want == CSI_ACTIVE && c->said == CSI_UNSAID)) {
		return;
	}
	struct xml *el = xml_new(state_names[want], NS_CSI);
	if (session_send_nonza(x->session, el)) {
		log_debug("csi: %s -> %s", state_names[c->said], state_names[want]);
		c->said = want;
	}
	xml_free(el);
}

void csi_evaluate(struct xmppd *x)
{
	if (x->csi != NULL) {
		evaluate(x);
	}
}

static void listeners_changed(void *ud)
{
	evaluate(((struct csi *)ud)->x);
}

static bool features_offer_csi(const struct xml *features)
{
	return features != NULL && xml_child(features, "csi", NS_CSI) != NULL;
}

static void csi_online(struct xmppd *x, bool resumed)
{
	struct csi *c = x->csi;
	c->offered = features_offer_csi(session_features(x->session));
	/* A state sent just before the connection dropped may never have
	 * reached the server (nonzas are not acked or re-sent): after a
	 * resumption, say it again. */
	c->said = resumed ? CSI_UNKNOWN : CSI_UNSAID;
	evaluate(x);
}

static void csi_init(struct xmppd *x)
{
	x->csi = xcalloc(1, sizeof(*x->csi));
	x->csi->x = x;
	events_watch_listeners(listeners_changed, x->csi);
}

static void csi_free(struct xmppd *x)
{
	if (x->csi == NULL) {
		return;
	}
	events_unwatch_listeners(x->csi);
	free(x->csi);
	x->csi = NULL;
}

const struct subsystem csi_subsystem = {
	.name = "csi",
	.init = csi_init,
	.free = csi_free,
	.online = csi_online,
};

void csi_status(const struct xmppd *x, json_t *status)
{
	const struct csi *c = x->csi;
	if (c->offered && (c->said == CSI_ACTIVE || c->said == CSI_INACTIVE)) {
		json_object_set_new(status, "csi", json_string(state_names[c->said]));
	}
}
