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

#endif
