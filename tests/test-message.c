#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/core.h"
#include "daemon/events.h"
#include "proto/alloc.h"
#include "proto/ns.h"
#include "proto/reader.h"

/*
 * The live path writes a message event's line straight from the tree;
 * history items build the same members as a jansson object, which
 * jsonenc_event encodes as json_dumps would. Both must give the same
 * bytes for every kind of message.
 */

static struct xmppd *x;

static void setup(void)
{
	x = xcalloc(1, sizeof(*x));
	x->bare_jid = xstrdup("me@example.org");
	events_init(0);
}

static void teardown(void)
{
	events_finish();
	free(x->bare_jid);
	free(x);
}

static struct xml *parse(const char *s)
{
	const char *err = NULL;
	struct xml *m = reader_parse_element(s, strlen(s), NS_CLIENT, &err);
	cr_assert(not(eq(ptr, m, NULL)), "%s: %s", s, err ? err : "");
	return m;
}

/* Both lines of m, which must be equal; returns the direct one. */
static char *both(const struct xml *m, const char *carbon,
	const struct xml *fwd, const char *archive_id)
{
	char *direct = message_event_line(x, m, carbon, fwd, archive_id, 42, true);
	char *ref = message_event_line(x, m, carbon, fwd, archive_id, 42, false);
	cr_assert(not(eq(ptr, direct, NULL)));
	cr_assert(not(eq(ptr, ref, NULL)));
	cr_expect(eq(str, direct, ref));
	free(ref);
	return direct;
}

static void check(const char *stanza, const char *expected)
{
	struct xml *m = parse(stanza);
	char *line = both(m, NULL, NULL, NULL);
	if (expected != NULL) {
		cr_expect(eq(str, line, (char *)expected));
	}
	free(line);
	xml_free(m);
}

TestSuite(message, .init = setup, .fini = teardown);

Test(message, chat_with_body)
{
	check("<message from='bob@example.org/phone' to='me@example.org/a' "
		"type='chat' id='m1'><body>hello</body>"
		"<stanza-id xmlns='urn:xmpp:sid:0' by='me@example.org' id='S1'/>"
		"<origin-id xmlns='urn:xmpp:sid:0' id='o1'/></message>",
		"{\"event\":\"message\",\"seq\":42,\"from\":\"bob@example.org/phone\","
		"\"to\":\"me@example.org/a\",\"type\":\"chat\",\"body\":\"hello\","
		"\"msg_id\":\"m1\",\"stanza_id\":\"S1\"}\n");
}

Test(message, foreign_stanza_id_and_no_type)
{
	check("<message from='bob@example.org' id='m2'><body>x</body>"
		"<stanza-id xmlns='urn:xmpp:sid:0' by='evil@example.org' id='S2'/>"
		"</message>",
		"{\"event\":\"message\",\"seq\":42,\"from\":\"bob@example.org\","
		"\"type\":\"normal\",\"body\":\"x\",\"msg_id\":\"m2\"}\n");
}

Test(message, no_body_subject_and_thread)
{
	check("<message from='bob@example.org' type='normal'>"
		"<subject>a &amp; b</subject><thread>t&lt;1&gt;</thread></message>",
		"{\"event\":\"message\",\"seq\":42,\"from\":\"bob@example.org\","
		"\"type\":\"normal\",\"subject\":\"a & b\",\"thread\":\"t<1>\"}\n");
}

Test(message, nothing_but_from)
{
	check("<message/>", "{\"event\":\"message\",\"seq\":42,"
		"\"type\":\"normal\"}\n");
}

Test(message, lang_alternatives)
{
	check("<message from='bob@example.org' xml:lang='de' type='chat'>"
		"<body xml:lang='en'>hello</body><body>hallo</body>"
		"<body xml:lang='fr'>salut</body><body xml:lang='en'>again</body>"
		"<subject xml:lang='en'>s-en</subject><subject xml:lang='DE'>s-de"
		"</subject></message>",
		"{\"event\":\"message\",\"seq\":42,\"from\":\"bob@example.org\","
		"\"type\":\"chat\",\"body\":\"hallo\",\"bodies\":{\"en\":\"hello\","
		"\"de\":\"hallo\",\"fr\":\"salut\"},\"subject\":\"s-de\","
		"\"lang\":\"de\"}\n");
}

Test(message, error)
{
	check("<message from='bob@example.org' type='error' id='e1'>"
		"<body>lost</body><error type='cancel'>"
		"<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>gone \"away\""
		"</text><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
		"</error></message>",
		"{\"event\":\"message\",\"seq\":42,\"from\":\"bob@example.org\","
		"\"type\":\"error\",\"body\":\"lost\",\"msg_id\":\"e1\","
		"\"error\":\"item-not-found\",\"error_text\":\"gone \\\"away\\\"\"}\n");
	check("<message type='error'><error type='cancel'/></message>",
		"{\"event\":\"message\",\"seq\":42,\"type\":\"error\"}\n");
}

Test(message, carbon_with_delay)
{
	struct xml *fwd = parse("<forwarded xmlns='urn:xmpp:forward:0'>"
		"<delay xmlns='urn:xmpp:delay' stamp='2026-01-02T03:04:05Z' "
		"from='example.org'/><message xmlns='jabber:client' "
		"from='me@example.org/b' to='bob@example.org' type='chat' id='c1'>"
		"<body>sent elsewhere</body></message></forwarded>");
	const struct xml *inner = xml_child(fwd, "message", NS_CLIENT);
	char *line = both(inner, "sent", fwd, NULL);
	cr_expect(eq(str, line, "{\"event\":\"message\",\"seq\":42,"
		"\"from\":\"me@example.org/b\",\"to\":\"bob@example.org\","
		"\"type\":\"chat\",\"body\":\"sent elsewhere\",\"msg_id\":\"c1\","
		"\"delay\":\"2026-01-02T03:04:05Z\",\"delay_from\":\"example.org\","
		"\"carbon\":\"sent\"}\n"));
	free(line);
	xml_free(fwd);
}

Test(message, archive_sent_by_us)
{
	struct xml *fwd = parse("<forwarded xmlns='urn:xmpp:forward:0'>"
		"<delay xmlns='urn:xmpp:delay' stamp='2026-01-02T03:04:05Z'/>"
		"<message xmlns='jabber:client' from='Me@Example.org/b' "
		"to='bob@example.org' type='chat'><body>old</body>"
		"<replace xmlns='urn:xmpp:message-correct:0' id='r0'/></message>"
		"</forwarded>");
	const struct xml *inner = xml_child(fwd, "message", NS_CLIENT);
	char *line = both(inner, NULL, fwd, "A1");
	cr_expect(eq(str, line, "{\"event\":\"message\",\"seq\":42,"
		"\"from\":\"Me@Example.org/b\",\"to\":\"bob@example.org\","
		"\"type\":\"chat\",\"body\":\"old\",\"stanza_id\":\"A1\","
		"\"delay\":\"2026-01-02T03:04:05Z\",\"archive\":true,"
		"\"archive_sent\":true,\"replace\":\"r0\"}\n"));
	free(line);
	xml_free(fwd);
}

Test(message, delay_in_the_stanza)
{
	check("<message from='bob@example.org'><body>late</body>"
		"<delay xmlns='urn:xmpp:delay' stamp='2026-01-02T03:04:05Z'/>"
		"</message>", NULL);
}

Test(message, groupchat_me)
{
	check("<message from='room@conference.example.org/bob' type='groupchat'>"
		"<body>/me waves</body></message>",
		"{\"event\":\"message\",\"seq\":42,"
		"\"from\":\"room@conference.example.org/bob\",\"type\":\"groupchat\","
		"\"body\":\"/me waves\",\"me\":true}\n");
}

Test(message, unicode_and_escapes)
{
	check("<message from='bob@example.org' id='&quot;q&quot;'>"
		"<body>tab&#9;nl&#10;cr&#13; \\back\\ \"quote\" é 日本 😀 "
		"&lt;/script&gt; long enough to cross several eight-byte words"
		"</body></message>",
		"{\"event\":\"message\",\"seq\":42,\"from\":\"bob@example.org\","
		"\"type\":\"normal\",\"body\":\"tab\\tnl\\ncr\\r \\\\back\\\\ "
		"\\\"quote\\\" é 日本 😀 </script> long enough to cross several "
		"eight-byte words\",\"msg_id\":\"\\\"q\\\"\"}\n");
}

/* A string jansson refuses (not UTF-8) is left out on both paths. */
Test(message, invalid_utf8_left_out)
{
	struct xml *m = xml_new("message", NS_CLIENT);
	xml_set_attr(m, "from", "bob@example.org");
	xml_set_attr(m, "id", "bad\xff");
	xml_add_text_child(m, "body", NS_CLIENT, "caf\xc3");
	xml_add_text_child(m, "thread", NS_CLIENT, "th");
	xml_add_text_child(m, "subject", NS_CLIENT, "ok");
	char *line = both(m, NULL, NULL, NULL);
	cr_expect(eq(str, line, "{\"event\":\"message\",\"seq\":42,"
		"\"from\":\"bob@example.org\",\"type\":\"normal\","
		"\"subject\":\"ok\",\"thread\":\"th\"}\n"));
	free(line);
	xml_free(m);
}

/* Written events reach sinks with their line and from, and the seq. */
static char *seen_line;
static char *seen_from;

static void record(void *ud, const struct events_event *e)
{
	size_t len;
	const char *line = events_line(e, &len);
	free(seen_line);
	free(seen_from);
	seen_line = line ? xstrndup(line, len) : NULL;
	seen_from = e->from ? xstrdup(e->from) : NULL;
}

Test(message, writer_publishes_to_sinks)
{
	events_add_sink(record, NULL, &seen_line);
	cr_assert(eq(u64, events_publish("state", json_pack("{s:s}", "state",
		"online")), 1));
	cr_expect(eq(str, seen_line, "{\"event\":\"state\",\"seq\":1,"
		"\"state\":\"online\"}\n"));
	struct events_writer w, nested;
	events_write_begin(&w, "message");
	events_write_str(&w, "from", "a@b/c");
	events_write_begin(&nested, "message");	/* a second one meanwhile */
	events_write_true(&nested, "me");
	cr_expect(eq(u64, events_write_publish(&nested), 2));
	cr_expect(eq(str, seen_line, "{\"event\":\"message\",\"seq\":2,"
		"\"me\":true}\n"));
	cr_expect(eq(ptr, seen_from, NULL));
	events_write_finish(&nested);
	cr_expect(eq(u64, events_write_publish(&w), 3));
	cr_expect(eq(str, seen_line, "{\"event\":\"message\",\"seq\":3,"
		"\"from\":\"a@b/c\"}\n"));
	cr_expect(eq(str, seen_from, "a@b/c"));
	cr_expect(eq(sz, w.len, strlen(seen_line)));
	events_write_finish(&w);
	free(seen_line);
	free(seen_from);
	seen_line = seen_from = NULL;
}
