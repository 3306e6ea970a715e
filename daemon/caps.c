/*
 * XEP-0115 verification strings. Each part of a disco#info result is
 * collected into an array of strings, sorted by octets (i;octet) and
 * appended with a '<' after each item. Extended info forms (XEP-0128)
 * are sorted by their FORM_TYPE value; within a form the fields are
 * sorted by var and each field's values among themselves.
 */
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/caps.h"
#include "daemon/disco.h"
#include "proto/alloc.h"
#include "proto/buf.h"
#include "proto/ns.h"

#define SHA1_LEN 20

/* A growable array of strings this file owns. */
struct strs {
	char **v;
	size_t n;
	size_t cap;
};

static void strs_add(struct strs *s, char *str)
{
	s->v = xgrow(s->v, &s->cap, s->n + 1, sizeof(*s->v));
	s->v[s->n++] = str;
}

static void strs_finish(struct strs *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i]);
	}
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts s; false if two items are equal. */
static bool strs_sort_unique(struct strs *s)
{
	if (s->n > 1) {
		qsort(s->v, s->n, sizeof(*s->v), cmp_str);
	}
	for (size_t i = 1; i < s->n; i++) {
		if (strcmp(s->v[i - 1], s->v[i]) == 0) {
			return false;
		}
	}
	return true;
}

static void strs_append(const struct strs *s, struct buf *out)
{
	for (size_t i = 0; i < s->n; i++) {
		buf_puts(out, s->v[i]);
		buf_putc(out, '<');
	}
}

static const char *attr_or_empty(const struct xml *x, const char *name)
{
	const char *v = xml_attr(x, name);
	return v != NULL ? v : "";
}

/* An element without ns of its own is in its parent's (xml.h). */
static bool is_elem(const struct xml *x, const char *name, const char *ns)
{
	const struct xml *in = x;
	while (in->ns == NULL && in->parent != NULL) {
		in = in->parent;
	}
	return in->ns != NULL && strcmp(in->ns, ns) == 0 && strcmp(x->name, name) == 0;
}

/* Identities and features of the query: false if ill-formed. */
static bool add_plain(const struct xml *query, struct buf *out)
{
	struct strs ids = { 0 };
	struct strs feats = { 0 };
	for (const struct xml *c = xml_first_element(query); c != NULL;
			c = xml_next_element(c)) {
		if (is_elem(c, "identity", NS_DISCO_INFO)) {
			strs_add(&ids, xasprintf("%s/%s/%s/%s", attr_or_empty(c, "category"),
				attr_or_empty(c, "type"), attr_or_empty(c, "xml:lang"),
				attr_or_empty(c, "name")));
		} else if (is_elem(c, "feature", NS_DISCO_INFO)) {
			strs_add(&feats, xstrdup(attr_or_empty(c, "var")));
		}
	}
	bool ok = strs_sort_unique(&ids) && strs_sort_unique(&feats);
	if (ok) {
		strs_append(&ids, out);
		strs_append(&feats, out);
	}
	strs_finish(&ids);
	strs_finish(&feats);
	return ok;
}

/* The field's values, sorted (repeats are kept: only FORM_TYPE's matter). */
static void field_values(const struct xml *field, struct strs *vals)
{
	for (const struct xml *v = xml_first_element(field); v != NULL;
			v = xml_next_element(v)) {
		if (is_elem(v, "value", NS_DATA_FORMS)) {
			char *t = xml_text(v);
			strs_add(vals, t != NULL ? t : xstrdup(""));
		}
	}
	if (vals->n > 1) {
		qsort(vals->v, vals->n, sizeof(*vals->v), cmp_str);
	}
}

/*
 * A form's FORM_TYPE: its one value (returned, caller frees), NULL if the
 * form has no hidden FORM_TYPE (then it is ignored). *bad is set if the
 * FORM_TYPE has differing values (ill-formed).
 */
static char *form_type(const struct xml *form, bool *bad)
{
	for (const struct xml *f = xml_first_element(form); f != NULL;
			f = xml_next_element(f)) {
		if (!is_elem(f, "field", NS_DATA_FORMS) ||
				strcmp(attr_or_empty(f, "var"), "FORM_TYPE") != 0) {
			continue;
		}
		if (strcmp(attr_or_empty(f, "type"), "hidden") != 0) {
			return NULL;
		}
		struct strs vals = { 0 };
		field_values(f, &vals);
		char *type = NULL;
		if (vals.n > 0 && strcmp(vals.v[0], vals.v[vals.n - 1]) == 0) {
			type = xstrdup(vals.v[0]);
		} else {
			*bad = vals.n > 0;
		}
		strs_finish(&vals);
		return type;
	}
	return NULL;
}

/* A part of S sorted by key: a field by its var, a form by FORM_TYPE
 * (sorting the text itself would misplace "os-x<" before "os<"). */
struct keyed {
	char *key;
	char *text;
};

struct keyeds {
	struct keyed *v;
	size_t n;
	size_t cap;
};

static void keyeds_add(struct keyeds *k, char *key, char *text)
{
	k->v = xgrow(k->v, &k->cap, k->n + 1, sizeof(*k->v));
	k->v[k->n++] = (struct keyed){ .key = key, .text = text };
}

static int cmp_keyed(const void *a, const void *b)
{
	return strcmp(((const struct keyed *)a)->key, ((const struct keyed *)b)->key);
}

/* Sorts by key; false if two keys are equal. */
static bool keyeds_sort_unique(struct keyeds *k)
{
	if (k->n > 1) {
		qsort(k->v, k->n, sizeof(*k->v), cmp_keyed);
	}
	for (size_t i = 1; i < k->n; i++) {
		if (strcmp(k->v[i - 1].key, k->v[i].key) == 0) {
			return false;
		}
	}
	return true;
}

static void keyeds_finish(struct keyeds *k)
{
	for (size_t i = 0; i < k->n; i++) {
		free(k->v[i].key);
		free(k->v[i].text);
	}
	free(k->v);
	memset(k, 0, sizeof(*k));
}

/* One field: "var<" then each sorted value followed by '<'. */
static char *field_string(const struct xml *field)
{
	struct strs vals = { 0 };
	field_values(field, &vals);
	struct buf b;
	buf_init(&b);
	buf_puts(&b, attr_or_empty(field, "var"));
	buf_putc(&b, '<');
	strs_append(&vals, &b);
	strs_finish(&vals);
	return buf_steal(&b, NULL);
}

/* A form's part of S: "FORM_TYPE<" then its fields sorted by var. */
static char *form_string(const struct xml *form, const char *type)
{
	struct keyeds fields = { 0 };
	for (const struct xml *f = xml_first_element(form); f != NULL;
			f = xml_next_element(f)) {
		if (is_elem(f, "field", NS_DATA_FORMS) &&
				strcmp(attr_or_empty(f, "var"), "FORM_TYPE") != 0) {
			keyeds_add(&fields, xstrdup(attr_or_empty(f, "var")),
				field_string(f));
		}
	}
	if (fields.n > 1) {
		qsort(fields.v, fields.n, sizeof(*fields.v), cmp_keyed);
	}
	struct buf b;
	buf_init(&b);
	buf_puts(&b, type);
	buf_putc(&b, '<');
	for (size_t i = 0; i < fields.n; i++) {
		buf_puts(&b, fields.v[i].text);
	}
	keyeds_finish(&fields);
	return buf_steal(&b, NULL);
}

/* The forms' part of S: false if ill-formed (a FORM_TYPE repeated or
 * with differing values). */
static bool add_forms(const struct xml *query, struct buf *out)
{
	struct keyeds forms = { 0 };
	bool ok = true;
	for (const struct xml *c = xml_first_element(query); c != NULL && ok;
			c = xml_next_element(c)) {
		if (!is_elem(c, "x", NS_DATA_FORMS)) {
			continue;
		}
		bool bad = false;
		char *type = form_type(c, &bad);
		ok = !bad;
		if (type != NULL) {
			keyeds_add(&forms, type, form_string(c, type));
		}
	}
	ok = ok && keyeds_sort_unique(&forms);
	for (size_t i = 0; ok && i < forms.n; i++) {
		buf_puts(out, forms.v[i].text);
	}
	keyeds_finish(&forms);
	return ok;
}

char *caps_string(const struct xml *query)
{
	struct buf b;
	buf_init(&b);
	struct buf forms;
	buf_init(&forms);
	bool ok = add_plain(query, &b) && add_forms(query, &forms);
	if (!ok) {
		buf_finish(&b);
		buf_finish(&forms);
		return NULL;
	}
	buf_append(&b, forms.data, forms.len);
	buf_finish(&forms);
	return buf_steal(&b, NULL);
}

static char *base64(const unsigned char *in, size_t len)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = xmalloc((len + 2) / 3 * 4 + 1);
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16;
		if (i + 1 < len) {
			v |= (unsigned)in[i + 1] << 8;
		}
		if (i + 2 < len) {
			v |= in[i + 2];
		}
		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? tab[v & 63] : '=';
	}
	out[o] = '\0';
	return out;
}

char *caps_ver(const struct xml *query)
{
	char *s = caps_string(query);
	if (s == NULL) {
		return NULL;
	}
	unsigned char digest[SHA1_LEN];
	int rc = gnutls_hash_fast(GNUTLS_DIG_SHA1, s, strlen(s), digest);
	free(s);
	if (rc < 0) {
		return NULL;
	}
	return base64(digest, sizeof(digest));
}

struct xml *caps_element(struct xmppd *x)
{
	struct xml *info = disco_own_info(x, NULL);
	char *ver = caps_ver(info);
	xml_free(info);
	struct xml *c = xml_new("c", NS_CAPS);
	xml_set_attr(c, "hash", "sha-1");
	xml_set_attr(c, "node", CAPS_NODE);
	xml_set_attr(c, "ver", ver != NULL ? ver : "");
	free(ver);
	return c;
}
