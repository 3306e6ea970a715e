/*
 * The XMPP stream reader over libxml2's SAX2 push parser.
 *
 * Depth counts open elements: the stream root is level 0, a stanza opens
 * at level 1, and the stanza's tree is built while the level is >= 1 and
 * handed up when its end tag (level 1) arrives, inside the reader_feed()
 * that fed that tag's last byte. The tree lives in the reader's arena
 * (proto/xml.h), reused from stanza to stanza. Character data arrives in
 * pieces; consecutive pieces are appended to one text node, in place in
 * the arena, so long text costs amortized O(1) per byte.
 *
 * Two bounds guard a stanza: the bytes of names, attributes and text it
 * holds (counted in the callbacks), and the raw bytes fed since the last
 * stanza boundary (checked between slices with xmlByteConsumed), which
 * catches a huge start tag that libxml2 buffers whole before any callback.
 *
 * libxml2 may not be re-entered or freed from its own callbacks. Errors
 * found inside the parser are therefore only recorded there (and the parser
 * stopped with xmlStopParser); the error callback runs after xmlParseChunk
 * returns. A restart asked for from a callback stops the parser the same
 * way, and the parser is freed once xmlParseChunk has returned.
 */
#include <libxml/parser.h>
#include <libxml/xmlerror.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/alloc.h"
#include "proto/buf.h"
#include "proto/ns.h"
#include "proto/reader.h"

#define DEFAULT_MAX_STANZA (1024 * 1024)
#define DEFAULT_MAX_DEPTH 64
#define SLICE (64 * 1024)
/* libxml2 2.9 checks attributes for duplicates and looks namespace
 * prefixes up by linear scans, so a start tag with n attributes costs n^2
 * (8 s of CPU for one 1 MiB tag); these bounds keep that small. */
#define MAX_ATTRS 256
#define MAX_NS_IN_SCOPE 128
#define NAME_CACHE 64	/* names remembered, a power of two */

/* Where the lexer is in the markup. */
enum lex_state {
	LEX_TEXT,	/* character data */
	LEX_LT,		/* just after '<' */
	LEX_TAG,	/* inside a tag, outside quotes */
	LEX_QUOTE,	/* inside a quoted attribute value */
	LEX_BANG,	/* after "<!", matching "[CDATA[" */
	LEX_CDATA,	/* inside a CDATA section */
	LEX_OFF,	/* comment or DTD: libxml2 refuses it anyway */
};

/*
 * libxml2 hands every element and attribute name and namespace URI as a
 * string of its parser's dictionary: one pointer per distinct string for
 * the parser's whole life. A small cache keyed by that pointer remembers
 * its length and, for the names and namespaces common in XMPP, a static
 * copy the tree can point to instead of a copy in the arena (static
 * strings outlive any tree). It is emptied with each new parser.
 */
struct name {
	const xmlChar *key;	/* libxml2's string; NULL: empty entry */
	const char *common;	/* its static twin, or NULL */
	size_t len;
};

/*
 * A minimal look at the raw bytes before libxml2 sees them, just enough to
 * count the attributes ('=' outside quotes) of the tag being fed, so a
 * tag with too many is refused before libxml2 parses it.
 */
struct lexer {
	enum lex_state state;
	char quote;
	unsigned n;		/* attributes so far, or CDATA match progress */
};

struct reader {
	const struct reader_cb *cb;
	void *ud;
	size_t max_stanza;
	unsigned max_depth;
	xmlParserCtxtPtr ctxt;
	bool parsing;		/* xmlParseChunk is on the stack */
	bool stopped;		/* the parser was stopped: drop the rest */
	bool restart;		/* free the parser once it returns */
	bool failed;
	const char *condition;	/* pending error, reported after parsing */
	char *errtext;
	unsigned depth;		/* open elements, the stream root included */
	struct xml_arena *arena;	/* where stanzas are built */
	struct xml *stanza;	/* the stanza being built */
	struct xml *cur;	/* its innermost open element */
	size_t stanza_bytes;	/* names, attributes and text so far */
	long long fed;		/* bytes given to this parser */
	long long mark;		/* where the current stanza may begin */
	struct lexer lex;
	unsigned *ns_counts;	/* declarations made at each open level */
	size_t ns_cap;
	unsigned ns_total;	/* declarations in scope */
	struct name names[NAME_CACHE];
};

static size_t lex_text(struct lexer *lx, const char *p, size_t i, size_t len)
{
	const char *lt = memchr(p + i, '<', len - i);
	if (lt == NULL) {
		return len;
	}
	lx->state = LEX_LT;
	return (size_t)(lt - p) + 1;
}

static size_t lex_lt(struct lexer *lx, const char *p, size_t i)
{
	lx->n = 0;
	if (p[i] == '!') {
		lx->state = LEX_BANG;
		return i + 1;
	}
	lx->state = LEX_TAG;
	return i;
}

/* The bytes lex_tag stops at. */
static const bool tag_stop[256] = {
	['"'] = true, ['\''] = true, ['>'] = true, ['='] = true,
};

/* Stops at the '=' of one attribute too many, leaving state as is. */
static size_t lex_tag(struct lexer *lx, const char *p, size_t i, size_t len)
{
	for (; i < len; i++) {
		if (!tag_stop[(unsigned char)p[i]]) {
			continue;
		}
		if (p[i] == '"' || p[i] == '\'') {
			lx->state = LEX_QUOTE;
			lx->quote = p[i];
			return i + 1;
		}
		if (p[i] == '>') {
			lx->state = LEX_TEXT;
			return i + 1;
		}
		if (p[i] == '=' && ++lx->n > MAX_ATTRS) {
			return i;
		}
	}
	return len;
}

static size_t lex_quote(struct lexer *lx, const char *p, size_t i, size_t len)
{
	const char *q = memchr(p + i, lx->quote, len - i);
	if (q == NULL) {
		return len;
	}
	lx->state = LEX_TAG;
	return (size_t)(q - p) + 1;
}

static size_t lex_bang(struct lexer *lx, const char *p, size_t i)
{
	static const char cdata[] = "[CDATA[";
	if (p[i] != cdata[lx->n]) {
		lx->state = LEX_OFF;
	} else if (++lx->n == sizeof(cdata) - 1) {
		lx->state = LEX_CDATA;
		lx->n = 0;
	}
	return i + 1;
}

static size_t lex_cdata(struct lexer *lx, const char *p, size_t i)
{
	if (p[i] == ']') {
		lx->n++;
	} else if (p[i] == '>' && lx->n >= 2) {
		lx->state = LEX_TEXT;
	} else {
		lx->n = 0;
	}
	return i + 1;
}

/* How many of the len bytes at p can go to libxml2 before a tag has more
 * than MAX_ATTRS attributes (len when none has). */
static size_t lex(struct lexer *lx, const char *p, size_t len)
{
	size_t i = 0;
	while (i < len) {
		size_t next = i;
		switch (lx->state) {
		case LEX_TEXT:
			next = lex_text(lx, p, i, len);
			break;
		case LEX_LT:
			next = lex_lt(lx, p, i);
			break;
		case LEX_TAG:
			next = lex_tag(lx, p, i, len);
			break;
		case LEX_QUOTE:
			next = lex_quote(lx, p, i, len);
			break;
		case LEX_BANG:
			next = lex_bang(lx, p, i);
			break;
		case LEX_CDATA:
			next = lex_cdata(lx, p, i);
			break;
		case LEX_OFF:
			return len;
		}
		if (lx->state == LEX_TAG && lx->n > MAX_ATTRS) {
			return next;
		}
		i = next;
	}
	return len;
}

static xmlParserInputPtr no_entity_loader(const char *url, const char *id,
	xmlParserCtxtPtr ctxt)
{
	return NULL;
}

static void init_library(void)
{
	static bool done;
	if (done) {
		return;
	}
	xmlInitParser();
	xmlSetExternalEntityLoader(no_entity_loader);
	done = true;
}

/* The last tree built is gone: its arena is reused, unless a callback
 * kept part of it (an unlinked subtree), which then keeps that arena. */
static void recycle(struct reader *r)
{
	if (!xml_arena_rewind(r->arena)) {
		xml_arena_release(r->arena);
		r->arena = xml_arena_new(0);
	}
}

/* Records an error found while libxml2 is running (the first one wins)
 * and stops the parser, also when libxml2's own error came first. */
static void fail(struct reader *r, const char *condition, const char *text)
{
	if (r->parsing && r->ctxt != NULL && !r->stopped) {
		xmlStopParser(r->ctxt);
		r->stopped = true;
	}
	if (r->failed) {
		return;
	}
	r->failed = true;
	r->condition = condition;
	r->errtext = xstrdup(text);
}

/* True when callbacks must do nothing: failed, stopped or restarting. */
static bool idle(const struct reader *r)
{
	return r->failed || r->stopped;
}

static bool add_bytes(struct reader *r, size_t n)
{
	r->stanza_bytes += n;
	if (r->stanza_bytes > r->max_stanza) {
		fail(r, "policy-violation", "stanza too large");
		return false;
	}
	return true;
}

/* A stanza ended or the stream opened: the next stanza starts here. */
static void set_mark(struct reader *r)
{
	long pos = xmlByteConsumed(r->ctxt);
	r->mark = pos >= 0 ? pos : r->fed;
}

static bool is_space(const xmlChar *s, int len)
{
	for (int i = 0; i < len; i++) {
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') {
			return false;
		}
	}
	return true;
}

static void on_text(void *ud, const xmlChar *s, int len)
{
	struct reader *r = ud;
	if (idle(r) || len <= 0) {
		return;
	}
	if (r->cur == NULL) {
		if (!is_space(s, len)) {
			fail(r, "bad-format", "text outside of stanzas");
		} else if (r->depth == 1) {
			set_mark(r);	/* keepalives do not count */
		}
		return;
	}
	if (add_bytes(r, (size_t)len)) {
		xml_add_text(r->cur, (const char *)s, (size_t)len);
	}
}

/* libxml2 2.9 lets overlong UTF-8 sequences through in CDATA sections
 * (its other paths refuse them, and it checks code points everywhere).
 * Continuation bytes never equal these lead bytes, so any position may
 * be tested. */
static bool has_overlong(const xmlChar *s, int len)
{
	for (int i = 0; i < len; i++) {
		if (s[i] == 0xc0 || s[i] == 0xc1) {
			return true;
		}
		if (i + 1 < len && ((s[i] == 0xe0 && s[i + 1] < 0xa0) ||
				(s[i] == 0xf0 && s[i + 1] < 0x90))) {
			return true;
		}
	}
	return false;
}

static void on_cdata(void *ud, const xmlChar *s, int len)
{
	if (has_overlong(s, len)) {
		fail(ud, "not-well-formed", "invalid UTF-8 in a CDATA section");
		return;
	}
	on_text(ud, s, len);
}

/* Names, attribute names and namespaces common in XMPP stanzas. */
static const char *const common_names[] = {
	"message", "body", "iq", "presence", "from", "to", "id", "type",
	"query", "item", "x", "show", "status", "priority", "thread",
	"subject", "delay", "stamp", "error", "text", "origin-id",
	"stanza-id", "by", "active", "composing", "paused", "request",
	"received", "markable", "displayed", "result", "forwarded", "sent",
	"c", "node", "ver", "hash", "jid", "name", "subscription", "ask",
	"code", "role", "affiliation", "queryid", "nick", "lang",
	NS_CLIENT, NS_STANZA_ERRORS, NS_SM, NS_XML, NS_PING, NS_DISCO_INFO,
	NS_ROSTER, NS_DELAY, NS_SID, NS_RECEIPTS, NS_CHATSTATES, NS_CARBONS,
	NS_FORWARD, NS_HINTS, NS_CORRECT, NS_CAPS, NS_MUC, NS_MUC_USER,
	NS_MAM, NS_RSM,
};

static const char *find_common(const char *s)
{
	for (size_t i = 0; i < sizeof(common_names) / sizeof(*common_names);
			i++) {
		if (strcmp(common_names[i], s) == 0) {
			return common_names[i];
		}
	}
	return NULL;
}

/* A miss, out of line so that a hit costs a few instructions. */
static __attribute__((noinline)) void fill_name(struct name *e,
	const xmlChar *s)
{
	e->key = s;
	e->len = strlen((const char *)s);
	e->common = find_common((const char *)s);
}

/* The cache entry of libxml2's string s, filled on a miss. */
static inline const struct name *lookup_name(struct reader *r,
	const xmlChar *s)
{
	uint64_t h = (uint64_t)(uintptr_t)s * 0x9e3779b97f4a7c15ULL;
	struct name *e = &r->names[h >> 58];	/* NAME_CACHE is 2^6 */
	if (e->key != s) {
		fill_name(e, s);
	}
	return e;
}

/* Name s as the tree keeps it: static if common, else in the arena. */
static char *tree_name(struct reader *r, const xmlChar *s)
{
	const struct name *e = lookup_name(r, s);
	if (e->common != NULL) {
		return (char *)e->common;
	}
	return xml_arena_strndup(r->arena, (const char *)s, e->len);
}

static void forget_names(struct reader *r)
{
	memset(r->names, 0, sizeof(r->names));
}

/* With options 0 libxml2 hands "&amp;" (and "&#38;") in attribute values,
 * namespace URIs included, on as "&#38;"; a raw "&" cannot occur there,
 * so every "&" starts one. Returns a new string in the arena. */
static char *decode_amp(struct xml_arena *a, const xmlChar *v, size_t len)
{
	if (memchr(v, '&', len) == NULL) {
		return xml_arena_strndup(a, (const char *)v, len);	/* nearly always */
	}
	char *out = xml_arena_alloc(a, len + 1);
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		out[o++] = (char)v[i];
		if (v[i] == '&' && len - i >= 5 && memcmp(v + i, "&#38;", 5) == 0) {
			i += 4;
		}
	}
	out[o] = '\0';
	return out;
}

static char *decode_uri(struct reader *r, const xmlChar *uri)
{
	if (uri == NULL) {
		return "";
	}
	const struct name *e = lookup_name(r, uri);
	if (e->common != NULL) {
		return (char *)e->common;	/* holds no "&" */
	}
	return decode_amp(r->arena, uri, e->len);
}

/* Stores attribute i of a SAX2 attribute array (5-tuples: localname,
 * prefix, URI, value, value end) under its local name, or "xml:" + name
 * in the XML namespace. Other namespaced attributes are dropped: the tree
 * keeps unprefixed names only. */
static void add_attr(struct reader *r, struct xml *x, const xmlChar **a)
{
	const char *uri = (const char *)a[2];
	char *name;
	if (uri == NULL) {
		name = tree_name(r, a[0]);
	} else if (strcmp(uri, NS_XML) == 0) {
		const struct name *e = lookup_name(r, a[0]);
		if (e->common != NULL && strcmp(e->common, "lang") == 0) {
			name = "xml:lang";
		} else {
			name = xml_arena_alloc(x->arena, e->len + 5);
			memcpy(name, "xml:", 4);
			memcpy(name + 4, a[0], e->len + 1);
		}
	} else {
		return;
	}
	x->attrs[x->nattrs].name = name;
	x->attrs[x->nattrs].value = decode_amp(x->arena, a[3],
		(size_t)(a[4] - a[3]));
	x->nattrs++;
}

static size_t attr_bytes(struct reader *r, const xmlChar **a)
{
	return lookup_name(r, a[0])->len + (size_t)(a[4] - a[3]);
}

static struct xml *new_element(struct reader *r, const xmlChar *name,
	const xmlChar *uri, int nattrs, const xmlChar **attrs)
{
	size_t n = lookup_name(r, name)->len;
	n += uri != NULL ? lookup_name(r, uri)->len : 0;
	for (int i = 0; i < nattrs; i++) {
		n += attr_bytes(r, attrs + 5 * i);
	}
	if (!add_bytes(r, n)) {
		return NULL;
	}
	struct xml_arena *a = r->arena;
	struct xml *x = xml_arena_element(a, tree_name(r, name),
		decode_uri(r, uri));
	if (nattrs > 0) {
		x->attrs = xml_arena_alloc(a, (size_t)nattrs * sizeof(*x->attrs));
		x->attrcap = (size_t)nattrs;
	}
	for (int i = 0; i < nattrs; i++) {
		add_attr(r, x, attrs + 5 * i);
	}
	return x;
}

/* The stream header: checks the root and reports its attributes, with
 * the default namespace it declares as "xmlns". */
static void open_stream(struct reader *r, const xmlChar *name,
	const xmlChar *uri, int nns, const xmlChar **ns, int nattrs,
	const xmlChar **attrs)
{
	if (uri == NULL || strcmp((const char *)uri, NS_STREAMS) != 0) {
		fail(r, "invalid-namespace", "stream root not in the streams namespace");
		return;
	}
	if (strcmp((const char *)name, "stream") != 0) {
		fail(r, "bad-format", "stream root is not <stream>");
		return;
	}
	struct xml *h = new_element(r, name, uri, nattrs, attrs);
	if (h == NULL) {
		return;
	}
	for (int i = 0; i < nns; i++) {
		if (ns[2 * i] == NULL && ns[2 * i + 1] != NULL) {
			xml_set_attr(h, "xmlns", decode_uri(r, ns[2 * i + 1]));
		}
	}
	r->stanza_bytes = 0;
	set_mark(r);
	r->mark++;	/* libxml2 is still at the header's closing '>' */
	if (r->cb->stream_open != NULL) {
		r->cb->stream_open(r->ud, h);
	}
	xml_free(h);
	recycle(r);
}

/* Counts the namespace declarations in scope, popped again by pop_ns. */
static bool push_ns(struct reader *r, unsigned level, int nns)
{
	r->ns_counts = xgrow(r->ns_counts, &r->ns_cap, (size_t)level + 1,
		sizeof(*r->ns_counts));
	r->ns_counts[level] = (unsigned)nns;
	r->ns_total += (unsigned)nns;
	if (r->ns_total > MAX_NS_IN_SCOPE) {
		fail(r, "policy-violation", "too many namespace declarations");
		return false;
	}
	return true;
}

static void pop_ns(struct reader *r, unsigned level)
{
	r->ns_total -= r->ns_counts[level];
}

static void on_start(void *ud, const xmlChar *name, const xmlChar *prefix,
	const xmlChar *uri, int nns, const xmlChar **ns, int nattrs,
	int ndefaulted, const xmlChar **attrs)
{
	struct reader *r = ud;
	if (idle(r)) {
		return;
	}
	unsigned level = r->depth++;
	if (!push_ns(r, level, nns)) {
		return;
	}
	if (level == 0) {
		open_stream(r, name, uri, nns, ns, nattrs, attrs);
		return;
	}
	if (level > r->max_depth) {
		fail(r, "policy-violation", "stanza nested too deep");
		return;
	}
	if (uri != NULL && strcmp((const char *)uri, NS_XML) == 0) {
		fail(r, "bad-format", "element in the XML namespace");
		return;
	}
	struct xml *x = new_element(r, name, uri, nattrs, attrs);
	if (x == NULL) {
		return;
	}
	if (r->cur == NULL) {
		r->stanza = x;
	} else {
		xml_append(r->cur, x);
	}
	r->cur = x;
}

/* Hands the finished stanza up; the reader frees it afterwards. Its raw
 * size is checked here too, so the outcome does not depend on how the
 * bytes were split into feeds. */
static void deliver(struct reader *r)
{
	long long start = r->mark;
	set_mark(r);
	if ((uint64_t)(r->mark - start) > r->max_stanza) {
		fail(r, "policy-violation", "stanza too large");
		return;
	}
	struct xml *s = r->stanza;
	r->stanza = NULL;
	r->cur = NULL;
	r->stanza_bytes = 0;
	if (r->cb->stanza != NULL) {
		r->cb->stanza(r->ud, s);
	}
	xml_free(s);
	recycle(r);
}

static void on_end(void *ud, const xmlChar *name, const xmlChar *prefix,
	const xmlChar *uri)
{
	struct reader *r = ud;
	if (idle(r) || r->depth == 0) {
		return;
	}
	unsigned level = --r->depth;
	pop_ns(r, level);
	if (level == 0) {
		if (r->cb->stream_close != NULL) {
			r->cb->stream_close(r->ud);
		}
		return;
	}
	if (level == 1) {
		deliver(r);
	} else {
		r->cur = r->cur->parent;
	}
}

static void refuse(void *ud, const char *what)
{
	fail(ud, "restricted-xml", what);
}

static void on_internal_subset(void *ud, const xmlChar *name,
	const xmlChar *ext, const xmlChar *sys)
{
	refuse(ud, "DTD refused");
}

static void on_entity_decl(void *ud, const xmlChar *name, int type,
	const xmlChar *pub, const xmlChar *sys, xmlChar *content)
{
	refuse(ud, "entity declaration refused");
}

static xmlEntityPtr on_get_entity(void *ud, const xmlChar *name)
{
	refuse(ud, "entity reference refused");
	return NULL;
}

static xmlParserInputPtr on_resolve_entity(void *ud, const xmlChar *pub,
	const xmlChar *sys)
{
	refuse(ud, "external entity refused");
	return NULL;
}

static void on_reference(void *ud, const xmlChar *name)
{
	refuse(ud, "entity reference refused");
}

static void on_comment(void *ud, const xmlChar *value)
{
	refuse(ud, "comment refused");
}

static void on_pi(void *ud, const xmlChar *target, const xmlChar *data)
{
	refuse(ud, "processing instruction refused");
}

/* RFC 6120 11.6: UTF-8 only; XML 1.0 only. */
static void on_start_document(void *ud)
{
	struct reader *r = ud;
	xmlParserCtxtPtr c = r->ctxt;
	if (idle(r)) {
		return;
	}
	bool transcoding = c->input != NULL && c->input->buf != NULL &&
		c->input->buf->encoder != NULL;
	const char *enc = (const char *)c->encoding;
	if (transcoding || (enc != NULL && strcasecmp(enc, "UTF-8") != 0)) {
		fail(r, "unsupported-encoding", "encoding other than UTF-8");
		return;
	}
	if (c->version != NULL && strcmp((const char *)c->version, "1.0") != 0) {
		fail(r, "bad-format", "XML version other than 1.0");
	}
}

/* libxml2's own errors: recorded, reported once parsing returns.
 * Warnings (such as a relative namespace URI) are ignored. */
static void on_error(void *ud, xmlErrorPtr e)
{
	struct reader *r = ud;
	if (e == NULL || e->level < XML_ERR_ERROR || idle(r)) {
		return;
	}
	const char *msg = e->message != NULL ? e->message : "parse error";
	size_t len = strcspn(msg, "\n");
	while (len > 0 && msg[len - 1] == ' ') {
		len--;
	}
	char *text = xstrndup(msg, len);
	r->failed = true;
	r->condition = "not-well-formed";
	r->errtext = text;
}

static xmlSAXHandler sax_handler = {
	.internalSubset = on_internal_subset,
	.externalSubset = on_internal_subset,
	.entityDecl = on_entity_decl,
	.getEntity = on_get_entity,
	.getParameterEntity = on_get_entity,
	.resolveEntity = on_resolve_entity,
	.reference = on_reference,
	.comment = on_comment,
	.processingInstruction = on_pi,
	.startDocument = on_start_document,
	.characters = on_text,
	.ignorableWhitespace = on_text,
	.cdataBlock = on_cdata,
	.startElementNs = on_start,
	.endElementNs = on_end,
	.serror = on_error,
	.initialized = XML_SAX2_MAGIC,
};

static void start_parser(struct reader *r)
{
	init_library();
	r->ctxt = xmlCreatePushParserCtxt(&sax_handler, r, NULL, 0, NULL);
	if (r->ctxt == NULL) {
		abort();	/* only fails when out of memory */
	}
	xmlCtxtUseOptions(r->ctxt, XML_PARSE_NONET);
	forget_names(r);
	r->fed = 0;
	r->mark = 0;
}

/* Drops the parser and everything it was building. */
static void drop_parser(struct reader *r)
{
	if (r->ctxt != NULL) {
		xmlFreeParserCtxt(r->ctxt);
		r->ctxt = NULL;
	}
	xml_free(r->stanza);
	recycle(r);
	r->stanza = NULL;
	r->cur = NULL;
	r->depth = 0;
	r->ns_total = 0;
	r->stanza_bytes = 0;
	memset(&r->lex, 0, sizeof(r->lex));
	r->stopped = false;
	r->restart = false;
}

/* A new reader; cb must outlive it, limits may be NULL. */
struct reader *reader_new(const struct reader_cb *cb, void *ud,
	const struct reader_limits *limits)
{
	struct reader *r = xcalloc(1, sizeof(*r));
	r->cb = cb;
	r->ud = ud;
	r->max_stanza = DEFAULT_MAX_STANZA;
	r->max_depth = DEFAULT_MAX_DEPTH;
	if (limits != NULL && limits->max_stanza > 0) {
		r->max_stanza = limits->max_stanza;
	}
	if (limits != NULL && limits->max_depth > 0) {
		r->max_depth = limits->max_depth;
	}
	r->arena = xml_arena_new(0);
	return r;
}

/* Frees r and its parser; accepts NULL. */
void reader_free(struct reader *r)
{
	if (r == NULL) {
		return;
	}
	drop_parser(r);
	xml_arena_release(r->arena);
	free(r->ns_counts);
	free(r->errtext);
	free(r);
}

static void parse(struct reader *r, const char *data, size_t len)
{
	r->fed += (long long)len;
	r->parsing = true;
	int rc = xmlParseChunk(r->ctxt, data, (int)len, 0);
	r->parsing = false;
	if (rc != 0 && !r->stopped && !r->failed) {
		const xmlError *e = xmlCtxtGetLastError(r->ctxt);
		on_error(r, (xmlErrorPtr)e);
		if (!r->failed) {
			fail(r, "not-well-formed", "parse error");
		}
	}
	if (!idle(r) && (uint64_t)(r->fed - r->mark) > r->max_stanza) {
		fail(r, "policy-violation", "stanza too large");
	}
}

static void feed_slice(struct reader *r, const char *data, size_t len)
{
	size_t ok = lex(&r->lex, data, len);
	if (ok > 0) {
		parse(r, data, ok);
	}
	if (ok < len && !idle(r)) {
		fail(r, "policy-violation", "too many attributes");
	}
}

/* Calls the error callback for the error recorded while parsing. */
static void report(struct reader *r)
{
	drop_parser(r);
	if (r->cb->error != NULL) {
		r->cb->error(r->ud, r->condition, r->errtext);
	}
}

/* Feeds len bytes; false once the stream has failed. */
bool reader_feed(struct reader *r, const char *data, size_t len)
{
	if (r->failed) {
		return false;
	}
	if (r->parsing) {
		return true;	/* not from a callback: ignored */
	}
	if (r->ctxt == NULL) {
		start_parser(r);
	}
	while (len > 0 && !idle(r)) {
		size_t n = len < SLICE ? len : SLICE;
		feed_slice(r, data, n);
		data += n;
		len -= n;
	}
	if (r->failed) {
		report(r);
		return false;
	}
	if (r->restart) {
		drop_parser(r);
	}
	return true;
}

/* Stops the current parser (at once, even from a callback); the next
 * reader_feed() starts a new stream with a fresh parser. */
void reader_restart(struct reader *r)
{
	if (r->parsing) {
		xmlStopParser(r->ctxt);
		r->stopped = true;
		r->restart = true;
		return;
	}
	drop_parser(r);
}

/* True once the reader has reported an error. */
bool reader_failed(const struct reader *r)
{
	return r->failed;
}

/*
 * reader_parse_element() runs a private reader over the string wrapped in
 * a synthetic stream header and close tag, and keeps a copy of the single
 * stanza it yields.
 */
struct one {
	struct xml *element;
	int count;
	bool closed;
	const char *condition;
};

static void one_stanza(void *ud, struct xml *stanza)
{
	struct one *o = ud;
	if (++o->count == 1) {
		o->element = xml_copy(stanza);
	}
}

static void one_close(void *ud)
{
	struct one *o = ud;
	o->closed = true;
}

static void one_error(void *ud, const char *condition, const char *text)
{
	struct one *o = ud;
	o->condition = condition;
}

static const struct reader_cb one_cb = {
	.stanza = one_stanza,
	.stream_close = one_close,
	.error = one_error,
};

static const char *one_message(const char *condition)
{
	if (condition == NULL) {
		return "not well-formed XML";
	}
	if (strcmp(condition, "restricted-xml") == 0) {
		return "restricted XML (DTD, entity, comment or PI)";
	}
	if (strcmp(condition, "policy-violation") == 0) {
		return "element too large or too deep";
	}
	if (strcmp(condition, "bad-format") == 0) {
		return "text outside the element";
	}
	return "not well-formed XML";
}

static bool feed_header(struct reader *r, const char *default_ns)
{
	struct buf h;
	buf_init(&h);
	buf_puts(&h, "<stream:stream");
	if (default_ns != NULL) {
		buf_puts(&h, " xmlns=\"");
		if (!xml_escape(&h, default_ns, strlen(default_ns))) {
			buf_finish(&h);
			return false;
		}
		buf_putc(&h, '"');
	}
	buf_puts(&h, " xmlns:stream=\"" NS_STREAMS "\">");
	bool ok = reader_feed(r, h.data, h.len);
	buf_finish(&h);
	return ok;
}

static const char *check_one(const struct one *o, bool ok)
{
	if (!ok || o->condition != NULL) {
		return one_message(o->condition);
	}
	if (o->count == 0) {
		return "no element";
	}
	if (o->count > 1) {
		return "more than one element";
	}
	if (!o->closed) {
		return "not well-formed XML";
	}
	return NULL;
}

/* Parses exactly one element from s (len bytes); NULL and a static *err
 * on failure. */
struct xml *reader_parse_element(const char *s, size_t len,
	const char *default_ns, const char **err)
{
	struct one o = { 0 };
	struct reader *r = reader_new(&one_cb, &o, NULL);
	const char *e = "invalid default namespace";
	if (feed_header(r, default_ns)) {
		bool ok = reader_feed(r, s, len) &&
			reader_feed(r, "</stream:stream>", 16);
		e = check_one(&o, ok);
	}
	reader_free(r);
	if (e != NULL) {
		xml_free(o.element);
		if (err != NULL) {
			*err = e;
		}
		return NULL;
	}
	return o.element;
}
