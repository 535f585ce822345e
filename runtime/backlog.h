/*
 * backlog.h - how much work a job store has left, for autoscaling.
 *
 * The backlog is the number of runnable tasks: in every active job (listed
 * under active/ and without a final state.json), the tasks of the job's
 * current stage that have no commit manifest yet. The current stage is the
 * first stage without a seal, the same stage that workers claim from.
 * Running tasks count as runnable, because a running task still needs a
 * worker slot.
 */
#ifndef DSP_BACKLOG_H
#define DSP_BACKLOG_H

#include <stddef.h>

#include "../core/err.h"
#include "../storage/store.h"

typedef struct {
    size_t active_jobs;    /* jobs in the active index without a final state */
    size_t runnable_tasks; /* uncommitted tasks of the active jobs' current stages */
} dsp_backlog;

/* Count the backlog of store s. Costs one listing of active/, and per
 * active job one read of spec, plan and state plus one head per sealed
 * stage and one listing of the current stage's commits. A job that
 * disappears while it is counted is skipped. */
dsp_status dsp_backlog_count(dsp_store *s, dsp_backlog *out, dsp_err *err);

#endif
