#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <stdlib.h>
#include <string.h>

#include "proto/error.h"
#include "proto/ns.h"
#include "proto/reader.h"

static struct xml *parse(const char *s)
{
	const char *err = NULL;
	struct xml *x = reader_parse_element(s, strlen(s), NS_CLIENT, &err);
	cr_assert(not(zero(ptr, x)), "%s", err);
	return x;
}

Test(error, condition_and_text)
{
	struct xml *x = parse("<iq type='error' id='1'><error type='cancel'>"
		"<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
		"<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>gone</text>"
		"</error></iq>");
	char *text = NULL;
	cr_assert(eq(str, (char *)stanza_error(x, &text), "item-not-found"));
	cr_assert(eq(str, text, "gone"));
	free(text);
	xml_free(x);
}

Test(error, text_first_and_foreign_children_skipped)
{
	struct xml *x = parse("<message type='error'><error type='wait'>"
		"<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>t</text>"
		"<app xmlns='urn:example'/>"
		"<resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
		"</error></message>");
	char *text = NULL;
	cr_assert(eq(str, (char *)stanza_error(x, &text), "resource-constraint"));
	free(text);
	xml_free(x);
}

Test(error, missing_error_or_condition)
{
	struct xml *x = parse("<iq type='error' id='1'/>");
	char *text = (char *)"x";
	cr_assert(eq(str, (char *)stanza_error(x, &text), "undefined-condition"));
	cr_assert(zero(ptr, text));
	xml_free(x);
	x = parse("<iq type='error' id='1'><error type='cancel'>"
		"<bogus xmlns='urn:example'/></error></iq>");
	cr_assert(eq(str, (char *)stanza_error(x, &text), "undefined-condition"));
	cr_assert(zero(ptr, text));
	xml_free(x);
}
