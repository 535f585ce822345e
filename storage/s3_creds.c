/*
 * s3_creds.c - the AWS settings and credential chain for the S3 backend.
 *
 * Reads the environment and the INI-style profile files, and talks IMDSv2
 * (a PUT for a session token, then GETs with that token) for instance-role
 * credentials. The chain caches role credentials under a mutex and fetches
 * them again shortly before they expire, so many threads can share it.
 */
#include "s3_creds.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cJSON.h>
#include <curl/curl.h>
#include <openssl/crypto.h>

#include "../core/buf.h"
#include "../core/log.h"
#include "../core/secret.h"
#include "../core/util.h"

#define CREDS_REFRESH_MARGIN_MS (5 * 60 * 1000)
#define CREDS_IMDS_DEFAULT "http://169.254.169.254"

typedef enum { CREDS_ENV = 0, CREDS_PROFILE, CREDS_IMDS } creds_source;

struct dsp_s3_creds_chain {
    creds_source source;
    pthread_mutex_t lock;
    dsp_s3_creds current;
    char imds_endpoint[512];
    unsigned fetches;
};

/* Values read from one profile of the two files. */
typedef struct {
    int found;
    char access_key[128];
    char secret_key[128];
    char session_token[4096];
    char region[64];
    char endpoint[512];
    char s3_endpoint[512];
} creds_profile;

static void creds_copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static const char *creds_env(const char *name)
{
    const char *v = getenv(name);
    return (v && *v) ? v : NULL;
}

static char *creds_trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/*
 * Read `section` of an INI file into p. Indented lines after "s3 =" are the
 * S3-specific sub-settings of the AWS config file; other indented
 * sub-settings are skipped.
 */
static void creds_read_ini(const char *path, const char *section, creds_profile *p)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;

    char line[8192];
    int in_section = 0, in_s3 = 0;
    while (fgets(line, sizeof line, f)) {
        int indented = (line[0] == ' ' || line[0] == '\t');
        char *s = creds_trim(line);
        if (!*s || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            char *end = strchr(s, ']');
            if (end)
                *end = '\0';
            in_section = strcmp(creds_trim(s + 1), section) == 0;
            in_s3 = 0;
            if (in_section)
                p->found = 1;
            continue;
        }
        if (!in_section)
            continue;
        char *eq = strchr(s, '=');
        if (!eq)
            continue;
        *eq = '\0';
        char *key = creds_trim(s), *value = creds_trim(eq + 1);
        if (!indented) {
            in_s3 = (strcmp(key, "s3") == 0 && !*value);
        } else {
            if (in_s3 && strcmp(key, "endpoint_url") == 0)
                creds_copy(p->s3_endpoint, sizeof p->s3_endpoint, value);
            continue;
        }
        if (strcmp(key, "aws_access_key_id") == 0)
            creds_copy(p->access_key, sizeof p->access_key, value);
        else if (strcmp(key, "aws_secret_access_key") == 0)
            creds_copy(p->secret_key, sizeof p->secret_key, value);
        else if (strcmp(key, "aws_session_token") == 0)
            creds_copy(p->session_token, sizeof p->session_token, value);
        else if (strcmp(key, "region") == 0)
            creds_copy(p->region, sizeof p->region, value);
        else if (strcmp(key, "endpoint_url") == 0)
            creds_copy(p->endpoint, sizeof p->endpoint, value);
    }
    OPENSSL_cleanse(line, sizeof line);
    fclose(f);
}

static void creds_file_path(const char *env_name, const char *home_rel, char *out, size_t cap)
{
    const char *v = creds_env(env_name);
    if (v) {
        creds_copy(out, cap, v);
        return;
    }
    const char *home = creds_env("HOME");
    snprintf(out, cap, "%s/%s", home ? home : ".", home_rel);
}

/* Load the profile from the credentials file, then fill gaps from the config
 * file, whose sections are "[profile NAME]" except for "[default]". */
static void creds_load_profile(const char *profile, creds_profile *p)
{
    char path[1024], section[160];
    creds_profile cfg;

    memset(p, 0, sizeof *p);
    memset(&cfg, 0, sizeof cfg);
    creds_file_path("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials", path, sizeof path);
    creds_read_ini(path, profile, p);

    creds_file_path("AWS_CONFIG_FILE", ".aws/config", path, sizeof path);
    if (strcmp(profile, "default") == 0)
        creds_copy(section, sizeof section, "default");
    else
        snprintf(section, sizeof section, "profile %s", profile);
    creds_read_ini(path, section, &cfg);

    p->found |= cfg.found;
    if (!p->access_key[0] && cfg.access_key[0]) {
        memcpy(p->access_key, cfg.access_key, sizeof p->access_key);
        memcpy(p->secret_key, cfg.secret_key, sizeof p->secret_key);
        memcpy(p->session_token, cfg.session_token, sizeof p->session_token);
    }
    if (!p->region[0])
        memcpy(p->region, cfg.region, sizeof p->region);
    if (!p->endpoint[0])
        memcpy(p->endpoint, cfg.endpoint, sizeof p->endpoint);
    if (!p->s3_endpoint[0])
        memcpy(p->s3_endpoint, cfg.s3_endpoint, sizeof p->s3_endpoint);
    OPENSSL_cleanse(&cfg, sizeof cfg);
}

dsp_status dsp_s3_settings_load(dsp_s3_settings *out, dsp_err *err)
{
    creds_profile *p = dsp_xmalloc(sizeof *p);
    const char *v;

    (void)err;
    memset(out, 0, sizeof *out);
    creds_copy(out->profile, sizeof out->profile, creds_env("AWS_PROFILE") ? creds_env("AWS_PROFILE") : "default");
    creds_load_profile(out->profile, p);

    if ((v = creds_env("AWS_ENDPOINT_URL_S3")) || (v = creds_env("AWS_ENDPOINT_URL")))
        creds_copy(out->endpoint, sizeof out->endpoint, v);
    else if (p->s3_endpoint[0])
        creds_copy(out->endpoint, sizeof out->endpoint, p->s3_endpoint);
    else
        creds_copy(out->endpoint, sizeof out->endpoint, p->endpoint);

    if ((v = creds_env("AWS_REGION")) || (v = creds_env("AWS_DEFAULT_REGION")))
        creds_copy(out->region, sizeof out->region, v);
    else if (p->region[0])
        creds_copy(out->region, sizeof out->region, p->region);
    else
        creds_copy(out->region, sizeof out->region, "us-east-1");

    OPENSSL_cleanse(p, sizeof *p);
    free(p);
    return DSP_OK;
}

/* ---- IMDSv2 ---- */

static size_t creds_collect(char *data, size_t size, size_t n, void *userdata)
{
    dsp_buf *b = userdata;
    if (b->len + size * n > 64 * 1024)
        return 0; /* no metadata document is this large */
    dsp_buf_append(b, data, size * n);
    return size * n;
}

/* One IMDS request; token_header may be NULL. Fills body, returns HTTP status
 * or -1 on a network error (message in err). */
static long creds_imds_call(const char *method, const char *url, const char *header,
                            dsp_buf *body, dsp_err *err)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    long status = -1;

    if (!c) {
        dsp_err_set(err, DSP_ENOMEM, "instance metadata: curl_easy_init failed");
        return -1;
    }
    dsp_buf_reset(body);
    if (header)
        h = curl_slist_append(h, header);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "PUT") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, creds_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 3000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK)
        dsp_err_set(err, DSP_ETRANSIENT, "instance metadata %s %s failed: %s", method, url,
                    curl_easy_strerror(rc));
    else
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

static int64_t creds_parse_iso8601(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
        return 0;
    return (int64_t)timegm(&tm) * 1000;
}

/* Fetch the role credentials: token, role name, then the credentials JSON. */
static dsp_status creds_imds_fetch(const char *endpoint, dsp_s3_creds *out, dsp_err *err)
{
    dsp_buf body = DSP_BUF_INIT;
    char url[1024], header[1200];
    char *token = NULL;
    cJSON *doc = NULL;
    dsp_status st = DSP_OK;
    long status;

    snprintf(url, sizeof url, "%s/latest/api/token", endpoint);
    status = creds_imds_call("PUT", url, "X-aws-ec2-metadata-token-ttl-seconds: 21600", &body, err);
    if (status < 0) {
        st = err->code;
        goto out;
    }
    if (status != 200 || !body.len) {
        st = dsp_err_set(err, DSP_EPERM, "instance metadata: token request to %s returned HTTP %ld",
                         url, status);
        goto out;
    }
    token = dsp_xstrndup(body.data, body.len);
    snprintf(header, sizeof header, "X-aws-ec2-metadata-token: %s", token);

    snprintf(url, sizeof url, "%s/latest/meta-data/iam/security-credentials/", endpoint);
    status = creds_imds_call("GET", url, header, &body, err);
    if (status < 0) {
        st = err->code;
        goto out;
    }
    if (status != 200 || !body.len) {
        st = dsp_err_set(err, DSP_EPERM,
                         "instance metadata: no IAM role attached (GET %s returned HTTP %ld)", url,
                         status);
        goto out;
    }
    char role[256];
    size_t n = strcspn(body.data, "\r\n");
    if (n >= sizeof role)
        n = sizeof role - 1;
    memcpy(role, body.data, n);
    role[n] = '\0';

    snprintf(url, sizeof url, "%s/latest/meta-data/iam/security-credentials/%s", endpoint, role);
    status = creds_imds_call("GET", url, header, &body, err);
    if (status < 0) {
        st = err->code;
        goto out;
    }
    if (status != 200) {
        st = dsp_err_set(err, DSP_EPERM, "instance metadata: GET %s returned HTTP %ld", url, status);
        goto out;
    }
    doc = cJSON_ParseWithLength(body.data, body.len);
    const char *ak = doc ? cJSON_GetStringValue(cJSON_GetObjectItem(doc, "AccessKeyId")) : NULL;
    const char *sk = doc ? cJSON_GetStringValue(cJSON_GetObjectItem(doc, "SecretAccessKey")) : NULL;
    const char *tok = doc ? cJSON_GetStringValue(cJSON_GetObjectItem(doc, "Token")) : NULL;
    const char *exp = doc ? cJSON_GetStringValue(cJSON_GetObjectItem(doc, "Expiration")) : NULL;
    if (!ak || !sk) {
        st = dsp_err_set(err, DSP_EPERM,
                         "instance metadata: credentials of role %s lack AccessKeyId or "
                         "SecretAccessKey", role);
        goto out;
    }
    memset(out, 0, sizeof *out);
    creds_copy(out->access_key, sizeof out->access_key, ak);
    creds_copy(out->secret_key, sizeof out->secret_key, sk);
    creds_copy(out->session_token, sizeof out->session_token, tok);
    out->expires_ms = creds_parse_iso8601(exp);
    DSP_INFO("s3_credentials", "source=instance_role role=%s expires_ms=%lld", role,
             (long long)out->expires_ms);

out:
    if (token) {
        OPENSSL_cleanse(token, strlen(token));
        free(token);
    }
    OPENSSL_cleanse(header, sizeof header);
    if (body.data)
        OPENSSL_cleanse(body.data, body.len);
    cJSON_Delete(doc);
    dsp_buf_free(&body);
    return st;
}

static int creds_imds_disabled(void)
{
    const char *v = creds_env("AWS_EC2_METADATA_DISABLED");
    return v && strcasecmp(v, "true") == 0;
}

/* Register the credentials for masking in text from other programs
 * (core/secret.h), whatever their source. The exec operator removes the
 * credential variables from a command's environment, but a command can
 * still print the profile file or fetch the instance role's keys. */
static void creds_register(const dsp_s3_creds *creds)
{
    dsp_secret_add(creds->access_key);
    dsp_secret_add(creds->secret_key);
    dsp_secret_add(creds->session_token);
}

dsp_status dsp_s3_creds_chain_open(const char *profile, dsp_s3_creds_chain **out, dsp_err *err)
{
    dsp_s3_creds_chain *c = dsp_xcalloc(1, sizeof *c);
    creds_profile *p = NULL;
    dsp_status st = DSP_OK;
    const char *ak = creds_env("AWS_ACCESS_KEY_ID"), *sk = creds_env("AWS_SECRET_ACCESS_KEY");

    pthread_mutex_init(&c->lock, NULL);
    *out = NULL;
    if (!profile)
        profile = creds_env("AWS_PROFILE") ? creds_env("AWS_PROFILE") : "default";

    if (ak && sk) {
        c->source = CREDS_ENV;
        creds_copy(c->current.access_key, sizeof c->current.access_key, ak);
        creds_copy(c->current.secret_key, sizeof c->current.secret_key, sk);
        creds_copy(c->current.session_token, sizeof c->current.session_token,
                   creds_env("AWS_SESSION_TOKEN"));
        goto out;
    }

    p = dsp_xmalloc(sizeof *p);
    creds_load_profile(profile, p);
    if (p->access_key[0] && p->secret_key[0]) {
        c->source = CREDS_PROFILE;
        memcpy(c->current.access_key, p->access_key, sizeof p->access_key);
        memcpy(c->current.secret_key, p->secret_key, sizeof p->secret_key);
        memcpy(c->current.session_token, p->session_token, sizeof p->session_token);
        goto out;
    }
    if (!p->found && creds_env("AWS_PROFILE")) {
        st = dsp_err_set(err, DSP_EINVAL,
                         "AWS_PROFILE=%s: no such profile in the credentials or config file",
                         profile);
        goto out;
    }
    if (creds_imds_disabled()) {
        st = dsp_err_set(err, DSP_EPERM,
                         "no S3 credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are unset, "
                         "profile %s has no keys, and AWS_EC2_METADATA_DISABLED=true turns off "
                         "the instance role", profile);
        goto out;
    }

    c->source = CREDS_IMDS;
    creds_copy(c->imds_endpoint, sizeof c->imds_endpoint,
               creds_env("AWS_EC2_METADATA_SERVICE_ENDPOINT") ? creds_env("AWS_EC2_METADATA_SERVICE_ENDPOINT")
                                                              : CREDS_IMDS_DEFAULT);
    size_t n = strlen(c->imds_endpoint);
    while (n && c->imds_endpoint[n - 1] == '/')
        c->imds_endpoint[--n] = '\0';
    c->fetches++;
    st = creds_imds_fetch(c->imds_endpoint, &c->current, err);
    if (st != DSP_OK)
        dsp_err_prefix(err, "no S3 credentials in the environment or profile %s, and the "
                       "instance role failed", profile);

out:
    if (p) {
        OPENSSL_cleanse(p, sizeof *p);
        free(p);
    }
    if (st != DSP_OK) {
        dsp_s3_creds_chain_free(c);
        return st;
    }
    creds_register(&c->current);
    *out = c;
    return DSP_OK;
}

dsp_status dsp_s3_creds_chain_get(dsp_s3_creds_chain *c, dsp_s3_creds *out, dsp_err *err)
{
    dsp_status st = DSP_OK;

    pthread_mutex_lock(&c->lock);
    if (c->source == CREDS_IMDS && c->current.expires_ms &&
        dsp_now_ms() >= c->current.expires_ms - CREDS_REFRESH_MARGIN_MS) {
        dsp_s3_creds fresh;
        dsp_err ferr;
        c->fetches++;
        if (creds_imds_fetch(c->imds_endpoint, &fresh, &ferr) == DSP_OK) {
            c->current = fresh;
            creds_register(&c->current);
        } else if (dsp_now_ms() < c->current.expires_ms) {
            DSP_WARN("s3_credentials_refresh_failed", "error=%s action=keep_current", ferr.msg);
        } else {
            st = dsp_err_set(err, ferr.code, "instance role credentials expired and the refresh "
                             "failed: %s", ferr.msg);
        }
        OPENSSL_cleanse(&fresh, sizeof fresh);
    }
    if (st == DSP_OK)
        *out = c->current;
    pthread_mutex_unlock(&c->lock);
    return st;
}

const char *dsp_s3_creds_chain_source(const dsp_s3_creds_chain *c)
{
    static const char *const names[] = {"environment", "profile", "instance role"};
    return names[c->source];
}

unsigned dsp_s3_creds_chain_fetches(const dsp_s3_creds_chain *c)
{
    return c->fetches;
}

void dsp_s3_creds_chain_free(dsp_s3_creds_chain *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->lock);
    OPENSSL_cleanse(&c->current, sizeof c->current);
    free(c);
}
