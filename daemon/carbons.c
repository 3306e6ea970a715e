/*
 * Message carbons (XEP-0280): the <enable/> request after each fresh
 * bind. A resumed stream keeps the server's carbons state, so nothing is
 * asked then. A refusal is logged and the session carries on without.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon/carbons.h"
#include "daemon/core.h"
#include "daemon/log.h"
#include "proto/alloc.h"
#include "proto/ns.h"

struct carbons {
	bool enabled;		/* the server said yes on this session */
	unsigned generation;	/* bumped per session: stale answers lose */
};

/* What an <enable/> request carries to its answer. */
struct enable_wait {
	struct xmppd *x;
	unsigned generation;
};

static void carbons_init(struct xmppd *x)
{
	x->carbons = xcalloc(1, sizeof(*x->carbons));
}

static void carbons_free(struct xmppd *x)
{
	free(x->carbons);
	x->carbons = NULL;
}

static void enabled_cb(void *ud, const struct xml *reply, const char *condition,
	const char *text)
{
	struct enable_wait *w = ud;
	struct carbons *c = w->x->carbons;
	const char *type = reply ? xml_attr(reply, "type") : NULL;
	bool ok = type != NULL && strcmp(type, "result") == 0;
	if (c != NULL && w->generation == c->generation) {
		c->enabled = ok;
		if (ok) {
			log_info("carbons enabled");
		} else {
			log_warnx("carbons not enabled: %s", reply != NULL ?
				"the server refused" : condition ? condition : "no answer");
		}
	}
	free(w);
}

static void carbons_online(struct xmppd *x, bool resumed)
{
	struct carbons *c = x->carbons;
	if (resumed) {
		return;
	}
	c->enabled = false;
	c->generation++;
	struct enable_wait *w = xcalloc(1, sizeof(*w));
	w->x = x;
	w->generation = c->generation;
	struct xerr e = { 0 };
	if (iq_request(x, NULL, "set", "<enable xmlns='" NS_CARBONS "'/>", 0,
			enabled_cb, w, &e) < 0) {
		log_warnx("carbons not enabled: %s", e.text);
		free(w);
	}
}

bool carbons_enabled(const struct xmppd *x)
{
	return x->carbons != NULL && x->carbons->enabled;
}

const struct subsystem carbons_subsystem = {
	.name = "carbons",
	.init = carbons_init,
	.free = carbons_free,
	.online = carbons_online,
	.offline = NULL,
};
