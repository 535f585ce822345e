/*
 * s3_creds.h - where the S3 backend gets its region, endpoint and keys.
 *
 * Settings follow the AWS CLI conventions:
 *   endpoint: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, then the profile's
 *             "s3 = endpoint_url" sub-setting, then its endpoint_url;
 *   region:   AWS_REGION, AWS_DEFAULT_REGION, the profile's region,
 *             then us-east-1.
 * Credentials come from the first source that has them:
 *   1. AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN);
 *   2. the profile AWS_PROFILE (default "default") in the credentials file
 *      (AWS_SHARED_CREDENTIALS_FILE, default ~/.aws/credentials) or the
 *      config file (AWS_CONFIG_FILE, default ~/.aws/config);
 *   3. the EC2 instance role over IMDSv2 at AWS_EC2_METADATA_SERVICE_ENDPOINT
 *      (default http://169.254.169.254), unless AWS_EC2_METADATA_DISABLED
 *      is "true". Role credentials are fetched again 5 minutes before
 *      they expire.
 * Nothing here logs or formats a secret key or session token.
 */
#ifndef DSP_S3_CREDS_H
#define DSP_S3_CREDS_H

#include <stdint.h>

#include "../core/err.h"

typedef struct {
    char access_key[128];
    char secret_key[128];
    char session_token[4096]; /* "" when there is none */
    int64_t expires_ms;       /* wall clock; 0 when the keys do not expire */
} dsp_s3_creds;

typedef struct {
    char profile[128];
    char region[64];
    char endpoint[512]; /* "" when none is configured */
} dsp_s3_settings;

/* Resolve profile name, region and endpoint from the environment and the
 * profile files. A missing file is not an error. */
dsp_status dsp_s3_settings_load(dsp_s3_settings *out, dsp_err *err);

typedef struct dsp_s3_creds_chain dsp_s3_creds_chain;

/* Find the first credential source that has keys (see above). Fails with
 * DSP_EPERM naming every place it looked when none has. */
dsp_status dsp_s3_creds_chain_open(const char *profile, dsp_s3_creds_chain **out, dsp_err *err);
/* Copy the current credentials into out, fetching role credentials again
 * when they expire within 5 minutes. Thread-safe. */
dsp_status dsp_s3_creds_chain_get(dsp_s3_creds_chain *c, dsp_s3_creds *out, dsp_err *err);
/* "environment", "profile" or "instance role". */
const char *dsp_s3_creds_chain_source(const dsp_s3_creds_chain *c);
/* Role credential fetches so far (for tests of the refresh). */
unsigned dsp_s3_creds_chain_fetches(const dsp_s3_creds_chain *c);
void dsp_s3_creds_chain_free(dsp_s3_creds_chain *c);

#endif
