/*
 * JIDs (RFC 7622): parsing with PRECIS preparation, comparison, and
 * conversion back to strings. The domainpart goes through IDNA2008
 * (libidn2) and is lower-cased; the localpart is prepared with the
 * UsernameCaseMapped profile, the resourcepart with OpaqueString
 * (libunistring for normalization, case mapping and categories).
 */
#ifndef XMPPD_PROTO_JID_H
#define XMPPD_PROTO_JID_H

#include <stdbool.h>
#include <stddef.h>

struct jid {
	char *local;		/* NULL when absent */
	char *domain;		/* never NULL after a successful parse */
	char *resource;		/* NULL when absent */
};

/*
 * Parses and prepares s into out. On failure returns false, leaves out
 * empty and, if err is not NULL, points *err at a static message such as
 * "empty localpart". Each part is at most 1023 bytes after preparation.
 */
bool jid_parse(struct jid *out, const char *s, const char **err);
/* Frees the parts; out may be parsed into again. */
void jid_finish(struct jid *j);
/* A copy of src into dst. */
void jid_copy(struct jid *dst, const struct jid *src);
/* "local@domain/resource" (parts present only); caller frees. */
char *jid_to_string(const struct jid *j);
/* "local@domain"; caller frees. */
char *jid_bare_string(const struct jid *j);
/* Full and bare equality of prepared JIDs. */
bool jid_equal(const struct jid *a, const struct jid *b);
bool jid_bare_equal(const struct jid *a, const struct jid *b);
/* Parses s and returns its canonical string (bare only if bare is true),
 * or NULL with *err set. Caller frees. */
char *jid_prep(const char *s, bool bare, const char **err);
/* jid_prep(s, true, NULL) without an allocation when the result fits in
 * out (cap bytes) and s is plain ASCII: returns out, or a string the
 * caller frees through *heap (set to NULL otherwise), or NULL when s is
 * NULL or refused. */
const char *jid_prep_bare_into(const char *s, char *out, size_t cap,
	char **heap);

#endif
