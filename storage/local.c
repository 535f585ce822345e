/*
 * local.c - the embedded store backend: objects are files under a root
 * directory, key "a/b/c" at ROOT/a/b/c.
 *
 * It keeps the guarantees of store.h with POSIX file operations:
 *   - put writes a temporary file in the target directory, fsyncs it and
 *     renames it over the key, then fsyncs the directory, so readers see
 *     the old file or the whole new one.
 *   - create-only publishes the temporary file with link(2), which fails
 *     with EEXIST for every writer but the first, in any process.
 *   - every change to a key (put, copy, delete) holds an exclusive flock on
 *     the directory that contains the key. Each lock is taken through a
 *     fresh open file description, so it excludes threads of one process as
 *     well as other processes. This makes the compare-and-swap check and
 *     the rename that follows one atomic step.
 *   - the ETag is the XXH3 128-bit hash of the content as 32 hex digits.
 *     ETags are opaque in S3 too (a multipart upload's ETag is not an MD5
 *     of the content). MD5 took about 4% of the CPU time of a pass-through
 *     job (bench/pipeline_bench.sh on a 2-core AMD EPYC VM), and XXH3 a
 *     small fraction of that. It is stored in the xattr
 *     "user.dspark.etag-xxh3" with the size and mtime it was computed
 *     for, and recomputed when the xattr is missing (a file system
 *     without user xattrs) or stale (a file edited in place).
 *     NOTE: Linux stamps mtime from a coarse clock (a few ms), so an
 *     in-place edit that keeps the size within that window keeps the old
 *     ETag. DSpark itself never edits objects in place.
 *   - names starting with ".dsp-" (temporary files) are reserved: keys may
 *     not use them and listings never show them.
 *   - a listing fails on a file that it cannot open and on a symlink that
 *     it cannot follow, because leaving the key out would silently drop an
 *     input file from a job. A file removed while listing is left out.
 *   - keys that would leave the root (".." or "." components, empty
 *     components, a leading '/') are rejected with DSP_EINVAL.
 *
 * Each attempt of each request first calls dsp_fault_pick() and simulates
 * the fault it returns, then retries transient failures with the store's policy.
 */
#include "store_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <xxhash.h>

#include "../core/log.h"
#include "../core/util.h"

#define RESERVED_PREFIX ".dsp-"
/* Named for the hash, so that MD5 ETags saved by older versions under
 * "user.dspark.etag" are recomputed, not mixed with XXH3 ones. */
#define ETAG_XATTR "user.dspark.etag-xxh3"
/* Attempts to create a temporary file while a concurrent delete removes
 * the empty parent directories just created for it, or while its random
 * name clashes with an existing one. */
#define TEMP_CREATE_ATTEMPTS 16

typedef struct {
    dsp_store base;
    char *root; /* absolute, without a trailing slash unless it is "/" */
} local_store;

typedef struct {
    dsp_writer base;
    local_store *ls;
    char *key;
    char *path;
    char *tmp;
    int fd;
    uint64_t size;
    XXH3_state_t *etag_state;
} local_writer;

typedef struct {
    dsp_reader base;
    local_store *ls;
    char *key;
    int fd;
    uint64_t pos, end;
    struct timespec mtime; /* the file's modification time at open */
} local_reader;

/* ---- keys and paths ---------------------------------------------------- */

/*
 * Status of a failed system call: DSP_EPERM for a read-only file system or
 * denied permission, because retrying cannot help and the task or publish
 * should fail at once, else DSP_EIO.
 */
static dsp_status errno_status(int e)
{
    return e == EROFS || e == EACCES || e == EPERM ? DSP_EPERM : DSP_EIO;
}

static dsp_status check_local_key(const local_store *ls, const char *op, const char *key,
                                  dsp_err *err)
{
    const char *p = key;

    if (*p == '/')
        return dsp_err_set(err, DSP_EINVAL,
                           "%s %s: invalid key '%s': a local store key may not start with '/'",
                           op, ls->base.uri, key);
    while (*p) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0)
            return dsp_err_set(err, DSP_EINVAL,
                               "%s %s: invalid key '%s': empty path component (\"//\" or a "
                               "trailing '/')",
                               op, ls->base.uri, key);
        if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return dsp_err_set(err, DSP_EINVAL,
                               "%s %s: invalid key '%s': component '%.*s' would escape the "
                               "store root",
                               op, ls->base.uri, key, (int)len, p);
        if (len >= strlen(RESERVED_PREFIX) && !strncmp(p, RESERVED_PREFIX, strlen(RESERVED_PREFIX)))
            return dsp_err_set(err, DSP_EINVAL,
                               "%s %s: invalid key '%s': names starting with '" RESERVED_PREFIX
                               "' are reserved for the store's temporary and lock files",
                               op, ls->base.uri, key);
        if (len > NAME_MAX)
            return dsp_err_set(err, DSP_EINVAL,
                               "%s %s: invalid key '%.64s...': a path component is longer than "
                               "%d bytes",
                               op, ls->base.uri, key, NAME_MAX);
        if (!end)
            break;
        p = end + 1;
        if (!*p)
            return dsp_err_set(err, DSP_EINVAL,
                               "%s %s: invalid key '%s': empty path component (\"//\" or a "
                               "trailing '/')",
                               op, ls->base.uri, key);
    }
    return DSP_OK;
}

static char *key_path(const local_store *ls, const char *key)
{
    if (!strcmp(ls->root, "/"))
        return dsp_xasprintf("/%s", key);
    return dsp_xasprintf("%s/%s", ls->root, key);
}

/* Directory part of a path ("/r/a/b" -> "/r/a"), malloc'ed. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == path)
        return dsp_xstrdup("/");
    return dsp_xstrndup(path, (size_t)(slash - path));
}

static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* Create every missing directory of `dir` (an absolute path). A component
 * that exists as a file means a key is both an object and a "directory".
 * DSP_ETRANSIENT means a concurrent delete removed a parent: try again. */
static dsp_status make_dirs(const local_store *ls, const char *op, const char *key,
                            const char *dir, dsp_err *err)
{
    struct stat st;
    if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return DSP_OK; /* the common case: one system call */

    char *tmp = dsp_xstrdup(dir);
    dsp_status rc = DSP_OK;

    for (char *p = tmp + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(tmp, 0755) == 0) {
            /* Make the new entry durable, so a crash cannot lose the
             * directory of an object that was already reported written. */
            char *parent = dir_of(tmp);
            fsync_dir(parent);
            free(parent);
        } else if (errno == ENOENT) {
            /* A delete removed a parent that was just created or found. */
            rc = dsp_err_set(err, DSP_ETRANSIENT, "%s %s key %s: directory %s vanished", op,
                             ls->base.uri, key, tmp);
            goto out;
        } else if (errno != EEXIST) {
            if (errno == ENOTDIR)
                rc = dsp_err_set(err, DSP_EINVAL,
                                 "%s %s key %s: a parent of the key is an object, and a local "
                                 "store cannot hold both 'a' and 'a/b'",
                                 op, ls->base.uri, key);
            else
                rc = dsp_err_set(err, errno_status(errno),
                                 "%s %s key %s: cannot create directory %s: %s",
                                 op, ls->base.uri, key, tmp, strerror(errno));
            goto out;
        }
        if (stat(tmp, &st) == 0 && !S_ISDIR(st.st_mode)) {
            if (strlen(tmp) <= strlen(ls->root))
                rc = dsp_err_set(err, DSP_EINVAL,
                                 "%s %s key %s: the store root cannot be created because %s "
                                 "is a file",
                                 op, ls->base.uri, key, tmp);
            else
                rc = dsp_err_set(err, DSP_EINVAL,
                                 "%s %s key %s: key '%s' is an object, and a local store "
                                 "cannot hold both 'a' and 'a/b'",
                                 op, ls->base.uri, key, tmp + strlen(ls->root) + 1);
            goto out;
        }
        *p = saved;
        if (saved == '\0')
            break;
    }
out:
    free(tmp);
    return rc;
}

/* Create a temporary file in the directory of `path`, creating the
 * directory first. The caller owns *tmp and the descriptor.
 * A process that dies mid-write leaves its hidden temporary file behind.
 * Like an incomplete S3 multipart upload it is invisible to listings but
 * uses space, until `dspark gc --temp-older-than` removes it
 * (local_sweep.c, which parses the name format below). */
static dsp_status create_temp(const local_store *ls, const char *op, const char *key,
                              const char *path, char **tmp, int *fd, dsp_err *err)
{
    char *dir = dir_of(path);
    dsp_status rc = DSP_OK;

    *tmp = NULL;
    *fd = -1;
    for (int attempt = 0; attempt < TEMP_CREATE_ATTEMPTS; attempt++) {
        rc = make_dirs(ls, op, key, dir, err);
        if (rc == DSP_ETRANSIENT)
            continue;
        if (rc != DSP_OK)
            break;
        /* The pid keeps names apart in forked children, which inherit
         * the parent's random generator state. */
        char *name = dsp_xasprintf("%s/" RESERVED_PREFIX "tmp.%ld.%016llx", dir, (long)getpid(),
                                   (unsigned long long)dsp_rand64());
        *fd = open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (*fd >= 0) {
            *tmp = name;
            break;
        }
        int e = errno;
        free(name);
        if (e == ENOENT || e == EEXIST)
            continue; /* a delete removed the empty directory, or a name clash */
        rc = dsp_err_set(err, errno_status(e),
                         "%s %s key %s: cannot create a temporary file in %s: %s",
                         op, ls->base.uri, key, dir, strerror(e));
        break;
    }
    if ((rc == DSP_OK || rc == DSP_ETRANSIENT) && *fd < 0)
        rc = dsp_err_set(err, DSP_EIO,
                         "%s %s key %s: failed to create a temporary file in %s after %d "
                         "attempts: the directory kept disappearing or the names clashed",
                         op, ls->base.uri, key, dir, TEMP_CREATE_ATTEMPTS);
    free(dir);
    return rc;
}

/* Remove the now-empty directories between a deleted key and the root, so
 * a later key may use those names for objects. Stops at the first
 * directory that is not empty. */
static void remove_empty_parents(const local_store *ls, const char *path)
{
    char *dir = dir_of(path);
    size_t root_len = strlen(ls->root);

    while (strlen(dir) > root_len && rmdir(dir) == 0) {
        char *up = dir_of(dir);
        free(dir);
        dir = up;
    }
    free(dir);
}

/* ---- per-directory locks ----------------------------------------------- */

/*
 * Lock the directory that holds `path`: flock on the directory itself, so
 * no lock file is ever created. Returns DSP_OK with *fd = -1 when the
 * directory does not exist, which only a delete can meet, because a writer
 * holds a temporary file in the directory and so keeps it from being
 * removed. After locking, the descriptor is checked against the path: a
 * directory removed and created again in between is locked anew.
 */
static dsp_status lock_dir_of(const local_store *ls, const char *op, const char *key,
                              const char *path, int *fd, dsp_err *err)
{
    char *dir = dir_of(path);
    dsp_status rc = DSP_OK;

    *fd = -1;
    for (;;) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
            if (errno != ENOENT && errno != ENOTDIR)
                rc = dsp_err_set(err, errno_status(errno),
                                 "%s %s key %s: cannot open directory %s: %s",
                                 op, ls->base.uri, key, dir, strerror(errno));
            break;
        }
        int locked_ok;
        while ((locked_ok = flock(dfd, LOCK_EX)) != 0 && errno == EINTR)
            ;
        if (locked_ok != 0) {
            rc = dsp_err_set(err, errno_status(errno),
                             "%s %s key %s: cannot lock directory %s: %s", op,
                             ls->base.uri, key, dir, strerror(errno));
            close(dfd);
            break;
        }
        struct stat locked, current;
        if (fstat(dfd, &locked) == 0 && stat(dir, &current) == 0 &&
            locked.st_ino == current.st_ino && locked.st_dev == current.st_dev) {
            *fd = dfd;
            break;
        }
        close(dfd);
    }
    free(dir);
    return rc;
}

static void unlock_dir(int fd)
{
    if (fd >= 0)
        close(fd); /* closing the only descriptor releases the flock */
}

/* ---- ETags ------------------------------------------------------------- */

static void strip_quotes(const char *in, char *out, size_t cap)
{
    size_t n = strlen(in);
    if (n >= 2 && in[0] == '"' && in[n - 1] == '"') {
        in++;
        n -= 2;
    }
    if (n >= cap)
        n = cap - 1;
    memcpy(out, in, n);
    out[n] = '\0';
}

/* Record the ETag of an open file together with the size and mtime it
 * describes. Best effort: without user xattrs the ETag is recomputed. */
static void save_etag(int fd, const char *etag)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return;
    char value[128];
    int n = snprintf(value, sizeof value, "%s %llu %lld.%09ld", etag,
                     (unsigned long long)st.st_size, (long long)st.st_mtim.tv_sec,
                     st.st_mtim.tv_nsec);
    (void)fsetxattr(fd, ETAG_XATTR, value, (size_t)n, 0);
}

/* Format an XXH3 128-bit hash as the ETag: 32 lower-case hex digits of its
 * canonical (big-endian) form. */
static void etag_format(XXH128_hash_t hash, char out[33])
{
    XXH128_canonical_t canon;
    XXH128_canonicalFromHash(&canon, hash);
    for (size_t i = 0; i < sizeof canon.digest; i++)
        snprintf(out + 2 * i, 3, "%02x", canon.digest[i]);
}

static dsp_status hash_fd(int fd, uint64_t size, char out[33], dsp_err *err)
{
    XXH3_state_t *state = XXH3_createState();
    unsigned char *buf = dsp_xmalloc(1 << 20);
    dsp_status rc = DSP_OK;
    uint64_t off = 0;

    if (!state || XXH3_128bits_reset(state) != XXH_OK) {
        rc = dsp_err_set(err, DSP_ENOMEM, "cannot start the XXH3 hash of the ETag");
        goto out;
    }
    while (off < size) {
        ssize_t n = pread(fd, buf, 1 << 20, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = dsp_err_set(err, errno_status(errno),
                             "reading at byte %llu to compute the ETag: %s",
                             (unsigned long long)off, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        XXH3_128bits_update(state, buf, (size_t)n);
        off += (uint64_t)n;
    }
    etag_format(XXH3_128bits_digest(state), out);
out:
    XXH3_freeState(state);
    free(buf);
    return rc;
}

/* Fill info (size, ETag, mtime) for an open regular file. */
static dsp_status info_of_fd(const local_store *ls, const char *key, int fd,
                             const struct stat *st, dsp_obj_info *info, dsp_err *err)
{
    char value[128];
    char etag[33] = "";

    info->size = (uint64_t)st->st_size;
    info->mtime_ms = (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;

    ssize_t n = fgetxattr(fd, ETAG_XATTR, value, sizeof value - 1);
    if (n > 0) {
        value[n] = '\0';
        unsigned long long size;
        long long sec;
        long nsec;
        if (sscanf(value, "%32s %llu %lld.%ld", etag, &size, &sec, &nsec) == 4 &&
            strlen(etag) == 32 && size == (unsigned long long)st->st_size &&
            sec == (long long)st->st_mtim.tv_sec && nsec == st->st_mtim.tv_nsec) {
            snprintf(info->etag, sizeof info->etag, "%s", etag);
            return DSP_OK;
        }
    }
    dsp_status rc = hash_fd(fd, (uint64_t)st->st_size, etag, err);
    if (rc != DSP_OK) {
        dsp_err_prefix(err, "%s key %s", ls->base.uri, key);
        return rc;
    }
    save_etag(fd, etag);
    snprintf(info->etag, sizeof info->etag, "%s", etag);
    return DSP_OK;
}

/* Open a key for reading; ENOTFOUND when it is missing or is a directory. */
static dsp_status open_object(const local_store *ls, const char *op, const char *key,
                              const char *path, int *fd, struct stat *st, dsp_err *err)
{
    /* O_NONBLOCK keeps a FIFO under the root from hanging the open; it
     * changes nothing for regular files. */
    *fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (*fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return dsp_err_set(err, DSP_ENOTFOUND, "%s %s key %s: no such object", op,
                               ls->base.uri, key);
        return dsp_err_set(err, errno_status(errno),
                           "%s %s key %s: cannot open %s: %s", op, ls->base.uri,
                           key, path, strerror(errno));
    }
    if (fstat(*fd, st) != 0 || !S_ISREG(st->st_mode)) {
        close(*fd);
        *fd = -1;
        return dsp_err_set(err, DSP_ENOTFOUND, "%s %s key %s: no such object (%s is not a file)",
                           op, ls->base.uri, key, path);
    }
    return DSP_OK;
}

/* ---- fault simulation and retries -------------------------------------- */

/* Turn a fault that fails a request before it runs into its error. */
static dsp_status fault_before(const local_store *ls, dsp_fault_kind k, const char *op,
                               const char *key, dsp_err *err)
{
    switch (k) {
    case DSP_FAULT_503:
        return dsp_err_set(err, DSP_ETRANSIENT, "%s %s key %s: injected 503 SlowDown", op,
                           ls->base.uri, key);
    case DSP_FAULT_500:
        return dsp_err_set(err, DSP_ETRANSIENT, "%s %s key %s: injected 500 InternalError", op,
                           ls->base.uri, key);
    case DSP_FAULT_RESET:
        return dsp_err_set(err, DSP_ETRANSIENT, "%s %s key %s: injected connection reset", op,
                           ls->base.uri, key);
    case DSP_FAULT_TIMEOUT:
        return dsp_err_set(err, DSP_ETRANSIENT, "%s %s key %s: injected timeout", op,
                           ls->base.uri, key);
    case DSP_FAULT_403:
        return dsp_err_set(err, DSP_EPERM, "%s %s key %s: injected 403 AccessDenied", op,
                           ls->base.uri, key);
    default:
        return DSP_OK;
    }
}

/* Decide whether to retry after a failed attempt, counting retries. */
static int retry_again(local_store *ls, dsp_retry_state *st, const dsp_err *err, const char *op,
                       const char *key)
{
    if (!dsp_retry_again(st, err, op, key))
        return 0;
    atomic_fetch_add(&ls->base.stats.retries, 1);
    return 1;
}

/* ---- get and head ------------------------------------------------------ */

static dsp_status get_attempt(local_store *ls, const char *key, const char *path,
                              uint64_t offset, int64_t length, dsp_buf *out,
                              dsp_obj_info *info, dsp_err *err)
{
    dsp_fault_kind k = dsp_fault_pick_key(ls->base.faults, DSP_FOP_GET, key);
    dsp_status rc = fault_before(ls, k, "get", key, err);
    if (rc != DSP_OK)
        return rc;

    int fd;
    struct stat st;
    rc = open_object(ls, "get", key, path, &fd, &st, err);
    if (rc != DSP_OK)
        return rc;

    uint64_t size = (uint64_t)st.st_size;
    uint64_t start = offset < size ? offset : size;
    uint64_t end = size;
    if (length >= 0 && start + (uint64_t)length < size)
        end = start + (uint64_t)length;
    uint64_t want = end - start;

    dsp_buf_reset(out);
    dsp_buf_reserve(out, want);
    uint64_t got = 0;
    while (got < want) {
        ssize_t n = pread(fd, out->data + got, want - got, (off_t)(start + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = dsp_err_set(err, errno_status(errno),
                             "get %s key %s: read failed at byte %llu: %s",
                             ls->base.uri, key, (unsigned long long)(start + got),
                             strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        got += (uint64_t)n;
    }
    if (k == DSP_FAULT_TRUNCATE && got > 0)
        got /= 2; /* the simulated body stops halfway */
    out->len = got;
    out->data[got] = '\0';
    if (got < want) {
        rc = dsp_err_set(err, DSP_ETRANSIENT,
                         "get %s key %s: short read: %llu of %llu bytes from byte %llu", ls->base.uri,
                         key, (unsigned long long)got, (unsigned long long)want,
                         (unsigned long long)start);
        goto out;
    }
    if (info)
        rc = info_of_fd(ls, key, fd, &st, info, err);
out:
    close(fd);
    return rc;
}

static dsp_status local_get(dsp_store *s, const char *key, uint64_t offset, int64_t length,
                            dsp_buf *out, dsp_obj_info *info, dsp_err *err)
{
    local_store *ls = (local_store *)s;
    dsp_status rc = check_local_key(ls, "get", key, err);
    if (rc != DSP_OK)
        return rc;

    char *path = key_path(ls, key);
    dsp_retry_state st;
    dsp_retry_begin(&st, &s->retry);
    do {
        rc = get_attempt(ls, key, path, offset, length, out, info, err);
    } while (rc != DSP_OK && retry_again(ls, &st, err, "get", key));
    free(path);
    return rc;
}

static dsp_status head_attempt(local_store *ls, const char *op, const char *key,
                               const char *path, dsp_obj_info *info, dsp_err *err)
{
    dsp_fault_kind k = dsp_fault_pick(ls->base.faults, DSP_FOP_HEAD);
    dsp_status rc = fault_before(ls, k, op, key, err);
    if (rc != DSP_OK)
        return rc;

    int fd;
    struct stat st;
    rc = open_object(ls, op, key, path, &fd, &st, err);
    if (rc != DSP_OK)
        return rc;
    rc = info_of_fd(ls, key, fd, &st, info, err);
    close(fd);
    return rc;
}

/* HEAD with retries; used by head, by readers and to settle an ambiguous
 * conditional put. */
static dsp_status head_retry(local_store *ls, const char *op, const char *key, const char *path,
                             dsp_obj_info *info, dsp_err *err)
{
    dsp_retry_state st;
    dsp_status rc;

    dsp_retry_begin(&st, &ls->base.retry);
    do {
        rc = head_attempt(ls, op, key, path, info, err);
    } while (rc != DSP_OK && retry_again(ls, &st, err, op, key));
    return rc;
}

static dsp_status local_head(dsp_store *s, const char *key, dsp_obj_info *info, dsp_err *err)
{
    local_store *ls = (local_store *)s;
    dsp_obj_info scratch;
    dsp_status rc = check_local_key(ls, "head", key, err);
    if (rc != DSP_OK)
        return rc;

    char *path = key_path(ls, key);
    rc = head_retry(ls, "head", key, path, info ? info : &scratch, err);
    free(path);
    return rc;
}

/* ---- publishing a temporary file --------------------------------------- */

/* Move a finished temporary file to the key's path, honouring the
 * condition, while holding the lock on the key's directory. The temporary
 * file is gone afterwards, whatever the result. */
static dsp_status publish(local_store *ls, const char *op, const char *key, const char *path,
                          const char *tmp, dsp_put_cond cond, const char *if_match,
                          dsp_err *err)
{
    int lock_fd = -1;
    dsp_status rc = lock_dir_of(ls, op, key, path, &lock_fd, err);
    if (rc != DSP_OK)
        goto out;
    if (lock_fd < 0) {
        rc = dsp_err_set(err, DSP_EIO, "%s %s key %s: the directory of %s vanished", op,
                         ls->base.uri, key, tmp);
        goto out;
    }

    if (cond == DSP_PUT_IF_MATCH) {
        int fd;
        struct stat st;
        dsp_obj_info cur;
        char want[DSP_ETAG_MAX];
        rc = open_object(ls, op, key, path, &fd, &st, err);
        if (rc != DSP_OK)
            goto out;
        rc = info_of_fd(ls, key, fd, &st, &cur, err);
        close(fd);
        if (rc != DSP_OK)
            goto out;
        strip_quotes(if_match, want, sizeof want);
        if (strcmp(cur.etag, want) != 0) {
            rc = dsp_err_set(err, DSP_EPRECOND,
                             "%s %s key %s: precondition failed: the ETag is %s, not %s", op,
                             ls->base.uri, key, cur.etag, want);
            goto out;
        }
    }

    for (int attempt = 0; attempt < 2; attempt++) {
        int r = cond == DSP_PUT_IF_ABSENT ? link(tmp, path) : rename(tmp, path);
        if (r == 0) {
            rc = DSP_OK;
            break;
        }
        int e = errno;
        struct stat st;
        int is_dir = (e == EEXIST || e == EISDIR) && lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
        if (is_dir && attempt == 0 && rmdir(path) == 0)
            continue; /* an empty directory left by deleted keys */
        if (is_dir)
            rc = dsp_err_set(err, DSP_EINVAL,
                             "%s %s key %s: other keys start with '%s/', and a local store "
                             "cannot hold both 'a' and 'a/b'",
                             op, ls->base.uri, key, key);
        else if (e == EEXIST)
            rc = dsp_err_set(err, DSP_EPRECOND,
                             "%s %s key %s: precondition failed: the object already exists", op,
                             ls->base.uri, key);
        else
            rc = dsp_err_set(err, errno_status(e), "%s %s key %s: cannot move %s to %s: %s", op,
                             ls->base.uri, key, tmp, path, strerror(e));
        break;
    }
out:
    unlock_dir(lock_fd);
    (void)unlink(tmp); /* after link(2) the temporary name is a second link */
    if (rc == DSP_OK) {
        /* Sync the new name outside the lock: the rename is already atomic,
         * and a directory fsync takes milliseconds that would otherwise
         * serialize every writer in the directory. */
        char *dir = dir_of(path);
        fsync_dir(dir);
        free(dir);
    }
    return rc;
}

static dsp_status write_all(int fd, const void *data, size_t len, uint64_t offset)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return DSP_EIO;
        p += n;
        len -= (size_t)n;
        offset += (uint64_t)n;
    }
    return DSP_OK;
}

/* ---- put --------------------------------------------------------------- */

/* One attempt of a put. *after_effect is set when the write took place but
 * the simulated response was an error, so the caller must re-read. */
static dsp_status put_attempt(local_store *ls, const char *key, const char *path,
                              const void *data, size_t len, const dsp_put_opts *opts,
                              const char *etag, int *after_effect, dsp_err *err)
{
    dsp_put_cond cond = opts ? opts->cond : DSP_PUT_ALWAYS;
    dsp_fault_kind k = dsp_fault_pick(ls->base.faults,
                                      cond == DSP_PUT_ALWAYS ? DSP_FOP_PUT : DSP_FOP_CPUT);
    char *tmp = NULL;
    int fd = -1;

    *after_effect = 0;
    dsp_status rc = fault_before(ls, k, "put", key, err);
    if (rc != DSP_OK)
        return rc;
    if (k == DSP_FAULT_NOCOND)
        cond = DSP_PUT_ALWAYS;

    rc = create_temp(ls, "put", key, path, &tmp, &fd, err);
    if (rc != DSP_OK)
        return rc;
    if (write_all(fd, data, len, 0) != DSP_OK || fsync(fd) != 0) {
        rc = dsp_err_set(err, errno_status(errno),
                         "put %s key %s: cannot write %s: %s", ls->base.uri, key,
                         tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto out;
    }
    save_etag(fd, etag);
    close(fd);

    rc = publish(ls, "put", key, path, tmp, cond, opts ? opts->if_match : NULL, err);
    if (rc == DSP_OK && (k == DSP_FAULT_CPUT500 || k == DSP_FAULT_TRUNCATE)) {
        *after_effect = 1;
        rc = dsp_err_set(err, DSP_ETRANSIENT,
                         "put %s key %s: injected 500 InternalError after the write", ls->base.uri,
                         key);
    }
out:
    free(tmp);
    return rc;
}

static dsp_status local_put(dsp_store *s, const char *key, const void *data, size_t len,
                            const dsp_put_opts *opts, dsp_obj_info *info, dsp_err *err)
{
    local_store *ls = (local_store *)s;
    dsp_status rc = check_local_key(ls, "put", key, err);
    if (rc != DSP_OK)
        return rc;

    char etag[33];
    etag_format(XXH3_128bits(data, len), etag);
    char *path = key_path(ls, key);
    int after_effect = 0;
    dsp_retry_state st;
    dsp_retry_begin(&st, &s->retry);
    for (;;) {
        if (after_effect) {
            /* The previous attempt may have written the object: if the
             * current content is ours, that attempt won.
             * NOTE: a create-only PUT that races a writer of identical
             * bytes cannot tell the two apart, so both may report a win. */
            dsp_obj_info cur;
            dsp_err herr;
            if (head_retry(ls, "put", key, path, &cur, &herr) == DSP_OK &&
                !strcmp(cur.etag, etag)) {
                rc = DSP_OK;
                break;
            }
        }
        rc = put_attempt(ls, key, path, data, len, opts, etag, &after_effect, err);
        if (rc == DSP_OK || !retry_again(ls, &st, err, "put", key))
            break;
    }
    if (rc == DSP_OK && info) {
        dsp_obj_info cur;
        dsp_err herr;
        /* Report the stored mtime; fall back to now if the object is
         * already gone again. */
        if (head_retry(ls, "put", key, path, &cur, &herr) == DSP_OK && !strcmp(cur.etag, etag))
            *info = cur;
        else {
            info->size = len;
            snprintf(info->etag, sizeof info->etag, "%s", etag);
            info->mtime_ms = dsp_now_ms();
        }
    }
    free(path);
    return rc;
}

/* ---- copy -------------------------------------------------------------- */

/* Copy size bytes inside the kernel with copy_file_range(2), which also
 * shares extents on file systems with reflinks (XFS, Btrfs). Falls back to
 * read and write where the kernel or file system cannot. */
static dsp_status copy_data(int from, int to, uint64_t size)
{
    uint64_t off = 0;
    char *buf = NULL;
    dsp_status rc = DSP_OK;

    while (off < size) {
        loff_t in = (loff_t)off, out = (loff_t)off;
        ssize_t n = copy_file_range(from, &in, to, &out, (size_t)(size - off), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n > 0) {
            off += (uint64_t)n;
            continue;
        }
        if (n == 0 || (errno != EXDEV && errno != ENOSYS && errno != EINVAL &&
                       errno != EOPNOTSUPP)) {
            rc = DSP_EIO;
            goto out;
        }
        break;
    }

    if (off < size)
        buf = dsp_xmalloc(1 << 20);
    while (off < size) {
        ssize_t n = pread(from, buf, 1 << 20, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || write_all(to, buf, (size_t)n, off) != DSP_OK) {
            rc = DSP_EIO;
            break;
        }
        off += (uint64_t)n;
    }
out:
    free(buf);
    return rc;
}

static dsp_status copy_attempt(local_store *ls, const char *src, const char *dst,
                               const char *src_path, const char *dst_path, dsp_obj_info *info,
                               dsp_err *err)
{
    dsp_fault_kind k = dsp_fault_pick(ls->base.faults, DSP_FOP_COPY);
    dsp_status rc = fault_before(ls, k, "copy", dst, err);
    if (rc != DSP_OK)
        return rc;

    int src_fd, tmp_fd = -1;
    struct stat st;
    char *tmp = NULL;
    rc = open_object(ls, "copy", src, src_path, &src_fd, &st, err);
    if (rc != DSP_OK)
        return rc;
    rc = info_of_fd(ls, src, src_fd, &st, info, err);
    if (rc != DSP_OK)
        goto out;
    rc = create_temp(ls, "copy", dst, dst_path, &tmp, &tmp_fd, err);
    if (rc != DSP_OK)
        goto out;
    if (copy_data(src_fd, tmp_fd, (uint64_t)st.st_size) != DSP_OK || fsync(tmp_fd) != 0) {
        rc = dsp_err_set(err, errno_status(errno), "copy %s key %s to %s: cannot write %s: %s",
                         ls->base.uri, src, dst, tmp, strerror(errno));
        unlink(tmp);
        goto out;
    }
    save_etag(tmp_fd, info->etag);
    rc = publish(ls, "copy", dst, dst_path, tmp, DSP_PUT_ALWAYS, NULL, err);
    if (rc == DSP_OK) {
        struct stat nst;
        if (fstat(tmp_fd, &nst) == 0)
            info->mtime_ms = (int64_t)nst.st_mtim.tv_sec * 1000 + nst.st_mtim.tv_nsec / 1000000;
    }
out:
    if (tmp_fd >= 0)
        close(tmp_fd);
    close(src_fd);
    free(tmp);
    return rc;
}

static dsp_status local_copy(dsp_store *s, const char *src, const char *dst, dsp_obj_info *info,
                             dsp_err *err)
{
    local_store *ls = (local_store *)s;
    dsp_obj_info scratch;
    dsp_status rc = check_local_key(ls, "copy", src, err);
    if (rc == DSP_OK)
        rc = check_local_key(ls, "copy", dst, err);
    if (rc != DSP_OK)
        return rc;

    char *src_path = key_path(ls, src), *dst_path = key_path(ls, dst);
    dsp_retry_state st;
    dsp_retry_begin(&st, &s->retry);
    do {
        rc = copy_attempt(ls, src, dst, src_path, dst_path, info ? info : &scratch, err);
    } while (rc != DSP_OK && retry_again(ls, &st, err, "copy", dst));
    free(src_path);
    free(dst_path);
    return rc;
}

/* ---- delete ------------------------------------------------------------ */

static dsp_status delete_attempt(local_store *ls, const char *const *keys, size_t n,
                                 dsp_err *err)
{
    dsp_fault_kind k = dsp_fault_pick(ls->base.faults, DSP_FOP_DELETE);
    dsp_status rc = fault_before(ls, k, "delete", keys[0], err);
    if (rc != DSP_OK)
        return rc;

    for (size_t i = 0; i < n && rc == DSP_OK; i++) {
        char *path = key_path(ls, keys[i]);
        int lock_fd = -1;
        rc = lock_dir_of(ls, "delete", keys[i], path, &lock_fd, err);
        if (rc == DSP_OK && lock_fd >= 0) {
            int removed = unlink(path) == 0;
            if (!removed && errno != ENOENT && errno != ENOTDIR && errno != EISDIR)
                rc = dsp_err_set(err, errno_status(errno), "delete %s key %s: cannot remove %s: %s",
                                 ls->base.uri, keys[i], path, strerror(errno));
            unlock_dir(lock_fd);
            if (removed)
                remove_empty_parents(ls, path);
        }
        free(path);
    }
    return rc;
}

static dsp_status local_delete_batch(dsp_store *s, const char *const *keys, size_t n,
                                     dsp_err *err)
{
    local_store *ls = (local_store *)s;
    dsp_status rc = DSP_OK;

    if (n == 0)
        return DSP_OK;
    for (size_t i = 0; i < n; i++) {
        rc = check_local_key(ls, "delete", keys[i], err);
        if (rc != DSP_OK)
            return rc;
    }
    dsp_retry_state st;
    dsp_retry_begin(&st, &s->retry);
    do {
        rc = delete_attempt(ls, keys, n, err);
    } while (rc != DSP_OK && retry_again(ls, &st, err, "delete", keys[0]));
    return rc;
}

/* ---- list -------------------------------------------------------------- */

/*
 * Listing walks the tree depth-first with each directory's entries sorted
 * by name, where a directory sorts as "name/". Every key below a directory
 * starts with "name/", so this walk meets keys in ascending byte order
 * ("a-c" before "a/b", as in S3) and can stop after one page. Directories
 * whose keys all sort before the continuation token, or that fall under a
 * common prefix already returned, are skipped without being read.
 * NOTE: each page reads and sorts every directory on its path again, so
 * paging through one directory of N keys costs O(N^2 / 1000) entries read.
 */
typedef struct {
    local_store *ls;
    const char *prefix;
    const char *delimiter;
    const char *token;
    char *skip;      /* common prefix just returned: skip keys under it */
    char *last;      /* last key or common prefix returned */
    size_t max;
    size_t cap_items, cap_prefixes;
    int done;
    dsp_list_page *page;
    dsp_err *err;
} list_walk;

typedef struct {
    char *name; /* "x" for a file, "x/" for a directory */
    int is_dir;
    int broken; /* a symlink that cannot be followed */
} list_entry;

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Whether prefix continues key with a '/', so that every key the prefix
 * selects lies below the directory key ("a/b" for "a/b/c"). */
static int is_dir_of(const char *key, const char *prefix)
{
    size_t n = strlen(key);
    return strncmp(prefix, key, n) == 0 && prefix[n] == '/';
}

static int compare_entries(const void *a, const void *b)
{
    return strcmp(((const list_entry *)a)->name, ((const list_entry *)b)->name);
}

static void page_full(list_walk *w)
{
    w->done = 1;
    w->page->next_token = dsp_xstrdup(w->last);
}

static void set_last(list_walk *w, const char *value)
{
    free(w->last);
    w->last = dsp_xstrdup(value);
}

/* Fail a listing on path when it is a symbolic link that cannot be
 * followed, where e is the errno of following it. Returns DSP_OK when path
 * is no symbolic link, because then it does not exist (it was removed
 * while listing, or is a store root not created yet). */
static dsp_status check_broken_link(list_walk *w, const char *path, int e)
{
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISLNK(st.st_mode))
        return DSP_OK;

    char target[PATH_MAX];
    ssize_t n = readlink(path, target, sizeof target - 1);
    target[n > 0 ? n : 0] = '\0';
    if (e == ENOENT || e == ENOTDIR)
        return dsp_err_set(w->err, DSP_ENOTFOUND,
                           "list %s: %s is a dangling symlink: its target %s does not "
                           "exist; remove the link or restore its target",
                           w->ls->base.uri, path, target);
    return dsp_err_set(w->err, errno_status(e),
                       "list %s: cannot follow symlink %s to %s: %s; remove the link or "
                       "fix its target",
                       w->ls->base.uri, path, target, strerror(e));
}

/* Name of a file type other than a regular file or a directory. */
static const char *special_file_kind(mode_t mode)
{
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISSOCK(mode))
        return "a socket";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    return "not a regular file";
}

/* Open a listed file to read its size and ETag. Sets *fd to -1 for an
 * entry that was removed while listing. A file that exists but cannot be
 * opened, and a FIFO, socket or device file, fail the listing, so that a
 * job does not silently drop it from its input. Such files are checked
 * with stat before open, because opening a device can have effects. */
static dsp_status open_listed(list_walk *w, const char *key, const char *path, int *fd,
                              struct stat *st)
{
    *fd = -1;
    if (stat(path, st) == 0 && !S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode))
        return dsp_err_set(w->err, DSP_EINVAL,
                           "list %s: key %s is %s (%s), not a regular file; remove it or "
                           "move it out of the listed directory",
                           w->ls->base.uri, key, special_file_kind(st->st_mode), path);
    *fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (*fd < 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR || e == ELOOP)
            return check_broken_link(w, path, e);
        return dsp_err_set(w->err, errno_status(e),
                           "list %s: cannot read key %s: cannot open %s: %s; make the file "
                           "readable or remove it",
                           w->ls->base.uri, key, path, strerror(e));
    }
    if (fstat(*fd, st) != 0 || !S_ISREG(st->st_mode)) {
        close(*fd);
        *fd = -1;
    }
    return DSP_OK;
}

/* Offer one key, in order, to the page. */
static dsp_status list_emit(list_walk *w, const char *key, const char *path)
{
    dsp_list_page *page = w->page;

    if (w->delimiter) {
        const char *found = strstr(key + strlen(w->prefix), w->delimiter);
        if (found) {
            size_t len = (size_t)(found - key) + strlen(w->delimiter);
            char *common = dsp_xstrndup(key, len);
            if (w->token && strcmp(common, w->token) <= 0) {
                free(w->skip);
                w->skip = common;
                return DSP_OK;
            }
            if (page->n + page->nprefixes == w->max) {
                free(common);
                page_full(w);
                return DSP_OK;
            }
            if (page->nprefixes == w->cap_prefixes) {
                w->cap_prefixes = w->cap_prefixes ? w->cap_prefixes * 2 : 64;
                page->prefixes =
                    dsp_xrealloc(page->prefixes, w->cap_prefixes * sizeof *page->prefixes);
            }
            page->prefixes[page->nprefixes++] = dsp_xstrdup(common);
            set_last(w, common);
            free(w->skip);
            w->skip = common;
            return DSP_OK;
        }
    }

    int fd;
    struct stat st;
    dsp_obj_info info;
    dsp_status rc = open_listed(w, key, path, &fd, &st);
    if (rc != DSP_OK || fd < 0)
        return rc;
    if (page->n + page->nprefixes == w->max) {
        close(fd);
        page_full(w);
        return DSP_OK;
    }
    rc = info_of_fd(w->ls, key, fd, &st, &info, w->err);
    close(fd);
    if (rc != DSP_OK)
        return rc;
    if (page->n == w->cap_items) {
        w->cap_items = w->cap_items ? w->cap_items * 2 : 256;
        page->items = dsp_xrealloc(page->items, w->cap_items * sizeof *page->items);
    }
    dsp_list_entry *e = &page->items[page->n++];
    e->key = dsp_xstrdup(key);
    e->size = info.size;
    e->mtime_ms = info.mtime_ms;
    snprintf(e->etag, sizeof e->etag, "%s", info.etag);
    set_last(w, key);
    return DSP_OK;
}

/* Walk directory `path`, whose keys all start with `rel` ("" or "a/b/"). */
static dsp_status list_dir(list_walk *w, const char *path, const char *rel)
{
    DIR *d = opendir(path);
    list_entry *entries = NULL;
    size_t n = 0, cap = 0;
    dsp_status rc = DSP_OK;

    if (!d) {
        /* The root may not exist yet, a directory may vanish while
         * listing, and a symlink cycle ends in ELOOP: none hold keys.
         * A dangling symlink in their place fails the listing. */
        if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
            return check_broken_link(w, path, errno);
        return dsp_err_set(w->err, errno_status(errno), "list %s: cannot open directory %s: %s",
                           w->ls->base.uri, path, strerror(errno));
    }
    for (struct dirent *de; (de = readdir(d));) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
            starts_with(de->d_name, RESERVED_PREFIX))
            continue;
        int is_dir = de->d_type == DT_DIR, broken = 0;
        if (de->d_type == DT_UNKNOWN || de->d_type == DT_LNK) {
            struct stat st;
            if (fstatat(dirfd(d), de->d_name, &st, 0) == 0)
                is_dir = S_ISDIR(st.st_mode);
            else if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
                broken = 1; /* a symlink that cannot be followed */
            else
                continue; /* removed while listing */
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            entries = dsp_xrealloc(entries, cap * sizeof *entries);
        }
        entries[n].name = is_dir ? dsp_xasprintf("%s/", de->d_name) : dsp_xstrdup(de->d_name);
        entries[n].is_dir = is_dir;
        entries[n].broken = broken;
        n++;
    }
    closedir(d);
    if (n > 1)
        qsort(entries, n, sizeof *entries, compare_entries);

    for (size_t i = 0; i < n && !w->done && rc == DSP_OK; i++) {
        char *key = dsp_xasprintf("%s%s", rel, entries[i].name);
        char *child = dsp_xasprintf("%s/%s", path, entries[i].name);
        if (entries[i].is_dir) {
            child[strlen(child) - 1] = '\0';
            int under_prefix = starts_with(key, w->prefix) || starts_with(w->prefix, key);
            int before_token = w->token && strcmp(key, w->token) < 0 && !starts_with(w->token, key);
            int skipped = w->skip && starts_with(key, w->skip);
            /* Keys are at most 1,024 bytes, which also stops a symlink
             * loop from recursing forever. */
            int too_deep = strlen(key) > 1024;
            if (under_prefix && !before_token && !skipped && !too_deep)
                rc = list_dir(w, child, key);
        } else if (starts_with(key, w->prefix) && !(w->token && strcmp(key, w->token) <= 0) &&
                   !(w->skip && starts_with(key, w->skip))) {
            rc = list_emit(w, key, child);
        } else if (entries[i].broken && is_dir_of(key, w->prefix)) {
            /* The link may be the directory that the prefix names, and
             * its keys would otherwise be missing silently. */
            struct stat st;
            if (stat(child, &st) != 0)
                rc = check_broken_link(w, child, errno);
        }
        free(key);
        free(child);
    }
    for (size_t i = 0; i < n; i++)
        free(entries[i].name);
    free(entries);
    return rc;
}

static dsp_status list_attempt(local_store *ls, const char *prefix, const char *delimiter,
                               const char *token, size_t max_keys, dsp_list_page *page,
                               dsp_err *err)
{
    dsp_fault_kind k = dsp_fault_pick(ls->base.faults, DSP_FOP_LIST);
    dsp_status rc = fault_before(ls, k, "list", prefix, err);
    if (rc != DSP_OK)
        return rc;

    list_walk w = {
        .ls = ls,
        .prefix = prefix,
        .delimiter = delimiter,
        .token = token,
        .max = max_keys,
        .page = page,
        .err = err,
    };
    /* A token that is itself a common prefix means its keys were returned
     * as that prefix and must be skipped. */
    if (token && delimiter && starts_with(token, prefix)) {
        const char *found = strstr(token + strlen(prefix), delimiter);
        if (found && found[strlen(delimiter)] == '\0')
            w.skip = dsp_xstrdup(token);
    }
    rc = list_dir(&w, ls->root, "");
    free(w.skip);
    free(w.last);
    if (rc == DSP_OK && k == DSP_FAULT_TRUNCATE)
        rc = dsp_err_set(err, DSP_ETRANSIENT, "list %s prefix %s: injected truncated response",
                         ls->base.uri, prefix);
    if (rc != DSP_OK)
        dsp_list_page_free(page);
    return rc;
}

static dsp_status local_list_page(dsp_store *s, const char *prefix, const char *delimiter,
                                  const char *token, size_t max_keys, dsp_list_page *page,
                                  dsp_err *err)
{
    local_store *ls = (local_store *)s;
    dsp_retry_state st;
    dsp_status rc;

    dsp_retry_begin(&st, &s->retry);
    do {
        rc = list_attempt(ls, prefix, delimiter, token, max_keys, page, err);
    } while (rc != DSP_OK && retry_again(ls, &st, err, "list", prefix));
    return rc;
}

/* ---- streaming writer -------------------------------------------------- */

static void writer_free(local_writer *w)
{
    if (w->fd >= 0)
        close(w->fd);
    XXH3_freeState(w->etag_state);
    free(w->key);
    free(w->path);
    free(w->tmp);
    free(w);
}

static dsp_status writer_write(dsp_writer *base, const void *data, size_t len, dsp_err *err)
{
    local_writer *w = (local_writer *)base;
    local_store *ls = w->ls;
    dsp_retry_state st;
    dsp_status rc;

    dsp_retry_begin(&st, &ls->base.retry);
    do {
        dsp_fault_kind k = dsp_fault_pick(ls->base.faults, DSP_FOP_MPU);
        rc = fault_before(ls, k, "write", w->key, err);
        if (rc == DSP_OK && write_all(w->fd, data, len, w->size) != DSP_OK)
            rc = dsp_err_set(err, errno_status(errno),
                             "write %s key %s: cannot write %s at byte %llu: %s",
                             ls->base.uri, w->key, w->tmp, (unsigned long long)w->size,
                             strerror(errno));
    } while (rc != DSP_OK && retry_again(ls, &st, err, "write", w->key));
    if (rc != DSP_OK)
        return rc;
    XXH3_128bits_update(w->etag_state, data, len);
    w->size += len;
    atomic_fetch_add(&ls->base.stats.bytes_out, len);
    return DSP_OK;
}

static dsp_status writer_close(dsp_writer *base, dsp_obj_info *info, dsp_err *err)
{
    local_writer *w = (local_writer *)base;
    local_store *ls = w->ls;
    char etag[33];
    dsp_status rc = DSP_OK;

    etag_format(XXH3_128bits_digest(w->etag_state), etag);
    if (fsync(w->fd) != 0) {
        rc = dsp_err_set(err, errno_status(errno),
                         "write %s key %s: fsync of %s failed: %s", ls->base.uri,
                         w->key, w->tmp, strerror(errno));
        unlink(w->tmp);
        goto out;
    }
    save_etag(w->fd, etag);

    atomic_fetch_add(&ls->base.stats.put, 1);
    dsp_retry_state st;
    dsp_retry_begin(&st, &ls->base.retry);
    do {
        dsp_fault_kind k = dsp_fault_pick(ls->base.faults, DSP_FOP_MPU);
        rc = fault_before(ls, k, "write", w->key, err);
    } while (rc != DSP_OK && retry_again(ls, &st, err, "write", w->key));
    if (rc != DSP_OK) {
        unlink(w->tmp);
        goto out;
    }
    rc = publish(ls, "write", w->key, w->path, w->tmp, DSP_PUT_ALWAYS, NULL, err);
    if (rc == DSP_OK && info) {
        struct stat sb;
        info->size = w->size;
        snprintf(info->etag, sizeof info->etag, "%s", etag);
        info->mtime_ms = fstat(w->fd, &sb) == 0 ? (int64_t)sb.st_mtim.tv_sec * 1000 +
                                                      sb.st_mtim.tv_nsec / 1000000
                                                : dsp_now_ms();
    }
out:
    writer_free(w);
    return rc;
}

static void writer_abort(dsp_writer *base)
{
    local_writer *w = (local_writer *)base;
    unlink(w->tmp);
    writer_free(w);
}

static const struct dsp_writer_ops local_writer_ops = {
    .write = writer_write,
    .close = writer_close,
    .abort = writer_abort,
};

static dsp_status local_writer_open(dsp_store *s, const char *key, const dsp_writer_opts *opts,
                                    dsp_writer **out, dsp_err *err)
{
    local_store *ls = (local_store *)s;
    (void)opts; /* part size and parallelism have no meaning for a file */
    dsp_status rc = check_local_key(ls, "write", key, err);
    if (rc != DSP_OK)
        return rc;

    local_writer *w = dsp_xcalloc(1, sizeof *w);
    w->base.ops = &local_writer_ops;
    w->ls = ls;
    w->fd = -1;
    w->key = dsp_xstrdup(key);
    w->path = key_path(ls, key);
    w->etag_state = XXH3_createState();
    if (!w->etag_state || XXH3_128bits_reset(w->etag_state) != XXH_OK) {
        rc = dsp_err_set(err, DSP_ENOMEM,
                         "write %s key %s: cannot start the XXH3 hash of the ETag",
                         ls->base.uri, key);
        writer_free(w);
        return rc;
    }
    rc = create_temp(ls, "write", key, w->path, &w->tmp, &w->fd, err);
    if (rc != DSP_OK) {
        writer_free(w);
        return rc;
    }
    *out = &w->base;
    return DSP_OK;
}

/* ---- streaming reader -------------------------------------------------- */

/*
 * Fail when the file was written in place since the reader opened it. A
 * rename over the name leaves the open descriptor on the old version, but
 * an in-place edit changes the bytes under it, and the job would mix old
 * and new data. It runs after every read, so bytes from before and after
 * an edit never both reach the caller unnoticed.
 * NOTE: an edit within the file system's timestamp granularity of the open
 * (a few ms on Linux) that keeps the size is not seen.
 */
static dsp_status check_unchanged(const local_reader *r, dsp_err *err)
{
    struct stat sb;
    if (fstat(r->fd, &sb) != 0)
        return dsp_err_set(err, DSP_EIO, "get %s key %s: fstat failed: %s", r->ls->base.uri,
                           r->key, strerror(errno));
    if ((uint64_t)sb.st_size == r->base.info.size && sb.st_mtim.tv_sec == r->mtime.tv_sec &&
        sb.st_mtim.tv_nsec == r->mtime.tv_nsec)
        return DSP_OK;
    return dsp_err_set(err, DSP_EINVAL, "get %s key %s: the file was modified while it was "
                       "read (size %llu, was %llu when opened); run the job again on inputs "
                       "that do not change", r->ls->base.uri, r->key,
                       (unsigned long long)sb.st_size, (unsigned long long)r->base.info.size);
}

static dsp_status reader_read(dsp_reader *base, void *buf, size_t cap, size_t *got,
                              dsp_err *err)
{
    local_reader *r = (local_reader *)base;
    local_store *ls = r->ls;
    size_t want = r->end - r->pos < cap ? (size_t)(r->end - r->pos) : cap;
    dsp_retry_state st;
    dsp_status rc;

    *got = 0;
    if (want == 0)
        return DSP_OK;
    dsp_retry_begin(&st, &ls->base.retry);
    do {
        dsp_fault_kind k = dsp_fault_pick_key(ls->base.faults, DSP_FOP_GET, r->key);
        rc = fault_before(ls, k, "get", r->key, err);
        if (rc != DSP_OK)
            continue;
        atomic_fetch_add(&ls->base.stats.get, 1);
        ssize_t n = pread(r->fd, buf, want, (off_t)r->pos);
        if (n < 0 && errno == EINTR) {
            rc = dsp_err_set(err, DSP_ETRANSIENT, "get %s key %s: read interrupted",
                             ls->base.uri, r->key);
            continue;
        }
        if (n < 0) {
            rc = dsp_err_set(err, errno_status(errno),
                             "get %s key %s: read failed at byte %llu: %s",
                             ls->base.uri, r->key, (unsigned long long)r->pos, strerror(errno));
            break;
        }
        if (n == 0) {
            rc = dsp_err_set(err, DSP_ECORRUPT,
                             "get %s key %s: the file ended at byte %llu, before the %llu "
                             "bytes seen when the reader opened",
                             ls->base.uri, r->key, (unsigned long long)r->pos,
                             (unsigned long long)r->base.info.size);
            break;
        }
        /* A truncated body still delivers the bytes that arrived; the next
         * read continues from there. */
        if (k == DSP_FAULT_TRUNCATE && n > 1)
            n /= 2;
        rc = check_unchanged(r, err);
        if (rc != DSP_OK)
            break;
        *got = (size_t)n;
        r->pos += (uint64_t)n;
        atomic_fetch_add(&ls->base.stats.bytes_in, (uint64_t)n);
    } while (rc != DSP_OK && retry_again(ls, &st, err, "get", r->key));
    return rc;
}

static void reader_close(dsp_reader *base)
{
    local_reader *r = (local_reader *)base;
    if (r->fd >= 0)
        close(r->fd);
    free(r->key);
    free(r);
}

static const struct dsp_reader_ops local_reader_ops = {
    .read = reader_read,
    .close = reader_close,
};

static dsp_status local_reader_open(dsp_store *s, const char *key, uint64_t offset,
                                    int64_t length, const dsp_reader_opts *opts,
                                    dsp_reader **out, dsp_err *err)
{
    local_store *ls = (local_store *)s;
    (void)opts; /* the page cache already reads ahead */
    dsp_status rc = check_local_key(ls, "read", key, err);
    if (rc != DSP_OK)
        return rc;

    char *path = key_path(ls, key);
    local_reader *r = dsp_xcalloc(1, sizeof *r);
    r->base.ops = &local_reader_ops;
    r->ls = ls;
    r->fd = -1;
    r->key = dsp_xstrdup(key);

    /* Holding the descriptor pins this version of the object: a later put
     * renames a new file over the name and leaves this one readable. */
    dsp_retry_state st;
    dsp_retry_begin(&st, &s->retry);
    do {
        dsp_fault_kind k = dsp_fault_pick(s->faults, DSP_FOP_HEAD);
        rc = fault_before(ls, k, "read", key, err);
        if (rc != DSP_OK)
            continue;
        struct stat sb;
        rc = open_object(ls, "read", key, path, &r->fd, &sb, err);
        if (rc == DSP_OK) {
            r->mtime = sb.st_mtim;
            rc = info_of_fd(ls, key, r->fd, &sb, &r->base.info, err);
            if (rc != DSP_OK) {
                close(r->fd);
                r->fd = -1;
            }
        }
    } while (rc != DSP_OK && retry_again(ls, &st, err, "read", key));
    free(path);
    if (rc != DSP_OK) {
        reader_close(&r->base);
        return rc;
    }
    atomic_fetch_add(&s->stats.head, 1);

    uint64_t size = r->base.info.size;
    r->pos = offset < size ? offset : size;
    r->end = size;
    if (length >= 0 && r->pos + (uint64_t)length < size)
        r->end = r->pos + (uint64_t)length;
    *out = &r->base;
    return DSP_OK;
}

/* ---- open and close ---------------------------------------------------- */

static void local_close(dsp_store *s)
{
    local_store *ls = (local_store *)s;
    free(ls->root);
    free(ls->base.uri);
    free(ls);
}

static const struct dsp_store_ops local_ops = {
    .kind = "local",
    .get = local_get,
    .head = local_head,
    .put = local_put,
    .copy = local_copy,
    .delete_batch = local_delete_batch,
    .list_page = local_list_page,
    .writer_open = local_writer_open,
    .reader_open = local_reader_open,
    .close = local_close,
};

/* Make dir absolute and drop "." components, repeated and trailing
 * slashes. ".." is resolved by realpath when the directory exists. */
static char *normalize_dir(const char *dir)
{
    char *abs;
    char resolved[PATH_MAX];

    if (realpath(dir, resolved))
        return dsp_xstrdup(resolved);
    if (dir[0] == '/') {
        abs = dsp_xstrdup(dir);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd))
            snprintf(cwd, sizeof cwd, ".");
        abs = dsp_xasprintf("%s/%s", cwd, dir);
    }
    char *out = dsp_xmalloc(strlen(abs) + 2);
    size_t o = 0;
    for (const char *p = abs; *p;) {
        while (*p == '/')
            p++;
        const char *end = strchrnul(p, '/');
        size_t len = (size_t)(end - p);
        if (len > 0 && !(len == 1 && p[0] == '.')) {
            out[o++] = '/';
            memcpy(out + o, p, len);
            o += len;
        }
        p = end;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    free(abs);
    return out;
}

dsp_status dsp_local_open(const char *dir, dsp_store **out, dsp_err *err)
{
    struct stat st;

    *out = NULL;
    if (!dir || !*dir)
        return dsp_err_set(err, DSP_EINVAL, "missing local store directory");
    char *root = normalize_dir(dir);
    if (stat(root, &st) == 0 && !S_ISDIR(st.st_mode)) {
        dsp_status rc = dsp_err_set(err, DSP_EINVAL,
                                    "invalid local store '%s': %s is a file, not a directory",
                                    dir, root);
        free(root);
        return rc;
    }
    local_store *ls = dsp_xcalloc(1, sizeof *ls);
    ls->base.ops = &local_ops;
    ls->root = root;
    ls->base.uri = dsp_xasprintf("file://%s", root);
    *out = &ls->base;
    return DSP_OK;
}
