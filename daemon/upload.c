/*
 * HTTP File Upload (XEP-0363).
 *
 * Discovery: after each fresh login, once the server's features are
 * known (disco_when_ready), the server's disco#items are asked, then
 * the disco#info of each item in turn until one offers
 * urn:xmpp:http:upload:0; its max-file-size (from the x-data form, if
 * any) is kept with it. A resumption keeps what was found. Each search
 * has a generation number: a reply that belongs to an older search (the
 * connection was lost and a new one began) is dropped.
 *
 * Slots: an iq get to the service; the reply's put and get URLs and the
 * allowed put headers go back to the control socket. The HTTP transfer
 * is the local program's business.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/core.h"
#include "daemon/disco.h"
#include "daemon/log.h"
#include "daemon/subsystems.h"
#include "daemon/upload.h"
#include "proto/alloc.h"
#include "proto/error.h"
#include "proto/ns.h"

struct upload {
	char *service;		/* JID of the service found, or NULL */
	uint64_t max_size;	/* its max-file-size; 0: none announced */
	unsigned gen;		/* the current search */
	char **items;		/* the server's items still to ask */
	size_t nitems;
	size_t next;		/* the next of them to ask */
};

/* A reply of the search, tied to the search it belongs to. */
struct probe {
	struct xmppd *x;
	unsigned gen;
};

/* A slot request waiting for the service. */
struct slot_wait {
	disco_cb cb;
	void *ud;
};

/* Headers the service may ask the PUT to carry (XEP-0363 7). */
static const char *const allowed_headers[] = {
	"Authorization", "Cookie", "Expires", NULL,
};

/* ---- reading replies ---- */

/* An element without ns of its own is in its parent's (xml.h). */
static bool is_elem(const struct xml *c, const char *name, const char *ns)
{
	const struct xml *in = c;
	while (in->ns == NULL && in->parent != NULL) {
		in = in->parent;
	}
	return in->ns != NULL && strcmp(in->ns, ns) == 0 && strcmp(c->name, name) == 0;
}

static const struct xml *find_child(const struct xml *x, const char *name,
	const char *ns)
{
	for (const struct xml *c = x ? xml_first_element(x) : NULL; c != NULL;
			c = xml_next_element(c)) {
		if (is_elem(c, name, ns)) {
			return c;
		}
	}
	return NULL;
}

static bool has_upload_feature(const struct xml *query)
{
	for (const struct xml *c = query ? xml_first_element(query) : NULL;
			c != NULL; c = xml_next_element(c)) {
		const char *var = xml_attr(c, "var");
		if (is_elem(c, "feature", NS_DISCO_INFO) && var != NULL &&
				strcmp(var, NS_HTTP_UPLOAD) == 0) {
			return true;
		}
	}
	return false;
}

/* The text of field's first <value/> (caller frees), or NULL. */
static char *field_value(const struct xml *field)
{
	const struct xml *v = find_child(field, "value", NS_DATA_FORMS);
	return v != NULL ? xml_text(v) : NULL;
}

/* A data form's field by var, or NULL. */
static const struct xml *form_field(const struct xml *form, const char *var)
{
	for (const struct xml *f = xml_first_element(form); f != NULL;
			f = xml_next_element(f)) {
		const char *v = xml_attr(f, "var");
		if (is_elem(f, "field", NS_DATA_FORMS) && v != NULL && strcmp(v, var) == 0) {
			return f;
		}
	}
	return NULL;
}

static bool is_upload_form(const struct xml *form)
{
	char *type = field_value(form_field(form, "FORM_TYPE"));
	bool ok = type != NULL && strcmp(type, NS_HTTP_UPLOAD) == 0;
	free(type);
	return ok;
}

/* A decimal count of bytes; 0 if s is not one. */
static uint64_t parse_size(const char *s)
{
	if (s == NULL || s[0] < '0' || s[0] > '9') {
		return 0;
	}
	char *end;
	errno = 0;
	unsigned long long n = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0') {
		return 0;
	}
	return (uint64_t)n;
}

uint64_t upload_max_size(const struct xml *query)
{
	for (const struct xml *c = query ? xml_first_element(query) : NULL;
			c != NULL; c = xml_next_element(c)) {
		if (!is_elem(c, "x", NS_DATA_FORMS) || !is_upload_form(c)) {
			continue;
		}
		char *v = field_value(form_field(c, "max-file-size"));
		uint64_t n = parse_size(v);
		free(v);
		return n;
	}
	return 0;
}

/* An http(s) URL of sane length without spaces or control characters. */
static bool good_url(const char *url)
{
	if (url == NULL || strlen(url) > UPLOAD_MAX_URL) {
		return false;
	}
	if (strncasecmp(url, "https://", 8) != 0 && strncasecmp(url, "http://", 7) != 0) {
		return false;
	}
	for (const unsigned char *p = (const unsigned char *)url; *p != '\0'; p++) {
		if (*p <= ' ' || *p == 0x7f) {
			return false;
		}
	}
	return true;
}

/* The allowed header's canonical name, or NULL. */
static const char *allowed_header(const char *name)
{
	for (size_t i = 0; name != NULL && allowed_headers[i] != NULL; i++) {
		if (strcasecmp(name, allowed_headers[i]) == 0) {
			return allowed_headers[i];
		}
	}
	return NULL;
}

/* value without CR and LF (XEP-0363 7: clients strip newlines). */
static char *strip_newlines(const char *value)
{
	char *out = xstrdup(value);
	char *w = out;
	for (const char *r = value; *r != '\0'; r++) {
		if (*r != '\r' && *r != '\n') {
			*w++ = *r;
		}
	}
	*w = '\0';
	return out;
}

static json_t *put_headers(const struct xml *put)
{
	json_t *headers = json_object();
	for (const struct xml *h = xml_first_element(put); h != NULL;
			h = xml_next_element(h)) {
		const char *name = allowed_header(xml_attr(h, "name"));
		if (!is_elem(h, "header", NS_HTTP_UPLOAD) || name == NULL) {
			continue;
		}
		char *text = xml_text(h);
		if (text != NULL && strlen(text) <= UPLOAD_MAX_HEADER) {
			char *v = strip_newlines(text);
			json_object_set_new(headers, name, json_string(v));
			free(v);
		}
		free(text);
	}
	return headers;
}

json_t *upload_slot_json(const struct xml *iq)
{
	const struct xml *slot = find_child(iq, "slot", NS_HTTP_UPLOAD);
	const struct xml *put = find_child(slot, "put", NS_HTTP_UPLOAD);
	const struct xml *get = find_child(slot, "get", NS_HTTP_UPLOAD);
	if (put == NULL || get == NULL || !good_url(xml_attr(put, "url")) ||
			!good_url(xml_attr(get, "url"))) {
		return NULL;
	}
	json_t *o = json_object();
	json_object_set_new(o, "put", json_string(xml_attr(put, "url")));
	json_object_set_new(o, "get", json_string(xml_attr(get, "url")));
	json_object_set_new(o, "headers", put_headers(put));
	return o;
}

/* ---- discovery ---- */

static void clear_items(struct upload *u)
{
	for (size_t i = 0; i < u->nitems; i++) {
		free(u->items[i]);
	}
	free(u->items);
	u->items = NULL;
	u->nitems = 0;
	u->next = 0;
}

static struct probe *new_probe(struct xmppd *x)
{
	struct probe *p = xcalloc(1, sizeof(*p));
	p->x = x;
	p->gen = x->upload->gen;
	return p;
}

/* Is p's search still the current one? Frees p either way. */
static bool current(struct probe *p)
{
	bool ok = p->x->upload != NULL && p->gen == p->x->upload->gen;
	free(p);
	return ok;
}

static void ask_next(struct xmppd *x);

static void found(struct xmppd *x, const char *jid, const struct xml *query)
{
	struct upload *u = x->upload;
	free(u->service);
	u->service = xstrdup(jid);
	u->max_size = upload_max_size(query);
	clear_items(u);
	log_info("upload: service %s, max-file-size %llu", u->service,
		(unsigned long long)u->max_size);
}

static void info_answered(void *ud, const struct xml *reply, const char *condition,
	const char *text)
{
	struct probe *p = ud;
	struct xmppd *x = p->x;
	if (!current(p)) {
		return;
	}
	struct upload *u = x->upload;
	const char *type = reply ? xml_attr(reply, "type") : NULL;
	const struct xml *query = NULL;
	if (type != NULL && strcmp(type, "result") == 0) {
		query = find_child(reply, "query", NS_DISCO_INFO);
	}
	if (has_upload_feature(query)) {
		found(x, u->items[u->next - 1], query);
		return;
	}
	if (reply == NULL && strcmp(condition, "not-connected") == 0) {
		clear_items(u);
		return;
	}
	ask_next(x);
}

/* Asks the next item's disco#info; stops when none is left. */
static void ask_next(struct xmppd *x)
{
	struct upload *u = x->upload;
	char payload[128];
	snprintf(payload, sizeof(payload), "<query xmlns='%s'/>", NS_DISCO_INFO);
	while (u->next < u->nitems) {
		const char *jid = u->items[u->next++];
		struct probe *p = new_probe(x);
		struct xerr e = { 0 };
		if (iq_request(x, jid, "get", payload, 0, info_answered, p, &e) == 0) {
			return;
		}
		free(p);
		log_debug("upload: cannot ask %s: %s", jid, e.text);
	}
	log_info("upload: the server lists no upload service");
	clear_items(u);
}

static void items_answered(void *ud, json_t *result, const char *condition,
	const char *text)
{
	struct probe *p = ud;
	struct xmppd *x = p->x;
	if (!current(p)) {
		json_decref(result);
		return;
	}
	if (result == NULL) {
		log_info("upload: the server's disco#items failed: %s", condition);
		return;
	}
	struct upload *u = x->upload;
	clear_items(u);
	json_t *items = json_object_get(result, "items");
	size_t n = json_array_size(items);
	n = n < UPLOAD_MAX_ITEMS ? n : UPLOAD_MAX_ITEMS;
	u->items = xcalloc(n + 1, sizeof(*u->items));
	for (size_t i = 0; i < n; i++) {
		json_t *it = json_array_get(items, i);
		const char *jid = json_string_value(json_object_get(it, "jid"));
		if (jid != NULL && json_object_get(it, "node") == NULL) {
			u->items[u->nitems++] = xstrdup(jid);
		}
	}
	json_decref(result);
	ask_next(x);
}

static void disco_ready(struct xmppd *x, void *ud)
{
	struct probe *p = new_probe(x);
	struct xerr e = { 0 };
	if (disco_query(x, NULL, NULL, true, items_answered, p, &e) < 0) {
		free(p);
		log_info("upload: cannot ask the server's items: %s", e.text);
	}
}

static void upload_online(struct xmppd *x, bool resumed)
{
	struct upload *u = x->upload;
	if (resumed) {
		return;
	}
	u->gen++;
	free(u->service);
	u->service = NULL;
	u->max_size = 0;
	clear_items(u);
	disco_when_ready(x, disco_ready, NULL);
}

static void upload_init(struct xmppd *x)
{
	x->upload = xcalloc(1, sizeof(*x->upload));
}

static void upload_free(struct xmppd *x)
{
	struct upload *u = x->upload;
	if (u == NULL) {
		return;
	}
	clear_items(u);
	free(u->service);
	free(u);
	x->upload = NULL;
}

const struct subsystem upload_subsystem = {
	.name = "upload",
	.init = upload_init,
	.free = upload_free,
	.online = upload_online,
};

const char *upload_service(const struct xmppd *x)
{
	return x->upload != NULL ? x->upload->service : NULL;
}

void upload_status(const struct xmppd *x, json_t *status)
{
	const struct upload *u = x->upload;
	if (u == NULL || u->service == NULL) {
		return;
	}
	json_t *o = json_object();
	json_object_set_new(o, "service", json_string(u->service));
	if (u->max_size > 0) {
		json_object_set_new(o, "max_file_size", json_integer((json_int_t)u->max_size));
	}
	json_object_set_new(status, "upload", o);
}

/* ---- slots ---- */

static void slot_answered(void *ud, const struct xml *reply, const char *condition,
	const char *text)
{
	struct slot_wait *w = ud;
	const char *type = reply ? xml_attr(reply, "type") : NULL;
	if (reply == NULL) {
		w->cb(w->ud, NULL, condition, text);
	} else if (type != NULL && strcmp(type, "error") == 0) {
		char *etext;
		const char *cond = stanza_error(reply, &etext);
		w->cb(w->ud, NULL, cond, etext ? etext : cond);
		free(etext);
	} else {
		json_t *slot = upload_slot_json(reply);
		if (slot != NULL) {
			w->cb(w->ud, slot, NULL, NULL);
		} else {
			w->cb(w->ud, NULL, "undefined-condition",
				"the service's reply holds no usable slot");
		}
	}
	free(w);
}

int upload_slot(struct xmppd *x, const struct upload_request *r, disco_cb cb,
	void *ud, struct xerr *e)
{
	const struct upload *u = x->upload;
	if (x->state != XMPPD_ONLINE) {
		return xerr_set(e, "not-connected", "the account is %s",
			xmppd_state_name(x->state));
	}
	if (u->service == NULL) {
		return xerr_set(e, "feature-not-implemented",
			"the server offers no HTTP upload service");
	}
	if (u->max_size > 0 && r->size > u->max_size) {
		return xerr_set(e, "not-acceptable", "the file is larger than %s "
			"accepts (%llu bytes)", u->service, (unsigned long long)u->max_size);
	}
	struct xml *q = xml_new("request", NS_HTTP_UPLOAD);
	char size[32];
	snprintf(size, sizeof(size), "%llu", (unsigned long long)r->size);
	xml_set_attr(q, "filename", r->filename);
	xml_set_attr(q, "size", size);
	xml_set_attr(q, "content-type", r->content_type);
	char *payload = xml_to_string(q, NS_CLIENT);
	xml_free(q);
	if (payload == NULL) {
		return xerr_set(e, "bad-request",
			"the filename or content type holds characters XML cannot carry");
	}
	struct slot_wait *w = xcalloc(1, sizeof(*w));
	w->cb = cb;
	w->ud = ud;
	int rc = iq_request(x, u->service, "get", payload, 0, slot_answered, w, e);
	free(payload);
	if (rc < 0) {
		free(w);
	}
	return rc;
}
