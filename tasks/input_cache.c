/*
 * input_cache.c - local disk cache of decompressed inputs (see
 * input_cache.h).
 */
#include "input_cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "../core/log.h"
#include "../core/util.h"

/* Free space is checked again after this many bytes of an entry, so that
 * concurrent writers overshoot the reserve by little. */
#define CACHE_CHECK_BYTES (8u << 20)
#define CACHE_PARTIAL_SUFFIX ".partial"

struct dsp_input_cache_writer {
    char *path, *partial;
    int fd;
    uint64_t bytes, unchecked;
    XXH3_state_t *hash;
};

static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static char *cache_dir;

static void cache_dir_init(void)
{
    const char *env = getenv("DSPARK_INPUT_CACHE");
    if (env && !strcmp(env, "off"))
        return;
    char *dir;
    if (env && env[0]) {
        dir = dsp_xstrdup(env);
    } else {
        const char *tmp = getenv("TMPDIR");
        dir = dsp_xasprintf("%s/dspark-input-cache-%u", tmp && tmp[0] ? tmp : "/tmp",
                            (unsigned)getuid());
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        DSP_WARN("input_cache_off", "dir=%s reason=\"cannot create it: %s\"", dir,
                 strerror(errno));
        free(dir);
        return;
    }
    /* lstat, so that a symlink planted in a shared /tmp is not followed. */
    struct stat st;
    if (lstat(dir, &st) == 0 && S_ISLNK(st.st_mode)) {
        DSP_WARN("input_cache_off", "dir=%s reason=\"a symbolic link; name the directory "
                 "itself\"", dir);
        free(dir);
        return;
    }
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
        (st.st_mode & 0077) != 0) {
        DSP_WARN("input_cache_off", "dir=%s reason=\"not a directory of this user with mode "
                 "0700\"", dir);
        free(dir);
        return;
    }
    /* Entries are read through a file:// store, which needs an absolute path. */
    char *absolute = realpath(dir, NULL);
    free(dir);
    if (!absolute) {
        DSP_WARN("input_cache_off", "dir=%s reason=\"cannot resolve it: %s\"", env ? env : "",
                 strerror(errno));
        return;
    }
    cache_dir = dsp_xstrdup(absolute);
    free(absolute);
}

const char *dsp_input_cache_dir(void)
{
    pthread_once(&cache_once, cache_dir_init);
    return cache_dir;
}

char *dsp_input_cache_job_prefix(const char *job)
{
    return dsp_xasprintf("%016llx-", (unsigned long long)XXH3_64bits(job, strlen(job)));
}

char *dsp_input_cache_name(const char *job, const char *attempt_prefix, size_t index)
{
    return dsp_xasprintf("%016llx-%016llx-%zu.jsonl",
                         (unsigned long long)XXH3_64bits(job, strlen(job)),
                         (unsigned long long)XXH3_64bits(attempt_prefix, strlen(attempt_prefix)),
                         index);
}

/* 1 when the file system of fd keeps DSP_INPUT_CACHE_MIN_FREE_PERCENT free
 * after `more` bytes. */
static int cache_has_room(int fd, uint64_t more)
{
    struct statvfs vfs;
    if (fstatvfs(fd, &vfs) != 0 || vfs.f_blocks == 0)
        return 0;
    uint64_t total = (uint64_t)vfs.f_blocks * vfs.f_frsize;
    uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    uint64_t reserve = total / 100 * DSP_INPUT_CACHE_MIN_FREE_PERCENT;
    return avail > reserve && avail - reserve > more;
}

dsp_input_cache_writer *dsp_input_cache_create(const char *name)
{
    const char *dir = dsp_input_cache_dir();
    if (!dir)
        return NULL;
    dsp_input_cache_writer *w = dsp_xcalloc(1, sizeof *w);
    w->path = dsp_xasprintf("%s/%s", dir, name);
    w->partial = dsp_xasprintf("%s%s", w->path, CACHE_PARTIAL_SUFFIX);
    w->fd = open(w->partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (w->fd < 0 || !cache_has_room(w->fd, CACHE_CHECK_BYTES)) {
        static atomic_int warned;
        if (w->fd < 0 && !atomic_exchange(&warned, 1))
            DSP_WARN("input_cache_skipped", "path=%s reason=\"cannot create it: %s\" "
                     "message=\"later failures of this process are logged at debug level\"",
                     w->partial, strerror(errno));
        else if (w->fd < 0)
            DSP_DEBUG("input_cache_skipped", "path=%s reason=\"%s\"", w->partial,
                      strerror(errno));
        else
            DSP_INFO("input_cache_skipped", "path=%s reason=\"less than %d%% of the file "
                     "system would stay free\"", w->partial, DSP_INPUT_CACHE_MIN_FREE_PERCENT);
        dsp_input_cache_discard(w);
        return NULL;
    }
    w->hash = XXH3_createState();
    XXH3_64bits_reset(w->hash);
    return w;
}

/* Close and remove the partial file; later writes do nothing. */
static void cache_abandon(dsp_input_cache_writer *w)
{
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
        unlink(w->partial);
    }
}

void dsp_input_cache_write(dsp_input_cache_writer *w, const void *data, size_t len)
{
    if (!w || w->fd < 0)
        return;
    if (w->unchecked + len > CACHE_CHECK_BYTES) {
        if (!cache_has_room(w->fd, CACHE_CHECK_BYTES)) {
            DSP_INFO("input_cache_abandoned", "path=%s bytes=%llu reason=\"less than %d%% of "
                     "the file system would stay free\"", w->partial,
                     (unsigned long long)w->bytes, DSP_INPUT_CACHE_MIN_FREE_PERCENT);
            cache_abandon(w);
            return;
        }
        w->unchecked = 0;
    }
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(w->fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            DSP_INFO("input_cache_abandoned", "path=%s bytes=%llu reason=\"write failed: %s\"",
                     w->partial, (unsigned long long)w->bytes, strerror(errno));
            cache_abandon(w);
            return;
        }
        p += n;
        left -= (size_t)n;
    }
    XXH3_64bits_update(w->hash, data, len);
    w->bytes += len;
    w->unchecked += len;
}

static void cache_writer_free(dsp_input_cache_writer *w)
{
    if (w->hash)
        XXH3_freeState(w->hash);
    free(w->path);
    free(w->partial);
    free(w);
}

int dsp_input_cache_commit(dsp_input_cache_writer *w, uint64_t *bytes, uint64_t *hash)
{
    if (!w)
        return 0;
    int ok = 0;
    if (w->fd >= 0) {
        /* No fsync: after a crash the reader's length and hash checks
         * catch a torn entry, and the input is still in the store. */
        int closed = close(w->fd) == 0;
        w->fd = -1;
        if (closed && rename(w->partial, w->path) == 0) {
            *bytes = w->bytes;
            *hash = XXH3_64bits_digest(w->hash);
            ok = 1;
        } else {
            unlink(w->partial);
        }
    }
    cache_writer_free(w);
    return ok;
}

void dsp_input_cache_discard(dsp_input_cache_writer *w)
{
    if (!w)
        return;
    cache_abandon(w);
    cache_writer_free(w);
}

int dsp_input_cache_verify(const char *path, uint64_t bytes, uint64_t hash)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return 0;
    XXH3_state_t *state = XXH3_createState();
    XXH3_64bits_reset(state);
    char *buf = dsp_xmalloc(1u << 20);
    uint64_t total = 0;
    ssize_t n;
    while ((n = read(fd, buf, 1u << 20)) > 0 || (n < 0 && errno == EINTR)) {
        if (n > 0) {
            XXH3_64bits_update(state, buf, (size_t)n);
            total += (uint64_t)n;
        }
    }
    int ok = n == 0 && total == bytes && XXH3_64bits_digest(state) == hash;
    free(buf);
    XXH3_freeState(state);
    close(fd);
    return ok;
}

char *dsp_input_cache_find(const char *name, uint64_t bytes)
{
    const char *dir = dsp_input_cache_dir();
    if (!dir)
        return NULL;
    char *path = dsp_xasprintf("%s/%s", dir, name);
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != bytes) {
        free(path);
        return NULL;
    }
    return path;
}

void dsp_input_cache_remove(const char *name)
{
    const char *dir = dsp_input_cache_dir();
    if (!dir)
        return;
    char *path = dsp_xasprintf("%s/%s", dir, name);
    unlink(path);
    free(path);
}

/* Remove the entries that `doomed` selects. */
static void cache_remove_matching(int (*doomed)(const char *name, const struct stat *st,
                                                const void *arg),
                                  const void *arg)
{
    const char *dir = dsp_input_cache_dir();
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d)
        return;
    for (struct dirent *de; (de = readdir(d));) {
        struct stat st;
        if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISREG(st.st_mode) && doomed(de->d_name, &st, arg))
            unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
}

static int cache_has_prefix(const char *name, const struct stat *st, const void *arg)
{
    (void)st;
    return !strncmp(name, arg, strlen(arg));
}

static int cache_is_stale(const char *name, const struct stat *st, const void *arg)
{
    (void)name;
    return st->st_mtime < *(const time_t *)arg;
}

void dsp_input_cache_remove_prefix(const char *prefix)
{
    cache_remove_matching(cache_has_prefix, prefix);
}

void dsp_input_cache_sweep(void)
{
    time_t cutoff = time(NULL) - DSP_INPUT_CACHE_MAX_AGE_SECONDS;
    cache_remove_matching(cache_is_stale, &cutoff);
}
