/*
 * The server's message archive (XEP-0313, urn:xmpp:mam:2, paged with
 * XEP-0059 RSM).
 *
 * Catch-up: after every fresh session (never after a resumption, which
 * loses nothing) whose account offers urn:xmpp:mam:2, the archive is
 * asked for what came after the last archive id seen, 50 messages a page,
 * until the server says complete (at most CATCHUP_PAGES pages and about
 * CATCHUP_MS). The initial presence is held meanwhile, so the catch-up
 * comes first and the server's live and offline deliveries after it;
 * message.c's dedup set (keyed on the archive id as well as on sender and
 * origin-id) drops whatever comes twice.
 *
 * The last archive id is kept in memory: it is the id of the newest
 * message seen, from the catch-up's results and from the stanza-id our
 * server puts on live messages. The first fresh session of the process
 * has none, and fetches no history: once the initial presence is out
 * (so the server delivers its offline messages as usual) it asks for the
 * last page with max 1, only to learn the newest id. An archive that was
 * empty then is read from its start next time.
 *
 * Each query has a random queryid; a <result/> counts only when it comes
 * from our own account (no 'from', or our bare JID: anyone else could
 * forge history) for a query still outstanding. Results for a history
 * request are collected for its reply and never published.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"
#include "daemon/core.h"
#include "daemon/disco.h"
#include "daemon/log.h"
#include "daemon/mam.h"
#include "daemon/state.h"
#include "daemon/store.h"
#include "daemon/subsystems.h"
#include "proto/alloc.h"
#include "proto/error.h"
#include "proto/jid.h"
#include "proto/ns.h"

#define PAGE_MAX 50		/* messages per catch-up page */
#define CATCHUP_PAGES 60	/* within what the dedup set remembers */
#define CATCHUP_MS (120 * 1000)	/* no new page is asked for after this */

enum query_kind {
	QUERY_CATCHUP,
	QUERY_LEARN,
	QUERY_HISTORY,
};

/* One outstanding archive query, owned by the list in struct mam until
 * its iq is answered. */
struct query {
	struct query *next;
	struct mam *m;
	enum query_kind kind;
	char *queryid;
	unsigned generation;
	unsigned results;	/* results received */
	json_t *messages;	/* history: the items so far */
	unsigned max;		/* history: items kept at most */
	disco_cb cb;		/* history: the answer */
	void *ud;
};

#define SAVE_MS (5 * 1000)	/* at most one write of the last id per */

struct mam {
	struct xmppd *x;
	char *last_id;		/* newest archive id seen, or NULL */
	bool known;		/* asked, or read from the state directory */
	bool dirty;		/* last_id not yet written to the state dir */
	uint64_t saved_ms;	/* loop time of the last write */
	unsigned generation;	/* bumped per fresh session */
	bool holding;		/* we hold the initial presence */
	unsigned pages;		/* of the current catch-up */
	unsigned fetched;	/* messages the current catch-up got */
	uint64_t started;	/* loop time the catch-up began */
	struct query *queries;
};

/* What the query's fields are; NULL fields are left out. */
struct query_spec {
	const char *with;
	const char *start;
	const char *end;
	const char *before;	/* "" for the last page */
	const char *after;
	unsigned max;
};

static void catchup_page(struct mam *m);

static const char *kind_name(enum query_kind k)
{
	switch (k) {
	case QUERY_CATCHUP:
		return "catch-up";
	case QUERY_LEARN:
		return "last-id";
	case QUERY_HISTORY:
		return "history";
	}
	return "?";
}

/* ---- state ---- */

/*
 * The last id survives a restart in the state directory, so the catch-up
 * after downtime starts where the daemon stopped. Writing on every
 * message would cost a file per message: it is written at most every
 * SAVE_MS, at the end of each catch-up and when the daemon stops.
 */
static void save_last(struct mam *m, bool now)
{
	uint64_t t = uv_now(m->x->loop);
	if (!m->dirty || m->last_id == NULL || (!now && t - m->saved_ms < SAVE_MS)) {
		return;
	}
	struct store *st = m->x->store;
	if (!store_enabled(st) || !store_meta_set(st, "mam_last_id", m->last_id)) {
		state_write(m->x->cfg, m->x->bare_jid, "mam", m->last_id);
	}
	m->dirty = false;
	m->saved_ms = t;
}

static void set_last(struct mam *m, const char *id)
{
	if (id == NULL || id[0] == '\0') {
		return;
	}
	if (m->last_id != NULL && strcmp(m->last_id, id) == 0) {
		return;
	}
	free(m->last_id);
	m->last_id = xstrdup(id);
	m->known = true;
	m->dirty = true;
	save_last(m, false);
}

void mam_saw_id(struct xmppd *x, const char *id)
{
	if (x->mam != NULL) {
		set_last(x->mam, id);
	}
}

/* Lets the initial presence go, once per hold. */
static void release_hold(struct mam *m)
{
	if (!m->holding) {
		return;
	}
	m->holding = false;
	xmppd_release_presence(m->x);
}

static void query_free(struct query *q)
{
	if (q == NULL) {
		return;
	}
	free(q->queryid);
	json_decref(q->messages);
	free(q);
}

static void query_unlink(struct query *q)
{
	struct query **pp = &q->m->queries;
	while (*pp != NULL && *pp != q) {
		pp = &(*pp)->next;
	}
	if (*pp == q) {
		*pp = q->next;
	}
}

static struct query *find_query(struct mam *m, const char *queryid)
{
	if (queryid == NULL) {
		return NULL;
	}
	for (struct query *q = m->queries; q != NULL; q = q->next) {
		if (strcmp(q->queryid, queryid) == 0) {
			return q;
		}
	}
	return NULL;
}

/* ---- the query ---- */

static void add_field(struct xml *form, const char *var, const char *value,
	const char *type)
{
	struct xml *f = xml_add(form, "field", NULL);
	xml_set_attr(f, "var", var);
	xml_set_attr(f, "type", type);
	xml_add_text_child(f, "value", NULL, value);
}

/* The <query/> payload as text (caller frees), or NULL if a value cannot
 * be written in XML. */
static char *query_payload(const char *queryid, const struct query_spec *s)
{
	struct xml *q = xml_new("query", NS_MAM);
	xml_set_attr(q, "queryid", queryid);
	struct xml *form = xml_add(q, "x", NS_DATA_FORMS);
	xml_set_attr(form, "type", "submit");
	add_field(form, "FORM_TYPE", NS_MAM, "hidden");
	if (s->with != NULL) {
		add_field(form, "with", s->with, NULL);
	}
	if (s->start != NULL) {
		add_field(form, "start", s->start, NULL);
	}
	if (s->end != NULL) {
		add_field(form, "end", s->end, NULL);
	}
	struct xml *set = xml_add(q, "set", NS_RSM);
	char max[16];
	snprintf(max, sizeof(max), "%u", s->max);
	xml_add_text_child(set, "max", NULL, max);
	if (s->after != NULL) {
		xml_add_text_child(set, "after", NULL, s->after);
	}
	if (s->before != NULL) {
		xml_add_text_child(set, "before", NULL, s->before);
	}
	char *text = xml_to_string(q, NS_CLIENT);
	xml_free(q);
	return text;
}

static void query_done(void *ud, const struct xml *reply, const char *condition,
	const char *text);

/* Sends a query of the own archive; q is linked while it is outstanding.
 * On failure q is freed. */
static int query_send(struct mam *m, struct query *q, const struct query_spec *s,
	struct xerr *e)
{
	q->m = m;
	q->queryid = xmppd_new_id();
	q->generation = m->generation;
	char *payload = query_payload(q->queryid, s);
	if (payload == NULL) {
		query_free(q);
		return xerr_set(e, "bad-request",
			"a value holds characters XML cannot carry");
	}
	q->next = m->queries;
	m->queries = q;
	log_debug("mam: %s query %s (after %s, before %s, max %u)",
		kind_name(q->kind), q->queryid, s->after ? s->after : "-",
		s->before ? (s->before[0] ? s->before : "(last page)") : "-", s->max);
	int rc = iq_request(m->x, NULL, "set", payload, 0, query_done, q, e);
	free(payload);
	if (rc < 0) {
		query_unlink(q);
		query_free(q);
	}
	return rc;
}

/* The <fin/> of a result: complete, and the RSM first/last (borrowed
 * from reply, may be NULL). */
struct fin {
	bool complete;
	char *first;
	char *last;
};

static void read_fin(const struct xml *reply, struct fin *f)
{
	memset(f, 0, sizeof(*f));
	const struct xml *fin = reply ? xml_child(reply, "fin", NS_MAM) : NULL;
	if (fin == NULL) {
		return;
	}
	const char *complete = xml_attr(fin, "complete");
	f->complete = complete != NULL && (strcmp(complete, "true") == 0 ||
		strcmp(complete, "1") == 0);
	const struct xml *set = xml_child(fin, "set", NS_RSM);
	if (set != NULL) {
		f->first = xml_child_text(set, "first", NS_RSM);
		f->last = xml_child_text(set, "last", NS_RSM);
	}
}

static void fin_finish(struct fin *f)
{
	free(f->first);
	free(f->last);
}

static bool is_result(const struct xml *reply)
{
	const char *type = reply ? xml_attr(reply, "type") : NULL;
	return type != NULL && strcmp(type, "result") == 0;
}

/* ---- catch-up and learning the last id ---- */

static void catchup_start(struct mam *m, const char *what)
{
	m->pages = 0;
	m->fetched = 0;
	m->started = uv_now(m->x->loop);
	log_info("mam: %s after %s", what, m->last_id ? m->last_id :
		"(the start of the archive)");
	catchup_page(m);
}

/*
 * A catch-up that held the initial presence is followed by one more,
 * once the presence is out: what reached the server between the last
 * page and the presence is in the archive, but a server may keep it
 * from the session as offline messages never delivered to a client that
 * read its archive (Prosody does). Messages seen twice are published
 * once (the archive id is a dedup key).
 */
static void catchup_end(struct mam *m, const char *how)
{
	save_last(m, true);
	log_info("mam: catch-up %s: %u message(s) in %u page(s), last id %s",
		how, m->fetched, m->pages, m->last_id ? m->last_id : "(none)");
	if (!m->holding) {
		return;
	}
	release_hold(m);
	if (strcmp(how, "failed") != 0 && m->x->state == XMPPD_ONLINE) {
		catchup_start(m, "catch-up of what came during the first");
	}
}

static void learn(struct mam *m)
{
	struct query *q = xcalloc(1, sizeof(*q));
	q->kind = QUERY_LEARN;
	struct query_spec s = { .before = "", .max = 1 };
	struct xerr e = { 0 };
	if (query_send(m, q, &s, &e) < 0) {
		log_warnx("mam: cannot ask for the last archive id: %s", e.text);
	}
}

static void learn_done(struct mam *m, const struct query *q,
	const struct xml *reply, const char *condition)
{
	if (!is_result(reply)) {
		log_warnx("mam: no last archive id: %s", reply ? "error reply" :
			condition);
		return;
	}
	struct fin f;
	read_fin(reply, &f);
	if (m->last_id == NULL) {
		set_last(m, f.last);
	}
	m->known = true;
	log_info("mam: the last archive id is %s", m->last_id ? m->last_id :
		"(the archive is empty)");
	fin_finish(&f);
}

static void catchup_done(struct mam *m, const struct query *q,
	const struct xml *reply, const char *condition)
{
	if (q->generation != m->generation) {
		return;
	}
	if (!is_result(reply)) {
		char *text = NULL;
		const char *cond = reply ? stanza_error(reply, &text) : condition;
		log_warnx("mam: catch-up failed: %s%s%s", cond, text ? ": " : "",
			text ? text : "");
		free(text);
		bool gone = strcmp(cond, "item-not-found") == 0;
		catchup_end(m, "failed");
		if (gone) {
			/* Our last id has left the archive: start over from now. */
			free(m->last_id);
			m->last_id = NULL;
			m->known = false;
			learn(m);
		}
		return;
	}
	m->pages++;
	struct fin f;
	read_fin(reply, &f);
	uint64_t spent = uv_now(m->x->loop) - m->started;
	if (f.complete || f.last == NULL || q->results == 0) {
		set_last(m, f.last);
		catchup_end(m, "done");
	} else if (m->pages >= CATCHUP_PAGES || spent >= CATCHUP_MS) {
		set_last(m, f.last);
		log_warnx("mam: catch-up stopped after %u pages and %llu ms; older "
			"messages are left in the archive", m->pages,
			(unsigned long long)spent);
		catchup_end(m, "cut short");
	} else {
		set_last(m, f.last);
		catchup_page(m);
	}
	fin_finish(&f);
}

/* Asks for the next page after the last id seen. */
static void catchup_page(struct mam *m)
{
	struct query *q = xcalloc(1, sizeof(*q));
	q->kind = QUERY_CATCHUP;
	struct query_spec s = { .after = m->last_id, .max = PAGE_MAX };
	struct xerr e = { 0 };
	if (query_send(m, q, &s, &e) < 0) {
		log_warnx("mam: cannot ask the archive: %s", e.text);
		catchup_end(m, "failed");
	}
}

static void discovered(struct xmppd *x, void *ud)
{
	struct mam *m = x->mam;
	if ((unsigned)(uintptr_t)ud != m->generation) {
		return;
	}
	if (!disco_account_has(x, NS_MAM)) {
		log_debug("mam: the account has no archive (%s)", NS_MAM);
		release_hold(m);
		return;
	}
	if (!m->holding) {
		learn(m);
		return;
	}
	catchup_start(m, "catch-up");
}

static void mam_online(struct xmppd *x, bool resumed)
{
	struct mam *m = x->mam;
	if (resumed) {
		return;
	}
	m->generation++;
	m->holding = false;	/* the core forgot the old session's holds */
	if (m->known) {
		m->holding = true;
		xmppd_hold_presence(x);
	}
	disco_when_ready(x, discovered, (void *)(uintptr_t)m->generation);
}

/* ---- results ---- */

/* Is the wrapper from our own account's bare JID, or from no one? */
static bool from_own_archive(const struct xmppd *x, const struct xml *stanza)
{
	const char *from = xml_attr(stanza, "from");
	return from == NULL || xmppd_is_account(x, from);
}

static void history_item(struct mam *m, struct query *q, const struct xml *inner,
	const struct xml *fwd, const char *id)
{
	if (json_array_size(q->messages) >= q->max) {
		return;
	}
	json_array_append_new(q->messages, message_archived_json(m->x, inner, fwd,
		id));
}

void mam_handle_result(struct xmppd *x, const struct xml *stanza)
{
	struct mam *m = x->mam;
	const struct xml *result = xml_child(stanza, "result", NS_MAM);
	const char *from = xml_attr(stanza, "from");
	if (!from_own_archive(x, stanza)) {
		log_warnx("mam: ignoring a forged archive result from '%s', not "
			"from %s", from, x->bare_jid);
		return;
	}
	const char *queryid = result ? xml_attr(result, "queryid") : NULL;
	struct query *q = find_query(m, queryid);
	if (q == NULL) {
		log_warnx("mam: ignoring an archive result for no query of ours "
			"('%s')", queryid ? queryid : "");
		return;
	}
	const char *id = xml_attr(result, "id");
	const struct xml *fwd = xml_child(result, "forwarded", NS_FORWARD);
	const struct xml *inner = fwd ? xml_child(fwd, "message", NS_CLIENT) : NULL;
	if (id == NULL || id[0] == '\0' || inner == NULL) {
		log_warnx("mam: ignoring an archive result without id or message");
		return;
	}
	q->results++;
	switch (q->kind) {
	case QUERY_LEARN:
		set_last(m, id);
		break;
	case QUERY_CATCHUP:
		m->fetched++;
		message_handle_archived(x, inner, fwd, id);
		set_last(m, id);
		break;
	case QUERY_HISTORY:
		history_item(m, q, inner, fwd, id);
		break;
	}
}

/* ---- history ---- */

static void history_done(struct query *q, const struct xml *reply,
	const char *condition, const char *text)
{
	if (!is_result(reply)) {
		char *etext = NULL;
		const char *cond = reply ? stanza_error(reply, &etext) : condition;
		q->cb(q->ud, NULL, cond, etext ? etext : text ? text : cond);
		free(etext);
		return;
	}
	struct fin f;
	read_fin(reply, &f);
	json_t *r = json_object();
	json_object_set(r, "messages", q->messages);
	json_object_set_new(r, "complete", json_boolean(f.complete));
	if (f.first != NULL) {
		json_object_set_new(r, "first", json_string(f.first));
	}
	if (f.last != NULL) {
		json_object_set_new(r, "last", json_string(f.last));
	}
	fin_finish(&f);
	q->cb(q->ud, r, NULL, NULL);
}

static void query_done(void *ud, const struct xml *reply, const char *condition,
	const char *text)
{
	struct query *q = ud;
	struct mam *m = q->m;
	query_unlink(q);
	switch (q->kind) {
	case QUERY_CATCHUP:
		catchup_done(m, q, reply, condition);
		break;
	case QUERY_LEARN:
		learn_done(m, q, reply, condition);
		break;
	case QUERY_HISTORY:
		history_done(q, reply, condition, text);
		break;
	}
	query_free(q);
}

static bool digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9') {
			return false;
		}
	}
	return true;
}

/* Does s look like an RFC 3339 date-time (XEP-0082)? The server judges
 * the values themselves. */
static bool is_datetime(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	size_t n = sizeof(shape) - 1;
	if (strlen(s) < n || strlen(s) > 64) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		bool ok = shape[i] == 'd' ? digits(s + i, 1) : shape[i] == 'T' ?
			(s[i] == 'T' || s[i] == 't') : s[i] == shape[i];
		if (!ok) {
			return false;
		}
	}
	const char *p = s + n;
	if (*p == '.') {
		size_t k = strspn(p + 1, "0123456789");
		if (k == 0) {
			return false;
		}
		p += 1 + k;
	}
	if (strcmp(p, "Z") == 0 || strcmp(p, "z") == 0) {
		return true;
	}
	return (p[0] == '+' || p[0] == '-') && strlen(p) == 6 &&
		digits(p + 1, 2) && p[3] == ':' && digits(p + 4, 2);
}

static int check_history(const struct mam_history_args *a, struct xerr *e)
{
	if (a->max < 1 || a->max > MAM_HISTORY_MAX) {
		return xerr_set(e, "bad-request", "max must be 1 to %d",
			MAM_HISTORY_MAX);
	}
	if (a->start != NULL && !is_datetime(a->start)) {
		return xerr_set(e, "bad-request", "start is not an RFC 3339 date-time");
	}
	if (a->end != NULL && !is_datetime(a->end)) {
		return xerr_set(e, "bad-request", "end is not an RFC 3339 date-time");
	}
	if (a->before != NULL && a->after != NULL) {
		return xerr_set(e, "bad-request", "give before or after, not both");
	}
	if (a->after != NULL && a->after[0] == '\0') {
		return xerr_set(e, "bad-request", "after must not be empty");
	}
	return 0;
}

int mam_history(struct xmppd *x, const struct mam_history_args *a, disco_cb cb,
	void *ud, struct xerr *e)
{
	if (check_history(a, e) < 0) {
		return -1;
	}
	if (x->state != XMPPD_ONLINE) {
		return xerr_set(e, "not-connected", "the account is %s",
			xmppd_state_name(x->state));
	}
	if (disco_known(x) && !disco_account_has(x, NS_MAM)) {
		return xerr_set(e, "feature-not-implemented",
			"the account has no message archive (%s)", NS_MAM);
	}
	char *with = NULL;
	if (a->with != NULL) {
		const char *err = NULL;
		with = jid_prep(a->with, false, &err);
		if (with == NULL) {
			return xerr_set(e, "invalid-jid", "with: %s", err);
		}
	}
	struct query *q = xcalloc(1, sizeof(*q));
	q->kind = QUERY_HISTORY;
	q->messages = json_array();
	q->max = a->max;
	q->cb = cb;
	q->ud = ud;
	struct query_spec s = { .with = with, .start = a->start, .end = a->end,
		.before = a->before, .after = a->after, .max = a->max };
	int rc = query_send(x->mam, q, &s, e);
	free(with);
	return rc;
}

/* ---- the subsystem ---- */

/* The JID.mam file of older versions, once moved into the store. */
static void migrated_cb(void *ud, const char *error)
{
	struct xmppd *x = ud;
	if (error == NULL) {
		log_info("mam: the last archive id moved into the store");
		state_remove(x->cfg, x->bare_jid, "mam");
	}
}

/* The last id: from the store, else from the state directory (moved
 * into the store if there is one). */
static char *load_last(struct xmppd *x)
{
	char *id = store_meta_get(x->store, "mam_last_id");
	if (id != NULL) {
		return id;
	}
	id = state_read(x->cfg, x->bare_jid, "mam");
	if (id != NULL && store_meta_set(x->store, "mam_last_id", id)) {
		store_when_committed(x->store, migrated_cb, x);
	}
	return id;
}

static void mam_init(struct xmppd *x)
{
	struct mam *m = xcalloc(1, sizeof(*m));
	m->x = x;
	m->last_id = load_last(x);
	m->known = m->last_id != NULL;
	x->mam = m;
}

static void mam_free(struct xmppd *x)
{
	struct mam *m = x->mam;
	if (m == NULL) {
		return;
	}
	/* xmppd_free failed every iq before this, so no query is left;
	 * free any stray one all the same. */
	while (m->queries != NULL) {
		struct query *q = m->queries;
		m->queries = q->next;
		query_free(q);
	}
	save_last(m, true);
	free(m->last_id);
	free(m);
	x->mam = NULL;
}

const struct subsystem mam_subsystem = {
	.name = "mam",
	.init = mam_init,
	.free = mam_free,
	.online = mam_online,
	.offline = NULL,
};
