/*
 * Messages: building what the send command asks for, and publishing what
 * arrives as message events.
 *
 * An arriving message goes through one path, whether it came directly or
 * unwrapped from a carbon (XEP-0280, accepted only when the wrapper comes
 * from our own bare JID): an error reply to something we sent becomes a
 * "sent" event "failed"; a receipt (XEP-0184) a "sent" event "delivered";
 * a chat state (XEP-0085) a "chatstate" event; and whatever has a body or
 * subject a "message" event, once per (sender, origin-id) and once per
 * stanza-id of our own archive. Messages from the archive catch-up
 * (daemon/mam.c) come through the same path, flagged: they only ever
 * become "message" events (no receipts, chat states or failed sends from
 * the past), and a live message's stanza-id tells mam.c where the next
 * catch-up starts.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/core.h"
#include "daemon/events.h"
#include "daemon/jsonenc.h"
#include "daemon/log.h"
#include "daemon/mam.h"
#include "daemon/muc.h"
#include "daemon/roster.h"
#include "daemon/store.h"
#include "proto/alloc.h"
#include "proto/jid.h"
#include "proto/ns.h"

static const char *const message_types[] = {
	"chat", "normal", "headline", "groupchat", NULL,
};

static const char *const chat_states[] = {
	"active", "composing", "paused", "inactive", "gone", NULL,
};

/* Stack room for a prepared bare JID (longer ones go to the heap). */
#define BARE_ROOM 256

/* The attributes of a message its handling reads, found in one pass
 * over them (xml_attr searches the list for each, and the same ones are
 * wanted several times). */
struct msg_attrs {
	const char *from;
	const char *to;
	const char *type;
	const char *id;
	const char *lang;		/* xml:lang */
};

/* How an arriving message reached us. */
struct inbound {
	const char *carbon;		/* NULL, "received" or "sent" */
	const struct xml *forwarded;	/* the carbon's <forwarded/> */
	const char *archive_id;		/* from the archive: its id, else NULL */
	struct msg_attrs a;		/* the message's (see read_attrs) */
};

/* Sets *slot to value unless an earlier attribute of that name did (the
 * first wins, as in xml_attr). */
static void first(const char **slot, const char *value)
{
	if (*slot == NULL) {
		*slot = value;
	}
}

/* Is n the literal lit? Inline: names are short and most differ at once. */
static bool named(const char *n, const char *lit)
{
	while (*lit != '\0' && *n == *lit) {
		n++;
		lit++;
	}
	return *n == *lit;
}

/* Fills a from m's attributes, as xml_attr would find each. */
static void read_attrs(const struct xml *m, struct msg_attrs *a)
{
	*a = (struct msg_attrs){ 0 };
	for (size_t i = 0; i < m->nattrs; i++) {
		const char *n = m->attrs[i].name;
		const char *v = m->attrs[i].value;
		switch (n[0]) {
		case 'f':
			if (named(n, "from")) {
				first(&a->from, v);
			}
			break;
		case 't':
			if (named(n, "to")) {
				first(&a->to, v);
			} else if (named(n, "type")) {
				first(&a->type, v);
			}
			break;
		case 'i':
			if (named(n, "id")) {
				first(&a->id, v);
			}
			break;
		case 'x':
			if (named(n, "xml:lang")) {
				first(&a->lang, v);
			}
			break;
		default:
			break;
		}
	}
}

static bool in_list(const char *const *list, const char *s)
{
	for (size_t i = 0; list[i] != NULL; i++) {
		if (strcmp(s, list[i]) == 0) {
			return true;
		}
	}
	return false;
}

/* ---- sending ---- */

/* A chat state alone: nothing to keep, store or copy (XEP-0085 5.2,
 * XEP-0334 no-store). */
static bool standalone_state(const struct message_args *m)
{
	return m->chatstate != NULL && m->body == NULL && m->subject == NULL;
}

static struct xml *build(const struct message_args *m, const char *to,
	const char *type, const char *id)
{
	struct xml *msg = xml_new("message", NS_CLIENT);
	xml_set_attr(msg, "to", to);
	xml_set_attr(msg, "type", type);
	xml_set_attr(msg, "id", id);
	xml_set_attr(msg, "xml:lang", m->lang);
	if (m->subject != NULL) {
		xml_add_text_child(msg, "subject", NULL, m->subject);
	}
	if (m->body != NULL) {
		xml_add_text_child(msg, "body", NULL, m->body);
	}
	if (m->thread != NULL) {
		xml_add_text_child(msg, "thread", NULL, m->thread);
	}
	if (m->chatstate != NULL) {
		xml_add(msg, m->chatstate, NS_CHATSTATES);
	}
	if (m->receipt) {
		xml_add(msg, "request", NS_RECEIPTS);
	}
	if (m->is_private) {
		xml_add(msg, "private", NS_CARBONS);
		xml_add(msg, "no-copy", NS_HINTS);
	}
	if (standalone_state(m)) {
		xml_add(msg, "no-store", NS_HINTS);
	}
	struct xml *origin = xml_add(msg, "origin-id", NS_SID);
	xml_set_attr(origin, "id", id);
	return msg;
}

static int check_args(const struct message_args *m, const char *type,
	struct xerr *e)
{
	if (!in_list(message_types, type)) {
		return xerr_set(e, "bad-request",
			"type must be chat, normal, headline or groupchat");
	}
	if (m->chatstate != NULL && !in_list(chat_states, m->chatstate)) {
		return xerr_set(e, "bad-request", "chatstate must be active, "
			"composing, paused, inactive or gone");
	}
	if (m->receipt && m->body == NULL) {
		return xerr_set(e, "bad-request",
			"a receipt can only be asked for a message with a body");
	}
	if (m->lang != NULL && m->lang[0] == '\0') {
		return xerr_set(e, "bad-request", "lang must not be empty");
	}
	return 0;
}

/* Sends a standalone chat state at once: it is not worth keeping. */
static int send_now(struct xmppd *x, struct xml *msg, struct xerr *e)
{
	if (x->state != XMPPD_ONLINE) {
		xml_free(msg);
		return xerr_set(e, "not-connected", "a chat state is not queued");
	}
	bool ok = xmppd_send(x, msg);
	xml_free(msg);
	if (!ok) {
		return xerr_set(e, "not-connected", "the chat state could not be sent");
	}
	return 0;
}

/* What the log keeps of a message we send: the fields of a message
 * event, "outbound" set, and a seq of its own, taken at acceptance
 * (the "queued" event comes only after the commit, and other rows must
 * not share the number): history since any seq seen before the send
 * holds it. */
static json_t *outbound_json(struct xmppd *x, const struct message_args *m,
	const struct xml *msg, const char *id)
{
	if (!store_enabled(x->store)) {
		return NULL;
	}
	json_t *ev = json_object();
	json_object_set_new(ev, "seq", json_integer((json_int_t)events_take_seq()));
	json_object_set_new(ev, "from", json_string(xmppd_jid(x)));
	json_object_set_new(ev, "to", json_string(xml_attr(msg, "to")));
	json_object_set_new(ev, "type", json_string(xml_attr(msg, "type")));
	if (m->body != NULL) {
		json_object_set_new(ev, "body", json_string(m->body));
	}
	if (m->subject != NULL) {
		json_object_set_new(ev, "subject", json_string(m->subject));
	}
	if (m->thread != NULL) {
		json_object_set_new(ev, "thread", json_string(m->thread));
	}
	json_object_set_new(ev, "msg_id", json_string(id));
	json_object_set_new(ev, "outbound", json_true());
	return ev;
}

/* Writes an outbound message to the log, in the outbox's transaction
 * (so a refused send leaves no trace there either). */
static void log_outbound(struct xmppd *x, json_t *ev, const char *id)
{
	if (ev == NULL) {
		return;
	}
	struct buf b;
	buf_init(&b);
	char *line = jsonenc_append(&b, ev) ? buf_steal(&b, NULL) : NULL;
	buf_finish(&b);
	char *peer = jid_prep(json_string_value(json_object_get(ev, "to")),
		true, NULL);
	struct store_msg sm = {
		.seq = (uint64_t)json_integer_value(json_object_get(ev, "seq")),
		.outbound = true,
		.sender = x->bare_jid,
		.peer = peer,
		.type = json_string_value(json_object_get(ev, "type")),
		.msg_id = id,
		.event = line,
	};
	if (line != NULL) {
		store_log_message(x->store, &sm);
	}
	free(peer);
	free(line);
	json_decref(ev);
}

int message_send(struct xmppd *x, const struct message_args *m,
	char **msg_id, message_done_cb done, void *ud, struct xerr *e)
{
	const char *type = m->type ? m->type : "chat";
	if (check_args(m, type, e) < 0) {
		return -1;
	}
	const char *err = NULL;
	char *to = jid_prep(m->to, false, &err);
	if (to == NULL) {
		return xerr_set(e, "invalid-jid", "to: %s", err);
	}
	if (x->quitting) {
		free(to);
		return xerr_set(e, "not-connected", "the daemon is stopping");
	}
	char *id = m->msg_id ? xstrdup(m->msg_id) : xmppd_new_id();
	struct xml *msg = build(m, to, type, id);
	free(to);
	char *check = xml_to_string(msg, NS_CLIENT);
	if (check == NULL) {
		xml_free(msg);
		free(id);
		return xerr_set(e, "bad-request",
			"the message holds characters XML cannot carry");
	}
	free(check);
	if (standalone_state(m)) {
		if (send_now(x, msg, e) < 0) {
			free(id);
			return -1;
		}
		*msg_id = id;
		return 0;
	}
	json_t *ev = outbound_json(x, m, msg, id);
	enum outbox_result r = outbox_add(x, id, msg, done, ud, e);
	if (r == OUTBOX_REFUSED) {
		json_decref(ev);
		free(id);
		return -1;
	}
	log_outbound(x, ev, id);
	*msg_id = id;
	return r == OUTBOX_PENDING ? 1 : 0;
}

/* ---- receiving: helpers ---- */

static void set_attr(json_t *ev, const char *key, const char *value)
{
	if (value != NULL) {
		json_object_set_new(ev, key, json_string(value));
	}
}

/* A stanza-id counts only when our own server assigned it (XEP-0359 3):
 * its 'by' is our bare JID. */
static const char *own_stanza_id(const struct xmppd *x, const struct xml *stanza)
{
	for (const struct xml *c = xml_first_element(stanza); c != NULL;
			c = xml_next_element(c)) {
		if (strcmp(c->name, "stanza-id") != 0 || c->ns == NULL ||
				strcmp(c->ns, NS_SID) != 0) {
			continue;
		}
		char b[BARE_ROOM], *heap;
		const char *prepped = jid_prep_bare_into(xml_attr(c, "by"), b,
			sizeof(b), &heap);
		bool ours = prepped != NULL && strcmp(prepped, x->bare_jid) == 0;
		free(heap);
		if (ours) {
			return xml_attr(c, "id");
		}
	}
	return NULL;
}

/* The defined condition of a stanza's <error/> (NULL if none) and its
 * text (caller frees, may be NULL). */
static const char *error_condition(const struct xml *stanza, char **text)
{
	*text = NULL;
	const struct xml *err = xml_child(stanza, "error", NULL);
	if (err == NULL) {
		return NULL;
	}
	*text = xml_child_text(err, "text", NS_STANZA_ERRORS);
	for (const struct xml *c = xml_first_element(err); c != NULL;
			c = xml_next_element(c)) {
		if (c->ns != NULL && strcmp(c->ns, NS_STANZA_ERRORS) == 0 &&
				strcmp(c->name, "text") != 0) {
			return c->name;
		}
	}
	return NULL;
}

/*
 * Has this message been published already? A sender that re-sends after
 * a failed stream resumption repeats its origin-id (XEP-0359), or at
 * least its id; the key is that id with the sender's bare JID. Messages
 * with neither cannot be recognised and always pass. key_id gives that
 * id (NULL: none, or no sender) and whether it is an origin-id.
 */
static const char *key_id(const struct xml *stanza, const struct msg_attrs *a,
	bool *origin)
{
	const struct xml *o = xml_child(stanza, "origin-id", NS_SID);
	const char *id = o ? xml_attr(o, "id") : a->id;
	*origin = o != NULL;
	if (id == NULL || id[0] == '\0' || a->from == NULL) {
		return NULL;
	}
	return id;
}

/* A key of the dedup memory or the message log, on the stack unless
 * it is long (one per message: no allocation in the common case). */
struct key {
	char stack[320];
	char *s;		/* stack or the heap */
	size_t len;
};

static void key_finish(struct key *k)
{
	if (k->s != k->stack) {
		free(k->s);
	}
	k->s = NULL;
}

/* Makes room for n bytes and the NUL. */
static char *key_room(struct key *k, size_t n)
{
	k->s = n < sizeof(k->stack) ? k->stack : xmalloc(n + 1);
	k->len = n;
	k->s[n] = '\0';
	return k->s;
}

/* "BARE<sep>o<sep>ID" (origin-id) or "BARE<sep>i<sep>ID". */
static void join_key(struct key *k, const char *bare, char sep, bool origin,
	const char *id)
{
	size_t b = strlen(bare);
	size_t i = strlen(id);
	char *p = key_room(k, b + 3 + i);
	memcpy(p, bare, b);
	p[b] = sep;
	p[b + 1] = origin ? 'o' : 'i';
	p[b + 2] = sep;
	memcpy(p + b + 3, id, i);
}

static bool seen_sender_id(struct xmppd *x, const char *bare, bool origin,
	const char *id)
{
	struct key k;
	join_key(&k, bare, '\0', origin, id);
	bool dup = !dedup_add(&x->seen, k.s, k.len);
	key_finish(&k);
	return dup;
}

static bool seen_archive_id(struct xmppd *x, const char *archive_id)
{
	struct key k;
	size_t n = strlen(archive_id);
	char *p = key_room(&k, 2 + n);
	p[0] = 's';
	p[1] = '\0';
	memcpy(p + 2, archive_id, n);
	bool dup = !dedup_add(&x->seen, k.s, k.len);
	key_finish(&k);
	return dup;
}

/* The sender key of the message log: "BARE o ID" (origin-id) or
 * "BARE i ID" (the stanza's id), as seen_sender_id uses (a bare JID
 * holds no space); NULL when there is neither (or no bare JID). Finish
 * k after. */
static const char *origin_key(struct key *k, const char *bare, bool origin,
	const char *id)
{
	k->s = NULL;
	if (bare == NULL || id == NULL) {
		return NULL;
	}
	join_key(k, bare, ' ', origin, id);
	return k->s;
}

/* The sender's bare JID, prepared, in b when it fits (free *heap). */
static const char *sender_bare(const struct xml *m, char b[BARE_ROOM],
	char **heap)
{
	return jid_prep_bare_into(xml_attr(m, "from"), b, BARE_ROOM, heap);
}

/* The id our own archive gave the message (XEP-0359 stanza-id, or the
 * MAM result id) is a second key: it recognises a message that comes
 * again from the archive, whatever its sender put in it. Both keys are
 * always added, so either recognises it later. Past the memory of this
 * run, the message log remembers them (a restart, then the catch-up). */
static bool seen_before(struct xmppd *x, const struct xml *stanza,
	const struct msg_attrs *a, const char *archive_id)
{
	bool origin;
	const char *id = key_id(stanza, a, &origin);
	char b[BARE_ROOM];
	char *heap = NULL;
	const char *bare = id ? jid_prep_bare_into(a->from, b, sizeof(b), &heap) :
		NULL;
	bool dup = bare != NULL && seen_sender_id(x, bare, origin, id);
	if (archive_id != NULL && archive_id[0] != '\0') {
		dup = seen_archive_id(x, archive_id) || dup;
	}
	if (!dup && store_enabled(x->store)) {
		struct key k;
		const char *okey = origin_key(&k, bare, origin, id);
		dup = store_message_known(x->store, archive_id, okey);
		key_finish(&k);
	}
	free(heap);
	return dup;
}

/* ---- receiving: languages (RFC 6121 5.2.3) ---- */

/*
 * The child to publish among several of this name, each perhaps in its
 * own xml:lang: the one in the stanza's language (or with none, which
 * means the same), else the first. *count receives how many there are.
 */
static const struct xml *pick_lang(const struct xml *m, const char *lang,
	const char *name, size_t *count)
{
	const struct xml *first = NULL, *match = NULL;
	*count = 0;
	for (const struct xml *c = xml_first_element(m); c != NULL;
			c = xml_next_element(c)) {
		if (strcmp(c->name, name) != 0 || c->ns == NULL ||
				strcmp(c->ns, NS_CLIENT) != 0) {
			continue;
		}
		(*count)++;
		first = first ? first : c;
		const char *l = xml_attr(c, "xml:lang");
		if (match == NULL && (l == NULL ||
				(lang != NULL && strcasecmp(l, lang) == 0))) {
			match = c;
		}
	}
	return match ? match : first;
}

/*
 * Where a message event's members go: straight into its line (a writer,
 * the live path: no jansson at all for a plain chat message) or into a
 * jansson object (history items, and the reference the tests compare
 * the line with). message_members says, once, which members in which
 * order, so the two cannot drift apart.
 */
struct members {
	struct events_writer *w;
	json_t *obj;
};

/* Adds "key":"s" unless s is NULL; false if left out (as jansson leaves
 * out a string that is not UTF-8). */
static bool put_str(struct members *o, const char *key, const char *s)
{
	if (s == NULL) {
		return false;
	}
	if (o->w != NULL) {
		return events_write_str(o->w, key, s);
	}
	return json_object_set_new(o->obj, key, json_string(s)) == 0;
}

static void put_true(struct members *o, const char *key)
{
	if (o->w != NULL) {
		events_write_true(o->w, key);
	} else {
		json_object_set_new(o->obj, key, json_true());
	}
}

/* Adds "key": v, a rare member built with jansson (stolen). */
static void put_json(struct members *o, const char *key, json_t *v)
{
	if (o->w != NULL) {
		events_write_json(o->w, key, v);
		json_decref(v);
	} else {
		json_object_set_new(o->obj, key, v);
	}
}

/* The text of x: a lone text node without a copy, else joined into
 * *copy (caller frees). */
static const char *text_of(const struct xml *x, char **copy)
{
	const struct xml *c = x->children;
	*copy = NULL;
	if (c != NULL && c->next == NULL && c->kind == XML_TEXT) {
		return c->text;
	}
	*copy = xml_text(x);
	return *copy;
}

/* Adds "key": the text of x; true if added and it begins with "/me ". */
static bool put_text(struct members *o, const char *key, const struct xml *x)
{
	char *copy;
	const char *text = text_of(x, &copy);
	bool me = put_str(o, key, text) && strncmp(text, "/me ", 4) == 0;
	free(copy);
	return me;
}

/* {"lang": text} of every alternative (the first of each language). */
static json_t *alternatives(const struct xml *m, const char *lang,
	const char *name)
{
	json_t *o = json_object();
	struct members mo = { .obj = o };
	for (const struct xml *c = xml_first_element(m); c != NULL;
			c = xml_next_element(c)) {
		if (strcmp(c->name, name) != 0 || c->ns == NULL ||
				strcmp(c->ns, NS_CLIENT) != 0) {
			continue;
		}
		const char *l = xml_attr(c, "xml:lang");
		l = l ? l : lang ? lang : "";
		if (json_object_get(o, l) == NULL) {
			put_text(&mo, l, c);
		}
	}
	return o;
}

/* Adds key (and plural_key when there are alternatives) from the
 * children called name, m's language being lang; true if the text under
 * key begins with "/me ". */
static bool put_lang_text(struct members *o, const struct xml *m,
	const char *lang, const char *name, const char *key,
	const char *plural_key)
{
	size_t n;
	const struct xml *c = pick_lang(m, lang, name, &n);
	if (c == NULL) {
		return false;
	}
	bool me = put_text(o, key, c);
	if (n > 1 && plural_key != NULL) {
		put_json(o, plural_key, alternatives(m, lang, name));
	}
	return me;
}

/* ---- receiving: the parts ---- */

/* An error reply to a message we sent: a "failed" sent event. */
static bool handle_error_reply(struct xmppd *x, const struct xml *m)
{
	char *text;
	const char *cond = error_condition(m, &text);
	bool ours = outbox_failed(x, xml_attr(m, "id"), xml_attr(m, "from"),
		cond, text);
	free(text);
	return ours;
}

/* A XEP-0184 receipt for something we sent. */
static void handle_receipt(struct xmppd *x, const struct xml *m,
	const struct xml *received)
{
	const char *id = xml_attr(received, "id");
	if (!outbox_delivered(x, id, xml_attr(m, "from"))) {
		log_debug("ignoring a receipt for '%s', not a message we sent to "
			"'%s'", id ? id : "", xml_attr(m, "from") ?
			xml_attr(m, "from") : "");
	}
}

/* Answers a receipt request (XEP-0184 5.1: only for content messages,
 * never for groupchat or errors). A receipt tells the sender we are
 * online (XEP-0184 section 8), so only those who may see our presence
 * get one: our own account and contacts subscribed to us. */
static void answer_receipt(struct xmppd *x, const struct xml *m,
	const char *type)
{
	if (strcmp(type, "groupchat") == 0 || strcmp(type, "error") == 0 ||
			xml_child(m, "request", NS_RECEIPTS) == NULL) {
		return;
	}
	const char *id = xml_attr(m, "id");
	const char *from = xml_attr(m, "from");
	if (id == NULL || from == NULL || xml_child(m, "body", NS_CLIENT) == NULL) {
		return;
	}
	if (!roster_shares_presence(x, from)) {
		log_debug("no receipt for '%s': '%s' is not subscribed to our "
			"presence", id, from);
		return;
	}
	struct xml *r = xml_new("message", NS_CLIENT);
	xml_set_attr(r, "to", from);
	xml_set_attr(r, "type", type);
	char *rid = xmppd_new_id();
	xml_set_attr(r, "id", rid);
	struct xml *rcv = xml_add(r, "received", NS_RECEIPTS);
	xml_set_attr(rcv, "id", id);
	xml_set_attr(xml_add(r, "origin-id", NS_SID), "id", rid);
	free(rid);
	if (!xmppd_send(x, r)) {
		log_debug("the receipt for '%s' could not be sent", id);
	}
	xml_free(r);
}

/* A XEP-0085 chat state: a "chatstate" event. */
static void publish_chatstate(const struct xml *m, const char *type,
	const struct inbound *in)
{
	const struct xml *st = NULL;
	for (const struct xml *c = xml_first_element(m); c != NULL;
			c = xml_next_element(c)) {
		if (c->ns != NULL && strcmp(c->ns, NS_CHATSTATES) == 0 &&
				in_list(chat_states, c->name)) {
			st = c;
			break;
		}
	}
	if (st == NULL || !events_wanted("chatstate")) {
		return;
	}
	json_t *ev = json_object();
	set_attr(ev, "from", xml_attr(m, "from"));
	set_attr(ev, "to", xml_attr(m, "to"));
	json_object_set_new(ev, "type", json_string(type));
	json_object_set_new(ev, "state", json_string(st->name));
	set_attr(ev, "carbon", in->carbon);
	events_publish("chatstate", ev);
}

static void put_delay(struct members *o, const struct xml *m,
	const struct inbound *in)
{
	const struct xml *delay = xml_child(m, "delay", NS_DELAY);
	if (delay == NULL && in->forwarded != NULL) {
		delay = xml_child(in->forwarded, "delay", NS_DELAY);
	}
	if (delay != NULL) {
		put_str(o, "delay", xml_attr(delay, "stamp"));
		put_str(o, "delay_from", xml_attr(delay, "from"));
	}
}

static void put_error(struct members *o, const struct xml *stanza)
{
	char *text;
	const char *cond = error_condition(stanza, &text);
	put_str(o, "error", cond);
	put_str(o, "error_text", text);
	free(text);
}

/* "room", "nick" and "self" of a message from a room. */
static void put_room(struct members *o, struct xmppd *x, const struct xml *m)
{
	char *nick;
	bool self;
	const char *room = muc_message_room(x, m, &nick, &self);
	if (room == NULL) {
		return;
	}
	put_str(o, "room", room);
	put_str(o, "nick", nick);
	if (self) {
		put_true(o, "self");
	}
	free(nick);
}

/* Is the stanza from our own account (any resource)? */
static bool from_own_account(const struct xmppd *x, const struct xml *stanza)
{
	char b[BARE_ROOM], *heap;
	const char *bare = sender_bare(stanza, b, &heap);
	bool own = bare != NULL && strcmp(bare, x->bare_jid) == 0;
	free(heap);
	return own;
}

/* The members of a message event, in the order subscribers see them
 * (sid: the archive's id, or our server's stanza-id); returns the
 * "stanza_id" member. */
static const char *message_members(struct xmppd *x, const struct xml *m,
	const char *type, const struct inbound *in, const char *sid,
	struct members *o)
{
	put_str(o, "from", in->a.from);
	put_str(o, "to", in->a.to);
	put_str(o, "type", type);
	const char *lang = in->a.lang;
	bool me = put_lang_text(o, m, lang, "body", "body", "bodies");
	put_lang_text(o, m, lang, "subject", "subject", NULL);
	const struct xml *thread = xml_child(m, "thread", NS_CLIENT);
	if (thread != NULL) {
		put_text(o, "thread", thread);
	}
	put_str(o, "lang", lang);
	put_str(o, "msg_id", in->a.id);
	sid = put_str(o, "stanza_id", sid) ? sid : NULL;
	put_delay(o, m, in);
	put_str(o, "carbon", in->carbon);
	if (in->archive_id != NULL) {
		put_true(o, "archive");
		if (from_own_account(x, m)) {
			put_true(o, "archive_sent");
		}
	}
	const struct xml *replace = xml_child(m, "replace", NS_CORRECT);
	if (replace != NULL) {
		put_str(o, "replace", xml_attr(replace, "id"));
	}
	if (me) {
		put_true(o, "me");
	}
	if (strcmp(type, "error") == 0) {
		put_error(o, m);
	}
	put_room(o, x, m);
	return sid;
}

static json_t *message_json(struct xmppd *x, const struct xml *m,
	const char *type, const struct inbound *via)
{
	struct inbound in = *via;
	read_attrs(m, &in.a);
	struct members o = { .obj = json_object() };
	message_members(x, m, type, &in, in.archive_id ? in.archive_id :
		own_stanza_id(x, m), &o);
	return o.obj;
}

/* Writes a published message event to the log (its line as
 * subscribers got it), in the turn's transaction. */
static void log_inbound(struct xmppd *x, const struct xml *m,
	const struct msg_attrs *a, const char *type, uint64_t seq,
	const struct events_writer *w, const char *stanza_id)
{
	char stack[1024];
	char *text = w->len <= sizeof(stack) ? stack : xmalloc(w->len);
	memcpy(text, w->line, w->len - 1);	/* without the newline */
	text[w->len - 1] = '\0';
	char b[BARE_ROOM], pb[BARE_ROOM];
	char *heap, *pheap = NULL;
	const char *sender = jid_prep_bare_into(a->from, b, sizeof(b), &heap);
	const char *peer = NULL;
	if (sender != NULL && strcmp(sender, x->bare_jid) == 0 && a->to != NULL) {
		peer = jid_prep_bare_into(a->to, pb, sizeof(pb), &pheap);
	}
	bool origin;
	const char *id = key_id(m, a, &origin);
	struct key k;
	struct store_msg sm = {
		.seq = seq,
		.sender = sender,
		.peer = peer ? peer : sender,
		.type = type,
		.stanza_id = stanza_id,
		.origin_key = origin_key(&k, sender, origin, id),
		.msg_id = a->id,
		.event = text,
	};
	store_log_message(x->store, &sm);
	key_finish(&k);
	free(pheap);
	free(heap);
	if (text != stack) {
		free(text);
	}
}

/* The message event, written straight from the tree into its line. */
static void publish_message(struct xmppd *x, const struct xml *m,
	const char *type, const struct inbound *in, const char *sid)
{
	struct events_writer w;
	events_write_begin(&w, "message");
	struct members o = { .w = &w };
	sid = message_members(x, m, type, in, sid, &o);
	uint64_t seq = events_write_publish(&w);
	if (store_enabled(x->store)) {
		log_inbound(x, m, &in->a, type, seq, &w, sid);
	}
	events_write_finish(&w);
}

/* An archived message: a "message" event at most, once. */
static void handle_archived(struct xmppd *x, const struct xml *m,
	const char *type, const struct inbound *in)
{
	bool content = xml_child(m, "body", NS_CLIENT) != NULL ||
		xml_child(m, "subject", NS_CLIENT) != NULL;
	if (!content || strcmp(type, "error") == 0) {
		return;
	}
	if (seen_before(x, m, &in->a, in->archive_id)) {
		log_debug("dropping an archived message published before (%s)",
			in->archive_id);
		return;
	}
	publish_message(x, m, type, in, in->archive_id);
}

/* Every message, direct, unwrapped from a carbon or from the archive,
 * comes through here. */
static void handle_one(struct xmppd *x, const struct xml *m,
	const struct inbound *via)
{
	struct inbound attrs_read = *via;
	const struct inbound *in = &attrs_read;
	read_attrs(m, &attrs_read.a);
	const char *type = in->a.type ? in->a.type : "normal";
	if (in->archive_id != NULL) {
		handle_archived(x, m, type, in);
		return;
	}
	const char *sid = own_stanza_id(x, m);
	if (sid != NULL) {
		mam_saw_id(x, sid);
	}
	bool error = strcmp(type, "error") == 0;
	if (error && in->carbon == NULL && handle_error_reply(x, m)) {
		return;
	}
	const struct xml *received = xml_child(m, "received", NS_RECEIPTS);
	if (received != NULL && in->carbon == NULL) {
		handle_receipt(x, m, received);
	}
	if (in->carbon == NULL) {
		answer_receipt(x, m, type);
	}
	bool content = xml_child(m, "body", NS_CLIENT) != NULL ||
		xml_child(m, "subject", NS_CLIENT) != NULL || error;
	if (content && !error && seen_before(x, m, &in->a, sid)) {
		log_debug("dropping a message published before");
		return;
	}
	publish_chatstate(m, type, in);
	if (!content) {
		log_debug("no message event for a message without body or subject");
		return;
	}
	publish_message(x, m, type, in, sid);
}

/* ---- carbons (XEP-0280) ---- */

static const struct xml *carbon_wrapper(const struct xml *stanza)
{
	for (const struct xml *c = xml_first_element(stanza); c != NULL;
			c = xml_next_element(c)) {
		if (c->ns != NULL && strcmp(c->ns, NS_CARBONS) == 0 &&
				(strcmp(c->name, "received") == 0 ||
				strcmp(c->name, "sent") == 0)) {
			return c;
		}
	}
	return NULL;
}

/*
 * A carbon is trusted only when our own account wrapped it: anyone else
 * could otherwise put words in any contact's mouth, or in ours (the
 * CVE-2017-5589 family). Anything else is dropped whole.
 */
static void handle_carbon(struct xmppd *x, const struct xml *stanza,
	const struct xml *wrap)
{
	const char *from = xml_attr(stanza, "from");
	if (!xmppd_is_account(x, xml_attr(stanza, "from"))) {
		log_warnx("ignoring a forged carbon (%s) from '%s', not from %s",
			wrap->name, from ? from : "(none)", x->bare_jid);
		return;
	}
	const struct xml *fwd = xml_child(wrap, "forwarded", NS_FORWARD);
	const struct xml *inner = fwd ? xml_child(fwd, "message", NS_CLIENT) : NULL;
	if (inner == NULL) {
		log_warnx("ignoring a %s carbon without a forwarded message",
			wrap->name);
		return;
	}
	struct inbound in = { .carbon = wrap->name, .forwarded = fwd };
	handle_one(x, inner, &in);
}

void message_handle(struct xmppd *x, const struct xml *stanza)
{
	if (muc_handle_message(x, stanza)) {
		return;
	}
	const struct xml *wrap = carbon_wrapper(stanza);
	if (wrap != NULL) {
		handle_carbon(x, stanza, wrap);
		return;
	}
	struct inbound in = { 0 };
	handle_one(x, stanza, &in);
}

/* An archived message from the catch-up (see daemon/mam.h). */
void message_handle_archived(struct xmppd *x, const struct xml *inner,
	const struct xml *forwarded, const char *archive_id)
{
	struct inbound in = { .forwarded = forwarded, .archive_id = archive_id };
	handle_one(x, inner, &in);
}

char *message_event_line(struct xmppd *x, const struct xml *m,
	const char *carbon, const struct xml *forwarded, const char *archive_id,
	uint64_t seq, bool direct)
{
	struct inbound in = { .carbon = carbon, .forwarded = forwarded,
		.archive_id = archive_id };
	read_attrs(m, &in.a);
	const char *type = in.a.type ? in.a.type : "normal";
	if (!direct) {
		json_t *ev = message_json(x, m, type, &in);
		struct buf b;
		buf_init(&b);
		bool ok = jsonenc_event(&b, "message", seq, ev);
		json_decref(ev);
		buf_putc(&b, '\n');
		char *line = ok ? buf_steal(&b, NULL) : NULL;
		buf_finish(&b);
		return line;
	}
	struct events_writer w;
	events_write_begin(&w, "message");
	struct members o = { .w = &w };
	message_members(x, m, type, &in, archive_id ? archive_id :
		own_stanza_id(x, m), &o);
	size_t len;
	const char *line = events_write_line(&w, seq, &len);
	char *copy = xstrndup(line, len);
	events_write_finish(&w);
	return copy;
}

/* An archived message as a history item (see daemon/mam.h). */
json_t *message_archived_json(struct xmppd *x, const struct xml *inner,
	const struct xml *forwarded, const char *archive_id)
{
	struct inbound in = { .forwarded = forwarded, .archive_id = archive_id };
	const char *type = xml_attr(inner, "type");
	return message_json(x, inner, type ? type : "normal", &in);
}
