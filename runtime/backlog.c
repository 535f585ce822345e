/*
 * backlog.c - count the runnable tasks of a job store (see backlog.h).
 *
 * The count is a snapshot taken without locks: a task that commits while
 * it is counted may or may not be included, which is fine for a scaling
 * signal sampled once a minute. Every read goes through protocol.h, so the
 * count sees the same objects that workers act on.
 */
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "../core/util.h"
#include "backlog.h"
#include "job.h"
#include "protocol.h"

/* Uncommitted tasks of the first unsealed stage of job; 0 when every
 * stage is sealed. */
static dsp_status backlog_job(dsp_store *s, const dsp_job *job, size_t *runnable, dsp_err *err)
{
    dsp_status st = DSP_OK;

    *runnable = 0;
    for (size_t i = 0; i < job->plan->nstages; i++) {
        const dsp_plan_stage *stage = &job->plan->stages[i];
        char *seal_key = dsp_proto_seal_key(job->id, stage->id);
        dsp_obj_info info;

        dsp_proto_count(1);
        st = dsp_store_head(s, seal_key, &info, err);
        free(seal_key);
        if (st == DSP_OK)
            continue;
        if (st != DSP_ENOTFOUND)
            return st;

        char *name = dsp_xasprintf("commits/%s/", stage->id);
        char *commits = dsp_proto_job_key(job->id, name);
        free(name);
        dsp_list_page page;
        st = dsp_proto_list(s, commits, &page, err);
        free(commits);
        if (st != DSP_OK)
            return st;

        size_t committed = 0;
        for (size_t k = 0; k < page.n; k++) {
            size_t len = strlen(page.items[k].key);
            if (len > 5 && !strcmp(page.items[k].key + len - 5, ".json"))
                committed++;
        }
        dsp_list_page_free(&page);
        *runnable = committed < stage->ntasks ? stage->ntasks - committed : 0;
        return DSP_OK;
    }
    return DSP_OK;
}

dsp_status dsp_backlog_count(dsp_store *s, dsp_backlog *out, dsp_err *err)
{
    dsp_list_page page;
    dsp_status st;

    memset(out, 0, sizeof *out);
    st = dsp_proto_list(s, "active/", &page, err);
    if (st != DSP_OK) {
        dsp_err_prefix(err, "listing active jobs: ");
        return st;
    }

    for (size_t k = 0; k < page.n; k++) {
        const char *id = page.items[k].key + strlen("active/");
        dsp_job_state state;
        dsp_job *job = NULL;
        size_t runnable = 0;

        st = dsp_job_read_state(s, id, &state, NULL, err);
        if (st == DSP_OK && state != DSP_JOB_RUNNING)
            continue;
        if (st == DSP_OK)
            st = dsp_job_load(s, id, &job, err);
        if (st == DSP_OK)
            st = backlog_job(s, job, &runnable, err);
        dsp_job_free(job);

        if (st == DSP_ENOTFOUND) {
            /* Deleted by gc or cancel between the listing and the reads. */
            DSP_DEBUG("backlog_skip", "job=%s reason=not_found", id);
            st = DSP_OK;
            continue;
        }
        if (st != DSP_OK) {
            dsp_err_prefix(err, "counting the backlog of job %s: ", id);
            break;
        }
        out->active_jobs++;
        out->runnable_tasks += runnable;
    }
    dsp_list_page_free(&page);
    return st;
}
