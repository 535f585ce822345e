/*
 * test_ops_pii.c - pii_redact: what each scanner replaces, what it must
 * leave alone (versions, dates, plain numbers, times, MAC addresses), the
 * per-kind counters, and real pages from Common Crawl.
 */
#include <stdlib.h>
#include <string.h>

#include "ops_helpers.h"
#include "test.h"

static const char *redact(const char *step, const char *in, ops_run *r, dsp_batch *b)
{
    dsp_batch_init(b, "text");
    ops_push_text(b, "p", in, strlen(in));
    if (ops_run_step(r, step, b, 0) != DSP_OK)
        return r->err.msg;
    return ops_text(b, 0);
}

static void check_redacted(const char *in, const char *expected)
{
    ops_run r;
    dsp_batch b;
    const char *got = redact("{\"op\":\"pii_redact\"}", in, &r, &b);
    CHECKF(strcmp(got, expected) == 0, "\"%s\": got \"%s\", expected \"%s\"", in, got, expected);
    CHECK(r.keep[0]);
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);
}

static void test_pii_emails(void)
{
    check_redacted("write to jane.doe+news@example.co.uk today",
                   "write to <EMAIL> today");
    check_redacted("(kontakt@adapei69.fr).", "(<EMAIL>).");
    check_redacted("a@b.c is too short a domain", "a@b.c is too short a domain");
    check_redacted("@handle and user@localhost stay", "@handle and user@localhost stay");
    check_redacted("x@y.com,z@w.org", "<EMAIL>,<EMAIL>");
}

static void test_pii_ip_addresses(void)
{
    check_redacted("server 192.168.1.20 is up", "server <IP> is up");
    check_redacted("from 8.8.8.8.", "from <IP>.");
    check_redacted("listen [2001:db8::1]:443", "listen [<IP>]:443");
    check_redacted("fe80::1ff:fe23:4567:890a%eth0", "<IP>%eth0");
    check_redacted("full 2001:0db8:0000:0000:0000:ff00:0042:8329 form",
                   "full <IP> form");
}

static void test_pii_phone_numbers(void)
{
    check_redacted("call +1 415 555 0123 now", "call <PHONE> now");
    check_redacted("tel. +420 777 098 098, fax", "tel. <PHONE>, fax");
    check_redacted("+14155550123", "<PHONE>");
    check_redacted("(415) 555-0123", "<PHONE>");
    check_redacted("call +1 (415) 555-0123 now", "call <PHONE> now");
    check_redacted("+44 (20) 7946 0958", "<PHONE>");
    check_redacted("415-555-0123 or 415.555.0123", "<PHONE> or <PHONE>");
    check_redacted("ring 555-0123", "ring <PHONE>");
    check_redacted("Tel. 030 12345678", "Tel. <PHONE>");
    check_redacted("01 23 45 67 89", "<PHONE>");
}

static void test_pii_false_positives(void)
{
    static const char *const untouched[] = {
        /* versions */
        "version 1.2.3.4 is out",
        "Version: 10.0.0.1",
        "upgrade to v 2.10.1.0",
        "release 4.19.0.12",
        "nginx/1.2.3.4 and lib-1.2.3.4",
        "v1.2.3.4",
        "1.2.3.4.5 is a dotted identifier",
        "org.example.1.2.3.4.Main",
        /* invalid octets and leading zeros */
        "999.1.1.1 and 1.2.3.256 and 01.2.3.4",
        /* dates */
        "on 2021-03-04 we met",
        "on 03/04/2021 we met",
        "on 04.03.2021 we met",
        "on 04-03-2021 we met",
        /* plain numbers, amounts, codes */
        "population 12345678 in 2019",
        "price 1 234 567 EUR",
        "ISBN 978-3-16-148410-0",
        "ISSN 0208-9300",
        "zip 93241-1413",
        "(2009) 2 920 000 inhabitants",
        "100 000 000 stars",
        /* times, MAC addresses and C++ scopes are not IPv6 */
        "at 10:30:00 sharp",
        "mac 00:1a:2b:3c:4d:5e",
        "std::vector<int> and a::b",
        "ratio 3:2:1",
    };
    for (size_t i = 0; i < sizeof untouched / sizeof untouched[0]; i++)
        check_redacted(untouched[i], untouched[i]);
}

static void test_pii_counts_and_options(void)
{
    ops_run r;
    dsp_batch b;
    const char *in = "a@example.com b@example.org 10.0.0.1 ::1 and fe80::2 +44 20 7946 0958";
    const char *got = redact("{\"op\":\"pii_redact\"}", in, &r, &b);
    CHECK_EQ_STR(got, "<EMAIL> <EMAIL> <IP> <IP> and <IP> <PHONE>");
    const dsp_op_def *def = r.inst.def;
    CHECK_EQ_INT(r.inst.counters.extra[ops_name_index(def->extra_names, "email")], 2);
    CHECK_EQ_INT(r.inst.counters.extra[ops_name_index(def->extra_names, "ipv4")], 1);
    CHECK_EQ_INT(r.inst.counters.extra[ops_name_index(def->extra_names, "ipv6")], 2);
    CHECK_EQ_INT(r.inst.counters.extra[ops_name_index(def->extra_names, "phone")], 1);
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);

    got = redact("{\"op\":\"pii_redact\",\"emails\":false,\"phones\":false,"
                 "\"ip_placeholder\":\"[ip]\"}",
                 in, &r, &b);
    CHECK_EQ_STR(got, "a@example.com b@example.org [ip] [ip] and [ip] +44 20 7946 0958");
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);

    got = redact("{\"op\":\"pii_redact\",\"ips\":false,\"email_placeholder\":\"\"}", in, &r, &b);
    /* Both addresses become "", so the two spaces around them remain. */
    CHECK_EQ_STR(got, "  10.0.0.1 ::1 and fe80::2 <PHONE>");
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);
}

static void test_pii_unchanged_text(void)
{
    ops_run r;
    dsp_batch b;
    redact("{\"op\":\"pii_redact\"}", "nothing personal here, 42 times", &r, &b);
    CHECK(!b.docs[0].text_changed);
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);

    redact("{\"op\":\"pii_redact\"}", "", &r, &b);
    CHECK(!b.docs[0].text_changed);
    CHECK(r.keep[0]);
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);
}

static void test_pii_real_pages(void)
{
    /* The French news page lists dates like 24.06.2019 and the range
     * 2017-2022, which must stay, and has no address or phone number. */
    dsp_batch b;
    ops_run r;
    dsp_batch_init(&b, "text");
    REQUIRE(ops_load_jsonl(&b, "ops/cc-snippets.jsonl") == 13);
    REQUIRE(ops_run_step(&r, "{\"op\":\"pii_redact\"}", &b, 0) == DSP_OK);
    const char *fr = ops_text(&b, 2);
    CHECK(strstr(fr, "24.06.2019") != NULL);
    CHECK(strstr(fr, "2017-2022") != NULL);
    CHECK(strstr(fr, "<PHONE>") == NULL);
    CHECK(strstr(fr, "<IP>") == NULL);
    /* The forum page has "21 Jun 2018 17:18": a time, not an address. */
    CHECK(strstr(ops_text(&b, 3), "21 Jun 2018 17:18") != NULL);
    CHECK_EQ_INT(r.inst.counters.out, 13);
    dsp_op_instance_free(&r.inst);
    dsp_batch_free(&b);
}

TEST_MAIN({"pii emails", test_pii_emails},
          {"pii ip addresses", test_pii_ip_addresses},
          {"pii phone numbers", test_pii_phone_numbers},
          {"pii false positives", test_pii_false_positives},
          {"pii counts and options", test_pii_counts_and_options},
          {"pii unchanged text", test_pii_unchanged_text},
          {"pii real pages", test_pii_real_pages})
