/*
 * XEP-0363 replies read by daemon/upload.c: the slot (URLs checked,
 * only the allowed headers kept, newlines stripped) and the service's
 * max-file-size form.
 */
#define _GNU_SOURCE	/* asprintf */

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/upload.h"
#include "proto/ns.h"
#include "proto/reader.h"

static struct xml *parse(const char *s)
{
	const char *err = NULL;
	struct xml *x = reader_parse_element(s, strlen(s), NS_CLIENT, &err);
	cr_assert(x != NULL, "parse: %s", err ? err : "?");
	return x;
}

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s != NULL ? s : "(absent)";
}

/* The slot of <iq><slot>inner</slot></iq>, or NULL. */
static json_t *slot_of(const char *inner)
{
	char *s = NULL;
	cr_assert(asprintf(&s, "<iq type='result' id='1' from='upload.example'>"
		"<slot xmlns='urn:xmpp:http:upload:0'>%s</slot></iq>", inner) > 0);
	struct xml *iq = parse(s);
	json_t *slot = upload_slot_json(iq);
	xml_free(iq);
	free(s);
	return slot;
}

/* XEP-0363 example 5, with a header the client must not pass on. */
Test(upload, slot_with_allowed_headers)
{
	json_t *s = slot_of(
		"<put url='https://upload.montague.tld/4a771ac1/tr%C3%A8s%20cool.jpg'>"
		"<header name='Authorization'>Basic Base64String==</header>"
		"<header name='cookie'>foo=bar; user=romeo</header>"
		"<header name='Host'>evil.example</header>"
		"<header name='Expires'>Tue, 15 Nov 1994\r\n 08:12:31 GMT</header>"
		"</put>"
		"<get url='https://download.montague.tld/4a771ac1/tr%C3%A8s%20cool.jpg'/>");
	cr_assert(s != NULL);
	cr_expect(eq(str, (char *)jstr(s, "put"),
		"https://upload.montague.tld/4a771ac1/tr%C3%A8s%20cool.jpg"));
	cr_expect(eq(str, (char *)jstr(s, "get"),
		"https://download.montague.tld/4a771ac1/tr%C3%A8s%20cool.jpg"));
	json_t *h = json_object_get(s, "headers");
	cr_expect(eq(sz, json_object_size(h), 3));
	cr_expect(eq(str, (char *)jstr(h, "Authorization"), "Basic Base64String=="));
	cr_expect(eq(str, (char *)jstr(h, "Cookie"), "foo=bar; user=romeo"));
	cr_expect(eq(str, (char *)jstr(h, "Expires"), "Tue, 15 Nov 1994 08:12:31 GMT"));
	cr_expect(eq(ptr, json_object_get(h, "Host"), NULL));
	json_decref(s);
}

Test(upload, slot_without_headers_has_an_empty_object)
{
	json_t *s = slot_of("<get url='http://127.0.0.1:5280/a/b'/>"
		"<put url='http://127.0.0.1:5280/a/b'/>");
	cr_assert(s != NULL);
	cr_expect(eq(sz, json_object_size(json_object_get(s, "headers")), 0));
	json_decref(s);
}

Test(upload, unusable_slots_are_refused)
{
	static const char *const bad[] = {
		"<put url='https://a.example/x'/>",
		"<get url='https://a.example/x'/>",
		"<put url='ftp://a.example/x'/><get url='https://a.example/x'/>",
		"<put url='https://a.example/x'/><get url='javascript:alert(1)'/>",
		"<put url='https://a.example/x y'/><get url='https://a.example/x'/>",
		"<put url='https://a.example/x&#10;'/><get url='https://a.example/x'/>",
		"<put/><get url='https://a.example/x'/>",
		NULL,
	};
	for (size_t i = 0; bad[i] != NULL; i++) {
		json_t *s = slot_of(bad[i]);
		cr_expect(eq(ptr, s, NULL), "accepted %s", bad[i]);
		json_decref(s);
	}
	struct xml *iq = parse("<iq type='result' id='1'/>");
	cr_expect(eq(ptr, upload_slot_json(iq), NULL));
	xml_free(iq);
}

Test(upload, overlong_url_is_refused)
{
	size_t n = UPLOAD_MAX_URL + 1;
	char *url = malloc(n + 1);
	memcpy(url, "https://", 8);
	memset(url + 8, 'a', n - 8);
	url[n] = '\0';
	char *inner = NULL;
	cr_assert(asprintf(&inner, "<put url='%s'/><get url='https://a.example/x'/>",
		url) > 0);
	json_t *s = slot_of(inner);
	cr_expect(eq(ptr, s, NULL));
	json_decref(s);
	free(inner);
	free(url);
}

static uint64_t max_of(const char *query)
{
	struct xml *q = parse(query);
	uint64_t n = upload_max_size(q);
	xml_free(q);
	return n;
}

/* XEP-0363 example 2, and forms that say nothing usable. */
Test(upload, max_file_size_from_the_form)
{
	cr_expect(eq(u64, max_of(
		"<query xmlns='http://jabber.org/protocol/disco#info'>"
		"<identity category='store' type='file' name='HTTP File Upload'/>"
		"<feature var='urn:xmpp:http:upload:0'/>"
		"<x type='result' xmlns='jabber:x:data'>"
		"<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:http:upload:0</value></field>"
		"<field var='max-file-size'><value>5242880</value></field>"
		"</x></query>"), 5242880));
	cr_expect(eq(u64, max_of(
		"<query xmlns='http://jabber.org/protocol/disco#info'>"
		"<feature var='urn:xmpp:http:upload:0'/></query>"), 0));
	cr_expect(eq(u64, max_of(
		"<query xmlns='http://jabber.org/protocol/disco#info'>"
		"<x type='result' xmlns='jabber:x:data'>"
		"<field var='FORM_TYPE' type='hidden'><value>urn:example:other</value></field>"
		"<field var='max-file-size'><value>10</value></field></x></query>"), 0));
	cr_expect(eq(u64, max_of(
		"<query xmlns='http://jabber.org/protocol/disco#info'>"
		"<x type='result' xmlns='jabber:x:data'>"
		"<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:http:upload:0</value></field>"
		"<field var='max-file-size'><value>-5</value></field></x></query>"), 0));
	cr_expect(eq(u64, max_of(
		"<query xmlns='http://jabber.org/protocol/disco#info'>"
		"<x type='result' xmlns='jabber:x:data'>"
		"<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:http:upload:0</value></field>"
		"<field var='max-file-size'><value>99999999999999999999999</value></field>"
		"</x></query>"), 0));
}
