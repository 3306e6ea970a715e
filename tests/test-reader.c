/* Tests for proto/reader.c: the libxml2 SAX stream reader. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/buf.h"
#include "proto/ns.h"
#include "proto/reader.h"
#include "proto/xml.h"

#ifndef TEST_DATA_DIR
#define TEST_DATA_DIR "tests/data"
#endif

#define HEADER "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " \
	"xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"

/*
 * A recorder writes every callback as one line of a log, so that feeding
 * the same bytes in different pieces can be compared as strings.
 */
struct rec {
	struct buf log;
	struct reader *r;
	int stanzas;
	int opens;
	int closes;
	int errors;
	const char *condition;
	int restart_on_stanza;	/* restart inside this stanza's callback */
	bool restart_on_open;
};

static void rec_open(void *ud, const struct xml *h)
{
	struct rec *t = ud;
	t->opens++;
	cr_assert(eq(str, h->name, "stream"));
	cr_assert(eq(str, h->ns, NS_STREAMS));
	cr_assert(eq(ptr, h->children, NULL));
	buf_puts(&t->log, "open");
	for (size_t i = 0; i < h->nattrs; i++) {
		buf_printf(&t->log, " %s=%s", h->attrs[i].name, h->attrs[i].value);
	}
	buf_putc(&t->log, '\n');
	if (t->restart_on_open) {
		reader_restart(t->r);
	}
}

static void rec_stanza(void *ud, struct xml *s)
{
	struct rec *t = ud;
	t->stanzas++;
	char *x = xml_to_string(s, NS_CLIENT);
	cr_assert(ne(ptr, x, NULL), "a parsed stanza must serialize");
	buf_printf(&t->log, "stanza %s\n", x);
	free(x);
	if (t->stanzas == t->restart_on_stanza) {
		reader_restart(t->r);
	}
}

static void rec_close(void *ud)
{
	struct rec *t = ud;
	t->closes++;
	buf_puts(&t->log, "close\n");
}

static void rec_error(void *ud, const char *condition, const char *text)
{
	struct rec *t = ud;
	t->errors++;
	t->condition = condition;
	cr_assert(ne(ptr, (void *)text, NULL));
	cr_assert(ne(sz, strlen(text), 0));
	buf_printf(&t->log, "error %s\n", condition);
}

static const struct reader_cb rec_cb = {
	.stream_open = rec_open,
	.stanza = rec_stanza,
	.stream_close = rec_close,
	.error = rec_error,
};

static void rec_init(struct rec *t, const struct reader_limits *limits)
{
	memset(t, 0, sizeof(*t));
	buf_init(&t->log);
	buf_puts(&t->log, "");
	t->r = reader_new(&rec_cb, t, limits);
}

static void rec_finish(struct rec *t)
{
	reader_free(t->r);
	buf_finish(&t->log);
}

static bool feed(struct rec *t, const char *s)
{
	return reader_feed(t->r, s, strlen(s));
}

static char *read_data(const char *name, size_t *len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", TEST_DATA_DIR, name);
	FILE *f = fopen(path, "rb");
	cr_assert(ne(ptr, f, NULL), "cannot open %s", path);
	struct buf b;
	buf_init(&b);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		buf_append(&b, chunk, n);
	}
	fclose(f);
	return buf_steal(&b, len);
}

/* Feeds data in pieces of the given sizes (cycled) and returns the log. */
static char *log_of_pieces(const char *data, size_t len, const size_t *sizes,
	size_t nsizes)
{
	struct rec t;
	rec_init(&t, NULL);
	size_t off = 0;
	for (size_t i = 0; off < len; i++) {
		size_t n = sizes[i % nsizes];
		if (n > len - off) {
			n = len - off;
		}
		reader_feed(t.r, data + off, n);
		off += n;
	}
	char *log = buf_steal(&t.log, NULL);
	rec_finish(&t);
	return log;
}

static char *log_of_split(const char *data, size_t len, size_t at)
{
	size_t sizes[] = { at, len - at };
	if (at == 0) {
		return log_of_pieces(data, len, &len, 1);
	}
	return log_of_pieces(data, len, sizes, 2);
}

static const char transcript_log[] =
	"open id=6b0f6c2d-2a3c from=example.org to=alice@example.org "
	"version=1.0 xml:lang=en xmlns=jabber:client\n"
	"stanza <features xmlns=\"http://etherx.jabber.org/streams\">"
	"<bind xmlns=\"urn:ietf:params:xml:ns:xmpp-bind\"><required/></bind>"
	"<session xmlns=\"urn:ietf:params:xml:ns:xmpp-session\"><optional/>"
	"</session><sm xmlns=\"urn:xmpp:sm:3\"/>"
	"<c xmlns=\"http://jabber.org/protocol/caps\" hash=\"sha-1\" "
	"node=\"http://prosody.im\" ver=\"kbbp0gM1yMcNcAPmNwCZO/LhAwA=\"/>"
	"</features>\n"
	"stanza <iq id=\"bind_1\" type=\"result\">"
	"<bind xmlns=\"urn:ietf:params:xml:ns:xmpp-bind\">"
	"<jid>alice@example.org/laptop</jid></bind></iq>\n"
	"stanza <iq type=\"set\" id=\"push1\" to=\"alice@example.org/laptop\">"
	"<query xmlns=\"jabber:iq:roster\" ver=\"ver7\">"
	"<item jid=\"bob@example.org\" name=\"Bob &amp; Co &lt;3\" "
	"subscription=\"both\"><group>Friends</group>"
	"<group>Caf\xc3\xa9 \"Crew\"</group></item></query></iq>\n"
	"stanza <message from=\"bob@example.org/phone\" "
	"to=\"alice@example.org/laptop\" type=\"chat\" id=\"x&amp;7\" "
	"xml:lang=\"de\"><body>Gr\xc3\xbc\xc3\x9f" "e \xe2\x80\x94 1 &lt; 2 "
	"&amp;&amp; 3 &gt; 2 \xf0\x9f\x98\x80</body>"
	"<body xml:lang=\"en\">Greetings]]&gt;</body>"
	"<active xmlns=\"http://jabber.org/protocol/chatstates\"/>"
	"<request xmlns=\"urn:xmpp:receipts\"/>"
	"<stanza-id xmlns=\"urn:xmpp:sid:0\" id=\"2f1c-9\" "
	"by=\"alice@example.org\"/></message>\n"
	"stanza <presence from=\"carol@example.org/tab\" "
	"to=\"alice@example.org\"><show>away</show>"
	"<status>  spaces\tand\nlines  </status><priority>5</priority>"
	"<x xmlns=\"vcard-temp:x:update\"><photo/></x></presence>\n"
	"stanza <message from=\"room@conference.example.org/dave\" "
	"type=\"groupchat\"><body>if (a &lt; b &amp;&amp; c &gt; d) "
	"{ x = \"]]&gt;\"; }</body>"
	"<html xmlns=\"http://jabber.org/protocol/xhtml-im\">"
	"<body xmlns=\"http://www.w3.org/1999/xhtml\">"
	"<p style=\"font-weight:bold\">bold <em>and</em> plain</p></body>"
	"</html></message>\n"
	"stanza <r xmlns=\"urn:xmpp:sm:3\"/>\n"
	"stanza <iq type=\"get\" id=\"ping-1\" from=\"example.org\">"
	"<ping xmlns=\"urn:xmpp:ping\"/></iq>\n"
	"stanza <message><empty-text/>"
	"<attr-ws a=\"&#9;tab&#10;nl&#13;cr\" b=\"x  y\"/>"
	"<unprefixed xmlns=\"\"><child/></unprefixed>"
	"<prefixed xmlns=\"urn:prefixed\"><inner>t</inner></prefixed>"
	"</message>\n"
	"close\n";

Test(reader, transcript_whole)
{
	size_t len;
	char *data = read_data("reader-transcript.xml", &len);
	char *log = log_of_pieces(data, len, &len, 1);
	cr_assert(eq(str, log, (char *)transcript_log));
	free(log);
	free(data);
}

Test(reader, transcript_byte_by_byte)
{
	size_t len;
	char *data = read_data("reader-transcript.xml", &len);
	size_t one = 1;
	char *log = log_of_pieces(data, len, &one, 1);
	cr_assert(eq(str, log, (char *)transcript_log));
	free(log);
	free(data);
}

Test(reader, transcript_split_at_every_offset)
{
	size_t len;
	char *data = read_data("reader-transcript.xml", &len);
	for (size_t at = 0; at <= len; at++) {
		char *log = log_of_split(data, len, at);
		cr_assert(eq(str, log, (char *)transcript_log), "split at %zu", at);
		free(log);
	}
	free(data);
}

Test(reader, transcript_uneven_pieces)
{
	size_t len;
	char *data = read_data("reader-transcript.xml", &len);
	static const size_t sizes[] = { 3, 1, 17, 2, 64, 5, 7, 300, 11, 13 };
	for (size_t start = 0; start < 10; start++) {
		size_t rot[10];
		for (size_t i = 0; i < 10; i++) {
			rot[i] = sizes[(start + i) % 10];
		}
		char *log = log_of_pieces(data, len, rot, 10);
		cr_assert(eq(str, log, (char *)transcript_log), "rotation %zu", start);
		free(log);
	}
	free(data);
}

Test(reader, stanza_delivered_with_its_last_byte)
{
	struct rec t;
	rec_init(&t, NULL);
	cr_assert(feed(&t, HEADER));
	cr_assert(eq(int, t.opens, 1));
	const char *s = "<message><body>x</body></message>";
	size_t len = strlen(s);
	for (size_t i = 0; i < len; i++) {
		cr_assert(reader_feed(t.r, s + i, 1));
		cr_assert(eq(int, t.stanzas, i + 1 == len ? 1 : 0), "at %zu", i);
	}
	rec_finish(&t);
}

Test(reader, last_stanza_with_nothing_after_it)
{
	struct rec t;
	rec_init(&t, NULL);
	cr_assert(feed(&t, HEADER "<iq type='result' id='1'/>"));
	cr_assert(eq(int, t.stanzas, 1));
	cr_assert(feed(&t, "<presence/>"));
	cr_assert(eq(int, t.stanzas, 2));
	rec_finish(&t);
}

Test(reader, whitespace_keepalives_are_ignored)
{
	struct rec t;
	rec_init(&t, NULL);
	cr_assert(feed(&t, HEADER));
	cr_assert(feed(&t, " "));
	cr_assert(feed(&t, "\n"));
	cr_assert(feed(&t, " \t\r\n "));
	cr_assert(feed(&t, "<message/>"));
	cr_assert(feed(&t, " "));
	cr_assert(feed(&t, " <presence/> "));
	cr_assert(eq(int, t.stanzas, 2));
	cr_assert(eq(int, t.errors, 0));
	cr_assert(eq(str, t.log.data, "open version=1.0 xmlns=jabber:client\n"
		"stanza <message/>\nstanza <presence/>\n"));
	rec_finish(&t);
}

Test(reader, many_keepalives_do_not_count_as_stanza_bytes)
{
	struct reader_limits lim = { .max_stanza = 100 };
	struct rec t;
	rec_init(&t, &lim);
	cr_assert(feed(&t, HEADER));
	for (int i = 0; i < 1000; i++) {
		cr_assert(feed(&t, " "));
		if (i % 100 == 0) {
			cr_assert(feed(&t, "<r/>"));
		}
	}
	cr_assert(feed(&t, "<r/>"));
	cr_assert(eq(int, t.stanzas, 11));
	rec_finish(&t);
}

Test(reader, text_outside_stanzas_is_bad_format)
{
	struct rec t;
	rec_init(&t, NULL);
	cr_assert(feed(&t, HEADER));
	cr_assert(not(feed(&t, "hello<message/>")));
	cr_assert(eq(str, (char *)t.condition, "bad-format"));
	cr_assert(eq(int, t.stanzas, 0));
	rec_finish(&t);
}

/* Parses one stanza after HEADER and returns it (copied) or NULL. */
static struct xml *one_stanza_of(const char *s)
{
	struct xml *x = reader_parse_element(s, strlen(s), NS_CLIENT, NULL);
	cr_assert(ne(ptr, x, NULL), "did not parse: %s", s);
	return x;
}

Test(reader, entities_in_attributes_are_decoded)
{
	struct xml *x = one_stanza_of("<m id='a&amp;b' lt='&lt;' gt='&gt;' "
		"q=\"&quot;\" a='&apos;' n='&#38;' h='&#x26;amp;' "
		"nn='&#38;#38;' c='&#169;' nl='&#10;' raw='a\nb'/>");
	cr_assert(eq(str, (char *)xml_attr(x, "id"), "a&b"));
	cr_assert(eq(str, (char *)xml_attr(x, "lt"), "<"));
	cr_assert(eq(str, (char *)xml_attr(x, "gt"), ">"));
	cr_assert(eq(str, (char *)xml_attr(x, "q"), "\""));
	cr_assert(eq(str, (char *)xml_attr(x, "a"), "'"));
	cr_assert(eq(str, (char *)xml_attr(x, "n"), "&"));
	cr_assert(eq(str, (char *)xml_attr(x, "h"), "&amp;"));
	cr_assert(eq(str, (char *)xml_attr(x, "nn"), "&#38;"));
	cr_assert(eq(str, (char *)xml_attr(x, "c"), "\xc2\xa9"));
	cr_assert(eq(str, (char *)xml_attr(x, "nl"), "\n"));
	cr_assert(eq(str, (char *)xml_attr(x, "raw"), "a b"));
	xml_free(x);
}

Test(reader, entities_in_text_are_decoded)
{
	struct xml *x = one_stanza_of("<m>&amp;&lt;&gt;&quot;&apos;&#38;"
		"&#x3c;</m>");
	char *t = xml_text(x);
	cr_assert(eq(str, t, "&<>\"'&<"));
	free(t);
	xml_free(x);
}

Test(reader, xml_lang_is_kept)
{
	struct rec t;
	rec_init(&t, NULL);
	cr_assert(feed(&t, "<stream:stream xmlns='jabber:client' "
		"xmlns:stream='http://etherx.jabber.org/streams' xml:lang='fr' "
		"from='example.org'><message xml:lang='de'><body xml:lang='en'>"
		"hi</body></message>"));
	cr_assert(eq(str, t.log.data, "open xml:lang=fr from=example.org "
		"xmlns=jabber:client\nstanza <message xml:lang=\"de\">"
		"<body xml:lang=\"en\">hi</body></message>\n"));
	rec_finish(&t);
}

Test(reader, namespaced_foreign_attributes_are_dropped)
{
	struct xml *x = one_stanza_of("<m xmlns:f='urn:f' f:a='1' a='2'/>");
	cr_assert(eq(sz, x->nattrs, 1));
	cr_assert(eq(str, (char *)xml_attr(x, "a"), "2"));
	xml_free(x);
}

Test(reader, elements_carry_their_namespace)
{
	struct xml *x = one_stanza_of("<iq><query xmlns='jabber:iq:roster'>"
		"<item/></query><x:y xmlns:x='urn:x'/><z xmlns=''/></iq>");
	cr_assert(eq(str, x->ns, NS_CLIENT));
	struct xml *q = xml_child(x, "query", NS_ROSTER);
	cr_assert(ne(ptr, q, NULL));
	cr_assert(ne(ptr, xml_child(q, "item", NS_ROSTER), NULL));
	cr_assert(ne(ptr, xml_child(x, "y", "urn:x"), NULL));
	cr_assert(ne(ptr, xml_child(x, "z", ""), NULL));
	xml_free(x);
}

/* Feeds HEADER (unless the input has its own prolog) and s in one piece,
 * and checks the stream failed with condition. */
static void check_refused(const char *prolog, const char *s,
	const char *condition)
{
	struct rec t;
	rec_init(&t, NULL);
	struct buf b;
	buf_init(&b);
	buf_puts(&b, prolog != NULL ? prolog : HEADER);
	buf_puts(&b, s);
	cr_assert(not(reader_feed(t.r, b.data, b.len)), "accepted: %s", b.data);
	cr_assert(eq(int, t.errors, 1));
	cr_assert(eq(str, (char *)t.condition, (char *)condition), "for %s", s);
	cr_assert(reader_failed(t.r));
	cr_assert(eq(ptr, strstr(t.log.data, "root:"), NULL), "leaked: %s", t.log.data);
	cr_assert(eq(ptr, strstr(t.log.data, "INJECTED"), NULL), "leaked: %s", t.log.data);
	/* Nothing more comes out, not even another error. */
	cr_assert(not(feed(&t, "<message>x</message>")));
	cr_assert(eq(int, t.errors, 1));
	cr_assert(eq(ptr, strstr(t.log.data, "stanza <message>x"), NULL));
	buf_finish(&b);
	rec_finish(&t);
}

#define STREAM_OPEN "<stream:stream xmlns='jabber:client' " \
	"xmlns:stream='http://etherx.jabber.org/streams'>"

Test(reader, doctype_is_restricted)
{
	check_refused("<?xml version='1.0'?><!DOCTYPE stream:stream>",
		STREAM_OPEN, "restricted-xml");
	check_refused("<!DOCTYPE x SYSTEM 'http://example.org/x.dtd'>",
		STREAM_OPEN, "restricted-xml");
}

Test(reader, internal_entity_is_restricted)
{
	check_refused("<!DOCTYPE stream:stream [<!ENTITY e 'INJECTED'>]>",
		STREAM_OPEN "<message><body>&e;</body></message>",
		"restricted-xml");
}

Test(reader, element_injecting_entity_is_restricted)
{
	check_refused("<!DOCTYPE stream:stream [<!ENTITY e "
		"'<message><body>INJECTED</body></message>'>]>",
		STREAM_OPEN "&e;", "restricted-xml");
}

Test(reader, billion_laughs_is_restricted)
{
	check_refused("<?xml version='1.0'?><!DOCTYPE lolz ["
		"<!ENTITY lol 'lol'>"
		"<!ENTITY lol1 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>"
		"<!ENTITY lol2 '&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;'>"
		"<!ENTITY lol3 '&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;'>"
		"<!ENTITY lol4 '&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;'>"
		"<!ENTITY lol5 '&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;'>"
		"<!ENTITY lol6 '&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;'>"
		"<!ENTITY lol7 '&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;'>"
		"<!ENTITY lol8 '&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;'>"
		"<!ENTITY lol9 '&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;'>"
		"]>", STREAM_OPEN "<message><body>&lol9;</body></message>",
		"restricted-xml");
}

Test(reader, external_entity_is_restricted)
{
	check_refused("<?xml version='1.0'?><!DOCTYPE stream:stream ["
		"<!ENTITY xxe SYSTEM 'file:///etc/passwd'>]>",
		STREAM_OPEN "<message><body>&xxe;</body></message>",
		"restricted-xml");
	check_refused("<!DOCTYPE stream:stream SYSTEM 'file:///etc/passwd'>",
		STREAM_OPEN "<message><body>x</body></message>",
		"restricted-xml");
}

Test(reader, undeclared_entities_are_refused)
{
	check_refused(NULL, "<message><body>&e;</body></message>",
		"restricted-xml");
	check_refused(NULL, "<message id='&e;'/>", "restricted-xml");
}

Test(reader, comments_are_restricted)
{
	check_refused(NULL, "<message><!-- c --></message>", "restricted-xml");
	check_refused(NULL, "<!-- between stanzas -->", "restricted-xml");
	check_refused("<!-- before --> ", STREAM_OPEN, "restricted-xml");
}

Test(reader, processing_instructions_are_restricted)
{
	check_refused(NULL, "<message><?php echo 1; ?></message>",
		"restricted-xml");
	check_refused(NULL, "<?pi data?>", "restricted-xml");
	check_refused("<?xml version='1.0'?><?xml-stylesheet href='x'?>",
		STREAM_OPEN, "restricted-xml");
}

Test(reader, malformed_input_is_not_well_formed)
{
	check_refused(NULL, "<message><body></message>", "not-well-formed");
	check_refused(NULL, "<<<>>>", "not-well-formed");
	check_refused(NULL, "<message a='1' a='2'/>", "not-well-formed");
	check_refused(NULL, "<message>\x01</message>", "not-well-formed");
	check_refused(NULL, "<message>&#1;</message>", "not-well-formed");
	check_refused(NULL, "<message>&#xFFFE;</message>", "not-well-formed");
	check_refused(NULL, "<message>\xff\xfe</message>", "not-well-formed");
	check_refused(NULL, "<message id='\xc0\xaf'/>", "not-well-formed");
	check_refused(NULL, "<message>\xed\xa0\x80</message>",
		"not-well-formed");
	check_refused(NULL, "<x:message/>", "not-well-formed");
	check_refused(NULL, "<message></stream:stream>", "not-well-formed");
	check_refused(NULL, "</stream:stream><message/>", "not-well-formed");
	check_refused(NULL, "<?xml version='1.0'?>", "not-well-formed");
	check_refused("garbage", "", "not-well-formed");
}

Test(reader, nul_byte_is_not_well_formed)
{
	struct rec t;
	rec_init(&t, NULL);
	cr_assert(feed(&t, HEADER));
	cr_assert(not(reader_feed(t.r, "<m>a\0b</m>", 10)));
	cr_assert(eq(str, (char *)t.condition, "not-well-formed"));
	cr_assert(eq(int, t.stanzas, 0));
	rec_finish(&t);
}

static char last_text[256];

static void keep_text(void *ud, const char *condition, const char *text)
{
	snprintf(last_text, sizeof(last_text), "%s: %s", condition, text);
}

Test(reader, error_text_names_the_problem)
{
	struct reader_cb cb = { .error = keep_text };
	struct reader *r = reader_new(&cb, NULL, NULL);
	cr_assert(reader_feed(r, HEADER, strlen(HEADER)));
	cr_assert(not(reader_feed(r, "<a></b>", 7)));
	cr_assert(eq(str, last_text, "not-well-formed: Opening and ending tag "
		"mismatch: a line 1 and b"));
	reader_free(r);
}

Test(reader, stream_root_must_be_stream)
{
	check_refused("<message xmlns='jabber:client'>", "", "invalid-namespace");
	check_refused("<stream:stream xmlns:stream='urn:wrong'>", "",
		"invalid-namespace");
	check_refused("<stream xmlns='jabber:client'>", "", "invalid-namespace");
	check_refused("<x:foo xmlns:x='" NS_STREAMS "'>", "", "bad-format");
}

Test(reader, non_utf8_encoding_is_refused)
{
	check_refused("<?xml version='1.0' encoding='ISO-8859-1'?>", STREAM_OPEN,
		"unsupported-encoding");
	check_refused("<?xml version='1.0' encoding='US-ASCII'?>", STREAM_OPEN,
		"unsupported-encoding");
	/* Latin-1 bytes are refused even without a declaration. */
	check_refused(NULL, "<message><body>caf\xe9</body></message>",
		"not-well-formed");
}

Test(reader, utf8_declaration_is_accepted)
{
	struct rec t;
	rec_init(&t, NULL);
	cr_assert(feed(&t, "<?xml version='1.0' encoding='utf-8'?>" STREAM_OPEN
		"<m>\xc3\xa9</m>"));
	cr_assert(eq(int, t.stanzas, 1));
	rec_finish(&t);
}

Test(reader, utf16_input_is_refused)
{
	static const char utf16[] = "\xff\xfe<\0s\0t\0r\0e\0a\0m\0";
	struct rec t;
	rec_init(&t, NULL);
	cr_assert(not(reader_feed(t.r, utf16, sizeof(utf16) - 1)));
	cr_assert(eq(int, t.errors, 1));
	cr_assert(eq(int, t.opens, 0));
	rec_finish(&t);
}

Test(reader, xml_1_1_is_refused)
{
	check_refused("<?xml version='1.1'?>", STREAM_OPEN, "bad-format");
}

static void nest(struct buf *b, const char *open, const char *close, int n)
{
	for (int i = 0; i < n; i++) {
		buf_puts(b, open);
	}
	for (int i = 0; i < n; i++) {
		buf_puts(b, close);
	}
}

Test(reader, depth_bomb_is_policy_violation)
{
	struct rec t;
	rec_init(&t, NULL);
	struct buf b;
	buf_init(&b);
	buf_puts(&b, HEADER);
	nest(&b, "<a>", "", 100000);
	cr_assert(not(reader_feed(t.r, b.data, b.len)));
	cr_assert(eq(str, (char *)t.condition, "policy-violation"));
	cr_assert(eq(int, t.errors, 1));
	buf_finish(&b);
	rec_finish(&t);
}

Test(reader, depth_limit_is_exact)
{
	struct reader_limits lim = { .max_depth = 5 };
	struct rec t;
	rec_init(&t, &lim);
	struct buf b;
	buf_init(&b);
	buf_puts(&b, HEADER);
	nest(&b, "<a>", "</a>", 5);
	cr_assert(reader_feed(t.r, b.data, b.len));
	cr_assert(eq(int, t.stanzas, 1));
	buf_reset(&b);
	nest(&b, "<a>", "</a>", 6);
	cr_assert(not(reader_feed(t.r, b.data, b.len)));
	cr_assert(eq(str, (char *)t.condition, "policy-violation"));
	cr_assert(eq(int, t.stanzas, 1));
	buf_finish(&b);
	rec_finish(&t);
}

Test(reader, default_depth_is_64)
{
	struct rec t;
	rec_init(&t, NULL);
	struct buf b;
	buf_init(&b);
	buf_puts(&b, HEADER);
	nest(&b, "<a>", "</a>", 64);
	nest(&b, "<b>", "</b>", 65);
	cr_assert(not(reader_feed(t.r, b.data, b.len)));
	cr_assert(eq(int, t.stanzas, 1));
	cr_assert(eq(str, (char *)t.condition, "policy-violation"));
	buf_finish(&b);
	rec_finish(&t);
}

Test(reader, oversize_text_is_policy_violation)
{
	struct reader_limits lim = { .max_stanza = 1000 };
	struct rec t;
	rec_init(&t, &lim);
	cr_assert(feed(&t, HEADER "<message><body>"));
	bool ok = true;
	for (int i = 0; i < 100 && ok; i++) {
		ok = feed(&t, "0123456789012345678901234567890123456789");
	}
	cr_assert(not(ok));
	cr_assert(eq(str, (char *)t.condition, "policy-violation"));
	cr_assert(eq(int, t.stanzas, 0));
	rec_finish(&t);
}

Test(reader, oversize_stanza_in_one_piece)
{
	struct reader_limits lim = { .max_stanza = 1000 };
	struct rec t;
	rec_init(&t, &lim);
	struct buf b;
	buf_init(&b);
	buf_puts(&b, HEADER "<message>");
	for (int i = 0; i < 200; i++) {
		buf_puts(&b, "<b>x</b>");
	}
	buf_puts(&b, "</message>");
	cr_assert(not(reader_feed(t.r, b.data, b.len)));
	cr_assert(eq(str, (char *)t.condition, "policy-violation"));
	cr_assert(eq(int, t.stanzas, 0));
	buf_finish(&b);
	rec_finish(&t);
}

Test(reader, oversize_start_tag_is_policy_violation)
{
	struct reader_limits lim = { .max_stanza = 1000 };
	struct rec t;
	rec_init(&t, &lim);
	cr_assert(feed(&t, HEADER "<message id='"));
	/* libxml2 reports nothing until '>': only the byte count sees it. */
	bool ok = true;
	int pieces = 0;
	while (ok && pieces < 1000) {
		ok = feed(&t, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
		pieces++;
	}
	cr_assert(not(ok));
	cr_assert(lt(int, pieces, 25));
	cr_assert(eq(str, (char *)t.condition, "policy-violation"));
	rec_finish(&t);
}

Test(reader, oversize_stream_header_is_policy_violation)
{
	struct reader_limits lim = { .max_stanza = 1000 };
	struct rec t;
	rec_init(&t, &lim);
	struct buf b;
	buf_init(&b);
	buf_puts(&b, "<stream:stream a='");
	for (int i = 0; i < 2000; i++) {
		buf_putc(&b, 'x');
	}
	cr_assert(not(reader_feed(t.r, b.data, b.len)));
	cr_assert(eq(str, (char *)t.condition, "policy-violation"));
	buf_finish(&b);
	rec_finish(&t);
}

Test(reader, stanzas_below_the_limit_pass_in_any_pieces)
{
	struct reader_limits lim = { .max_stanza = 200 };
	struct buf b;
	buf_init(&b);
	buf_puts(&b, HEADER);
	for (int i = 0; i < 100; i++) {
		buf_puts(&b, "<message to='bob@example.org' id='abcdefgh'>"
			"<body>0123456789012345678901234567890123456789</body>"
			"</message>\n");
	}
	static const size_t sizes[] = { 1, 7, 150, 4096, 100000 };
	for (size_t i = 0; i < 5; i++) {
		struct rec t;
		rec_init(&t, &lim);
		for (size_t off = 0; off < b.len; off += sizes[i]) {
			size_t n = b.len - off < sizes[i] ? b.len - off : sizes[i];
			cr_assert(reader_feed(t.r, b.data + off, n), "piece %zu", i);
		}
		cr_assert(eq(int, t.stanzas, 100));
		rec_finish(&t);
	}
	buf_finish(&b);
}

/* Feeds HEADER + stanza split at every offset (and byte by byte) with
 * max_stanza = max and checks the stanza is delivered, or refused, in
 * every case. */
static void check_limit_everywhere(const char *stanza, size_t max, bool pass)
{
	struct reader_limits lim = { .max_stanza = max };
	struct buf b;
	buf_init(&b);
	buf_puts(&b, HEADER);
	size_t hlen = b.len;
	buf_puts(&b, stanza);
	for (size_t at = hlen; at <= b.len + 1; at++) {
		struct rec t;
		rec_init(&t, &lim);
		if (at <= b.len) {
			reader_feed(t.r, b.data, at);
			reader_feed(t.r, b.data + at, b.len - at);
		} else {
			reader_feed(t.r, b.data, hlen);
			for (size_t i = hlen; i < b.len; i++) {
				reader_feed(t.r, b.data + i, 1);
			}
		}
		cr_assert(eq(int, t.stanzas, pass ? 1 : 0), "max %zu at %zu", max, at);
		cr_assert(eq(int, t.errors, pass ? 0 : 1), "max %zu at %zu", max, at);
		rec_finish(&t);
	}
	buf_finish(&b);
}

Test(reader, raw_size_limit_is_exact_in_any_pieces)
{
	/* No namespace: an inherited one counts as content on every element,
	 * and would make the content bound the smaller one here. */
	const char *s = "<message xmlns='' id='a'><b>x</b><b>x</b><b>x</b>"
		"<b>x</b><b>x</b><b>x</b><b>x</b><b>x</b><b>x</b><b>x</b>"
		"</message>";
	check_limit_everywhere(s, strlen(s), true);
	check_limit_everywhere(s, strlen(s) - 1, false);
}

Test(reader, inherited_namespaces_count_towards_the_limit)
{
	/* 4 raw bytes per element, but each holds a copy of the URI. */
	struct reader_limits lim = { .max_stanza = 64 * 1024 };
	struct rec t;
	rec_init(&t, &lim);
	struct buf b;
	buf_init(&b);
	buf_puts(&b, HEADER "<m xmlns='urn:");
	for (int i = 0; i < 1000; i++) {
		buf_putc(&b, 'x');
	}
	buf_puts(&b, "'>");
	for (int i = 0; i < 1000; i++) {
		buf_puts(&b, "<a/>");
	}
	buf_puts(&b, "</m>");
	cr_assert(not(reader_feed(t.r, b.data, b.len)));
	cr_assert(eq(str, (char *)t.condition, "policy-violation"));
	buf_finish(&b);
	rec_finish(&t);
}

Test(reader, too_many_attributes_is_policy_violation)
{
	struct rec t;
	rec_init(&t, NULL);
	struct buf b;
	buf_init(&b);
	buf_puts(&b, HEADER "<ok/><message");
	for (int i = 0; i < 100000; i++) {
		buf_printf(&b, " a%d='%d'", i, i);
	}
	buf_puts(&b, "/>");
	cr_assert(not(reader_feed(t.r, b.data, b.len)));
	cr_assert(eq(str, (char *)t.condition, "policy-violation"));
	cr_assert(eq(int, t.stanzas, 1), "the stanza before still arrives");
	buf_finish(&b);
	rec_finish(&t);
}

Test(reader, attribute_counting_skips_values_and_cdata)
{
	struct rec t;
	rec_init(&t, NULL);
	struct buf b;
	buf_init(&b);
	buf_puts(&b, HEADER "<message");
	for (int i = 0; i < 256; i++) {
		buf_printf(&b, " a%d='=\"=%d'", i, i);
	}
	buf_puts(&b, "><body><![CDATA[");
	for (int i = 0; i < 1000; i++) {
		buf_puts(&b, " x='1' <a ]>");
	}
	buf_puts(&b, "]]> == </body></message>");
	cr_assert(reader_feed(t.r, b.data, b.len));
	cr_assert(eq(int, t.stanzas, 1));
	buf_finish(&b);
	rec_finish(&t);
}

Test(reader, namespace_declarations_are_bounded)
{
	struct rec t;
	rec_init(&t, NULL);
	struct buf b;
	buf_init(&b);
	buf_puts(&b, HEADER);
	for (int level = 0; level < 20; level++) {
		buf_puts(&b, "<a");
		for (int i = 0; i < 10; i++) {
			buf_printf(&b, " xmlns:p%d='urn:%d'", i, level);
		}
		buf_puts(&b, ">");
	}
	cr_assert(not(reader_feed(t.r, b.data, b.len)));
	cr_assert(eq(str, (char *)t.condition, "policy-violation"));
	buf_finish(&b);
	rec_finish(&t);
}

Test(reader, sibling_namespace_declarations_do_not_accumulate)
{
	struct rec t;
	rec_init(&t, NULL);
	struct buf b;
	buf_init(&b);
	buf_puts(&b, HEADER "<iq><pubsub xmlns='urn:ps'><items>");
	for (int i = 0; i < 1000; i++) {
		buf_printf(&b, "<item><entry xmlns='urn:e%d'/></item>", i);
	}
	buf_puts(&b, "</items></pubsub></iq>");
	cr_assert(reader_feed(t.r, b.data, b.len));
	cr_assert(eq(int, t.stanzas, 1));
	buf_finish(&b);
	rec_finish(&t);
}

Test(reader, large_feed_is_sliced)
{
	struct rec t;
	rec_init(&t, NULL);
	struct buf b;
	buf_init(&b);
	buf_puts(&b, HEADER);
	while (b.len < 3 * 1024 * 1024) {
		buf_puts(&b, "<message><body>hello</body></message>");
	}
	int want = (int)((b.len - strlen(HEADER)) /
		strlen("<message><body>hello</body></message>"));
	buf_puts(&b, "<message><body>");
	for (int i = 0; i < 900 * 1024; i++) {
		buf_putc(&b, 'a' + i % 26);
	}
	buf_puts(&b, "</body></message>");
	cr_assert(reader_feed(t.r, b.data, b.len));
	cr_assert(eq(int, t.stanzas, want + 1));
	cr_assert(eq(int, t.errors, 0));
	buf_finish(&b);
	rec_finish(&t);
}

Test(reader, restart_in_stanza_callback_drops_the_rest)
{
	struct rec t;
	rec_init(&t, NULL);
	t.restart_on_stanza = 2;
	cr_assert(feed(&t, HEADER "<features/><proceed xmlns='"
		NS_TLS "'/><message><body>INJECTED</body></message>"));
	cr_assert(eq(int, t.stanzas, 2));
	cr_assert(not(reader_failed(t.r)));
	cr_assert(eq(ptr, strstr(t.log.data, "INJECTED"), NULL));
	/* The next feed is a new stream, with its own XML declaration. */
	cr_assert(feed(&t, HEADER "<message><body>after</body></message>"));
	cr_assert(eq(int, t.opens, 2));
	cr_assert(eq(int, t.stanzas, 3));
	cr_assert(eq(int, t.errors, 0));
	cr_assert(ne(ptr, strstr(t.log.data, "after"), NULL));
	rec_finish(&t);
}

Test(reader, restart_in_stanza_callback_midway_through_a_big_feed)
{
	struct rec t;
	rec_init(&t, NULL);
	t.restart_on_stanza = 3;
	struct buf b;
	buf_init(&b);
	buf_puts(&b, HEADER);
	while (b.len < 2 * 1024 * 1024) {
		buf_puts(&b, "<m/>");
	}
	cr_assert(reader_feed(t.r, b.data, b.len));
	cr_assert(eq(int, t.stanzas, 3));
	buf_finish(&b);
	rec_finish(&t);
}

Test(reader, restart_in_open_callback_drops_the_rest)
{
	struct rec t;
	rec_init(&t, NULL);
	t.restart_on_open = true;
	cr_assert(feed(&t, HEADER "<message/>"));
	cr_assert(eq(int, t.opens, 1));
	cr_assert(eq(int, t.stanzas, 0));
	t.restart_on_open = false;
	cr_assert(feed(&t, HEADER "<message/>"));
	cr_assert(eq(int, t.opens, 2));
	cr_assert(eq(int, t.stanzas, 1));
	rec_finish(&t);
}

Test(reader, restart_between_feeds_discards_partial_stanza)
{
	struct rec t;
	rec_init(&t, NULL);
	cr_assert(feed(&t, HEADER "<message><body>half"));
	reader_restart(t.r);
	cr_assert(feed(&t, HEADER "<presence/>"));
	cr_assert(eq(int, t.opens, 2));
	cr_assert(eq(int, t.stanzas, 1));
	cr_assert(eq(str, t.log.data, "open version=1.0 xmlns=jabber:client\n"
		"open version=1.0 xmlns=jabber:client\nstanza <presence/>\n"));
	rec_finish(&t);
}

Test(reader, restart_after_every_stanza_split_everywhere)
{
	static const char s1[] = HEADER "<a/><proceed/>";
	static const char s2[] = HEADER "<success/>";
	static const char s3[] = HEADER "<b/>";
	struct buf all;
	buf_init(&all);
	buf_puts(&all, s1);
	buf_puts(&all, s2);
	buf_puts(&all, s3);
	/* Restarts only happen on feed boundaries here: feed stream by
	 * stream, each split at every offset. */
	const char *streams[] = { s1, s2, s3 };
	for (size_t at = 0; at < sizeof(s2); at++) {
		struct rec t;
		rec_init(&t, NULL);
		t.restart_on_stanza = 2;
		for (int k = 0; k < 3; k++) {
			const char *s = streams[k];
			size_t len = strlen(s);
			size_t cut = at < len ? at : len;
			reader_feed(t.r, s, cut);
			reader_feed(t.r, s + cut, len - cut);
			if (k == 1) {
				reader_restart(t.r);
			}
		}
		cr_assert(eq(str, t.log.data,
			"open version=1.0 xmlns=jabber:client\nstanza <a/>\n"
			"stanza <proceed/>\nopen version=1.0 xmlns=jabber:client\n"
			"stanza <success/>\nopen version=1.0 xmlns=jabber:client\n"
			"stanza <b/>\n"), "at %zu", at);
		rec_finish(&t);
	}
	buf_finish(&all);
}

Test(reader, stream_close_is_reported)
{
	struct rec t;
	rec_init(&t, NULL);
	cr_assert(feed(&t, HEADER "<message/></stream:stream>"));
	cr_assert(eq(int, t.closes, 1));
	cr_assert(eq(int, t.errors, 0));
	rec_finish(&t);
}

Test(reader, free_with_partial_stanza_does_not_leak)
{
	struct rec t;
	rec_init(&t, NULL);
	cr_assert(feed(&t, HEADER "<message><body>half<x a='b'>"));
	rec_finish(&t);
	reader_free(NULL);
}

Test(reader, parse_element_good)
{
	const char *err = "unset";
	const char *s = "  <message to='bob@example.org'><body>hi &amp; bye</body>"
		"</message>\n";
	struct xml *x = reader_parse_element(s, strlen(s), NS_CLIENT, &err);
	cr_assert(ne(ptr, x, NULL));
	cr_assert(eq(str, x->name, "message"));
	cr_assert(eq(str, x->ns, NS_CLIENT));
	cr_assert(eq(ptr, x->parent, NULL));
	char *out = xml_to_string(x, NS_CLIENT);
	cr_assert(eq(str, out, "<message to=\"bob@example.org\">"
		"<body>hi &amp; bye</body></message>"));
	free(out);
	xml_free(x);

	s = "<query xmlns='urn:x'/>";
	x = reader_parse_element(s, strlen(s), NS_CLIENT, &err);
	cr_assert(eq(str, x->ns, "urn:x"));
	xml_free(x);

	s = "<plain/>";
	x = reader_parse_element(s, strlen(s), NULL, &err);
	cr_assert(eq(str, x->ns, ""));
	xml_free(x);
}

static void check_bad_element(const char *s, size_t len, const char *ns)
{
	const char *err = NULL;
	struct xml *x = reader_parse_element(s, len, ns, &err);
	cr_assert(eq(ptr, x, NULL), "accepted: %s", s);
	cr_assert(ne(ptr, (void *)err, NULL));
	cr_assert(ne(sz, strlen(err), 0));
}

#define BAD(s) check_bad_element(s, strlen(s), NS_CLIENT)

Test(reader, parse_element_bad)
{
	BAD("");
	BAD("   ");
	BAD("text");
	BAD("<a/>text");
	BAD("text<a/>");
	BAD("<a/><b/>");
	BAD("<a>");
	BAD("<a");
	BAD("</a>");
	BAD("<a></b>");
	BAD("<a/></stream:stream>");
	BAD("<a/></stream:stream><b/>");
	BAD("</stream:stream>");
	BAD("<!DOCTYPE a><a/>");
	BAD("<?xml version='1.0'?><a/>");
	BAD("<a><!-- c --></a>");
	BAD("<?pi x?><a/>");
	BAD("<a>&e;</a>");
	BAD("<a>\x01</a>");
	BAD("<x:a/>");
	check_bad_element("<a>\0</a>", 8, NS_CLIENT);
	check_bad_element("<a/>", 4, "urn:\x01");
	struct buf b;
	buf_init(&b);
	nest(&b, "<a>", "</a>", 65);
	BAD(b.data);
	buf_finish(&b);
}

Test(reader, parse_element_error_may_be_null)
{
	cr_assert(eq(ptr, reader_parse_element("<a", 2, NS_CLIENT, NULL), NULL));
}

/* Found by fuzz-reader: libxml2 passes "&amp;" in an xmlns value on as
 * "&#38;" too, so the namespace differed after a round trip. */
Test(reader, entities_in_namespace_uris_are_decoded)
{
	struct xml *x = one_stanza_of("<iq><ping xmlns='ur&amp;n:x'/>"
		"<pong xmlns='urn:&#38;y'/></iq>");
	cr_assert(ne(ptr, xml_child(x, "ping", "ur&n:x"), NULL));
	cr_assert(ne(ptr, xml_child(x, "pong", "urn:&y"), NULL));
	xml_free(x);
	struct rec t;
	rec_init(&t, NULL);
	cr_assert(feed(&t, "<stream:stream xmlns='a&amp;b' "
		"xmlns:stream='http://etherx.jabber.org/streams'><m/>"));
	cr_assert(eq(str, t.log.data, "open xmlns=a&b\n"
		"stanza <m xmlns=\"a&amp;b\"/>\n"));
	rec_finish(&t);
}

/* Found by fuzz-reader: <xml:x/> is an element in the XML namespace,
 * which cannot be written back as a default namespace. */
Test(reader, elements_in_the_xml_namespace_are_refused)
{
	check_refused(NULL, "<xml:lang/>", "bad-format");
	check_refused(NULL, "<m><xml:x/></m>", "bad-format");
}

/* Found by fuzz-reader: libxml2 2.9 accepts overlong UTF-8 inside CDATA
 * sections, and such a stanza could not be serialized. */
Test(reader, overlong_utf8_in_cdata_is_refused)
{
	check_refused(NULL, "<a><![CDATA[x\xf0\x80\x98\x9fy]]></a>",
		"not-well-formed");
	check_refused(NULL, "<a><![CDATA[\xe0\x80\xaf]]></a>", "not-well-formed");
	check_refused(NULL, "<a><![CDATA[\xc0\xaf]]></a>", "not-well-formed");
	check_refused(NULL, "<a><![CDATA[\xc1]]></a>", "not-well-formed");
}

Test(reader, multibyte_cdata_split_anywhere)
{
	const char *s = HEADER "<a><![CDATA[\xc3\xa9\xe2\x82\xac\xf0\x9f\x98"
		"\x80\xe0\xa0\x80\xf0\x90\x80\x80]]></a>";
	size_t len = strlen(s);
	for (size_t at = 0; at <= len; at++) {
		char *log = log_of_split(s, len, at);
		cr_assert(eq(str, log, "open version=1.0 xmlns=jabber:client\n"
			"stanza <a>\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
			"\xe0\xa0\x80\xf0\x90\x80\x80</a>\n"), "at %zu", at);
		free(log);
	}
}

/*
 * Stanzas live in the reader's arena. A callback may keep part of one by
 * unlinking it: that subtree keeps its arena alive after the reader moved
 * on (and after the reader is gone), while later stanzas are built in a
 * new arena. Under ASan a dangling node would show here.
 */
struct keeper {
	struct xml *kept[4];
	int n;
};

static void keep_first_child(void *ud, struct xml *s)
{
	struct keeper *k = ud;
	struct xml *c = xml_first_element(s);
	if (c != NULL && k->n < 4) {
		xml_unlink(c);
		k->kept[k->n++] = c;
	}
	xml_add_text(s, "added", 5);	/* the rest is still usable */
	xml_set_attr(s, "id", "changed");
	xml_add(s, "extra", "urn:x");
	cr_assert(eq(str, (char *)xml_attr(s, "id"), "changed"));
}

static const struct reader_cb keeper_cb = {
	.stanza = keep_first_child,
};

Test(reader, subtree_kept_from_a_stanza_outlives_the_reader)
{
	struct keeper k = { 0 };
	struct reader *r = reader_new(&keeper_cb, &k, NULL);
	const char *s = HEADER "<message id='1'><body>one</body></message>"
		"<message id='2'><body>two</body><x/></message>"
		"<message><c xmlns='urn:c' a='b'>three<d/></c></message>";
	cr_assert(reader_feed(r, s, strlen(s)));
	reader_free(r);
	cr_assert(eq(int, k.n, 3));
	const char *want[] = {
		"<body>one</body>", "<body>two</body>",
		"<c xmlns=\"urn:c\" a=\"b\">three<d/></c>",
	};
	for (int i = 0; i < 3; i++) {
		cr_assert(eq(ptr, k.kept[i]->parent, NULL));
		char *x = xml_to_string(k.kept[i], NS_CLIENT);
		cr_assert(eq(str, x, (char *)want[i]));
		free(x);
		struct xml *copy = xml_copy(k.kept[i]);
		xml_free(k.kept[i]);
		x = xml_to_string(copy, NS_CLIENT);
		cr_assert(eq(str, x, (char *)want[i]));
		free(x);
		xml_free(copy);
	}
}

/* Moving arena nodes into heap trees and heap nodes into arena trees. */
static void mix_trees(void *ud, struct xml *s)
{
	struct xml **out = ud;
	struct xml *heap = xml_new("wrap", NULL);
	struct xml *body = xml_child(s, "body", NULL);
	xml_append(heap, body);		/* arena node into a heap tree */
	struct xml *h = xml_new("h", NULL);
	xml_add_text(h, "heap", 4);
	xml_append(s, h);		/* heap node into the arena tree */
	xml_append(s, xml_copy(heap));	/* and a heap copy of the mix */
	*out = heap;
}

static const struct reader_cb mix_cb = {
	.stanza = mix_trees,
};

Test(reader, arena_and_heap_nodes_mix)
{
	struct xml *heap[3] = { NULL };
	struct xml *cur = NULL;
	struct reader *r = reader_new(&mix_cb, &cur, NULL);
	const char *s = HEADER "<message><body>b1</body></message>";
	cr_assert(reader_feed(r, s, strlen(s)));
	heap[0] = cur;
	const char *more = "<message><body>b2</body></message>";
	cr_assert(reader_feed(r, more, strlen(more)));
	heap[1] = cur;
	cr_assert(reader_feed(r, more, strlen(more)));
	heap[2] = cur;
	reader_free(r);
	char *x = xml_to_string(heap[0], NS_CLIENT);
	cr_assert(eq(str, x, "<wrap><body>b1</body></wrap>"));
	free(x);
	for (int i = 0; i < 3; i++) {
		xml_free(heap[i]);
	}
}

/* Names are remembered by libxml2's string pointers in a small cache:
 * many distinct names (more than it holds), common and uncommon, the
 * XML namespace's attributes, each stanza checked whole. */
Test(reader, many_distinct_names_are_kept_apart)
{
	struct buf in, want;
	buf_init(&in);
	buf_init(&want);
	buf_puts(&in, HEADER);
	buf_puts(&want, "open version=1.0 xmlns=jabber:client\n");
	for (int i = 0; i < 300; i++) {
		buf_printf(&in, "<message id='%d' a%d='v' xml:lang='l%d' "
			"xml:space='s'><n%d xmlns='urn:n%d'>t</n%d><body/></message>",
			i, i, i, i % 97, i % 89, i % 97);
		buf_printf(&want, "stanza <message id=\"%d\" a%d=\"v\" "
			"xml:lang=\"l%d\" xml:space=\"s\"><n%d xmlns=\"urn:n%d\">t</n%d>"
			"<body/></message>\n", i, i, i, i % 97, i % 89, i % 97);
	}
	char *log = log_of_split(in.data, in.len, in.len / 3);
	cr_assert(eq(str, log, want.data));
	free(log);
	buf_finish(&in);
	buf_finish(&want);
}
