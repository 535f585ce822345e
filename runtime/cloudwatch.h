/*
 * cloudwatch.h - publish metrics to Amazon CloudWatch with PutMetricData.
 *
 * Requests use the CloudWatch query API (Action=PutMetricData,
 * Version=2010-08-01, a form-encoded POST) signed with SigV4 for the
 * service "monitoring", with the credentials and region of the S3 backend
 * (s3_creds.h). The endpoint is AWS_ENDPOINT_URL_CLOUDWATCH when set, else
 * https://monitoring.<region>.amazonaws.com. AWS_ENDPOINT_URL is not used,
 * because in DSpark setups it usually names an S3-compatible server.
 */
#ifndef DSP_CLOUDWATCH_H
#define DSP_CLOUDWATCH_H

#include <stddef.h>

#include "../core/err.h"

#define DSP_CW_MAX_DIMENSIONS 30 /* CloudWatch's limit per metric */

typedef struct {
    const char *name;
    const char *value;
} dsp_cw_dimension;

typedef struct {
    const char *name;  /* metric name, e.g. "RunnableTasks" */
    double value;
    const char *unit;  /* CloudWatch unit, e.g. "Count" */
} dsp_cw_metric;

/*
 * Send one PutMetricData request with n metrics, each carrying the same
 * dimensions. Transient failures (5xx, throttling, timeouts, resets) are
 * retried with the backoff of retry.h. Fails with DSP_EINVAL on an empty
 * namespace, a namespace starting with "AWS/" or too many dimensions, and
 * with DSP_EPERM when CloudWatch rejects the request (the message contains
 * the HTTP status and the error code of the response).
 */
dsp_status dsp_cw_put_metric_data(const char *ns, const dsp_cw_metric *metrics, size_t n,
                                  const dsp_cw_dimension *dims, size_t ndims, dsp_err *err);

#endif
