/*
 * cloudwatch.c - PutMetricData over the CloudWatch query API (see
 * cloudwatch.h).
 *
 * One request is built, signed and sent per attempt, so a retry after a
 * credential refresh carries fresh keys and a fresh date. Nothing here logs
 * or formats a secret: error messages contain the endpoint, the HTTP status
 * and the error code and message that CloudWatch returns.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "../core/buf.h"
#include "../core/log.h"
#include "../core/util.h"
#include "../storage/retry.h"
#include "../storage/s3_creds.h"
#include "../storage/s3_sigv4.h"
#include "cloudwatch.h"

#define CW_CONTENT_TYPE "application/x-www-form-urlencoded; charset=utf-8"

typedef struct {
    char url[1024];      /* scheme, host and path as requested */
    char host[512];      /* host[:port] as sent and signed */
    char path[256];      /* canonical path, "/" for the usual endpoint */
} cw_endpoint;

static dsp_status cw_endpoint_parse(const char *endpoint, cw_endpoint *out, dsp_err *err)
{
    const char *rest;

    if (!strncmp(endpoint, "https://", 8))
        rest = endpoint + 8;
    else if (!strncmp(endpoint, "http://", 7))
        rest = endpoint + 7;
    else
        return dsp_err_set(err, DSP_EINVAL,
                           "invalid CloudWatch endpoint '%s': expected http:// or https://",
                           endpoint);

    size_t hostlen = strcspn(rest, "/?#");
    if (hostlen == 0 || hostlen >= sizeof out->host)
        return dsp_err_set(err, DSP_EINVAL, "invalid CloudWatch endpoint '%s': missing host",
                           endpoint);
    memcpy(out->host, rest, hostlen);
    out->host[hostlen] = '\0';

    const char *path = rest + hostlen;
    if (*path == '?' || *path == '#')
        return dsp_err_set(err, DSP_EINVAL,
                           "invalid CloudWatch endpoint '%s': a query or fragment is not allowed",
                           endpoint);
    size_t pathlen = strlen(path);
    while (pathlen > 0 && path[pathlen - 1] == '/')
        pathlen--;
    if (pathlen + 2 > sizeof out->path)
        return dsp_err_set(err, DSP_EINVAL, "invalid CloudWatch endpoint '%s': path too long",
                           endpoint);
    memcpy(out->path, path, pathlen);
    out->path[pathlen] = '/';
    out->path[pathlen + 1] = '\0';

    size_t schemelen = (size_t)(rest - endpoint);
    snprintf(out->url, sizeof out->url, "%.*s%s%s", (int)schemelen, endpoint, out->host,
             out->path);
    return DSP_OK;
}

/* Append "&name=value" to a form body, both sides percent-encoded. */
static void cw_form_add(dsp_buf *body, const char *name, const char *value)
{
    if (body->len > 0)
        dsp_buf_append_char(body, '&');
    dsp_sigv4_uri_encode(body, name, 0);
    dsp_buf_append_char(body, '=');
    dsp_sigv4_uri_encode(body, value, 0);
}

static void cw_build_body(dsp_buf *body, const char *ns, const dsp_cw_metric *metrics, size_t n,
                          const dsp_cw_dimension *dims, size_t ndims)
{
    char name[96], value[64];

    cw_form_add(body, "Action", "PutMetricData");
    cw_form_add(body, "Version", "2010-08-01");
    cw_form_add(body, "Namespace", ns);
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof name, "MetricData.member.%zu.MetricName", i + 1);
        cw_form_add(body, name, metrics[i].name);
        snprintf(name, sizeof name, "MetricData.member.%zu.Value", i + 1);
        snprintf(value, sizeof value, "%.17g", metrics[i].value);
        cw_form_add(body, name, value);
        if (metrics[i].unit) {
            snprintf(name, sizeof name, "MetricData.member.%zu.Unit", i + 1);
            cw_form_add(body, name, metrics[i].unit);
        }
        for (size_t d = 0; d < ndims; d++) {
            snprintf(name, sizeof name, "MetricData.member.%zu.Dimensions.member.%zu.Name", i + 1,
                     d + 1);
            cw_form_add(body, name, dims[d].name);
            snprintf(name, sizeof name, "MetricData.member.%zu.Dimensions.member.%zu.Value",
                     i + 1, d + 1);
            cw_form_add(body, name, dims[d].value);
        }
    }
}

static size_t cw_on_body(char *data, size_t size, size_t n, void *userdata)
{
    dsp_buf *resp = userdata;

    /* Error documents are small; keep at most 8 KiB for the message. */
    if (resp->len < 8192)
        dsp_buf_append(resp, data, size * n);
    return size * n;
}

/* Copy the text of <tag>...</tag> in xml into out ("" when absent). */
static void cw_xml_text(const char *xml, const char *tag, char *out, size_t cap)
{
    char open[64], close[64];

    out[0] = '\0';
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *start = xml ? strstr(xml, open) : NULL;
    if (!start)
        return;
    start += strlen(open);
    const char *end = strstr(start, close);
    if (!end)
        return;
    size_t len = (size_t)(end - start);
    if (len >= cap)
        len = cap - 1;
    memcpy(out, start, len);
    out[len] = '\0';
}

/* One signed POST. Classifies the outcome into DSP_OK, DSP_ETRANSIENT or
 * DSP_EPERM. */
static dsp_status cw_attempt(const cw_endpoint *ep, const char *region, dsp_s3_creds_chain *chain,
                             const dsp_buf *body, dsp_err *err)
{
    dsp_s3_creds creds;
    dsp_buf auth = DSP_BUF_INIT, line = DSP_BUF_INIT, resp = DSP_BUF_INIT;
    dsp_sigv4_header hdrs[4];
    struct curl_slist *slist = NULL;
    char amz_date[17], payload_hash[65];
    size_t nh = 0;
    dsp_status st;
    CURL *c = NULL;

    st = dsp_s3_creds_chain_get(chain, &creds, err);
    if (st != DSP_OK)
        goto out;

    dsp_sha256_hex(body->data ? body->data : "", body->len, payload_hash);
    dsp_sigv4_amz_date(time(NULL), amz_date);
    hdrs[nh++] = (dsp_sigv4_header){"host", ep->host};
    hdrs[nh++] = (dsp_sigv4_header){"content-type", CW_CONTENT_TYPE};
    hdrs[nh++] = (dsp_sigv4_header){"x-amz-date", amz_date};
    if (creds.session_token[0])
        hdrs[nh++] = (dsp_sigv4_header){"x-amz-security-token", creds.session_token};
    dsp_sigv4_signer signer = {creds.access_key, creds.secret_key, region, "monitoring", amz_date};
    dsp_sigv4_request sreq = {"POST", ep->path, "", hdrs, nh, payload_hash};
    dsp_sigv4_sign(&signer, &sreq, &auth, NULL);

    for (size_t i = 0; i < nh; i++) {
        dsp_buf_reset(&line);
        dsp_buf_printf(&line, "%s: %s", hdrs[i].name, hdrs[i].value);
        slist = curl_slist_append(slist, line.data);
    }
    dsp_buf_reset(&line);
    dsp_buf_printf(&line, "Authorization: %s", auth.data);
    slist = curl_slist_append(slist, line.data);
    slist = curl_slist_append(slist, "Expect:");

    c = curl_easy_init();
    if (!c) {
        st = dsp_err_set(err, DSP_ENOMEM, "curl_easy_init failed");
        goto out;
    }
    curl_easy_setopt(c, CURLOPT_URL, ep->url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, slist);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->data ? body->data : "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (getenv("AWS_CA_BUNDLE") && *getenv("AWS_CA_BUNDLE"))
        curl_easy_setopt(c, CURLOPT_CAINFO, getenv("AWS_CA_BUNDLE"));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, cw_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);

    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        st = dsp_err_set(err, DSP_ETRANSIENT, "PutMetricData to %s failed: %s", ep->url,
                         curl_easy_strerror(rc));
        goto out;
    }

    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300) {
        st = DSP_OK;
        goto out;
    }

    char code[128], message[512];
    dsp_buf_append_char(&resp, '\0');
    cw_xml_text(resp.data, "Code", code, sizeof code);
    cw_xml_text(resp.data, "Message", message, sizeof message);
    /* Throttling is a 400 with code Throttling, and it passes with time. */
    int transient = status >= 500 || status == 429 || !strcmp(code, "Throttling");
    st = dsp_err_set(err, transient ? DSP_ETRANSIENT : DSP_EPERM,
                     "PutMetricData to %s failed: HTTP %ld %s: %s", ep->url, status,
                     code[0] ? code : "(no error code)", message);

out:
    if (c)
        curl_easy_cleanup(c);
    curl_slist_free_all(slist);
    dsp_buf_free(&auth);
    dsp_buf_free(&line);
    dsp_buf_free(&resp);
    return st;
}

dsp_status dsp_cw_put_metric_data(const char *ns, const dsp_cw_metric *metrics, size_t n,
                                  const dsp_cw_dimension *dims, size_t ndims, dsp_err *err)
{
    dsp_s3_settings settings;
    dsp_s3_creds_chain *chain = NULL;
    dsp_buf body = DSP_BUF_INIT;
    cw_endpoint ep;
    dsp_status st;

    if (!ns || !*ns)
        return dsp_err_set(err, DSP_EINVAL, "the CloudWatch namespace is empty");
    if (!strncmp(ns, "AWS/", 4))
        return dsp_err_set(err, DSP_EINVAL,
                           "invalid CloudWatch namespace '%s': names starting with AWS/ are "
                           "reserved for AWS services",
                           ns);
    if (ndims > DSP_CW_MAX_DIMENSIONS)
        return dsp_err_set(err, DSP_EINVAL, "%zu dimensions given; CloudWatch accepts at most %d",
                           ndims, DSP_CW_MAX_DIMENSIONS);

    st = dsp_s3_settings_load(&settings, err);
    if (st != DSP_OK)
        return st;

    const char *endpoint = getenv("AWS_ENDPOINT_URL_CLOUDWATCH");
    char default_endpoint[128];
    if (!endpoint || !*endpoint) {
        /* NOTE: the China regions use the amazonaws.com.cn domain; set
         * AWS_ENDPOINT_URL_CLOUDWATCH there. */
        snprintf(default_endpoint, sizeof default_endpoint, "https://monitoring.%s.amazonaws.com",
                 settings.region);
        endpoint = default_endpoint;
    }
    st = cw_endpoint_parse(endpoint, &ep, err);
    if (st != DSP_OK)
        return st;

    st = dsp_s3_creds_chain_open(settings.profile, &chain, err);
    if (st != DSP_OK)
        return st;

    cw_build_body(&body, ns, metrics, n, dims, ndims);

    dsp_retry_policy policy;
    dsp_retry_state retry;
    dsp_retry_default(&policy);
    dsp_retry_begin(&retry, &policy);
    for (;;) {
        st = cw_attempt(&ep, settings.region, chain, &body, err);
        if (st == DSP_OK || !dsp_retry_again(&retry, err, "put_metric_data", ep.url))
            break;
    }

    dsp_buf_free(&body);
    dsp_s3_creds_chain_free(chain);
    return st;
}
