/*
 * SASL client over GNU SASL 2.2.0. The properties a mechanism needs
 * (authcid, password, channel binding) are set on the session up front,
 * so the library context needs no callback: anything it asks for beyond
 * them is answered "no callback". That matters for two known behaviours
 * of GNU SASL (see LIBRARY-FACTS.md): a -PLUS mechanism asks for
 * tls-exporter before tls-unique, so only the binding we mean to use may
 * be present; and a non-PLUS SCRAM mechanism fails outright when any
 * binding property is present, so those never get one.
 */
#include <stdlib.h>
#include <string.h>

#include <gsasl.h>

#include "proto/alloc.h"
#include "proto/sasl.h"
#include "proto/stream.h"

struct sasl {
	Gsasl_session *session;
	const char *mech;
	const char *cb_type;
	bool scram;		/* the server must prove itself */
	bool done;		/* GNU SASL reported the exchange complete */
	bool failed;
};

struct mech {
	const char *name;
	bool plus;		/* needs a channel binding */
	bool tls;		/* only over TLS */
	bool scram;
};

/* In order of preference. */
static const struct mech mechs[] = {
	{ "SCRAM-SHA-256-PLUS", true, true, true },
	{ "SCRAM-SHA-1-PLUS", true, true, true },
	{ "SCRAM-SHA-256", false, false, true },
	{ "SCRAM-SHA-1", false, false, true },
	{ "PLAIN", false, true, false },
};

static Gsasl *ctx;

static bool init_ctx(void)
{
	if (ctx == NULL && gsasl_init(&ctx) != GSASL_OK) {
		ctx = NULL;
		return false;
	}
	return true;
}

static bool has_string(const char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++) {
		if (list[i] != NULL && strcmp(list[i], s) == 0) {
			return true;
		}
	}
	return false;
}

static const char *choose_binding(const struct sasl_offer *o,
	const struct stream_tls_info *tls)
{
	if (tls == NULL) {
		return NULL;
	}
	if (tls->tls_exporter != NULL && tls->tls_exporter_len > 0
			&& o->cb_listed
			&& has_string(o->cb_types, o->ncb_types, "tls-exporter")) {
		return "tls-exporter";
	}
	/* RFC 9266: tls-unique is undefined under TLS 1.3. */
	if (tls->tls_unique != NULL && tls->tls_unique_len > 0
			&& tls->version <= 12
			&& (!o->cb_listed
			|| has_string(o->cb_types, o->ncb_types, "tls-unique"))) {
		return "tls-unique";
	}
	return NULL;
}

static const struct mech *choose(const struct sasl_offer *o,
	const struct stream_tls_info *tls, const char **cb_type)
{
	const char *binding = choose_binding(o, tls);
	*cb_type = NULL;
	for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++) {
		const struct mech *m = &mechs[i];
		if ((m->plus && binding == NULL) || (m->tls && tls == NULL) ||
				(!m->scram && o->refuse_plain)) {
			continue;
		}
		if (!has_string(o->mechs, o->nmechs, m->name)) {
			continue;
		}
		if (ctx != NULL && !gsasl_client_support_p(ctx, m->name)) {
			continue;
		}
		*cb_type = m->plus ? binding : NULL;
		return m;
	}
	return NULL;
}

/* The mechanism sasl_new() would choose, for tests and logs. */
const char *sasl_choose(const struct sasl_offer *offer,
	const struct stream_tls_info *tls, const char **cb_type)
{
	init_ctx();
	const struct mech *m = choose(offer, tls, cb_type);
	return m != NULL ? m->name : NULL;
}

static bool set_binding(struct sasl *s, const struct stream_tls_info *tls)
{
	const unsigned char *data = tls->tls_unique;
	size_t len = tls->tls_unique_len;
	Gsasl_property prop = GSASL_CB_TLS_UNIQUE;
	if (strcmp(s->cb_type, "tls-exporter") == 0) {
		data = tls->tls_exporter;
		len = tls->tls_exporter_len;
		prop = GSASL_CB_TLS_EXPORTER;
	}
	char *b64 = NULL;
	size_t b64len;
	if (gsasl_base64_to((const char *)data, len, &b64, &b64len) != GSASL_OK) {
		return false;
	}
	int rc = gsasl_property_set(s->session, prop, b64);
	gsasl_free(b64);
	return rc == GSASL_OK;
}

/* A client exchange with the best offered mechanism, or NULL. */
struct sasl *sasl_new(const struct sasl_offer *offer,
	const struct stream_tls_info *tls, const char *authcid,
	const char *password, const char **err)
{
	if (!init_ctx()) {
		*err = "GNU SASL initialisation failed";
		return NULL;
	}
	const char *cb_type;
	const struct mech *m = choose(offer, tls, &cb_type);
	if (m == NULL) {
		if (offer->refuse_plain && has_string(offer->mechs, offer->nmechs, "PLAIN")) {
			*err = "the server offers only PLAIN, but this account has "
				"authenticated with SCRAM before: refusing the downgrade";
		} else {
			*err = tls != NULL ? "no supported SASL mechanism offered"
				: "no SASL mechanism usable without TLS offered";
		}
		return NULL;
	}
	struct sasl *s = xcalloc(1, sizeof(*s));
	s->mech = m->name;
	s->cb_type = cb_type;
	s->scram = m->scram;
	if (gsasl_client_start(ctx, m->name, &s->session) != GSASL_OK) {
		*err = "GNU SASL cannot start the mechanism";
		goto err_free;
	}
	if (gsasl_property_set(s->session, GSASL_AUTHID, authcid) != GSASL_OK
			|| gsasl_property_set(s->session, GSASL_PASSWORD,
			password) != GSASL_OK) {
		*err = "GNU SASL rejected the credentials";
		goto err_free;
	}
	if (cb_type != NULL && !set_binding(s, tls)) {
		*err = "cannot encode the channel binding";
		goto err_free;
	}
	return s;

err_free:
	sasl_free(s);
	return NULL;
}

/* GNU SASL copies properties and frees them without wiping: overwrite
 * the secrets it holds before it lets go of them. */
static void wipe_property(Gsasl_session *session, Gsasl_property prop)
{
	char *p = (char *)gsasl_property_fast(session, prop);
	if (p != NULL) {
		xwipe(p, strlen(p));
	}
}

/* Wipes the secrets GNU SASL holds and frees the exchange. */
void sasl_free(struct sasl *s)
{
	if (s == NULL) {
		return;
	}
	if (s->session != NULL) {
		wipe_property(s->session, GSASL_PASSWORD);
		wipe_property(s->session, GSASL_SCRAM_SALTED_PASSWORD);
		wipe_property(s->session, GSASL_SCRAM_SERVERKEY);
		wipe_property(s->session, GSASL_SCRAM_STOREDKEY);
		gsasl_finish(s->session);
	}
	free(s);
}

/* The chosen mechanism name. */
const char *sasl_mechanism(const struct sasl *s)
{
	return s->mech;
}

/* The binding type of a -PLUS mechanism, or NULL. */
const char *sasl_cb_type(const struct sasl *s)
{
	return s->cb_type;
}

/* A copy of the base64 text without whitespace; "=" means empty. */
static char *clean_b64(const char *in)
{
	size_t n = in != NULL ? strlen(in) : 0;
	char *out = xmalloc(n + 1);
	size_t len = 0;
	for (size_t i = 0; i < n; i++) {
		if (strchr(" \t\r\n", in[i]) == NULL) {
			out[len++] = in[i];
		}
	}
	out[len] = '\0';
	if (strcmp(out, "=") == 0) {
		out[0] = '\0';
	}
	return out;
}

static enum sasl_status step(struct sasl *s, const char *in, char **out,
	const char **err)
{
	*out = NULL;
	if (s->failed) {
		*err = "SASL exchange already failed";
		return SASL_ERROR;
	}
	if (s->done) {
		s->failed = true;
		*err = "server sent data after the exchange completed";
		return SASL_ERROR;
	}
	char *clean = clean_b64(in);
	char *b64 = NULL;
	int rc = gsasl_step64(s->session, clean, &b64);
	free(clean);
	if (rc != GSASL_OK && rc != GSASL_NEEDS_MORE) {
		gsasl_free(b64);
		s->failed = true;
		*err = rc == GSASL_AUTHENTICATION_ERROR
			? "server authentication failed (bad server signature)"
			: gsasl_strerror(rc);
		return SASL_ERROR;
	}
	*out = xstrdup(b64 != NULL ? b64 : "");
	gsasl_free(b64);
	s->done = rc == GSASL_OK;
	return s->done ? SASL_DONE : SASL_CONTINUE;
}

/* The initial response; "=" when empty (RFC 6120 6.4.2). */
enum sasl_status sasl_start(struct sasl *s, char **out, const char **err)
{
	enum sasl_status st = step(s, "", out, err);
	if (st != SASL_ERROR && (*out)[0] == '\0') {
		free(*out);
		*out = xstrdup("=");
	}
	return st;
}

/* The response to a challenge. */
enum sasl_status sasl_step(struct sasl *s, const char *in, char **out,
	const char **err)
{
	return step(s, in, out, err);
}

/* Checks <success/>: complete, and for SCRAM the server proven. */
bool sasl_success(struct sasl *s, const char *in, const char **err)
{
	if (s->failed) {
		*err = "SASL exchange already failed";
		return false;
	}
	char *clean = clean_b64(in);
	bool has_data = clean[0] != '\0';
	free(clean);
	if (has_data) {
		char *out = NULL;
		enum sasl_status st = step(s, in, &out, err);
		bool extra = out != NULL && out[0] != '\0';
		free(out);
		if (st == SASL_ERROR) {
			return false;
		}
		if (st != SASL_DONE || extra) {
			s->failed = true;
			*err = "server claimed success before the exchange completed";
			return false;
		}
		return true;
	}
	if (!s->done) {
		s->failed = true;
		*err = s->scram ? "server did not prove that it knows the password"
			: "server claimed success before the exchange completed";
		return false;
	}
	return true;
}
