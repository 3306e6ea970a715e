/*
 * The XML element tree and its serializer.
 *
 * Siblings form a singly linked list (children/next) with a pointer to the
 * last child, so appending is O(1). The serializer makes one pass over each
 * string: a 256-entry table classifies every byte as safe ASCII, a byte to
 * escape, a forbidden control character or the start of a multi-byte UTF-8
 * sequence (validated on the spot), and runs of safe bytes are appended in
 * one go. On any invalid input the output buffer is cut back to its old
 * length, so a failed serialization leaves no half-written stanza behind.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "proto/alloc.h"
#include "proto/xml.h"

/* Byte classes for the escaping tables. */
enum {
	C_SAFE,		/* copied as is */
	C_ESC,		/* replaced by a reference */
	C_BAD,		/* never allowed (C0 controls) */
	C_UTF8,		/* lead byte of a multi-byte sequence, or invalid */
};

static unsigned char text_class[256];
static unsigned char attr_class[256];
static bool tables_ready;

static void init_tables(void)
{
	for (int c = 0; c < 256; c++) {
		unsigned char cls = C_SAFE;
		if (c < 0x20) {
			cls = C_BAD;
		} else if (c >= 0x80) {
			cls = C_UTF8;
		}
		text_class[c] = cls;
		attr_class[c] = cls;
	}
	text_class['\t'] = C_SAFE;
	text_class['\n'] = C_SAFE;
	text_class['\r'] = C_ESC;	/* parsers turn a raw CR into LF */
	text_class['&'] = C_ESC;
	text_class['<'] = C_ESC;
	text_class['>'] = C_ESC;	/* covers "]]>" */
	attr_class['\t'] = C_ESC;	/* attribute normalization would */
	attr_class['\n'] = C_ESC;	/* turn these into spaces */
	attr_class['\r'] = C_ESC;
	attr_class['&'] = C_ESC;
	attr_class['<'] = C_ESC;
	attr_class['>'] = C_ESC;
	attr_class['"'] = C_ESC;
	attr_class['\''] = C_ESC;
	tables_ready = true;
}

static const char *reference(unsigned char c)
{
	switch (c) {
	case '&':
		return "&amp;";
	case '<':
		return "&lt;";
	case '>':
		return "&gt;";
	case '"':
		return "&quot;";
	case '\'':
		return "&apos;";
	case '\t':
		return "&#9;";
	case '\n':
		return "&#10;";
	default:
		return "&#13;";
	}
}

/*
 * The length of the UTF-8 sequence at p holding a character XML 1.0
 * allows, or 0 when the sequence is malformed, overlong, a surrogate,
 * beyond U+10FFFF, or U+FFFE/U+FFFF.
 */
static size_t utf8_char(const unsigned char *p, size_t avail)
{
	uint32_t cp;
	size_t n;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (avail < n) {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80) {
			return 0;
		}
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
			cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
			cp == 0xfffe || cp == 0xffff) {
		return 0;
	}
	return n;
}

/* Appends len bytes of s escaped by table; false on forbidden input
 * (out may then hold a partial result: callers cut it back). */
static bool escape(struct buf *out, const char *s, size_t len,
	const unsigned char *table)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t run = 0;
	size_t i = 0;
	while (i < len) {
		unsigned char cls = table[p[i]];
		if (cls == C_SAFE) {
			i++;
		} else if (cls == C_UTF8) {
			size_t n = utf8_char(p + i, len - i);
			if (n == 0) {
				return false;
			}
			i += n;
		} else if (cls == C_BAD) {
			return false;
		} else {
			buf_append(out, s + run, i - run);
			buf_puts(out, reference(p[i]));
			run = ++i;
		}
	}
	buf_append(out, s + run, len - run);
	return true;
}

static void cut_back(struct buf *out, size_t len)
{
	out->len = len;
	if (out->data != NULL) {
		out->data[len] = '\0';
	}
}

/* Appends s escaped for an attribute value (the strictest form, so also
 * right for text); false, leaving out as it was, on forbidden input. */
bool xml_escape(struct buf *out, const char *s, size_t len)
{
	if (!tables_ready) {
		init_tables();
	}
	size_t old = out->len;
	if (!escape(out, s, len, attr_class)) {
		cut_back(out, old);
		return false;
	}
	return true;
}

/* Name characters: ASCII letters, digits, "-", ".", "_" and any valid
 * non-ASCII character (a loose but safe reading of XML's NameChar). */
static bool is_name_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		c >= 0x80;
}

static bool is_name_char(unsigned char c)
{
	return is_name_start(c) || (c >= '0' && c <= '9') || c == '-' ||
		c == '.';
}

/* True if s is a name without a prefix that can be written unescaped. */
static bool valid_ncname(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s);
	if (len == 0 || !is_name_start(p[0])) {
		return false;
	}
	size_t i = 0;
	while (i < len) {
		if (!is_name_char(p[i])) {
			return false;
		}
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		size_t n = utf8_char(p + i, len - i);
		if (n == 0) {
			return false;
		}
		i += n;
	}
	return true;
}

static bool valid_attr_name(const char *s)
{
	if (strncmp(s, "xml:", 4) == 0) {
		return valid_ncname(s + 4);
	}
	return valid_ncname(s);
}

/* Namespace declarations are derived from ns; stored ones are skipped. */
static bool is_xmlns_attr(const char *name)
{
	return strcmp(name, "xmlns") == 0 || strncmp(name, "xmlns:", 6) == 0;
}

static bool put_attr(struct buf *out, const char *name, const char *value)
{
	buf_putc(out, ' ');
	buf_puts(out, name);
	buf_puts(out, "=\"");
	if (!escape(out, value, strlen(value), attr_class)) {
		return false;
	}
	buf_putc(out, '"');
	return true;
}

/* Namespaces that can never be a default namespace (Namespaces in XML
 * 1.0, section 3). */
static bool reserved_ns(const char *ns)
{
	return strcmp(ns, "http://www.w3.org/XML/1998/namespace") == 0 ||
		strcmp(ns, "http://www.w3.org/2000/xmlns/") == 0;
}

static bool put_start_tag(const struct xml *x, const char *scope,
	struct buf *out)
{
	if (!valid_ncname(x->name)) {
		return false;
	}
	buf_putc(out, '<');
	buf_puts(out, x->name);
	if (x->ns != NULL && reserved_ns(x->ns)) {
		return false;
	}
	if (x->ns != NULL && (scope == NULL || strcmp(x->ns, scope) != 0)) {
		if (!put_attr(out, "xmlns", x->ns)) {
			return false;
		}
	}
	for (size_t i = 0; i < x->nattrs; i++) {
		const struct xml_attr *a = &x->attrs[i];
		if (is_xmlns_attr(a->name)) {
			continue;
		}
		if (!valid_attr_name(a->name) || !put_attr(out, a->name, a->value)) {
			return false;
		}
	}
	return true;
}

static bool put_node(const struct xml *x, const char *scope, struct buf *out)
{
	if (x->kind == XML_TEXT) {
		return escape(out, x->text, x->text_len, text_class);
	}
	if (!put_start_tag(x, scope, out)) {
		return false;
	}
	if (x->children == NULL) {
		buf_puts(out, "/>");
		return true;
	}
	buf_putc(out, '>');
	const char *inner = x->ns != NULL ? x->ns : scope;
	for (const struct xml *c = x->children; c != NULL; c = c->next) {
		if (!put_node(c, inner, out)) {
			return false;
		}
	}
	buf_puts(out, "</");
	buf_puts(out, x->name);
	buf_putc(out, '>');
	return true;
}

/* Appends x serialized, declaring namespaces relative to parent_ns; false,
 * leaving out as it was, on a bad name or forbidden character. */
bool xml_serialize(const struct xml *x, const char *parent_ns, struct buf *out)
{
	if (!tables_ready) {
		init_tables();
	}
	size_t old = out->len;
	if (x == NULL || !put_node(x, parent_ns, out)) {
		cut_back(out, old);
		return false;
	}
	return true;
}

/* x serialized into a new string (caller frees), or NULL on bad input. */
char *xml_to_string(const struct xml *x, const char *parent_ns)
{
	struct buf b;
	buf_init(&b);
	if (!xml_serialize(x, parent_ns, &b)) {
		buf_finish(&b);
		return NULL;
	}
	return buf_steal(&b, NULL);
}

/* ---- arenas ----
 *
 * An arena is a bump allocator: its first block sits in the same
 * allocation as the arena, further blocks (each twice the last, up to
 * MAX_BLOCK, or as large as one request needs) are chained and freed on
 * rewind. refs counts the creator and every tree root in the arena (a
 * node whose parent is NULL or lives elsewhere); mixed says a node from
 * elsewhere was linked below one of its nodes, so freeing must look for
 * such nodes instead of just dropping the memory.
 */
#define DEFAULT_BLOCK 4096
#define MAX_BLOCK (64 * 1024)

/* Under AddressSanitizer the free part of each block is poisoned, so a
 * pointer kept into a stanza past its delivery (whose memory the next
 * stanza reuses) is reported like a use after free. */
#if defined(__SANITIZE_ADDRESS__)
#define ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_ASAN 1
#endif
#endif
#ifdef ARENA_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

struct block {
	struct block *next;
	size_t size;
};

struct xml_arena {
	char *pos;
	char *end;
	char *first;		/* the first block, after the arena itself */
	size_t first_size;
	size_t next_size;	/* the size of the next block */
	struct block *blocks;	/* further blocks, newest first */
	size_t refs;
	bool mixed;
};

/* A new arena; its first block holds size bytes (0: a default). */
struct xml_arena *xml_arena_new(size_t size)
{
	if (size == 0) {
		size = DEFAULT_BLOCK;
	}
	struct xml_arena *a = xmalloc(sizeof(*a) + size);
	a->first = (char *)(a + 1);
	a->first_size = size;
	a->pos = a->first;
	a->end = a->first + size;
	a->next_size = size;
	a->blocks = NULL;
	a->refs = 1;
	a->mixed = false;
	POISON(a->first, size);
	return a;
}

static void free_blocks(struct xml_arena *a)
{
	while (a->blocks != NULL) {
		struct block *b = a->blocks;
		a->blocks = b->next;
		free(b);
	}
}

static void unref(struct xml_arena *a)
{
	if (--a->refs == 0) {
		free_blocks(a);
		free(a);
	}
}

/* Drops the creator's reference; the arena goes with its last tree. */
void xml_arena_release(struct xml_arena *a)
{
	if (a != NULL) {
		unref(a);
	}
}

/* Rewinds the arena for reuse when only its creator holds it. */
bool xml_arena_rewind(struct xml_arena *a)
{
	if (a->refs != 1) {
		return false;
	}
	free_blocks(a);
	a->pos = a->first;
	a->end = a->first + a->first_size;
	a->next_size = a->first_size;
	a->mixed = false;
	POISON(a->first, a->first_size);
	return true;
}

/* Starts a new block able to hold need bytes. */
static void add_block(struct xml_arena *a, size_t need)
{
	size_t size = a->next_size;
	if (a->next_size < MAX_BLOCK) {
		a->next_size *= 2;
	}
	if (size < need) {
		size = need;
	}
	struct block *b = xmalloc(sizeof(*b) + size);
	b->next = a->blocks;
	b->size = size;
	a->blocks = b;
	a->pos = (char *)(b + 1);
	a->end = a->pos + size;
	POISON(a->pos, size);
}

/* size bytes with no alignment (strings). */
static char *bytes(struct xml_arena *a, size_t size)
{
	if ((size_t)(a->end - a->pos) < size) {
		add_block(a, size);
	}
	char *p = a->pos;
	a->pos += size;
	UNPOISON(p, size);
	return p;
}

/* size bytes in the arena, aligned for any field of struct xml. */
void *xml_arena_alloc(struct xml_arena *a, size_t size)
{
	size_t pad = (size_t)-(uintptr_t)a->pos & 7;
	if ((size_t)(a->end - a->pos) < size + pad) {
		add_block(a, size + 8);
		pad = (size_t)-(uintptr_t)a->pos & 7;
	}
	char *p = a->pos + pad;
	a->pos = p + size;
	UNPOISON(p, size);
	return p;
}

/* len bytes of s and a NUL, copied into the arena. */
char *xml_arena_strndup(struct xml_arena *a, const char *s, size_t len)
{
	char *p = bytes(a, len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/* p (old bytes, in a) grown to size bytes: in place when it is the last
 * allocation and the block has room, else copied to a block with room
 * for as much again, so text grown piece by piece costs O(1) per byte. */
static char *arena_grow(struct xml_arena *a, char *p, size_t old, size_t size)
{
	if (p + old == a->pos && (size_t)(a->end - p) >= size) {
		a->pos = p + size;
		UNPOISON(p, size);
		return p;
	}
	if ((size_t)(a->end - a->pos) < size) {
		add_block(a, 2 * size);	/* room to grow in place next time */
	}
	char *n = bytes(a, size);
	memcpy(n, p, old);
	return n;
}

static struct xml *arena_node(struct xml_arena *a, enum xml_kind kind)
{
	struct xml *x = xml_arena_alloc(a, sizeof(*x));
	memset(x, 0, sizeof(*x));
	x->kind = kind;
	x->arena = a;
	a->refs++;
	return x;
}

/* A new element in the arena; name and ns are not copied. */
struct xml *xml_arena_element(struct xml_arena *a, const char *name,
	const char *ns)
{
	struct xml *x = arena_node(a, XML_ELEMENT);
	x->name = (char *)name;
	x->ns = (char *)ns;
	return x;
}

static struct xml *arena_text(struct xml_arena *a, const char *text,
	size_t len)
{
	struct xml *x = arena_node(a, XML_TEXT);
	x->text = xml_arena_strndup(a, text, len);
	x->text_len = len;
	return x;
}

/* A copy of s where x's strings live: x's arena or the heap. */
static char *dup_for(const struct xml *x, const char *s)
{
	if (x->arena == NULL) {
		return xstrdup(s);
	}
	return xml_arena_strndup(x->arena, s, strlen(s));
}

static void free_string(const struct xml *x, char *s)
{
	if (x->arena == NULL) {
		free(s);
	}
}

/* ---- nodes ---- */

/* A new element with no attributes or children; ns may be NULL. */
struct xml *xml_new(const char *name, const char *ns)
{
	struct xml *x = xcalloc(1, sizeof(*x));
	x->kind = XML_ELEMENT;
	x->name = xstrdup(name);
	x->ns = ns != NULL ? xstrdup(ns) : NULL;
	return x;
}

/* A new text node holding a copy of len bytes of text. */
struct xml *xml_new_text(const char *text, size_t len)
{
	struct xml *x = xcalloc(1, sizeof(*x));
	x->kind = XML_TEXT;
	x->text = xstrndup(text != NULL ? text : "", text != NULL ? len : 0);
	x->text_len = text != NULL ? len : 0;
	return x;
}

static void free_node(struct xml *x)
{
	for (size_t i = 0; i < x->nattrs; i++) {
		free(x->attrs[i].name);
		free(x->attrs[i].value);
	}
	free(x->attrs);
	free(x->name);
	free(x->ns);
	free(x->text);
	free(x);
}

static void free_arena_tree(struct xml *x);

/* Frees the heap tree x without recursion, so depth costs no stack;
 * arena subtrees linked into it are handed to free_arena_tree. */
static void free_heap_tree(struct xml *x)
{
	struct xml *top = x;
	struct xml *cur = x;
	for (;;) {
		while (cur->children != NULL) {
			struct xml *c = cur->children;
			if (c->arena == NULL) {
				cur = c;
				continue;
			}
			cur->children = c->next;
			c->parent = NULL;
			free_arena_tree(c);
		}
		if (cur == top) {
			free_node(cur);
			return;
		}
		struct xml *parent = cur->parent;
		parent->children = cur->next;
		free_node(cur);
		cur = parent;
	}
}

/* Unlinks and frees the children of x that live outside arena a. */
static void drop_foreign_children(struct xml *x, struct xml_arena *a)
{
	struct xml *c = x->children;
	while (c != NULL) {
		struct xml *next = c->next;
		if (c->arena != a) {
			xml_unlink(c);
			xml_free(c);
		}
		c = next;
	}
}

/* Frees the nodes from elsewhere linked below top (preorder, no
 * recursion within the arena). */
static void drop_foreign(struct xml *top)
{
	struct xml *cur = top;
	for (;;) {
		drop_foreign_children(cur, top->arena);
		if (cur->children != NULL) {
			cur = cur->children;
			continue;
		}
		while (cur != top && cur->next == NULL) {
			cur = cur->parent;
		}
		if (cur == top) {
			return;
		}
		cur = cur->next;
	}
}

/* An arena tree root goes: its memory stays in the arena until the
 * arena's last reference is dropped (or the creator rewinds it). */
static void free_arena_tree(struct xml *x)
{
	if (x->arena->mixed) {
		drop_foreign(x);
	}
	unref(x->arena);
}

/* Frees x and its subtree; accepts NULL. */
void xml_free(struct xml *x)
{
	if (x == NULL) {
		return;
	}
	if (x->arena != NULL) {
		free_arena_tree(x);
	} else {
		free_heap_tree(x);
	}
}

static void copy_attrs(struct xml *dst, const struct xml *src)
{
	if (src->nattrs == 0) {
		return;
	}
	dst->attrs = xcalloc(src->nattrs, sizeof(*dst->attrs));
	dst->attrcap = src->nattrs;
	for (size_t i = 0; i < src->nattrs; i++) {
		dst->attrs[i].name = xstrdup(src->attrs[i].name);
		dst->attrs[i].value = xstrdup(src->attrs[i].value);
	}
	dst->nattrs = src->nattrs;
}

/* A deep copy of x, not linked to any parent. */
struct xml *xml_copy(const struct xml *x)
{
	if (x == NULL) {
		return NULL;
	}
	if (x->kind == XML_TEXT) {
		return xml_new_text(x->text, x->text_len);
	}
	struct xml *c = xml_new(x->name, x->ns);
	copy_attrs(c, x);
	for (const struct xml *k = x->children; k != NULL; k = k->next) {
		xml_append(c, xml_copy(k));
	}
	return c;
}

/* strcmp(a, b) == 0 for the short names and namespaces compared here:
 * an inline loop costs less than the call (most differ at once). */
static bool same(const char *a, const char *b)
{
	if (a == b) {
		return true;	/* the reader's static names, merged literals */
	}
	while (*a == *b) {
		if (*a == '\0') {
			return true;
		}
		a++;
		b++;
	}
	return false;
}

static ssize_t find_attr(const struct xml *x, const char *name)
{
	for (size_t i = 0; i < x->nattrs; i++) {
		if (same(x->attrs[i].name, name)) {
			return (ssize_t)i;
		}
	}
	return -1;
}

static void remove_attr(struct xml *x, size_t i)
{
	free_string(x, x->attrs[i].name);
	free_string(x, x->attrs[i].value);
	memmove(&x->attrs[i], &x->attrs[i + 1],
		(x->nattrs - i - 1) * sizeof(*x->attrs));
	x->nattrs--;
}

/* Room for one more attribute, on the heap or in x's arena. */
static void grow_attrs(struct xml *x)
{
	if (x->arena == NULL) {
		x->attrs = xgrow(x->attrs, &x->attrcap, x->nattrs + 1,
			sizeof(*x->attrs));
		return;
	}
	if (x->nattrs < x->attrcap) {
		return;
	}
	size_t cap = x->attrcap < 4 ? 4 : x->attrcap * 2;
	struct xml_attr *n = xml_arena_alloc(x->arena, cap * sizeof(*n));
	if (x->nattrs > 0) {
		memcpy(n, x->attrs, x->nattrs * sizeof(*n));
	}
	x->attrs = n;
	x->attrcap = cap;
}

/* Sets or replaces attribute name; a NULL value removes it. */
void xml_set_attr(struct xml *x, const char *name, const char *value)
{
	ssize_t i = find_attr(x, name);
	if (value == NULL) {
		if (i >= 0) {
			remove_attr(x, (size_t)i);
		}
		return;
	}
	char *v = dup_for(x, value);
	if (i >= 0) {
		free_string(x, x->attrs[i].value);
		x->attrs[i].value = v;
		return;
	}
	grow_attrs(x);
	x->attrs[x->nattrs].name = dup_for(x, name);
	x->attrs[x->nattrs].value = v;
	x->nattrs++;
}

/* The value of attribute name, or NULL; it lives as long as the node. */
const char *xml_attr(const struct xml *x, const char *name)
{
	if (x == NULL || x->kind != XML_ELEMENT) {
		return NULL;
	}
	ssize_t i = find_attr(x, name);
	return i >= 0 ? x->attrs[i].value : NULL;
}

/* Appends child as the last child of parent; returns child. */
struct xml *xml_append(struct xml *parent, struct xml *child)
{
	if (child->parent != NULL) {
		xml_unlink(child);
	}
	if (child->arena != NULL && child->arena == parent->arena) {
		child->arena->refs--;	/* no longer a root */
	} else if (parent->arena != NULL) {
		parent->arena->mixed = true;
	}
	child->parent = parent;
	child->next = NULL;
	if (parent->last != NULL) {
		parent->last->next = child;
	} else {
		parent->children = child;
	}
	parent->last = child;
	return child;
}

/* Unlinks child from its parent; the caller owns it afterwards. */
void xml_unlink(struct xml *child)
{
	struct xml *parent = child->parent;
	if (parent == NULL) {
		return;
	}
	struct xml *prev = NULL;
	struct xml *c = parent->children;
	while (c != NULL && c != child) {
		prev = c;
		c = c->next;
	}
	if (c == NULL) {
		return;
	}
	if (prev != NULL) {
		prev->next = child->next;
	} else {
		parent->children = child->next;
	}
	if (parent->last == child) {
		parent->last = prev;
	}
	child->parent = NULL;
	child->next = NULL;
	if (child->arena != NULL && child->arena == parent->arena) {
		child->arena->refs++;	/* a root of its own now */
	}
}

/* Appends a new element (name, ns) to parent and returns it. */
struct xml *xml_add(struct xml *parent, const char *name, const char *ns)
{
	struct xml_arena *a = parent->arena;
	if (a == NULL) {
		return xml_append(parent, xml_new(name, ns));
	}
	char *n = xml_arena_strndup(a, name, strlen(name));
	char *u = ns != NULL ? xml_arena_strndup(a, ns, strlen(ns)) : NULL;
	return xml_append(parent, xml_arena_element(a, n, u));
}

/* Appends a new element (name, ns) holding text to parent; returns it. */
struct xml *xml_add_text_child(struct xml *parent, const char *name,
	const char *ns, const char *text)
{
	struct xml *x = xml_add(parent, name, ns);
	if (text != NULL && text[0] != '\0') {
		xml_add_text(x, text, strlen(text));
	}
	return x;
}

/* Appends len bytes of text to parent, merged into a trailing text node. */
void xml_add_text(struct xml *parent, const char *text, size_t len)
{
	if (len == 0) {
		return;
	}
	struct xml *last = parent->last;
	if (last == NULL || last->kind != XML_TEXT) {
		struct xml *t = parent->arena != NULL ?
			arena_text(parent->arena, text, len) : xml_new_text(text, len);
		xml_append(parent, t);
		return;
	}
	if (last->arena != NULL) {
		last->text = arena_grow(last->arena, last->text,
			last->text_len + 1, last->text_len + len + 1);
	} else {
		last->text = xrealloc(last->text, last->text_len + len + 1);
	}
	memcpy(last->text + last->text_len, text, len);
	last->text_len += len;
	last->text[last->text_len] = '\0';
}

/* The first element child of x matching name and ns (NULL: any). */
struct xml *xml_child(const struct xml *x, const char *name, const char *ns)
{
	for (struct xml *c = xml_first_element(x); c != NULL;
			c = xml_next_element(c)) {
		if (name != NULL && !same(c->name, name)) {
			continue;
		}
		if (ns != NULL && (c->ns == NULL || !same(c->ns, ns))) {
			continue;
		}
		return c;
	}
	return NULL;
}

static struct xml *element_from(struct xml *c)
{
	while (c != NULL && c->kind != XML_ELEMENT) {
		c = c->next;
	}
	return c;
}

/* The first element child of x, or NULL. */
struct xml *xml_first_element(const struct xml *x)
{
	return x != NULL ? element_from(x->children) : NULL;
}

/* The next element sibling of x, or NULL. */
struct xml *xml_next_element(const struct xml *x)
{
	return x != NULL ? element_from(x->next) : NULL;
}

/* The concatenated direct text of x as a new string (caller frees). */
char *xml_text(const struct xml *x)
{
	struct buf b;
	buf_init(&b);
	if (x != NULL) {
		for (const struct xml *c = x->children; c != NULL; c = c->next) {
			if (c->kind == XML_TEXT) {
				buf_append(&b, c->text, c->text_len);
			}
		}
	}
	return buf_steal(&b, NULL);
}

/* The text of x's first child (name, ns) (caller frees), or NULL. */
char *xml_child_text(const struct xml *x, const char *name, const char *ns)
{
	struct xml *c = xml_child(x, name, ns);
	return c != NULL ? xml_text(c) : NULL;
}
