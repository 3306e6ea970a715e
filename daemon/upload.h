/*
 * HTTP File Upload (XEP-0363), the headless way: xmppd finds the
 * server's upload service after each fresh login and asks it for slots;
 * the local program does the HTTP PUT itself and then sends the GET URL
 * in a message, so the daemon needs no HTTP client.
 */
#ifndef XMPPD_DAEMON_UPLOAD_H
#define XMPPD_DAEMON_UPLOAD_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "daemon/disco.h"
#include "daemon/xmppd.h"
#include "proto/xml.h"

extern const struct subsystem upload_subsystem;

/* Items of the server asked at most, and bounds on what a slot holds. */
#define UPLOAD_MAX_ITEMS 32
#define UPLOAD_MAX_URL 4096
#define UPLOAD_MAX_HEADER 8192

/* A slot request; content_type may be NULL. */
struct upload_request {
	const char *filename;
	uint64_t size;		/* bytes */
	const char *content_type;
};

/* The upload service found this session, or NULL. */
const char *upload_service(const struct xmppd *x);

/* Adds "upload":{"service":JID, "max_file_size"?:N} to a status object
 * once a service is known. */
void upload_status(const struct xmppd *x, json_t *status);

/*
 * Asks the service for a slot. cb gets {"put":URL, "get":URL,
 * "headers":{name:value}} (only Authorization, Cookie and Expires, with
 * newlines stripped), or the error: the service's own, or
 * "feature-not-implemented" without a service, "not-acceptable" when
 * size passes the service's announced max-file-size.
 */
int upload_slot(struct xmppd *x, const struct upload_request *r, disco_cb cb,
	void *ud, struct xerr *e);

/*
 * The slot of a result <iq/> as above (a new reference), or NULL when it
 * holds no usable one: the put and get URLs must be http(s), at most
 * UPLOAD_MAX_URL bytes, without spaces or control characters.
 */
json_t *upload_slot_json(const struct xml *iq);

/* The max-file-size of a disco#info <query/>'s upload form: 0 when it
 * announces none (or an unreadable one). */
uint64_t upload_max_size(const struct xml *query);

#endif
