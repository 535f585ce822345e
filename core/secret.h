/*
 * secret.h - the credentials this process uses, to mask them in text that
 * other programs wrote, such as the stderr of exec commands, before that
 * text reaches logs, error messages or the store.
 *
 * The code that obtains a credential registers it. The exec operator
 * registers the values of the credential variables, and the S3 client the
 * keys it signs with, whatever their source (variables, profile file,
 * instance role).
 * Thread-safe.
 */
#ifndef DSP_SECRET_H
#define DSP_SECRET_H

#include <stddef.h>

#include "buf.h"

/* Values shorter than this are not registered, because masking a short
 * string would garble unrelated text. AWS secret access keys have 40
 * characters and access key ids 20. */
#define DSP_SECRET_MIN_LEN 8
/* At most this many secrets are kept; registering one more drops the
 * oldest (instance role keys change about every hour). */
#define DSP_SECRET_MAX_COUNT 64

/* Register a secret (a copy is kept). NULL, short and known values are
 * ignored. */
void dsp_secret_add(const char *value);
/* Length of the longest registered secret, 0 if none. */
size_t dsp_secret_max_len(void);
/* Replace each registered secret in b with "***". Text that ends with the
 * first DSP_SECRET_MIN_LEN or more bytes of a secret, such as output cut
 * off while the secret was written, gets that part replaced too. */
void dsp_secret_mask(dsp_buf *b);

#endif
