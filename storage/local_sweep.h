/*
 * local_sweep.h - removal of temporary files that dead writers left in a
 * local store.
 *
 * A put to a local store (local.c) writes ROOT/dir/.dsp-tmp.<pid>.<hex>
 * and renames it over the key. A writer killed before the rename leaves
 * that file behind, hidden from listings. The sweep removes such a file
 * when it is older than a given age and no process with its pid runs on
 * this machine.
 */
#ifndef DSP_LOCAL_SWEEP_H
#define DSP_LOCAL_SWEEP_H

#include <stdint.h>

#include "../core/err.h"

typedef struct {
    uint64_t found;         /* temporary files seen */
    uint64_t removed;       /* removed: old enough and writer gone */
    uint64_t bytes_removed;
    uint64_t kept_young;    /* modified less than older_than_seconds ago */
    uint64_t kept_running;  /* a process with the writer's pid still runs */
} dsp_local_sweep_stats;

/*
 * Walk the directory root (without following symbolic links) and remove
 * the temporary files whose last change is at least older_than_seconds
 * old and whose writer pid is not running. A missing root is an empty
 * store. DSP_EIO names the path when a directory cannot be read or a file
 * cannot be removed; stats then counts what was done before.
 */
dsp_status dsp_local_sweep_temp(const char *root, int64_t older_than_seconds,
                                dsp_local_sweep_stats *stats, dsp_err *err);

#endif
