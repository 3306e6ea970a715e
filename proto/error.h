/* Stanza errors (RFC 6120 8.3) as received. */
#ifndef XMPPD_PROTO_ERROR_H
#define XMPPD_PROTO_ERROR_H

#include "proto/xml.h"

/*
 * The defined condition of stanza's <error/> child ("item-not-found",
 * ...), or "undefined-condition" when it has none or no <error/> at
 * all. *text receives the error's <text/> (caller frees) or NULL. The
 * returned name lives as long as stanza.
 */
const char *stanza_error(const struct xml *stanza, char **text);

#endif
