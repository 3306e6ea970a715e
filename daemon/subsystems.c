#include <stddef.h>

#include "daemon/blocking.h"
#include "daemon/carbons.h"
#include "daemon/csi.h"
#include "daemon/disco.h"
#include "daemon/handlers.h"
#include "daemon/mam.h"
#include "daemon/muc.h"
#include "daemon/roster.h"
#include "daemon/subsystems.h"
#include "daemon/upload.h"

/* One row per subsystem, NULL-terminated; hooks may be NULL. */
const struct subsystem *const subsystems[] = {
	&disco_subsystem,
	&blocking_subsystem,
	&csi_subsystem,
	&carbons_subsystem,
	&mam_subsystem,
	&muc_subsystem,
	&roster_subsystem,
	&presence_subsystem,
	&upload_subsystem,
	&handlers_subsystem,
	NULL,
};

void subsystems_init(struct xmppd *x)
{
	for (size_t i = 0; subsystems[i] != NULL; i++) {
		if (subsystems[i]->init != NULL) {
			subsystems[i]->init(x);
		}
	}
}

void subsystems_free(struct xmppd *x)
{
	for (size_t i = 0; subsystems[i] != NULL; i++) {
		if (subsystems[i]->free != NULL) {
			subsystems[i]->free(x);
		}
	}
}

void subsystems_online(struct xmppd *x, bool resumed)
{
	for (size_t i = 0; subsystems[i] != NULL; i++) {
		if (subsystems[i]->online != NULL) {
			subsystems[i]->online(x, resumed);
		}
	}
}

void subsystems_available(struct xmppd *x)
{
	for (size_t i = 0; subsystems[i] != NULL; i++) {
		if (subsystems[i]->available != NULL) {
			subsystems[i]->available(x);
		}
	}
}

void subsystems_offline(struct xmppd *x)
{
	for (size_t i = 0; subsystems[i] != NULL; i++) {
		if (subsystems[i]->offline != NULL) {
			subsystems[i]->offline(x);
		}
	}
}
