/*
 * XEP-0115 entity capabilities: the verification string of a disco#info
 * result (identities, features and XEP-0128 extended info forms, 5.1),
 * its SHA-1 hash, and the <c/> element every available presence of ours
 * carries.
 */
#ifndef XMPPD_DAEMON_CAPS_H
#define XMPPD_DAEMON_CAPS_H

#include "proto/xml.h"

struct xmppd;

/* Our caps node: disco#info queries for "CAPS_NODE#ver" are answered. */
#define CAPS_NODE "https://xmppd.invalid"

/*
 * The verification string S of a disco#info <query/> (5.1 steps 1-7):
 * sorted identities "category/type/lang/name<", sorted features, then
 * each form (sorted by FORM_TYPE) with its sorted fields and values.
 * NULL if the result is ill-formed (5.4 3.3-3.5: a repeated identity,
 * feature or FORM_TYPE). Forms without a hidden FORM_TYPE are left out.
 * The caller frees the string.
 */
char *caps_string(const struct xml *query);
/* base64(SHA-1(caps_string(query))), or NULL if ill-formed; caller frees. */
char *caps_ver(const struct xml *query);
/* <c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node=… ver=…/>
 * for our own disco#info (x's, see disco_own_info; NULL: the built-in
 * features only); the caller owns it (xml_append or xml_free). */
struct xml *caps_element(struct xmppd *x);

#endif
