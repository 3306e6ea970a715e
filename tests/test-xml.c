/* Tests for proto/xml.c: the element tree, its builder and serializer. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/ns.h"
#include "proto/reader.h"
#include "proto/xml.h"

/* Serializes x and checks the result against want (NULL: must fail). */
static void check_out(const struct xml *x, const char *parent_ns,
	const char *want)
{
	char *got = xml_to_string(x, parent_ns);
	if (want == NULL) {
		cr_assert(eq(ptr, got, NULL), "serialized: %s", got);
		return;
	}
	cr_assert(ne(ptr, got, NULL));
	cr_assert(eq(str, got, (char *)want));
	free(got);
}

/* Serializing an element with one text child holding s must fail, and so
 * must an attribute holding s; out must stay as it was. */
static void check_refused(const char *s, size_t len)
{
	struct buf b;
	buf_init(&b);
	buf_puts(&b, "keep");
	struct xml *x = xml_new("body", NULL);
	xml_add_text(x, s, len);
	cr_expect(not(xml_serialize(x, NULL, &b)));
	cr_expect(eq(sz, b.len, 4));
	cr_expect(eq(str, b.data, "keep"));
	xml_free(x);
	if (memchr(s, '\0', len) == NULL) {
		x = xml_new("a", NULL);
		char *v = strndup(s, len);
		xml_set_attr(x, "v", v);
		free(v);
		cr_expect(not(xml_serialize(x, NULL, &b)));
		cr_expect(eq(str, b.data, "keep"));
		xml_free(x);
	}
	cr_expect(not(xml_escape(&b, s, len)));
	cr_expect(eq(str, b.data, "keep"));
	buf_finish(&b);
}

Test(xml, empty_element_self_closes)
{
	struct xml *x = xml_new("presence", NS_CLIENT);
	check_out(x, NS_CLIENT, "<presence/>");
	xml_free(x);
}

Test(xml, escapes_text)
{
	struct xml *x = xml_new("body", NULL);
	const char *t = "a<b>&c ]]> \"q\" 'a'\t\n";
	xml_add_text(x, t, strlen(t));
	check_out(x, NULL,
		"<body>a&lt;b&gt;&amp;c ]]&gt; \"q\" 'a'\t\n</body>");
	xml_free(x);
}

Test(xml, escapes_cr_in_text)
{
	struct xml *x = xml_new("body", NULL);
	xml_add_text(x, "a\r\nb", 4);
	check_out(x, NULL, "<body>a&#13;\nb</body>");
	xml_free(x);
}

Test(xml, escapes_attributes)
{
	struct xml *x = xml_new("m", NULL);
	xml_set_attr(x, "id", "a&b<c>d\"e'f\tg\nh\ri]]>");
	check_out(x, NULL, "<m id=\"a&amp;b&lt;c&gt;d&quot;e&apos;f&#9;g"
		"&#10;h&#13;i]]&gt;\"/>");
	xml_free(x);
}

Test(xml, escape_function_is_attribute_safe)
{
	struct buf b;
	buf_init(&b);
	cr_assert(xml_escape(&b, "<'&\">\n", 6));
	cr_assert(eq(str, b.data, "&lt;&apos;&amp;&quot;&gt;&#10;"));
	buf_finish(&b);
}

Test(xml, keeps_valid_utf8)
{
	struct xml *x = xml_new("body", NULL);
	const char *s = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbd";
	xml_add_text(x, s, strlen(s));
	xml_set_attr(x, "n", s);
	char want[128];
	snprintf(want, sizeof(want), "<body n=\"%s\">%s</body>", s, s);
	check_out(x, NULL, want);
	xml_free(x);
}

Test(xml, refuses_control_characters)
{
	check_refused("a\x01", 2);
	check_refused("\x1f", 1);
	check_refused("\x0b", 1);
	check_refused("\x0c", 1);
	check_refused("a\0b", 3);
}

Test(xml, refuses_invalid_utf8)
{
	check_refused("\xff", 1);
	check_refused("\x80", 1);
	check_refused("\xc3", 1);		/* truncated */
	check_refused("\xc3(", 2);		/* bad continuation */
	check_refused("\xc0\xaf", 2);		/* overlong / */
	check_refused("\xe0\x80\xaf", 3);	/* overlong */
	check_refused("\xf0\x80\x80\xaf", 4);	/* overlong */
	check_refused("\xed\xa0\x80", 3);	/* surrogate U+D800 */
	check_refused("\xed\xbf\xbf", 3);	/* surrogate U+DFFF */
	check_refused("\xf4\x90\x80\x80", 4);	/* U+110000 */
	check_refused("\xf5\x80\x80\x80", 4);
}

Test(xml, refuses_nonchars_fffe_ffff)
{
	check_refused("\xef\xbf\xbe", 3);
	check_refused("\xef\xbf\xbf", 3);
}

Test(xml, refuses_bad_names)
{
	struct xml *x = xml_new("a b", NULL);
	check_out(x, NULL, NULL);
	xml_free(x);
	x = xml_new("ok", NULL);
	xml_set_attr(x, "x\"y", "v");
	check_out(x, NULL, NULL);
	xml_free(x);
	x = xml_new("ok", NULL);
	xml_set_attr(x, "1a", "v");
	check_out(x, NULL, NULL);
	xml_free(x);
	x = xml_new("", NULL);
	check_out(x, NULL, NULL);
	xml_free(x);
}

Test(xml, bad_child_leaves_buffer_unchanged)
{
	struct xml *x = xml_new("message", NS_CLIENT);
	xml_add_text_child(x, "body", NULL, "hello");
	xml_add_text_child(x, "subject", NULL, "bad\x02");
	struct buf b;
	buf_init(&b);
	buf_puts(&b, "<before/>");
	cr_assert(not(xml_serialize(x, NS_CLIENT, &b)));
	cr_assert(eq(str, b.data, "<before/>"));
	buf_finish(&b);
	xml_free(x);
}

Test(xml, xml_lang_attribute_is_written)
{
	struct xml *x = xml_new("message", NS_CLIENT);
	xml_set_attr(x, "xml:lang", "en");
	check_out(x, NS_CLIENT, "<message xml:lang=\"en\"/>");
	xml_free(x);
}

Test(xml, namespaces_declared_only_where_needed)
{
	struct xml *iq = xml_new("iq", NS_CLIENT);
	xml_set_attr(iq, "type", "set");
	struct xml *bind = xml_add(iq, "bind", NS_BIND);
	xml_add_text_child(bind, "resource", NS_BIND, "laptop");
	xml_add_text_child(bind, "x", NULL, "inherits");
	struct xml *q = xml_add(iq, "query", NS_ROSTER);
	xml_add(q, "item", NULL);
	xml_add(iq, "body", NS_CLIENT);
	check_out(iq, NS_CLIENT,
		"<iq type=\"set\">"
		"<bind xmlns=\"urn:ietf:params:xml:ns:xmpp-bind\">"
		"<resource>laptop</resource><x>inherits</x></bind>"
		"<query xmlns=\"jabber:iq:roster\"><item/></query>"
		"<body/></iq>");
	check_out(iq, NULL,
		"<iq xmlns=\"jabber:client\" type=\"set\">"
		"<bind xmlns=\"urn:ietf:params:xml:ns:xmpp-bind\">"
		"<resource>laptop</resource><x>inherits</x></bind>"
		"<query xmlns=\"jabber:iq:roster\"><item/></query>"
		"<body/></iq>");
	xml_free(iq);
}

Test(xml, empty_namespace_undeclares_default)
{
	struct xml *m = xml_new("message", NS_CLIENT);
	xml_add(m, "plain", "");
	check_out(m, NS_CLIENT, "<message><plain xmlns=\"\"/></message>");
	xml_free(m);
}

Test(xml, stored_xmlns_attributes_are_not_written)
{
	struct xml *m = xml_new("message", NS_CLIENT);
	xml_set_attr(m, "xmlns", "evil");
	xml_set_attr(m, "xmlns:x", "evil");
	check_out(m, NS_CLIENT, "<message/>");
	xml_free(m);
}

Test(xml, namespace_value_is_escaped)
{
	struct xml *m = xml_new("x", "urn:a\"b");
	check_out(m, NULL, "<x xmlns=\"urn:a&quot;b\"/>");
	xml_free(m);
}

Test(xml, attributes_set_replace_remove)
{
	struct xml *x = xml_new("a", NULL);
	xml_set_attr(x, "one", "1");
	xml_set_attr(x, "two", "2");
	xml_set_attr(x, "three", "3");
	xml_set_attr(x, "two", "deux");
	cr_assert(eq(str, (char *)xml_attr(x, "two"), "deux"));
	xml_set_attr(x, "one", NULL);
	xml_set_attr(x, "absent", NULL);
	cr_assert(eq(ptr, (void *)xml_attr(x, "one"), NULL));
	cr_assert(eq(sz, x->nattrs, 2));
	check_out(x, NULL, "<a two=\"deux\" three=\"3\"/>");
	xml_free(x);
}

Test(xml, text_merges_into_trailing_node)
{
	struct xml *x = xml_new("body", NULL);
	xml_add_text(x, "hel", 3);
	xml_add_text(x, "lo", 2);
	xml_add_text(x, "", 0);
	cr_assert(eq(ptr, x->children, x->last));
	cr_assert(eq(sz, x->children->text_len, 5));
	xml_add(x, "br", NULL);
	xml_add_text(x, " world", 6);
	char *t = xml_text(x);
	cr_assert(eq(str, t, "hello world"));
	free(t);
	check_out(x, NULL, "<body>hello<br/> world</body>");
	xml_free(x);
}

Test(xml, child_lookup)
{
	struct xml *m = xml_new("message", NS_CLIENT);
	xml_add_text(m, "  ", 2);
	xml_add_text_child(m, "body", NS_CLIENT, "hi");
	xml_add(m, "request", NS_RECEIPTS);
	xml_add_text_child(m, "body", "urn:other", "other");
	cr_assert(eq(str, xml_first_element(m)->name, "body"));
	cr_assert(eq(str, xml_next_element(xml_first_element(m))->name,
		"request"));
	cr_assert(eq(ptr, xml_child(m, "request", NS_CLIENT), NULL));
	cr_assert(ne(ptr, xml_child(m, "request", NS_RECEIPTS), NULL));
	cr_assert(ne(ptr, xml_child(m, NULL, NS_RECEIPTS), NULL));
	char *t = xml_child_text(m, "body", "urn:other");
	cr_assert(eq(str, t, "other"));
	free(t);
	t = xml_child_text(m, "body", NULL);
	cr_assert(eq(str, t, "hi"));
	free(t);
	cr_assert(eq(ptr, xml_child_text(m, "subject", NULL), NULL));
	xml_free(m);
}

Test(xml, unlink_and_append)
{
	struct xml *m = xml_new("m", NULL);
	struct xml *a = xml_add(m, "a", NULL);
	struct xml *b = xml_add(m, "b", NULL);
	struct xml *c = xml_add(m, "c", NULL);
	xml_unlink(c);
	cr_assert(eq(ptr, m->last, b));
	cr_assert(eq(ptr, c->parent, NULL));
	xml_unlink(a);
	cr_assert(eq(ptr, m->children, b));
	xml_append(m, a);
	check_out(m, NULL, "<m><b/><a/></m>");
	xml_free(c);
	xml_unlink(b);
	xml_unlink(a);
	cr_assert(eq(ptr, m->children, NULL));
	cr_assert(eq(ptr, m->last, NULL));
	check_out(m, NULL, "<m/>");
	xml_free(a);
	xml_free(b);
	xml_free(m);
}

Test(xml, copy_is_deep)
{
	struct xml *m = xml_new("message", NS_CLIENT);
	xml_set_attr(m, "to", "bob@example.org");
	xml_add_text_child(m, "body", NULL, "hi & bye");
	struct xml *c = xml_copy(m);
	xml_set_attr(m, "to", "eve@example.org");
	xml_free(xml_first_element(m)->children);
	xml_first_element(m)->children = NULL;
	xml_first_element(m)->last = NULL;
	cr_assert(eq(ptr, c->parent, NULL));
	check_out(c, NULL, "<message xmlns=\"jabber:client\" "
		"to=\"bob@example.org\"><body>hi &amp; bye</body></message>");
	xml_free(c);
	xml_free(m);
}

Test(xml, deep_tree_frees_without_recursion)
{
	struct xml *root = xml_new("a", NULL);
	struct xml *cur = root;
	for (int i = 0; i < 200000; i++) {
		cur = xml_add(cur, "a", NULL);
	}
	xml_free(root);
}

Test(xml, serializer_appends)
{
	struct buf b;
	buf_init(&b);
	struct xml *x = xml_new("r", NULL);
	cr_assert(xml_serialize(x, NULL, &b));
	cr_assert(xml_serialize(x, NULL, &b));
	cr_assert(eq(str, b.data, "<r/><r/>"));
	buf_finish(&b);
	xml_free(x);
}

/* Parsing what the serializer wrote gives back the same tree. */
static void check_round_trip(const char *s, const char *want)
{
	const char *err = NULL;
	struct xml *x = reader_parse_element(s, strlen(s), NS_CLIENT, &err);
	cr_assert(ne(ptr, x, NULL), "%s: %s", s, err);
	char *once = xml_to_string(x, NS_CLIENT);
	cr_assert(ne(ptr, once, NULL));
	cr_assert(eq(str, once, (char *)want));
	struct xml *y = reader_parse_element(once, strlen(once), NS_CLIENT, &err);
	cr_assert(ne(ptr, y, NULL), "%s: %s", once, err);
	char *twice = xml_to_string(y, NS_CLIENT);
	cr_assert(eq(str, twice, once));
	free(twice);
	free(once);
	xml_free(y);
	xml_free(x);
}

Test(xml, round_trip_through_reader)
{
	check_round_trip("<message to='a&amp;b' a='&lt;&gt;&quot;&apos;' "
		"ws='&#9;&#10;&#13;'><body>1 &lt; 2 &amp; 3 &gt; 2\r\n"
		"<![CDATA[]]]]><![CDATA[>]]></body></message>",
		"<message to=\"a&amp;b\" a=\"&lt;&gt;&quot;&apos;\" "
		"ws=\"&#9;&#10;&#13;\"><body>1 &lt; 2 &amp; 3 &gt; 2\n"
		"]]&gt;</body></message>");
	check_round_trip("<iq><query xmlns='jabber:iq:roster'><item/>"
		"</query><a:b xmlns:a='urn:a'><a:c/><d xmlns=''/></a:b>"
		"<e xml:lang='en'>t&#13;</e></iq>",
		"<iq><query xmlns=\"jabber:iq:roster\"><item/></query>"
		"<b xmlns=\"urn:a\"><c/><d xmlns=\"\"/></b>"
		"<e xml:lang=\"en\">t&#13;</e></iq>");
	check_round_trip("<m>caf\xc3\xa9 \xf0\x9f\x98\x80</m>",
		"<m>caf\xc3\xa9 \xf0\x9f\x98\x80</m>");
}

Test(xml, reserved_namespaces_are_refused)
{
	struct xml *x = xml_new("lang", NS_XML);
	check_out(x, NULL, NULL);
	xml_free(x);
	x = xml_new("a", "http://www.w3.org/2000/xmlns/");
	check_out(x, NULL, NULL);
	xml_free(x);
}
