#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "proto/jid.h"

/* Parses s, which must be valid, and returns the result. */
static struct jid must_parse(const char *s)
{
	struct jid j;
	const char *err = NULL;

	cr_assert(jid_parse(&j, s, &err), "'%s' rejected: %s", s, err);
	cr_assert(ne(ptr, j.domain, NULL));
	return j;
}

/* Parses s, which must be invalid, and returns the error message. */
static const char *must_fail(const char *s)
{
	struct jid j;
	const char *err = NULL;

	cr_assert(not(jid_parse(&j, s, &err)), "'%s' accepted", s);
	cr_assert(ne(ptr, (void *)err, NULL));
	cr_assert(eq(ptr, j.local, NULL));
	cr_assert(eq(ptr, j.domain, NULL));
	cr_assert(eq(ptr, j.resource, NULL));
	return err;
}

static void expect_parts(const char *s, const char *local, const char *domain,
	const char *resource)
{
	struct jid j = must_parse(s);

	if (local == NULL) {
		cr_expect(eq(ptr, j.local, NULL), "%s", s);
	} else {
		cr_expect(eq(str, j.local, (char *)local), "%s", s);
	}
	cr_expect(eq(str, j.domain, (char *)domain), "%s", s);
	if (resource == NULL) {
		cr_expect(eq(ptr, j.resource, NULL), "%s", s);
	} else {
		cr_expect(eq(str, j.resource, (char *)resource), "%s", s);
	}
	jid_finish(&j);
}

static bool same_jid(const char *a, const char *b)
{
	struct jid ja = must_parse(a);
	struct jid jb = must_parse(b);
	bool equal = jid_equal(&ja, &jb);

	jid_finish(&ja);
	jid_finish(&jb);
	return equal;
}

static char *repeat(const char *unit, size_t count, const char *prefix,
	const char *suffix)
{
	size_t u = strlen(unit);
	size_t p = strlen(prefix);
	char *s = malloc(p + u * count + strlen(suffix) + 1);

	memcpy(s, prefix, p);
	for (size_t i = 0; i < count; i++) {
		memcpy(s + p + i * u, unit, u);
	}
	strcpy(s + p + u * count, suffix);
	return s;
}

Test(jid, parses_all_three_parts)
{
	expect_parts("juliet@example.com/balcony", "juliet", "example.com", "balcony");
	expect_parts("example.com", NULL, "example.com", NULL);
	expect_parts("juliet@example.com", "juliet", "example.com", NULL);
	expect_parts("example.com/foobar", NULL, "example.com", "foobar");
}

Test(jid, first_slash_starts_resourcepart)
{
	expect_parts("foo/bar@quux/foo", NULL, "foo", "bar@quux/foo");
	expect_parts("a.example.com/b@example.net", NULL, "a.example.com", "b@example.net");
	expect_parts("juliet@example.com/foo@bar", "juliet", "example.com", "foo@bar");
	expect_parts("juliet@example.com//@//", "juliet", "example.com", "/@//");
}

Test(jid, rejects_at_in_domainpart)
{
	cr_expect(eq(str, (char *)must_fail("foo@bar@quux"), "domainpart contains '@'"));
	cr_expect(eq(str, (char *)must_fail("@@example.com"), "empty localpart"));
}

Test(jid, rejects_empty_localpart)
{
	cr_expect(eq(str, (char *)must_fail("@bar"), "empty localpart"));
	cr_expect(eq(str, (char *)must_fail("@example.com/"), "empty localpart"));
	cr_expect(eq(str, (char *)must_fail("@example.com/foo"), "empty localpart"));
}

Test(jid, rejects_empty_domainpart)
{
	cr_expect(eq(str, (char *)must_fail(""), "empty domainpart"));
	cr_expect(eq(str, (char *)must_fail("foo@"), "empty domainpart"));
	cr_expect(eq(str, (char *)must_fail("foo@/quux"), "empty domainpart"));
	cr_expect(eq(str, (char *)must_fail("/foobar"), "empty domainpart"));
	cr_expect(eq(str, (char *)must_fail("."), "empty domainpart"));
	must_fail("foo@./bar");
}

Test(jid, rejects_empty_resourcepart)
{
	cr_expect(eq(str, (char *)must_fail("bar/"), "empty resourcepart"));
	cr_expect(eq(str, (char *)must_fail("user@host/"), "empty resourcepart"));
}

Test(jid, strips_one_trailing_dot_from_domainpart)
{
	expect_parts("example.net.", NULL, "example.net", NULL);
	expect_parts("A.Example.nEt./r", NULL, "a.example.net", "r");
	expect_parts("juliet@example.com\xe3\x80\x82", "juliet", "example.com", NULL);
	cr_assert(same_jid("juliet@example.com.", "juliet@example.com"));
	must_fail("example.com..");
	must_fail(".example.com");
	must_fail("a..example.com");
}

Test(jid, accepts_ip_literals)
{
	expect_parts("[::1]", NULL, "[::1]", NULL);
	expect_parts("juliet@127.0.0.1/r", "juliet", "127.0.0.1", "r");
	expect_parts("juliet@[2001:DB8:0:0::1]/r", "juliet", "[2001:db8::1]", "r");
	cr_assert(same_jid("[0:0::1]", "[::1]"));
}

Test(jid, rejects_bad_ip_literals)
{
	const char *bad[] = { "[::1", "[]", "[zz::1]", "[127.0.0.1]", "[::1]x",
		"[::1%eth0]", "::1" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct jid j;
		cr_expect(not(jid_parse(&j, bad[i], NULL)), "%s accepted", bad[i]);
	}
}

Test(jid, accepts_rfc7622_valid_examples)
{
	static const char *valid[] = {
		"juliet@example.com",
		"juliet@example.com/foo",
		"juliet@example.com/foo bar",
		"juliet@example.com/foo@bar",
		"foo\\20bar@example.com",
		"fussball@example.com",
		"fu\u00dfball@example.com",	/* fußball */
		"\xcf\x80@example.com",		/* π */
		"\xce\xa3@example.com/foo",	/* Σ */
		"\xcf\x83@example.com/foo",	/* σ */
		"\xcf\x82@example.com/foo",	/* ς */
		"king@example.com/\xe2\x99\x9a",	/* ♚ */
		"example.com",
		"example.com/foobar",
		"a.example.com/b@example.net",
	};

	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		struct jid j;
		const char *err = NULL;
		cr_expect(jid_parse(&j, valid[i], &err), "%s rejected: %s", valid[i], err);
		jid_finish(&j);
	}
}

Test(jid, rejects_rfc7622_invalid_examples)
{
	static const char *invalid[] = {
		"\"juliet\"@example.com",
		"foo bar@example.com",
		"@example.com/",
		"henry\xe2\x85\xa3@example.com",	/* ROMAN NUMERAL FOUR */
		"\xe2\x99\x9a@example.com",	/* ♚ */
		"juliet@",
		"/foobar",
	};

	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		struct jid j;
		cr_expect(not(jid_parse(&j, invalid[i], NULL)), "%s accepted", invalid[i]);
	}
}

/* RFC 7622 listed it as invalid; erratum 4560 withdrew that example. */
Test(jid, allows_leading_space_in_resourcepart)
{
	expect_parts("juliet@example.com/ foo", "juliet", "example.com", " foo");
	expect_parts("juliet@example.com/foo ", "juliet", "example.com", "foo ");
	expect_parts("juliet@example.com/ ", "juliet", "example.com", " ");
}

Test(jid, keeps_sharp_s_and_final_sigma_distinct)
{
	expect_parts("fu\xc3\x9f" "ball@example.com", "fu\xc3\x9f" "ball", "example.com", NULL);
	cr_expect(not(same_jid("fu\xc3\x9f" "ball@example.com", "fussball@example.com")));
	cr_expect(same_jid("\xce\xa3@example.com/foo", "\xcf\x83@example.com/foo"));
	cr_expect(not(same_jid("\xcf\x82@example.com/foo", "\xcf\x83@example.com/foo")));
}

/* No Final_Sigma context: ΟΔΟΣ lower-cases to οδοσ, not οδος. */
Test(jid, lowercases_sigma_without_context)
{
	expect_parts("\xce\x9f\xce\x94\xce\x9f\xce\xa3@example.com",
		"\xce\xbf\xce\xb4\xce\xbf\xcf\x83", "example.com", NULL);
}

Test(jid, folds_case_in_localpart_and_domainpart)
{
	expect_parts("Juliet@Example.COM/Balcony", "juliet", "example.com", "Balcony");
	cr_expect(same_jid("Juliet@Example.COM", "juliet@example.com"));
	cr_expect(not(same_jid("juliet@example.com/Foo", "juliet@example.com/foo")));
}

Test(jid, maps_fullwidth_localpart_to_ascii)
{
	/* ＪＵＬＩＥＴ */
	expect_parts("\xef\xbc\xaa\xef\xbc\xb5\xef\xbc\xac\xef\xbc\xa9\xef\xbc\xa5"
		"\xef\xbc\xb4@example.com", "juliet", "example.com", NULL);
	/* A fullwidth '＠' becomes '@', which a localpart may not hold. */
	must_fail("a\xef\xbc\xa0" "b@example.com");
}

Test(jid, normalizes_to_nfc)
{
	expect_parts("e\xcc\x81@example.com/e\xcc\x81", "\xc3\xa9", "example.com", "\xc3\xa9");
	cr_expect(same_jid("\xc3\x89@example.com", "e\xcc\x81@example.com"));
}

Test(jid, rejects_characters_forbidden_in_localparts)
{
	const char *bad[] = { "a\"b", "a&b", "a'b", "a:b", "a<b", "a>b" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char s[64];
		snprintf(s, sizeof(s), "%s@example.com", bad[i]);
		cr_expect(eq(str, (char *)must_fail(s),
			"localpart contains a character forbidden in JIDs"), "%s", s);
	}
}

Test(jid, rejects_disallowed_localpart_characters)
{
	const char *bad[] = {
		"foo bar", "foo\tbar", "foo\x7f", "a\u00a0b", "\xe2\x85\xa3",
		"\xe2\x99\x9a", "a\u200bb", "\xef\xbf\xbe", "a\xe1\x84\x80",
		"\xee\x80\x80", "a\xcd\xb8", "\xef\xac\x81", "\xc2\xaa",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char s[64];
		snprintf(s, sizeof(s), "%s@example.com", bad[i]);
		cr_expect(eq(str, (char *)must_fail(s),
			"localpart contains a disallowed character"), "%s", s);
	}
}

Test(jid, applies_contextual_rules)
{
	/* MIDDLE DOT only between two 'l', as in Catalan col·la. */
	expect_parts("col\xc2\xb7la@example.com", "col\xc2\xb7la", "example.com", NULL);
	must_fail("co\xc2\xb7lla@example.com");
	/* ZERO WIDTH JOINER needs a virama before it, even in a resourcepart. */
	must_fail("a@example.com/a\xe2\x80\x8d" "b");
	expect_parts("\xe0\xa4\x95\xe0\xa5\x8d\xe2\x80\x8d@example.com",
		"\xe0\xa4\x95\xe0\xa5\x8d\xe2\x80\x8d", "example.com", NULL);
	/* ZERO WIDTH NON-JOINER between joining letters, as in Persian. */
	expect_parts("\xd9\x85\xdb\x8c\xe2\x80\x8c\xd8\xae@example.com",
		"\xd9\x85\xdb\x8c\xe2\x80\x8c\xd8\xae", "example.com", NULL);
	must_fail("a\xe2\x80\x8c" "b@example.com");
	/* Arabic-Indic and extended Arabic-Indic digits do not mix. */
	must_fail("\xd8\xa8\xd9\xa1\xdb\xb1@example.com");
	/* KERAIA must precede a Greek letter. */
	expect_parts("\xcd\xb5\xce\xb1@example.com", "\xcd\xb5\xce\xb1", "example.com", NULL);
	must_fail("\xcd\xb5" "a@example.com");
}

Test(jid, applies_bidi_rule_to_localpart)
{
	/* שלום: right to left throughout */
	expect_parts("\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d@example.com",
		"\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d", "example.com", NULL);
	/* A Latin letter first makes it a left-to-right label holding R. */
	cr_expect(eq(str, (char *)must_fail("a\xd7\xa9@example.com"),
		"localpart violates the bidi rule"));
	/* European and Arabic digits may not share a right-to-left label. */
	must_fail("\xd8\xa8" "1\xd9\xa1@example.com");
	/* The resourcepart has no directionality rule. */
	expect_parts("a@example.com/a\xd7\xa9", "a", "example.com", "a\xd7\xa9");
}

Test(jid, maps_resourcepart_spaces_and_keeps_symbols)
{
	/* IDEOGRAPHIC SPACE and NO-BREAK SPACE become U+0020. */
	expect_parts("a@example.com/foo\xe3\x80\x80" "bar\xc2\xa0", "a", "example.com", "foo bar ");
	/* FreeformClass keeps symbols, compatibility characters and width. */
	expect_parts("a@example.com/\xe2\x85\xa3\xef\xbc\xa1", "a", "example.com",
		"\xe2\x85\xa3\xef\xbc\xa1");
}

Test(jid, rejects_disallowed_resourcepart_characters)
{
	const char *bad[] = {
		"a@example.com/foo\tbar", "a@example.com/\x01", "a@example.com/x\xef\xbb\xbf",
		"a@example.com/x\xef\xbf\xbf", "a@example.com/\xee\x80\x80",
		"a@example.com/\xe2\x80\xa8",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect(eq(str, (char *)must_fail(bad[i]),
			"resourcepart contains a disallowed character"), "%s", bad[i]);
	}
}

Test(jid, rejects_invalid_utf8)
{
	const char *bad[] = {
		"\xff@example.com", "a@exa\xc3mple.com", "a@example.com/\xc0\x80",
		"a@example.com/\xed\xa0\x80", "a@example.com/\xf4\x90\x80\x80",
		"a\xe2\x82@example.com",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect(eq(str, (char *)must_fail(bad[i]), "invalid UTF-8"), "%s", bad[i]);
	}
}

Test(jid, limits_parts_to_1023_bytes)
{
	char *s = repeat("a", 1023, "", "@example.com");
	struct jid j = must_parse(s);
	cr_expect(eq(sz, strlen(j.local), 1023));
	jid_finish(&j);
	free(s);

	s = repeat("a", 1024, "", "@example.com");
	cr_expect(eq(str, (char *)must_fail(s), "localpart too long"));
	free(s);

	s = repeat("r", 1023, "a@example.com/", "");
	j = must_parse(s);
	cr_expect(eq(sz, strlen(j.resource), 1023));
	jid_finish(&j);
	free(s);

	s = repeat("r", 1024, "a@example.com/", "");
	cr_expect(eq(str, (char *)must_fail(s), "resourcepart too long"));
	free(s);

	s = repeat("a.", 512, "", "com");
	must_fail(s);
	free(s);
}

/* The limit applies after preparation: 1023 fullwidth letters are 3069
 * bytes in, 1023 out. */
Test(jid, measures_length_after_preparation)
{
	char *s = repeat("\xef\xbc\xa1", 1023, "", "@example.com");
	struct jid j = must_parse(s);
	cr_expect(eq(sz, strlen(j.local), 1023));
	jid_finish(&j);
	free(s);

	s = repeat("\xef\xbc\xa1", 1024, "", "@example.com");
	cr_expect(eq(str, (char *)must_fail(s), "localpart too long"));
	free(s);

	s = repeat("\xc3\xa9", 512, "a@example.com/", "");
	cr_expect(eq(str, (char *)must_fail(s), "resourcepart too long"));
	free(s);
}

Test(jid, rejects_huge_input_without_preparing_it)
{
	char *s = repeat("a", 1 << 20, "", "@example.com/r");
	cr_expect(eq(str, (char *)must_fail(s), "localpart too long"));
	free(s);
	s = repeat("r", 1 << 20, "a@example.com/", "");
	cr_expect(eq(str, (char *)must_fail(s), "resourcepart too long"));
	free(s);
	s = repeat("d", 1 << 20, "a@", "");
	cr_expect(eq(str, (char *)must_fail(s), "domainpart too long"));
	free(s);
}

Test(jid, stores_idn_domain_as_unicode)
{
	expect_parts("user@b\xc3\xbc" "cher.example", "user", "b\xc3\xbc" "cher.example", NULL);
	expect_parts("user@xn--bcher-kva.example", "user", "b\xc3\xbc" "cher.example", NULL);
	expect_parts("user@XN--BCHER-KVA.Example", "user", "b\xc3\xbc" "cher.example", NULL);
	expect_parts("user@B\xc3\x9c" "CHER.example", "user", "b\xc3\xbc" "cher.example", NULL);
	cr_expect(same_jid("user@b\xc3\xbc" "cher.example", "user@xn--bcher-kva.example"));
}

Test(jid, rejects_invalid_domain_names)
{
	const char *bad[] = {
		"exa mple.com", "foo_bar.com", "a<b.com", "-a.com", "a-.com",
		"ab--c.com", "xn--a.com", "xn--ls8h.la", "ex\uff0fa",
		"ex\u200da.com", "a\tb.com",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect(eq(str, (char *)must_fail(bad[i]),
			"domainpart is not a valid IDNA2008 name"), "%s", bad[i]);
	}
}

Test(jid, bare_equal_ignores_resourcepart)
{
	struct jid a = must_parse("juliet@example.com/balcony");
	struct jid b = must_parse("Juliet@example.com/chamber");
	struct jid c = must_parse("juliet@example.com");
	struct jid d = must_parse("example.com/balcony");

	cr_expect(jid_bare_equal(&a, &b));
	cr_expect(not(jid_equal(&a, &b)));
	cr_expect(jid_bare_equal(&a, &c));
	cr_expect(not(jid_equal(&a, &c)));
	cr_expect(not(jid_bare_equal(&a, &d)));
	cr_expect(jid_equal(&a, &a));
	jid_finish(&a);
	jid_finish(&b);
	jid_finish(&c);
	jid_finish(&d);
}

Test(jid, to_string_round_trips)
{
	static const char *in[] = {
		"Juliet@Example.COM/Balcony", "example.com", "example.com/r/s@t",
		"\xce\xa3@xn--bcher-kva.example./ x", "[::1]/r",
	};
	static const char *want[] = {
		"juliet@example.com/Balcony", "example.com", "example.com/r/s@t",
		"\u03c3@b\u00fccher.example/ x", "[::1]/r",
	};

	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		struct jid j = must_parse(in[i]);
		char *s = jid_to_string(&j);
		cr_expect(eq(str, s, (char *)want[i]));
		struct jid again = must_parse(s);
		cr_expect(jid_equal(&j, &again), "%s", s);
		free(s);
		jid_finish(&again);
		jid_finish(&j);
	}
}

Test(jid, bare_string_drops_resourcepart)
{
	struct jid j = must_parse("Juliet@example.com/balcony");
	char *s = jid_bare_string(&j);
	cr_expect(eq(str, s, "juliet@example.com"));
	free(s);
	jid_finish(&j);

	j = must_parse("example.com/balcony");
	s = jid_bare_string(&j);
	cr_expect(eq(str, s, "example.com"));
	free(s);
	jid_finish(&j);
}

Test(jid, prep_returns_canonical_string)
{
	const char *err = NULL;
	char *s = jid_prep("Juliet@Example.com./Balcony", false, &err);
	cr_assert(ne(ptr, s, NULL), "%s", err);
	cr_expect(eq(str, s, "juliet@example.com/Balcony"));
	free(s);
	s = jid_prep("Juliet@Example.com./Balcony", true, &err);
	cr_assert(ne(ptr, s, NULL), "%s", err);
	cr_expect(eq(str, s, "juliet@example.com"));
	free(s);
	cr_expect(eq(ptr, jid_prep("@example.com", false, &err), NULL));
	cr_expect(eq(str, (char *)err, "empty localpart"));
	cr_expect(eq(ptr, jid_prep("@example.com", true, NULL), NULL));
}

Test(jid, copy_is_deep)
{
	struct jid a = must_parse("juliet@example.com/balcony");
	struct jid b;
	struct jid c;

	jid_copy(&b, &a);
	cr_expect(jid_equal(&a, &b));
	cr_expect(ne(ptr, a.local, b.local));
	jid_finish(&a);
	cr_expect(eq(str, b.resource, "balcony"));
	jid_finish(&b);

	a = must_parse("example.com");
	jid_copy(&c, &a);
	cr_expect(eq(ptr, c.local, NULL));
	cr_expect(eq(ptr, c.resource, NULL));
	cr_expect(jid_equal(&a, &c));
	jid_finish(&a);
	jid_finish(&c);
}

Test(jid, finish_empties_and_allows_reparse)
{
	struct jid j = must_parse("juliet@example.com/balcony");

	jid_finish(&j);
	cr_expect(eq(ptr, j.local, NULL));
	cr_expect(eq(ptr, j.domain, NULL));
	cr_expect(eq(ptr, j.resource, NULL));
	jid_finish(&j);
	jid_finish(NULL);
	cr_expect(jid_parse(&j, "romeo@example.net", NULL));
	cr_expect(eq(str, j.local, "romeo"));
	jid_finish(&j);
}

/* A failure after the localpart was prepared must not leak it. */
Test(jid, failed_parse_leaves_jid_empty)
{
	must_fail("juliet@example.com/\x01");
	must_fail("juliet@exa mple.com");
}

static void lower(char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		*s = (char)tolower((unsigned char)*s);
	}
}

/* jid_prep(fmt with c), NULL when refused. */
static char *prep_with(const char *fmt, int c)
{
	char in[64];
	snprintf(in, sizeof(in), fmt, c);
	return jid_prep(in, false, NULL);
}

static void expect_same(char *fast, char *slow, const char *what, int c)
{
	cr_expect(eq(int, fast == NULL, slow == NULL), "%s %#x: %s vs %s",
		what, c, fast ? fast : "refused", slow ? slow : "refused");
	if (fast != NULL && slow != NULL) {
		cr_expect(eq(str, fast, slow), "%s %#x", what, c);
	}
	free(fast);
	free(slow);
}

/* The ASCII fast paths agree with the full preparation: an e-acute
 * (localpart, resourcepart) or an upper-case letter (domainpart) sends
 * the same text through the slow path. */
Test(jid, ascii_fast_paths_match_full_preparation)
{
	for (int c = 0x20; c < 0x7f; c++) {
		char *slow = prep_with("a%cB\xc3\xa9@x.example", c);
		if (slow != NULL) {
			strcpy(slow + 3, "@x.example");	/* drop the e-acute */
		}
		expect_same(prep_with("a%cB@x.example", c), slow, "local", c);
		char *fast = prep_with("a@example.com/r%cs", c);
		char *with_e = prep_with("a@example.com/r%cs\xc3\xa9", c);
		if (with_e != NULL) {
			with_e[strlen(with_e) - 2] = '\0';
		}
		expect_same(fast, with_e, "resource", c);
		slow = prep_with("a%cB.example", c);
		lower(slow);
		expect_same(prep_with("a%cb.example", c), slow, "domain", c);
	}
	static const char *const domains[] = {
		"-a.example", "a-.example", "ab--cd.example", "xn--bcher-kva.example",
		"a..example", "example.", "1.2.3.4", "a-b.c-d.example",
	};
	for (size_t i = 0; i < sizeof(domains) / sizeof(domains[0]); i++) {
		char upper[64];
		snprintf(upper, sizeof(upper), "%s", domains[i]);
		for (char *p = upper; *p != '\0'; p++) {
			*p = (char)toupper((unsigned char)*p);
		}
		char *slow = jid_prep(upper, false, NULL);
		lower(slow);
		expect_same(jid_prep(domains[i], false, NULL), slow, domains[i], 0);
	}
}

/* jid_prep_bare_into gives what jid_prep(s, true) gives, in the buffer
 * or on the heap, and refuses what it refuses. */
static void expect_bare_same(const char *s, size_t cap)
{
	char out[64];
	char *heap;
	const char *got = jid_prep_bare_into(s, out, cap, &heap);
	char *want = jid_prep(s, true, NULL);
	cr_expect(eq(int, got == NULL, want == NULL), "%s: %s vs %s", s,
		got ? got : "refused", want ? want : "refused");
	if (got != NULL && want != NULL) {
		cr_expect(eq(str, (char *)got, want), "%s", s);
		cr_expect(eq(int, got == out, heap == NULL), "%s", s);
	}
	free(heap);
	free(want);
}

Test(jid, bare_into_matches_jid_prep)
{
	static const char *const jids[] = {
		"Juliet@Example.com/Balcony", "juliet@example.com", "example.com",
		"example.com/r", "example.com.", "a@b.example./res", "@example.com",
		"a@", "a@/r", "a@example.com/", "/r", "", "a@[::1]/r",
		"A@B@example.com", "a b@example.com", "a@EXAMPLE.com",
		"a@xn--bcher-kva.example", "caf\xc3\xa9@example.com",
		"a@example.com/caf\xc3\xa9", "a@example.com/with space",
		"a@example.com/tab\t", "a@example.com/x/y", "a@-x.example",
		"a\"b@example.com", "a@example..com", "a@1.2.3.4",
		"verylonglocalpart-verylonglocalpart@example.com",
	};
	for (size_t i = 0; i < sizeof(jids) / sizeof(jids[0]); i++) {
		expect_bare_same(jids[i], 64);
		expect_bare_same(jids[i], 12);	/* too small: the heap */
	}
	for (int c = 0x20; c < 0x7f; c++) {
		char in[64];
		snprintf(in, sizeof(in), "a%cB@x.example/r%cs", c, c);
		expect_bare_same(in, 64);
		snprintf(in, sizeof(in), "a@x%c.example", c);
		expect_bare_same(in, 64);
	}
	char *heap;
	cr_expect(eq(ptr, (void *)jid_prep_bare_into(NULL, NULL, 0, &heap), NULL));
}
