/*
 * The XML element type: a tree of element and text nodes, built by the
 * stream reader or by code that composes outgoing stanzas, and turned back
 * into bytes by the serializer.
 *
 * Each element carries its namespace URI (ns). Attribute names are stored
 * as written without a prefix, except attributes in the XML namespace,
 * which are stored as "xml:lang" etc. The serializer writes an xmlns
 * declaration wherever an element's ns differs from its parent's (or from
 * the default namespace given for the root), so the tree never has to
 * think about prefixes.
 *
 * Ownership: a node owns its attributes and children. xml_free() frees a
 * node and everything below it; freeing a node that is still linked into a
 * parent is a bug. Strings passed in are copied.
 *
 * Arenas: the stream reader builds each stanza in a struct xml_arena, one
 * block (or a few chained) freed at once instead of a malloc per node,
 * name, attribute and text. Users need not care: every function here
 * works on arena nodes too (new nodes added below an arena node, and
 * values set on it, are allocated in its arena), and xml_free() of an
 * arena tree gives the arena back once no tree holds it. Nodes can be
 * moved between trees of any kind with xml_unlink()/xml_append(); an
 * unlinked arena subtree keeps its arena alive until it is freed itself.
 * xml_copy() always makes an ordinary heap tree.
 */
#ifndef XMPPD_PROTO_XML_H
#define XMPPD_PROTO_XML_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/buf.h"

enum xml_kind {
	XML_ELEMENT,
	XML_TEXT,
};

struct xml_attr {
	char *name;
	char *value;
};

struct xml_arena;

struct xml {
	enum xml_kind kind;
	char *name;		/* element: local name; text: NULL */
	char *ns;		/* element: namespace URI, or NULL to inherit the
				 * parent's (the serializer writes no xmlns) */
	char *text;		/* text: content (UTF-8, unescaped) */
	size_t text_len;
	struct xml_attr *attrs;
	size_t nattrs;
	size_t attrcap;
	struct xml *parent;
	struct xml *children;	/* first child */
	struct xml *last;	/* last child */
	struct xml *next;	/* next sibling */
	struct xml_arena *arena;	/* where the node lives; NULL: the heap */
};

/* A new element with no attributes or children; ns may be NULL. */
struct xml *xml_new(const char *name, const char *ns);
/* A new text node holding len bytes of text. */
struct xml *xml_new_text(const char *text, size_t len);
/* Frees a node and its subtree; accepts NULL. */
void xml_free(struct xml *x);
/* A deep copy. */
struct xml *xml_copy(const struct xml *x);

/* Sets (or replaces) an attribute; value NULL removes it. */
void xml_set_attr(struct xml *x, const char *name, const char *value);
/* The attribute's value, or NULL. The string lives as long as the node. */
const char *xml_attr(const struct xml *x, const char *name);

/* Appends child to parent and returns child (ownership passes). */
struct xml *xml_append(struct xml *parent, struct xml *child);
/* Unlinks child from its parent; the caller owns it afterwards. */
void xml_unlink(struct xml *child);
/* Appends a new element child and returns it. */
struct xml *xml_add(struct xml *parent, const char *name, const char *ns);
/* Appends a new element child holding text, and returns it. */
struct xml *xml_add_text_child(struct xml *parent, const char *name,
	const char *ns, const char *text);
/* Appends text to parent (merged into a trailing text node). */
void xml_add_text(struct xml *parent, const char *text, size_t len);

/* The first element child with this name and ns; either may be NULL for
 * "any". */
struct xml *xml_child(const struct xml *x, const char *name, const char *ns);
/* Element children only. */
struct xml *xml_first_element(const struct xml *x);
struct xml *xml_next_element(const struct xml *x);
/* The concatenated text of x's direct text children; caller frees. */
char *xml_text(const struct xml *x);
/* The text of the first child (name, ns); caller frees; NULL if absent. */
char *xml_child_text(const struct xml *x, const char *name, const char *ns);

/*
 * Appends the serialized element to out. parent_ns is the namespace in
 * scope where the element is written (for a stanza in a client stream
 * "jabber:client"); an xmlns attribute is emitted when x->ns differs.
 * Text and attribute values are escaped (&, <, >, ", ' and "]]>" cannot
 * appear raw). Returns false, leaving out as it was, if any name or value
 * is not valid UTF-8 or holds a character XML 1.0 forbids (control
 * characters other than tab, CR, LF).
 */
bool xml_serialize(const struct xml *x, const char *parent_ns, struct buf *out);
/* xml_serialize into a new string (free() it), or NULL. */
char *xml_to_string(const struct xml *x, const char *parent_ns);

/* Appends s escaped for text/attribute content; false if s is not valid
 * XML character data (see xml_serialize). */
bool xml_escape(struct buf *out, const char *s, size_t len);

/*
 * Arenas, for code that builds many short-lived trees (proto/reader.c).
 * The creator holds one reference; each tree (or unlinked subtree) in the
 * arena holds another, dropped by xml_free().
 */
/* A new arena; its first block holds size bytes (0: a default). */
struct xml_arena *xml_arena_new(size_t size);
/* Drops the creator's reference; the arena goes with its last tree. */
void xml_arena_release(struct xml_arena *a);
/* Makes all of the arena's memory free for reuse and returns true, if
 * no tree holds it any more; otherwise changes nothing and returns false. */
bool xml_arena_rewind(struct xml_arena *a);
/* len bytes of s and a NUL, copied into the arena. */
char *xml_arena_strndup(struct xml_arena *a, const char *s, size_t len);
/* size bytes in the arena, aligned for any field of struct xml. */
void *xml_arena_alloc(struct xml_arena *a, size_t size);
/* A new element in the arena, not linked anywhere. name and ns are NOT
 * copied: they must live in the arena or be static. */
struct xml *xml_arena_element(struct xml_arena *a, const char *name,
	const char *ns);

#endif
