/*
 * SASL client tests. Each exchange runs our client against a GNU SASL
 * server session in the same process, so SCRAM and channel binding are
 * checked end to end (nonces, proofs, server signature), not against
 * canned strings.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <gsasl.h>

#include "proto/sasl.h"
#include "proto/stream.h"

static const unsigned char fake_unique[12] = "0123456789ab";
static const unsigned char fake_exporter[32] = "exporter-exporter-exporter-expor";

static const struct stream_tls_info tls12 = {
	.version = 12,
	.tls_unique = fake_unique,
	.tls_unique_len = sizeof(fake_unique),
	.tls_exporter = fake_exporter,
	.tls_exporter_len = sizeof(fake_exporter),
};

static const struct stream_tls_info tls13 = {
	.version = 13,
	.tls_exporter = fake_exporter,
	.tls_exporter_len = sizeof(fake_exporter),
};

/* A transport that hands out tls-unique under TLS 1.3 anyway. */
static const struct stream_tls_info tls13_unique = {
	.version = 13,
	.tls_unique = fake_unique,
	.tls_unique_len = sizeof(fake_unique),
};

/* The server side: what it knows and what it sees. */
struct server {
	const char *password;
	const unsigned char *cb;	/* tls-unique it expects, or NULL */
	size_t cb_len;
	bool tamper_signature;		/* corrupt the server-final message */
	bool final_as_challenge;	/* send v=... in a <challenge/> */
	bool success_without_data;	/* claim success, skip server-final */
};

static int server_callback(Gsasl *ctx, Gsasl_session *sctx, Gsasl_property prop)
{
	struct server *srv = gsasl_session_hook_get(sctx);
	char *b64;
	size_t len;
	switch (prop) {
	case GSASL_PASSWORD:
		return gsasl_property_set(sctx, prop, srv->password);
	case GSASL_CB_TLS_UNIQUE:
		if (srv->cb == NULL) {
			return GSASL_NO_CALLBACK;
		}
		cr_assert(eq(int, gsasl_base64_to((const char *)srv->cb,
			srv->cb_len, &b64, &len), GSASL_OK));
		gsasl_property_set(sctx, prop, b64);
		gsasl_free(b64);
		return GSASL_OK;
	default:
		return GSASL_NO_CALLBACK;
	}
}

/* Flips one character of the signature in a "v=..." server-final. */
static char *tamper(const char *b64)
{
	char *raw;
	size_t len;
	cr_assert(eq(int, gsasl_base64_from(b64, strlen(b64), &raw, &len),
		GSASL_OK));
	cr_assert(len > 4 && raw[0] == 'v' && raw[1] == '=');
	raw[3] = raw[3] == 'A' ? 'B' : 'A';
	char *out;
	cr_assert(eq(int, gsasl_base64_to(raw, len, &out, &len), GSASL_OK));
	gsasl_free(raw);
	return out;
}

static char *decode(const char *b64)
{
	char *raw;
	size_t len;
	if (strcmp(b64, "=") == 0) {
		b64 = "";
	}
	cr_assert(eq(int, gsasl_base64_from(b64, strlen(b64), &raw, &len),
		GSASL_OK));
	char *s = malloc(len + 1);
	memcpy(s, raw, len);
	s[len] = '\0';
	gsasl_free(raw);
	return s;
}

/* Delivers the server's final data; returns the client's verdict. */
static bool finish(struct sasl *c, struct server *srv, char *data)
{
	const char *err = NULL;
	if (srv->tamper_signature) {
		char *bad = tamper(data);
		gsasl_free(data);
		data = bad;
	}
	if (srv->success_without_data) {
		data[0] = '\0';
	}
	bool ok;
	if (srv->final_as_challenge && data[0] != '\0') {
		char *resp = NULL;
		enum sasl_status st = sasl_step(c, data, &resp, &err);
		ok = st == SASL_DONE && strcmp(resp, "") == 0
			&& sasl_success(c, NULL, &err);
		free(resp);
	} else {
		ok = sasl_success(c, data, &err);
	}
	gsasl_free(data);
	cr_assert(ok || err != NULL);
	return ok;
}

/*
 * Runs a whole exchange: client mech against a GNU SASL server. Returns
 * true when both sides agree that authentication succeeded. *first gets
 * the decoded initial response if first is not NULL.
 */
static bool exchange(struct sasl *c, struct server *srv, char **first)
{
	Gsasl *sctx;
	Gsasl_session *ss;
	cr_assert(eq(int, gsasl_init(&sctx), GSASL_OK));
	gsasl_callback_set(sctx, server_callback);
	cr_assert(eq(int, gsasl_server_start(sctx, sasl_mechanism(c), &ss),
		GSASL_OK));
	gsasl_session_hook_set(ss, srv);

	const char *err = NULL;
	char *out = NULL;
	enum sasl_status st = sasl_start(c, &out, &err);
	cr_assert(st != SASL_ERROR, "start: %s", err);
	if (first != NULL) {
		*first = decode(out);
	}
	bool ok = false;
	for (int round = 0; round < 10; round++) {
		char *in = NULL;
		int rc = gsasl_step64(ss, strcmp(out, "=") == 0 ? "" : out, &in);
		free(out);
		out = NULL;
		if (rc == GSASL_OK) {
			ok = finish(c, srv, in);
			break;
		}
		if (rc != GSASL_NEEDS_MORE) {
			gsasl_free(in);
			break;
		}
		st = sasl_step(c, in, &out, &err);
		gsasl_free(in);
		if (st == SASL_ERROR) {
			break;
		}
	}
	free(out);
	gsasl_finish(ss);
	gsasl_done(sctx);
	return ok;
}

static struct sasl *client(const char *const *mechs, size_t n,
	const struct stream_tls_info *tls, const char *password)
{
	struct sasl_offer offer = { .mechs = mechs, .nmechs = n };
	const char *err = NULL;
	struct sasl *c = sasl_new(&offer, tls, "juliet", password, &err);
	cr_assert(c != NULL, "sasl_new: %s", err);
	return c;
}

static void run_ok(const char *mech, const struct stream_tls_info *tls,
	const char *gs2)
{
	const char *mechs[] = { mech };
	struct sasl *c = client(mechs, 1, tls, "s3cr3t");
	cr_assert(eq(str, (char *)sasl_mechanism(c), (char *)mech));
	struct server srv = { .password = "s3cr3t",
		.cb = fake_unique, .cb_len = sizeof(fake_unique) };
	char *first = NULL;
	cr_assert(exchange(c, &srv, &first), "%s exchange failed", mech);
	cr_assert(strncmp(first, gs2, strlen(gs2)) == 0, "first: %s", first);
	free(first);
	sasl_free(c);
}

Test(sasl, scram_sha1)
{
	run_ok("SCRAM-SHA-1", NULL, "n,,n=juliet,r=");
}

Test(sasl, scram_sha256)
{
	run_ok("SCRAM-SHA-256", &tls13, "n,,n=juliet,r=");
}

Test(sasl, scram_sha1_plus_tls_unique)
{
	run_ok("SCRAM-SHA-1-PLUS", &tls12, "p=tls-unique,,n=juliet,r=");
}

Test(sasl, scram_sha256_plus_tls_unique)
{
	run_ok("SCRAM-SHA-256-PLUS", &tls12, "p=tls-unique,,n=juliet,r=");
}

Test(sasl, plain_over_tls)
{
	run_ok("PLAIN", &tls13, "\0juliet");
	const char *mechs[] = { "PLAIN" };
	struct sasl *c = client(mechs, 1, &tls13, "s3cr3t");
	const char *err;
	char *out;
	cr_assert(eq(int, sasl_start(c, &out, &err), SASL_DONE));
	cr_assert(eq(str, out, "AGp1bGlldABzM2NyM3Q="));
	free(out);
	cr_assert(sasl_success(c, NULL, &err));
	sasl_free(c);
}

Test(sasl, plain_refused_after_scram)
{
	const char *only_plain[] = { "PLAIN" };
	struct sasl_offer offer = { .mechs = only_plain, .nmechs = 1,
		.refuse_plain = true };
	const char *err = NULL;
	cr_assert(zero(ptr, sasl_new(&offer, &tls13, "juliet", "s3cr3t", &err)));
	cr_assert(not(zero(ptr, strstr(err, "refusing the downgrade"))), "%s", err);

	const char *both[] = { "PLAIN", "SCRAM-SHA-1" };
	offer.mechs = both;
	offer.nmechs = 2;
	const char *cb = NULL;
	cr_assert(eq(str, (char *)sasl_choose(&offer, &tls13, &cb), "SCRAM-SHA-1"));
	offer.refuse_plain = false;
	offer.mechs = only_plain;
	offer.nmechs = 1;
	cr_assert(eq(str, (char *)sasl_choose(&offer, &tls13, &cb), "PLAIN"));
}

Test(sasl, wrong_password_fails)
{
	const char *all[] = { "SCRAM-SHA-1", "SCRAM-SHA-256",
		"SCRAM-SHA-256-PLUS", "PLAIN" };
	for (size_t i = 0; i < 4; i++) {
		struct sasl *c = client(&all[i], 1, &tls12, "wrong");
		struct server srv = { .password = "s3cr3t",
			.cb = fake_unique, .cb_len = sizeof(fake_unique) };
		bool ok = exchange(c, &srv, NULL);
		cr_expect(ok == false, "%s accepted", all[i]);
		sasl_free(c);
	}
}

Test(sasl, wrong_channel_binding_fails)
{
	static const unsigned char other[12] = "XXXXXXXXXXXX";
	const char *mechs[] = { "SCRAM-SHA-256-PLUS" };
	struct sasl *c = client(mechs, 1, &tls12, "s3cr3t");
	struct server srv = { .password = "s3cr3t", .cb = other,
		.cb_len = sizeof(other) };
	bool ok = exchange(c, &srv, NULL);
	cr_assert(ok == false);
	sasl_free(c);
}

Test(sasl, bad_server_signature_fails)
{
	const char *all[] = { "SCRAM-SHA-1", "SCRAM-SHA-256",
		"SCRAM-SHA-1-PLUS" };
	for (size_t i = 0; i < 3; i++) {
		for (int chal = 0; chal < 2; chal++) {
			struct sasl *c = client(&all[i], 1, &tls12, "s3cr3t");
			struct server srv = { .password = "s3cr3t",
				.cb = fake_unique, .cb_len = sizeof(fake_unique),
				.tamper_signature = true,
				.final_as_challenge = chal };
			bool ok = exchange(c, &srv, NULL);
			cr_expect(ok == false, "%s/%d", all[i], chal);
			sasl_free(c);
		}
	}
}

Test(sasl, server_final_in_challenge)
{
	const char *mechs[] = { "SCRAM-SHA-256" };
	struct sasl *c = client(mechs, 1, NULL, "s3cr3t");
	struct server srv = { .password = "s3cr3t", .final_as_challenge = true };
	cr_assert(exchange(c, &srv, NULL));
	sasl_free(c);
}

Test(sasl, scram_success_without_proof_fails)
{
	const char *mechs[] = { "SCRAM-SHA-1" };
	struct sasl *c = client(mechs, 1, NULL, "s3cr3t");
	struct server srv = { .password = "s3cr3t", .success_without_data = true };
	bool ok = exchange(c, &srv, NULL);
	cr_assert(ok == false);
	sasl_free(c);
}

Test(sasl, early_success_fails)
{
	const char *mechs[] = { "SCRAM-SHA-1" };
	struct sasl *c = client(mechs, 1, NULL, "s3cr3t");
	const char *err = NULL;
	char *out;
	cr_assert(eq(int, sasl_start(c, &out, &err), SASL_CONTINUE));
	free(out);
	bool ok = sasl_success(c, NULL, &err);
	cr_assert(ok == false);
	cr_assert(eq(str, (char *)err,
		"server did not prove that it knows the password"));
	sasl_free(c);
}

Test(sasl, garbage_challenge_fails)
{
	const char *mechs[] = { "SCRAM-SHA-1" };
	struct sasl *c = client(mechs, 1, NULL, "s3cr3t");
	const char *err = NULL;
	char *out;
	cr_assert(eq(int, sasl_start(c, &out, &err), SASL_CONTINUE));
	free(out);
	cr_assert(eq(int, sasl_step(c, "!!notbase64", &out, &err), SASL_ERROR));
	cr_assert(eq(int, sasl_step(c, "cj1hYmM=", &out, &err), SASL_ERROR));
	sasl_free(c);
}

/* Mechanism choice table. */
struct choice {
	const char *mechs;		/* space-separated offer */
	const char *cb_types;		/* NULL: no XEP-0440 element */
	int tls;			/* 0 none, 12, 13; 131 1.3 with tls-unique */
	const char *want;		/* NULL: nothing usable */
	const char *want_cb;
};

static const struct choice choices[] = {
	{ "SCRAM-SHA-1 SCRAM-SHA-1-PLUS SCRAM-SHA-256 SCRAM-SHA-256-PLUS PLAIN",
		NULL, 12, "SCRAM-SHA-256-PLUS", "tls-unique" },
	{ "SCRAM-SHA-1 SCRAM-SHA-1-PLUS SCRAM-SHA-256 SCRAM-SHA-256-PLUS PLAIN",
		NULL, 13, "SCRAM-SHA-256", NULL },
	{ "SCRAM-SHA-1 SCRAM-SHA-1-PLUS SCRAM-SHA-256 SCRAM-SHA-256-PLUS PLAIN",
		NULL, 0, "SCRAM-SHA-256", NULL },
	{ "SCRAM-SHA-512-PLUS SCRAM-SHA-512 SCRAM-SHA-1-PLUS SCRAM-SHA-1 PLAIN",
		NULL, 12, "SCRAM-SHA-1-PLUS", "tls-unique" },
	{ "SCRAM-SHA-512-PLUS SCRAM-SHA-512 SCRAM-SHA-1-PLUS SCRAM-SHA-1 PLAIN",
		NULL, 13, "SCRAM-SHA-1", NULL },
	{ "SCRAM-SHA-512 PLAIN", NULL, 13, "PLAIN", NULL },
	{ "SCRAM-SHA-512 PLAIN", NULL, 0, NULL, NULL },
	{ "PLAIN", NULL, 0, NULL, NULL },
	{ "PLAIN", NULL, 12, "PLAIN", NULL },
	{ "DIGEST-MD5 X-OAUTH2", NULL, 12, NULL, NULL },
	{ "", NULL, 12, NULL, NULL },
	/* XEP-0440 lists tls-exporter: under 1.3 it can be produced. */
	{ "SCRAM-SHA-256 SCRAM-SHA-256-PLUS", "tls-exporter", 13,
		"SCRAM-SHA-256-PLUS", "tls-exporter" },
	{ "SCRAM-SHA-256 SCRAM-SHA-256-PLUS", "tls-exporter", 12,
		"SCRAM-SHA-256-PLUS", "tls-exporter" },
	{ "SCRAM-SHA-256 SCRAM-SHA-256-PLUS", "tls-unique tls-exporter", 12,
		"SCRAM-SHA-256-PLUS", "tls-exporter" },
	/* A list without tls-unique rules tls-unique out. */
	{ "SCRAM-SHA-256 SCRAM-SHA-256-PLUS", "tls-server-end-point", 12,
		"SCRAM-SHA-256", NULL },
	{ "SCRAM-SHA-256 SCRAM-SHA-256-PLUS", "", 12, "SCRAM-SHA-256", NULL },
	{ "SCRAM-SHA-256 SCRAM-SHA-256-PLUS", "tls-unique", 12,
		"SCRAM-SHA-256-PLUS", "tls-unique" },
	{ "SCRAM-SHA-256 SCRAM-SHA-256-PLUS", "tls-unique", 13,
		"SCRAM-SHA-256", NULL },
	/* Without an XEP-0440 list tls-exporter is never assumed. */
	{ "SCRAM-SHA-256-PLUS SCRAM-SHA-1", NULL, 13, "SCRAM-SHA-1", NULL },
	/* -PLUS only offered, no binding possible: nothing to use. */
	{ "SCRAM-SHA-256-PLUS", NULL, 13, NULL, NULL },
	{ "SCRAM-SHA-256-PLUS", NULL, 0, NULL, NULL },
	/* tls-unique is never used under TLS 1.3 (RFC 9266). */
	{ "SCRAM-SHA-256 SCRAM-SHA-256-PLUS", NULL, 131, "SCRAM-SHA-256", NULL },
	/* Names are case-sensitive. */
	{ "scram-sha-1", NULL, 12, NULL, NULL },
};

static size_t split(char *s, const char **out, size_t max)
{
	size_t n = 0;
	for (char *t = strtok(s, " "); t != NULL && n < max; t = strtok(NULL, " ")) {
		out[n++] = t;
	}
	return n;
}

Test(sasl, mechanism_choice_table)
{
	for (size_t i = 0; i < sizeof(choices) / sizeof(choices[0]); i++) {
		const struct choice *ch = &choices[i];
		char *m = strdup(ch->mechs);
		char *t = strdup(ch->cb_types != NULL ? ch->cb_types : "");
		const char *mechs[16], *types[16];
		struct sasl_offer offer = { .mechs = mechs };
		offer.nmechs = split(m, mechs, 16);
		offer.cb_listed = ch->cb_types != NULL;
		offer.cb_types = types;
		offer.ncb_types = split(t, types, 16);
		const struct stream_tls_info *tls = ch->tls == 12 ? &tls12
			: ch->tls == 13 ? &tls13
			: ch->tls == 131 ? &tls13_unique : NULL;
		const char *cb = "unset";
		const char *got = sasl_choose(&offer, tls, &cb);
		cr_expect(eq(str, (char *)(got ? got : "(none)"),
			(char *)(ch->want ? ch->want : "(none)")), "row %zu", i);
		cr_expect(eq(str, (char *)(cb ? cb : "(none)"),
			(char *)(ch->want_cb ? ch->want_cb : "(none)")), "row %zu", i);
		const char *err = NULL;
		struct sasl *c = sasl_new(&offer, tls, "juliet", "pw", &err);
		cr_expect(eq(int, c != NULL, ch->want != NULL), "row %zu", i);
		if (c == NULL) {
			cr_expect(err != NULL);
		}
		sasl_free(c);
		free(m);
		free(t);
	}
}

Test(sasl, tls_exporter_binding_end_to_end)
{
	/* GNU SASL's server takes tls-exporter too: check we send the
	 * right gs2 header and that the binding verifies. */
	const char *mechs[] = { "SCRAM-SHA-256-PLUS" };
	const char *types[] = { "tls-exporter" };
	struct sasl_offer offer = { .mechs = mechs, .nmechs = 1,
		.cb_listed = true, .cb_types = types, .ncb_types = 1 };
	const char *err = NULL;
	struct sasl *c = sasl_new(&offer, &tls13, "juliet", "s3cr3t", &err);
	cr_assert(c != NULL);
	char *out;
	cr_assert(eq(int, sasl_start(c, &out, &err), SASL_CONTINUE));
	char *first = decode(out);
	cr_assert(strncmp(first, "p=tls-exporter,,", 16) == 0, "%s", first);
	free(first);
	free(out);
	sasl_free(c);
}
