/*
 * test_sigv4.c - the SigV4 signer against published vectors.
 *
 * Three cases come from the AWS "Signature Version 4 test suite"
 * (get-vanilla, post-vanilla, get-vanilla-query-order-key-case) with the
 * credentials AKIDEXAMPLE, service "service" and date 20150830T123600Z.
 * Four come from the worked examples of the S3 API reference page
 * "Signature Calculations for the Authorization Header: Transferring
 * Payload in a Single Chunk" (examplebucket, 20130524).
 */
#include <string.h>

#include "../../core/util.h"
#include "../../storage/s3_sigv4.h"
#include "test.h"

static const dsp_sigv4_signer suite_signer = {
    "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "us-east-1", "service",
    "20150830T123600Z"};

static const dsp_sigv4_signer s3_signer = {
    "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1", "s3",
    "20130524T000000Z"};

static void sign(const dsp_sigv4_signer *signer, const char *method, const char *uri,
                 const char *query, const dsp_sigv4_header *h, size_t nh, const char *payload,
                 char sig[65], dsp_buf *auth)
{
    dsp_sigv4_request req = {method, uri, query, h, nh, payload};
    dsp_sigv4_sign(signer, &req, auth, sig);
}

static void test_suite_get_vanilla(void)
{
    dsp_sigv4_header h[] = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}};
    char sig[65];
    dsp_buf auth = DSP_BUF_INIT;
    sign(&suite_signer, "GET", "/", "", h, 2, DSP_SIGV4_EMPTY_SHA256, sig, &auth);
    CHECK_EQ_STR(auth.data, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                            "aws4_request, SignedHeaders=host;x-amz-date, "
                            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    dsp_buf_free(&auth);
}

static void test_suite_post_vanilla(void)
{
    dsp_sigv4_header h[] = {{"X-Amz-Date", "20150830T123600Z"}, {"host", "example.amazonaws.com"}};
    char sig[65];
    dsp_buf auth = DSP_BUF_INIT;
    sign(&suite_signer, "POST", "/", "", h, 2, DSP_SIGV4_EMPTY_SHA256, sig, &auth);
    CHECK_EQ_STR(sig, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
    dsp_buf_free(&auth);
}

static void test_suite_query_order(void)
{
    const char *names[] = {"Param2", "Param1"};
    const char *values[] = {"value2", "value1"};
    dsp_buf q = DSP_BUF_INIT, auth = DSP_BUF_INIT;
    dsp_sigv4_query(&q, names, values, 2);
    CHECK_EQ_STR(q.data, "Param1=value1&Param2=value2");

    dsp_sigv4_header h[] = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}};
    char sig[65];
    sign(&suite_signer, "GET", "/", q.data, h, 2, DSP_SIGV4_EMPTY_SHA256, sig, &auth);
    CHECK_EQ_STR(sig, "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
    dsp_buf_free(&q);
    dsp_buf_free(&auth);
}

static void test_s3_get_object_range(void)
{
    dsp_sigv4_header h[] = {{"Host", "examplebucket.s3.amazonaws.com"},
                            {"Range", "bytes=0-9"},
                            {"x-amz-content-sha256", DSP_SIGV4_EMPTY_SHA256},
                            {"x-amz-date", "20130524T000000Z"}};
    dsp_sigv4_request req = {"GET", "/test.txt", "", h, 4, DSP_SIGV4_EMPTY_SHA256};
    dsp_buf canonical = DSP_BUF_INIT, auth = DSP_BUF_INIT;
    char hash[65], sig[65];

    dsp_sigv4_canonical_request(&req, &canonical);
    dsp_sha256_hex(canonical.data, canonical.len, hash);
    /* The page prints the SHA-256 of its canonical request in the string to sign. */
    CHECK_EQ_STR(hash, "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");

    dsp_sigv4_sign(&s3_signer, &req, &auth, sig);
    CHECK_EQ_STR(auth.data,
                 "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
                 "aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                 "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    dsp_buf_free(&canonical);
    dsp_buf_free(&auth);
}

static void test_s3_put_object(void)
{
    const char *body = "Welcome to Amazon S3.";
    char payload[65], sig[65];
    dsp_sha256_hex(body, strlen(body), payload);
    CHECK_EQ_STR(payload, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");

    dsp_buf path = DSP_BUF_INIT, auth = DSP_BUF_INIT;
    dsp_buf_append_char(&path, '/');
    dsp_sigv4_uri_encode(&path, "test$file.text", 1);
    CHECK_EQ_STR(path.data, "/test%24file.text");

    dsp_sigv4_header h[] = {{"Host", "examplebucket.s3.amazonaws.com"},
                            {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                            {"x-amz-date", "20130524T000000Z"},
                            {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                            {"x-amz-content-sha256", payload}};
    sign(&s3_signer, "PUT", path.data, "", h, 5, payload, sig, &auth);
    CHECK_EQ_STR(sig, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
    CHECK(strstr(auth.data, "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;"
                            "x-amz-storage-class,") != NULL);
    dsp_buf_free(&path);
    dsp_buf_free(&auth);
}

static void test_s3_bucket_lifecycle(void)
{
    const char *names[] = {"lifecycle"};
    const char *values[] = {NULL};
    dsp_buf q = DSP_BUF_INIT, auth = DSP_BUF_INIT;
    dsp_sigv4_query(&q, names, values, 1);
    CHECK_EQ_STR(q.data, "lifecycle=");

    dsp_sigv4_header h[] = {{"Host", "examplebucket.s3.amazonaws.com"},
                            {"x-amz-content-sha256", DSP_SIGV4_EMPTY_SHA256},
                            {"x-amz-date", "20130524T000000Z"}};
    char sig[65];
    sign(&s3_signer, "GET", "/", q.data, h, 3, DSP_SIGV4_EMPTY_SHA256, sig, &auth);
    CHECK_EQ_STR(sig, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
    dsp_buf_free(&q);
    dsp_buf_free(&auth);
}

static void test_s3_list_objects(void)
{
    const char *names[] = {"prefix", "max-keys"};
    const char *values[] = {"J", "2"};
    dsp_buf q = DSP_BUF_INIT, auth = DSP_BUF_INIT;
    dsp_sigv4_query(&q, names, values, 2);
    CHECK_EQ_STR(q.data, "max-keys=2&prefix=J");

    dsp_sigv4_header h[] = {{"Host", "examplebucket.s3.amazonaws.com"},
                            {"x-amz-content-sha256", DSP_SIGV4_EMPTY_SHA256},
                            {"x-amz-date", "20130524T000000Z"}};
    char sig[65];
    sign(&s3_signer, "GET", "/", q.data, h, 3, DSP_SIGV4_EMPTY_SHA256, sig, &auth);
    CHECK_EQ_STR(sig, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
    dsp_buf_free(&q);
    dsp_buf_free(&auth);
}

static void test_uri_encode_special_keys(void)
{
    static const struct {
        const char *in;
        int keep_slash;
        const char *want;
    } cases[] = {
        {"a b+c%d=e:f~g", 1, "a%20b%2Bc%25d%3De%3Af~g"},
        {"dir/sub/file.json", 1, "dir/sub/file.json"},
        {"dir/sub", 0, "dir%2Fsub"},
        {"caf\xc3\xa9/\xe6\x97\xa5", 1, "caf%C3%A9/%E6%97%A5"},
        {"A-Z_a.z~0", 0, "A-Z_a.z~0"},
        {"*?#&", 1, "%2A%3F%23%26"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dsp_buf b = DSP_BUF_INIT;
        dsp_buf_append_str(&b, "");
        dsp_sigv4_uri_encode(&b, cases[i].in, cases[i].keep_slash);
        CHECK_EQ_STR(b.data, cases[i].want);
        dsp_buf_free(&b);
    }
}

static void test_header_value_trimming(void)
{
    dsp_sigv4_header h[] = {{"Host", "example.amazonaws.com"},
                            {"My-Header1", "  value1   with   spaces  "},
                            {"X-Amz-Date", "20150830T123600Z"}};
    dsp_sigv4_request req = {"GET", "/", "", h, 3, DSP_SIGV4_EMPTY_SHA256};
    dsp_buf canonical = DSP_BUF_INIT;
    dsp_sigv4_canonical_request(&req, &canonical);
    CHECK(strstr(canonical.data, "\nmy-header1:value1 with spaces\n") != NULL);
    CHECK(strstr(canonical.data, "\nhost;my-header1;x-amz-date\n") != NULL);
    dsp_buf_free(&canonical);
}

static void test_amz_date_format(void)
{
    char d[17];
    dsp_sigv4_amz_date((time_t)1440938160, d);
    CHECK_EQ_STR(d, "20150830T123600Z");
}

TEST_MAIN({"suite get vanilla", test_suite_get_vanilla},
          {"suite post vanilla", test_suite_post_vanilla},
          {"suite query order", test_suite_query_order},
          {"s3 get object range", test_s3_get_object_range},
          {"s3 put object", test_s3_put_object},
          {"s3 bucket lifecycle", test_s3_bucket_lifecycle},
          {"s3 list objects", test_s3_list_objects},
          {"uri encode special keys", test_uri_encode_special_keys},
          {"header value trimming", test_header_value_trimming},
          {"amz date format", test_amz_date_format})
