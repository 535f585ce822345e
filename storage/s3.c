/* s3.c - placeholder: the S3 backend is being written. */
#include "store_impl.h"

dsp_status dsp_s3_open(const char *bucket_and_prefix, const dsp_store_config *cfg,
                       dsp_store **out, dsp_err *err)
{
    (void)cfg;
    *out = NULL;
    return dsp_err_set(err, DSP_EUNSUPPORTED, "s3://%s: the S3 backend is not built yet",
                       bucket_and_prefix);
}
