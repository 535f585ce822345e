/*
 * local_sweep.c - removal of temporary files left by killed writers in a
 * local store.
 *
 * local.c names a temporary file ".dsp-tmp.<pid>.<16 hex digits>". The file
 * is safe to remove when its writer can no longer rename it over a key,
 * that is when no process with that pid runs and the file has not changed
 * for older_than_seconds. A reused pid only keeps a file longer.
 *
 * NOTE: the pid check is valid only for writers on this machine and in this
 * pid namespace. A store directory shared with other hosts or containers
 * relies on the age alone, so give it an age well above the longest put.
 */
#include "local_sweep.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/log.h"
#include "../core/util.h"

#define SWEEP_TEMP_PREFIX ".dsp-tmp."

/* Parse the writer pid from a temporary file name; 0 when the name is not
 * one of ours. */
static pid_t sweep_writer_pid(const char *name)
{
    size_t plen = strlen(SWEEP_TEMP_PREFIX);
    char *end;

    if (strncmp(name, SWEEP_TEMP_PREFIX, plen) != 0)
        return 0;
    long pid = strtol(name + plen, &end, 10);
    if (end == name + plen || *end != '.' || pid <= 0)
        return 0;
    return (pid_t)pid;
}

static int sweep_pid_running(pid_t pid)
{
    /* EPERM means the process exists but belongs to another user. */
    return kill(pid, 0) == 0 || errno != ESRCH;
}

static dsp_status sweep_dir(const char *path, time_t cutoff, dsp_local_sweep_stats *stats,
                            dsp_err *err)
{
    DIR *d = opendir(path);
    dsp_status st = DSP_OK;
    struct dirent *de;

    if (!d) {
        if (errno == ENOENT)
            return DSP_OK; /* removed while we walked, or a missing root */
        return dsp_err_set(err, DSP_EIO, "sweep: cannot read directory %s: %s", path,
                           strerror(errno));
    }
    while (st == DSP_OK && (de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        struct stat sb;
        if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
            continue; /* gone since readdir */

        if (S_ISDIR(sb.st_mode)) {
            char *child = dsp_xasprintf("%s/%s", path, de->d_name);
            st = sweep_dir(child, cutoff, stats, err);
            free(child);
            continue;
        }
        pid_t pid = sweep_writer_pid(de->d_name);
        if (!S_ISREG(sb.st_mode) || pid == 0)
            continue;
        stats->found++;
        if (sb.st_mtime > cutoff) {
            stats->kept_young++;
            continue;
        }
        if (sweep_pid_running(pid)) {
            stats->kept_running++;
            continue;
        }
        if (unlinkat(dirfd(d), de->d_name, 0) != 0) {
            if (errno == ENOENT)
                continue;
            st = dsp_err_set(err, DSP_EIO, "sweep: cannot remove %s/%s: %s", path, de->d_name,
                             strerror(errno));
            break;
        }
        stats->removed++;
        stats->bytes_removed += (uint64_t)sb.st_size;
        DSP_INFO("temp_file_removed", "path=%s/%s writer_pid=%ld bytes=%lld", path, de->d_name,
                 (long)pid, (long long)sb.st_size);
    }
    closedir(d);
    return st;
}

dsp_status dsp_local_sweep_temp(const char *root, int64_t older_than_seconds,
                                dsp_local_sweep_stats *stats, dsp_err *err)
{
    memset(stats, 0, sizeof *stats);
    if (older_than_seconds < 0)
        return dsp_err_set(err, DSP_EINVAL, "sweep: invalid age %lld: expected seconds >= 0",
                           (long long)older_than_seconds);
    return sweep_dir(root, time(NULL) - (time_t)older_than_seconds, stats, err);
}
