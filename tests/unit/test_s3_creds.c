/*
 * test_s3_creds.c - the S3 settings and credential chain: environment,
 * profile files in a temporary HOME, a fake IMDSv2 server on 127.0.0.1
 * (a thread of this binary), order of precedence and the disabled flag.
 * No case ever contacts the real metadata address: every case either sets
 * AWS_EC2_METADATA_SERVICE_ENDPOINT to the fake server or sets
 * AWS_EC2_METADATA_DISABLED=true.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../core/util.h"
#include "../../storage/s3_creds.h"
#include "test.h"

static char home[256];

static void clear_aws_env(void)
{
    static const char *const names[] = {
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
        "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_REGION", "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_EC2_METADATA_SERVICE_ENDPOINT"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unsetenv(names[i]);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
}

static void write_text(const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/.aws", home);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/%s", home, rel);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* A fresh empty HOME for each case. */
static void fresh_home(void)
{
    static int n;
    clear_aws_env();
    snprintf(home, sizeof home, "/tmp/dsp-creds-test-%d-%d", (int)getpid(), n++);
    mkdir(home, 0700);
    setenv("HOME", home, 1);
}

/* ---- fake IMDSv2 server ---- */

typedef struct {
    int listen_fd;
    int port;
    int requests;
    int token_requests;
    int unauthorized; /* GETs without the session token */
    int expires_in_s; /* credentials expire this far from now */
    int stop;
    pthread_t thread;
} fake_imds;

static void imds_reply(int fd, int status, const char *body)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", status,
                     strlen(body));
    if (send(fd, head, (size_t)n, MSG_NOSIGNAL) < 0 || send(fd, body, strlen(body), MSG_NOSIGNAL) < 0)
        return;
}

static void *imds_main(void *arg)
{
    fake_imds *m = arg;
    while (!m->stop) {
        int fd = accept(m->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        if (m->stop) {
            close(fd);
            break;
        }
        char req[4096];
        size_t len = 0;
        while (len < sizeof req - 1) {
            ssize_t r = read(fd, req + len, sizeof req - 1 - len);
            if (r <= 0)
                break;
            len += (size_t)r;
            req[len] = '\0';
            if (strstr(req, "\r\n\r\n"))
                break;
        }
        req[len] = '\0';
        m->requests++;
        int has_token = strstr(req, "X-aws-ec2-metadata-token: TOKEN42") != NULL;
        if (strncmp(req, "PUT /latest/api/token ", 22) == 0 &&
            strstr(req, "X-aws-ec2-metadata-token-ttl-seconds:")) {
            m->token_requests++;
            imds_reply(fd, 200, "TOKEN42");
        } else if (!has_token) {
            m->unauthorized++;
            imds_reply(fd, 401, "");
        } else if (strncmp(req, "GET /latest/meta-data/iam/security-credentials/ ", 48) == 0) {
            imds_reply(fd, 200, "test-role\n");
        } else if (strncmp(req, "GET /latest/meta-data/iam/security-credentials/test-role ", 57) == 0) {
            char body[512], exp[32];
            time_t t = time(NULL) + m->expires_in_s;
            struct tm tm;
            gmtime_r(&t, &tm);
            strftime(exp, sizeof exp, "%Y-%m-%dT%H:%M:%SZ", &tm);
            snprintf(body, sizeof body,
                     "{\"Code\":\"Success\",\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"ROLEKEY%d\","
                     "\"SecretAccessKey\":\"rolesecret\",\"Token\":\"roletoken\","
                     "\"Expiration\":\"%s\"}",
                     m->token_requests, exp);
            imds_reply(fd, 200, body);
        } else {
            imds_reply(fd, 404, "");
        }
        close(fd);
    }
    return NULL;
}

static int imds_start(fake_imds *m, int expires_in_s)
{
    memset(m, 0, sizeof *m);
    m->expires_in_s = expires_in_s;
    m->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (bind(m->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(m->listen_fd, 8) != 0 ||
        getsockname(m->listen_fd, (struct sockaddr *)&a, &alen) != 0)
        return -1;
    m->port = ntohs(a.sin_port);
    pthread_create(&m->thread, NULL, imds_main, m);

    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", m->port);
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
    unsetenv("AWS_EC2_METADATA_DISABLED");
    return 0;
}

static void imds_stop(fake_imds *m)
{
    m->stop = 1;
    /* Wake the accept() with one last connection. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)m->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
        close(fd);
    else
        close(fd);
    pthread_join(m->thread, NULL);
    close(m->listen_fd);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    unsetenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
}

/* ---- cases ---- */

static void test_env_keys_first(void)
{
    fresh_home();
    write_text(".aws/credentials", "[default]\naws_access_key_id = PROFILEKEY\n"
                                   "aws_secret_access_key = profilesecret\n");
    setenv("AWS_ACCESS_KEY_ID", "ENVKEY", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
    setenv("AWS_SESSION_TOKEN", "envtoken", 1);

    dsp_s3_creds_chain *c = NULL;
    dsp_s3_creds k;
    dsp_err err;
    REQUIRE(dsp_s3_creds_chain_open(NULL, &c, &err) == DSP_OK);
    REQUIRE(dsp_s3_creds_chain_get(c, &k, &err) == DSP_OK);
    CHECK_EQ_STR(k.access_key, "ENVKEY");
    CHECK_EQ_STR(k.secret_key, "envsecret");
    CHECK_EQ_STR(k.session_token, "envtoken");
    CHECK_EQ_STR(dsp_s3_creds_chain_source(c), "environment");
    dsp_s3_creds_chain_free(c);
}

static void test_default_profile_file(void)
{
    fresh_home();
    write_text(".aws/credentials",
               "# comment\n[other]\naws_access_key_id = OTHER\naws_secret_access_key = o\n\n"
               "[default]\naws_access_key_id = DEFKEY\naws_secret_access_key = defsecret\n");

    dsp_s3_creds_chain *c = NULL;
    dsp_s3_creds k;
    dsp_err err;
    REQUIRE(dsp_s3_creds_chain_open(NULL, &c, &err) == DSP_OK);
    REQUIRE(dsp_s3_creds_chain_get(c, &k, &err) == DSP_OK);
    CHECK_EQ_STR(k.access_key, "DEFKEY");
    CHECK_EQ_STR(k.secret_key, "defsecret");
    CHECK_EQ_STR(k.session_token, "");
    CHECK_EQ_STR(dsp_s3_creds_chain_source(c), "profile");
    dsp_s3_creds_chain_free(c);
}

static void test_named_profile_config(void)
{
    fresh_home();
    write_text(".aws/config", "[default]\nregion = eu-west-1\n"
                              "[profile work]\nregion = ap-south-1\n"
                              "endpoint_url = http://127.0.0.1:9999\n"
                              "aws_access_key_id = CFGKEY\naws_secret_access_key = cfgsecret\n");
    setenv("AWS_PROFILE", "work", 1);

    dsp_s3_settings s;
    dsp_err err;
    REQUIRE(dsp_s3_settings_load(&s, &err) == DSP_OK);
    CHECK_EQ_STR(s.profile, "work");
    CHECK_EQ_STR(s.region, "ap-south-1");
    CHECK_EQ_STR(s.endpoint, "http://127.0.0.1:9999");

    dsp_s3_creds_chain *c = NULL;
    dsp_s3_creds k;
    REQUIRE(dsp_s3_creds_chain_open(NULL, &c, &err) == DSP_OK);
    REQUIRE(dsp_s3_creds_chain_get(c, &k, &err) == DSP_OK);
    CHECK_EQ_STR(k.access_key, "CFGKEY");
    dsp_s3_creds_chain_free(c);
}

static void test_files_from_env_paths(void)
{
    fresh_home();
    char cred_path[512], cfg_path[512];
    snprintf(cred_path, sizeof cred_path, "%s/creds.ini", home);
    snprintf(cfg_path, sizeof cfg_path, "%s/config.ini", home);
    write_text("creds.ini", "[default]\naws_access_key_id = ALTKEY\naws_secret_access_key = s\n");
    write_text("config.ini", "[default]\nregion = us-west-2\ns3 =\n  endpoint_url = "
                             "http://127.0.0.1:8000\nendpoint_url = http://127.0.0.1:7000\n");
    /* Decoys in the default places must be ignored. */
    write_text(".aws/credentials", "[default]\naws_access_key_id = WRONG\naws_secret_access_key = w\n");
    write_text(".aws/config", "[default]\nregion = wrong-region\n");
    setenv("AWS_SHARED_CREDENTIALS_FILE", cred_path, 1);
    setenv("AWS_CONFIG_FILE", cfg_path, 1);

    dsp_s3_settings s;
    dsp_err err;
    REQUIRE(dsp_s3_settings_load(&s, &err) == DSP_OK);
    CHECK_EQ_STR(s.region, "us-west-2");
    CHECK_EQ_STR(s.endpoint, "http://127.0.0.1:8000");

    dsp_s3_creds_chain *c = NULL;
    dsp_s3_creds k;
    REQUIRE(dsp_s3_creds_chain_open(NULL, &c, &err) == DSP_OK);
    REQUIRE(dsp_s3_creds_chain_get(c, &k, &err) == DSP_OK);
    CHECK_EQ_STR(k.access_key, "ALTKEY");
    dsp_s3_creds_chain_free(c);
}

static void test_region_endpoint_precedence(void)
{
    fresh_home();
    write_text(".aws/config", "[default]\nregion = eu-west-1\nendpoint_url = http://127.0.0.1:1\n");
    dsp_s3_settings s;
    dsp_err err;

    REQUIRE(dsp_s3_settings_load(&s, &err) == DSP_OK);
    CHECK_EQ_STR(s.region, "eu-west-1");
    CHECK_EQ_STR(s.endpoint, "http://127.0.0.1:1");

    setenv("AWS_DEFAULT_REGION", "eu-central-1", 1);
    setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:2", 1);
    REQUIRE(dsp_s3_settings_load(&s, &err) == DSP_OK);
    CHECK_EQ_STR(s.region, "eu-central-1");
    CHECK_EQ_STR(s.endpoint, "http://127.0.0.1:2");

    setenv("AWS_REGION", "sa-east-1", 1);
    setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:3", 1);
    REQUIRE(dsp_s3_settings_load(&s, &err) == DSP_OK);
    CHECK_EQ_STR(s.region, "sa-east-1");
    CHECK_EQ_STR(s.endpoint, "http://127.0.0.1:3");

    fresh_home();
    REQUIRE(dsp_s3_settings_load(&s, &err) == DSP_OK);
    CHECK_EQ_STR(s.region, "us-east-1");
    CHECK_EQ_STR(s.endpoint, "");
}

static void test_missing_profile_rejected(void)
{
    fresh_home();
    write_text(".aws/credentials", "[default]\naws_access_key_id = K\naws_secret_access_key = s\n");
    setenv("AWS_PROFILE", "nosuch", 1);
    dsp_s3_creds_chain *c = NULL;
    dsp_err err;
    CHECK_EQ_INT(dsp_s3_creds_chain_open(NULL, &c, &err), DSP_EINVAL);
    CHECK(strstr(err.msg, "nosuch") != NULL);
    CHECK(c == NULL);
}

static void test_no_source_disabled_imds(void)
{
    fresh_home();
    dsp_s3_creds_chain *c = NULL;
    dsp_err err;
    CHECK_EQ_INT(dsp_s3_creds_chain_open(NULL, &c, &err), DSP_EPERM);
    CHECK(strstr(err.msg, "AWS_EC2_METADATA_DISABLED") != NULL);
    CHECK(c == NULL);
}

static void test_imds_role_credentials(void)
{
    fresh_home();
    fake_imds m;
    REQUIRE(imds_start(&m, 3600) == 0);

    dsp_s3_creds_chain *c = NULL;
    dsp_s3_creds k;
    dsp_err err;
    dsp_status st = dsp_s3_creds_chain_open(NULL, &c, &err);
    CHECKF(st == DSP_OK, "%s", err.msg);
    if (st == DSP_OK) {
        REQUIRE(dsp_s3_creds_chain_get(c, &k, &err) == DSP_OK);
        CHECK_EQ_STR(k.access_key, "ROLEKEY1");
        CHECK_EQ_STR(k.secret_key, "rolesecret");
        CHECK_EQ_STR(k.session_token, "roletoken");
        CHECK(k.expires_ms > dsp_now_ms());
        CHECK_EQ_STR(dsp_s3_creds_chain_source(c), "instance role");
        /* Far from expiry: a second get must not call the server again. */
        REQUIRE(dsp_s3_creds_chain_get(c, &k, &err) == DSP_OK);
        CHECK_EQ_INT(dsp_s3_creds_chain_fetches(c), 1);
    }
    imds_stop(&m);
    CHECK_EQ_INT(m.token_requests, 1);
    CHECK_EQ_INT(m.requests, 3);
    CHECK_EQ_INT(m.unauthorized, 0);
    dsp_s3_creds_chain_free(c);
}

static void test_imds_refresh_before_expiry(void)
{
    fresh_home();
    fake_imds m;
    /* Expiring in 2 minutes is inside the 5-minute margin, so every get
     * fetches again. */
    REQUIRE(imds_start(&m, 120) == 0);

    dsp_s3_creds_chain *c = NULL;
    dsp_s3_creds k;
    dsp_err err;
    dsp_status st = dsp_s3_creds_chain_open(NULL, &c, &err);
    CHECKF(st == DSP_OK, "%s", err.msg);
    if (st == DSP_OK) {
        REQUIRE(dsp_s3_creds_chain_get(c, &k, &err) == DSP_OK);
        CHECK_EQ_STR(k.access_key, "ROLEKEY2");
        CHECK_EQ_INT(dsp_s3_creds_chain_fetches(c), 2);
    }
    imds_stop(&m);
    CHECK_EQ_INT(m.token_requests, 2);
    CHECK_EQ_INT(m.unauthorized, 0);
    dsp_s3_creds_chain_free(c);
}

static void test_profile_beats_imds(void)
{
    fresh_home();
    write_text(".aws/credentials", "[default]\naws_access_key_id = PKEY\naws_secret_access_key = p\n");
    fake_imds m;
    REQUIRE(imds_start(&m, 3600) == 0);
    dsp_s3_creds_chain *c = NULL;
    dsp_err err;
    REQUIRE(dsp_s3_creds_chain_open(NULL, &c, &err) == DSP_OK);
    CHECK_EQ_STR(dsp_s3_creds_chain_source(c), "profile");
    imds_stop(&m);
    CHECK_EQ_INT(m.requests, 0);
    dsp_s3_creds_chain_free(c);
}

static void test_imds_disabled_flag(void)
{
    fresh_home();
    fake_imds m;
    REQUIRE(imds_start(&m, 3600) == 0);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    dsp_s3_creds_chain *c = NULL;
    dsp_err err;
    CHECK_EQ_INT(dsp_s3_creds_chain_open(NULL, &c, &err), DSP_EPERM);
    imds_stop(&m);
    CHECK_EQ_INT(m.requests, 0);
}

static void test_imds_unreachable(void)
{
    fresh_home();
    /* Port 1 on loopback: nothing listens, the connection is refused. */
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1", 1);
    unsetenv("AWS_EC2_METADATA_DISABLED");
    dsp_s3_creds_chain *c = NULL;
    dsp_err err;
    CHECK(dsp_s3_creds_chain_open(NULL, &c, &err) != DSP_OK);
    CHECK(strstr(err.msg, "instance role") != NULL);
    CHECK(c == NULL);
    clear_aws_env();
}

static void test_remove_temp_homes(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf /tmp/dsp-creds-test-%d-*", (int)getpid());
    CHECK_EQ_INT(system(cmd), 0);
}

TEST_MAIN({"env keys first", test_env_keys_first},
          {"default profile file", test_default_profile_file},
          {"named profile in config", test_named_profile_config},
          {"files from env paths", test_files_from_env_paths},
          {"region endpoint precedence", test_region_endpoint_precedence},
          {"missing profile rejected", test_missing_profile_rejected},
          {"no source with imds disabled", test_no_source_disabled_imds},
          {"imds role credentials", test_imds_role_credentials},
          {"imds refresh before expiry", test_imds_refresh_before_expiry},
          {"profile beats imds", test_profile_beats_imds},
          {"imds disabled flag", test_imds_disabled_flag},
          {"imds unreachable", test_imds_unreachable},
          {"remove temp homes", test_remove_temp_homes})
