/*
 * progress.c - progress bar, progress log lines and the end-of-run summary.
 *
 * The rate counts the planned input bytes of the first stage's committed
 * tasks, so it is input throughput, as in the summary. Later stages plan
 * the job's input bytes again, so the ETA uses the planned bytes of every
 * stage and assumes the rest runs at the average pace so far. Rates are
 * printed in binary units that fit their size
 * (B/s, KiB/s, MiB/s, ...), so a small job does not show 0.0 MB/s.
 */
#include "progress.h"

#include <string.h>

#include "../core/log.h"
#include "../core/util.h"

#define LOG_EVERY_MS 5000
#define BAR_WIDTH 30

void dsp_progress_init(dsp_progress *p, int tty)
{
    memset(p, 0, sizeof *p);
    p->tty = tty;
    p->start_mono = dsp_mono_ms();
    p->last_line_mono = p->start_mono;
}

static void format_eta(double seconds, char *buf, size_t size)
{
    if (seconds < 0 || seconds > 359999) {
        snprintf(buf, size, "--:--");
        return;
    }
    int s = (int)(seconds + 0.5);
    if (s >= 3600)
        snprintf(buf, size, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, size, "%d:%02d", s / 60, s % 60);
}

void dsp_progress_show(dsp_progress *p, const dsp_job *job, const dsp_stage_progress *stages)
{
    size_t tasks = 0, done = 0, running = 0, failed = 0;
    uint64_t bytes = 0, bytes_done = 0;
    int64_t now = dsp_mono_ms();
    double elapsed = (double)(now - p->start_mono) / 1000.0;

    for (size_t i = 0; i < job->plan->nstages; i++) {
        tasks += stages[i].tasks;
        done += stages[i].committed;
        running += stages[i].running;
        failed += stages[i].failed_attempts;
        bytes += stages[i].bytes;
        bytes_done += stages[i].bytes_committed;
    }
    uint64_t input_done = job->plan->nstages ? stages[0].bytes_committed : 0;
    double rate = elapsed > 0 ? (double)input_done / elapsed : 0;
    double eta = bytes_done > 0 ? elapsed * (double)(bytes - bytes_done) / (double)bytes_done : -1;
    char eta_text[16];
    format_eta(eta, eta_text, sizeof eta_text);

    if (p->tty) {
        char bar[BAR_WIDTH + 1];
        size_t fill = tasks ? done * BAR_WIDTH / tasks : 0;
        for (size_t i = 0; i < BAR_WIDTH; i++)
            bar[i] = i < fill ? '#' : '-';
        bar[BAR_WIDTH] = '\0';
        char rate_text[32];
        dsp_format_bytes(rate, rate_text, sizeof rate_text);
        fprintf(stderr, "\r[%s] %zu/%zu tasks  %zu running  %s/s  ETA %s%s ", bar, done, tasks,
                running, rate_text, eta_text, failed ? "  (retrying failures)" : "");
        fflush(stderr);
        p->bar_drawn = 1;
        return;
    }
    if (now - p->last_line_mono < LOG_EVERY_MS)
        return;
    p->last_line_mono = now;
    DSP_INFO("progress", "job=%s tasks_done=%zu tasks=%zu running=%zu failed_attempts=%zu "
             "mb_per_s=%.1f eta=%s",
             job->id, done, tasks, running, failed, rate / 1e6, eta_text);
}

void dsp_progress_end(dsp_progress *p)
{
    if (p->bar_drawn) {
        fputc('\n', stderr);
        p->bar_drawn = 0;
    }
}

static double number(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* Name of pipeline step i ("op" of the spec's step). */
static const char *step_name(const dsp_job *job, int i)
{
    const cJSON *step = cJSON_GetArrayItem(job->spec->steps, i);
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(step, "op");
    return cJSON_IsString(op) ? op->valuestring : "?";
}

void dsp_progress_summary(FILE *out, const dsp_job *job, const cJSON *status,
                          double plan_seconds, double run_seconds, size_t tasks_done_before)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(status, "counters");
    const cJSON *ops = cJSON_GetObjectItemCaseSensitive(c, "operators");
    double rin = number(c, "records_in"), rout = number(c, "records_out");
    double bin = number(c, "bytes_in"), bout = number(c, "bytes_out");
    char b1[32], b2[32];

    fprintf(out, "job %s: %s in %.1f s (plan %.1f s, run %.1f s)\n", job->id,
            cJSON_GetObjectItemCaseSensitive(status, "state")->valuestring,
            plan_seconds + run_seconds, plan_seconds, run_seconds);
    fprintf(out, "  documents  in %.0f  out %.0f  (%.1f%% kept)  rejected %.0f\n", rin, rout,
            rin > 0 ? 100.0 * rout / rin : 0.0, number(c, "records_rejected"));
    if (number(c, "records_utf8_repaired") > 0)
        fprintf(out, "  repaired   %.0f documents had invalid UTF-8, replaced with U+FFFD\n",
                number(c, "records_utf8_repaired"));
    fprintf(out, "  bytes      in %s  out %s (compressed)\n", dsp_format_bytes(bin, b1, sizeof b1),
            dsp_format_bytes(bout, b2, sizeof b2));
    if (tasks_done_before > 0) {
        fprintf(out, "  resumed    %zu of %zu tasks were done before this run, so no "
                     "throughput is shown\n",
                tasks_done_before, job->plan->total_tasks);
    } else if (run_seconds > 0) {
        char rate[32];
        fprintf(out, "  throughput %s/s, %.1f documents/s of input while running\n",
                dsp_format_bytes(bin / run_seconds, rate, sizeof rate), rin / run_seconds);
    }

    int i = 0;
    const cJSON *step;
    cJSON_ArrayForEach(step, ops) {
        const cJSON *removed = cJSON_GetObjectItemCaseSensitive(step, "removed");
        double in = number(step, "in"), kept = number(step, "out");
        fprintf(out, "  %-22s in %.0f  out %.0f  removed %.0f", step_name(job, i++), in, kept,
                in - kept);
        const cJSON *r;
        int first = 1;
        cJSON_ArrayForEach(r, removed) {
            if (!cJSON_IsNumber(r) || r->valuedouble == 0)
                continue;
            fprintf(out, "%s%s %.0f", first ? "  (" : ", ", r->string, r->valuedouble);
            first = 0;
        }
        fprintf(out, "%s", first ? "" : ")");
        /* Operator-specific counts, e.g. PII redactions per kind or the
         * totals of `stats`, in brackets after the removals. */
        const cJSON *extra = cJSON_GetObjectItemCaseSensitive(step, "extra");
        first = 1;
        cJSON_ArrayForEach(r, extra) {
            if (!cJSON_IsNumber(r) || r->valuedouble == 0)
                continue;
            fprintf(out, "%s%s %.0f", first ? "  [" : ", ", r->string, r->valuedouble);
            first = 0;
        }
        fprintf(out, "%s\n", first ? "" : "]");
    }
    fprintf(out, "  requests   %.0f store requests, %.0f retries\n", number(c, "requests"),
            number(c, "retries"));
}
