/*
 * test_s3_open.c - how dsp_s3_open() turns a URI, the environment and the
 * config into bucket, prefix, endpoint and addressing style. Opening sends
 * no request, so these cases need no server; the endpoints are loopback
 * addresses or AWS names that are never contacted.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/s3_impl.h"
#include "storage/store.h"
#include "test.h"

static void set_test_env(void)
{
    static const char *const unset[] = {"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE",
                                        "AWS_DEFAULT_REGION", "DSPARK_S3_ADDRESSING",
                                        "AWS_SESSION_TOKEN", "DSPARK_FAULTS"};
    for (size_t i = 0; i < sizeof unset / sizeof unset[0]; i++)
        unsetenv(unset[i]);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDOPENTEST", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "open-test-secret", 1);
    setenv("AWS_REGION", "eu-west-1", 1);
    setenv("HOME", "/nonexistent-dsp-home", 1);
}

static dsp_s3_store *open_s3(const char *uri, const dsp_store_config *cfg)
{
    dsp_store *s = NULL;
    dsp_err err;
    if (dsp_store_open(uri, cfg, &s, &err) != DSP_OK) {
        fprintf(stderr, "  open %s: %s\n", uri, err.msg);
        return NULL;
    }
    return (dsp_s3_store *)s;
}

static void test_aws_virtual_hosted(void)
{
    set_test_env();
    dsp_s3_store *s = open_s3("s3://my-bucket/pre/fix/", NULL);
    REQUIRE(s != NULL);
    CHECK_EQ_STR(s->bucket, "my-bucket");
    CHECK_EQ_STR(s->prefix, "pre/fix");
    CHECK_EQ_STR(s->scheme, "https");
    CHECK_EQ_STR(s->host, "my-bucket.s3.eu-west-1.amazonaws.com");
    CHECK_EQ_INT(s->path_style, 0);
    CHECK_EQ_STR(s->region, "eu-west-1");
    CHECK_EQ_STR(dsp_store_uri(&s->base), "s3://my-bucket/pre/fix");
    dsp_store_close(&s->base);
}

static void test_dotted_bucket_path_style(void)
{
    set_test_env();
    dsp_s3_store *s = open_s3("s3://my.dotted.bucket", NULL);
    REQUIRE(s != NULL);
    CHECK_EQ_STR(s->host, "s3.eu-west-1.amazonaws.com");
    CHECK_EQ_INT(s->path_style, 1);
    CHECK_EQ_STR(s->prefix, "");
    CHECK_EQ_STR(dsp_store_uri(&s->base), "s3://my.dotted.bucket");
    dsp_store_close(&s->base);
}

static void test_endpoint_path_style(void)
{
    set_test_env();
    setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9/ignored/path", 1);
    dsp_s3_store *s = open_s3("s3://b1/x", NULL);
    REQUIRE(s != NULL);
    CHECK_EQ_STR(s->scheme, "http");
    CHECK_EQ_STR(s->host, "127.0.0.1:9");
    CHECK_EQ_INT(s->path_style, 1);
    dsp_store_close(&s->base);

    /* The config beats the environment, and can force virtual-hosted. */
    setenv("DSPARK_S3_ADDRESSING", "virtual", 1);
    dsp_store_config cfg = {.endpoint = "https://127.0.0.2:8443", .region = "ap-south-1"};
    s = open_s3("s3://b2", &cfg);
    REQUIRE(s != NULL);
    CHECK_EQ_STR(s->scheme, "https");
    CHECK_EQ_STR(s->host, "b2.127.0.0.2:8443");
    CHECK_EQ_INT(s->path_style, 0);
    CHECK_EQ_STR(s->region, "ap-south-1");
    dsp_store_close(&s->base);
    unsetenv("DSPARK_S3_ADDRESSING");
}

static void test_invalid_uris_rejected(void)
{
    set_test_env();
    dsp_store *s = NULL;
    dsp_err err;
    CHECK_EQ_INT(dsp_store_open("s3://", NULL, &s, &err), DSP_EINVAL);
    CHECK(strstr(err.msg, "bucket") != NULL);

    setenv("AWS_ENDPOINT_URL", "ftp://127.0.0.1:21", 1);
    CHECK_EQ_INT(dsp_store_open("s3://b", NULL, &s, &err), DSP_EINVAL);
    CHECK(strstr(err.msg, "ftp://127.0.0.1:21") != NULL);
    setenv("AWS_ENDPOINT_URL", "127.0.0.1:9000", 1);
    CHECK_EQ_INT(dsp_store_open("s3://b", NULL, &s, &err), DSP_EINVAL);
    unsetenv("AWS_ENDPOINT_URL");
}

static void check_redacted(const char *url, const char *want)
{
    char *got = dsp_s3_redact_url(url);
    CHECK_EQ_STR(got, want);
    free(got);
}

static void test_url_userinfo_redacted(void)
{
    check_redacted("http://127.0.0.1:9000/b/k", "http://127.0.0.1:9000/b/k");
    check_redacted("http://user:pass@127.0.0.1:9000/b/k", "http://REDACTED@127.0.0.1:9000/b/k");
    check_redacted("https://user@host", "https://REDACTED@host");
    check_redacted("http://u:p@ss@host:1/", "http://REDACTED@host:1/");
    /* An '@' in the path or query is no userinfo. */
    check_redacted("http://host/b/a@b?x=@", "http://host/b/a@b?x=@");
    check_redacted("", "");

    set_test_env();
    dsp_store *s = NULL;
    dsp_err err;
    setenv("AWS_ENDPOINT_URL", "ftp://user:s3cretpw@127.0.0.1:21", 1);
    CHECK_EQ_INT(dsp_store_open("s3://b", NULL, &s, &err), DSP_EINVAL);
    CHECKF(strstr(err.msg, "s3cretpw") == NULL, "message \"%s\" shows the password", err.msg);
    CHECK(strstr(err.msg, "ftp://REDACTED@127.0.0.1:21") != NULL);
    unsetenv("AWS_ENDPOINT_URL");
}

static void test_missing_credentials_rejected(void)
{
    set_test_env();
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    dsp_store *s = NULL;
    dsp_err err;
    CHECK_EQ_INT(dsp_store_open("s3://b/p", NULL, &s, &err), DSP_EPERM);
    CHECK(strstr(err.msg, "s3://b/p") != NULL);
    CHECK(strstr(err.msg, "AWS_ACCESS_KEY_ID") != NULL);
    CHECK(s == NULL);
}

TEST_MAIN({"aws virtual hosted", test_aws_virtual_hosted},
          {"dotted bucket path style", test_dotted_bucket_path_style},
          {"endpoint path style", test_endpoint_path_style},
          {"invalid uris rejected", test_invalid_uris_rejected},
          {"url userinfo redacted", test_url_userinfo_redacted},
          {"missing credentials rejected", test_missing_credentials_rejected})
