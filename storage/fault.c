/*
 * fault.c - parse fault-injection specs and decide the fate of each attempt.
 *
 * A spec is a list of rules (see fault.h). dsp_fault_pick() checks the rules
 * in order and returns the kind of the first one that fires, so a rule
 * listed earlier takes precedence. Draws come from a counter-based
 * generator (splitmix64 over seed + an atomic counter), so picking is
 * lock-free and safe from many threads. With seed=N and a single thread
 * the sequence of picks is reproducible. With several threads the
 * interleaving decides which attempt gets which draw.
 */
#include "fault.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/util.h"

#define FAULT_MAX_RULES 32
#define FAULT_KEY_MAX 128
#define FAULT_DEFAULT_DELAY_MS 1000

typedef struct {
    unsigned op_mask; /* bit i set: applies to dsp_fault_op i */
    dsp_fault_kind kind;
    double rate;
    char key[FAULT_KEY_MAX]; /* substring the request key must contain; "" = any */
    long delay_ms;           /* for DSP_FAULT_DELAY */
} fault_rule;

struct dsp_fault {
    fault_rule rules[FAULT_MAX_RULES];
    int nrules;
    uint64_t seed;
    _Atomic uint64_t draws;
    _Atomic unsigned long injected;
};

static const char *const op_names[DSP_FOP_COUNT] = {
    "get", "head", "put", "cput", "list", "delete", "copy", "mpu",
};

static const struct {
    const char *name;
    dsp_fault_kind kind;
} kind_names[] = {
    {"503", DSP_FAULT_503},         {"500", DSP_FAULT_500},
    {"reset", DSP_FAULT_RESET},     {"timeout", DSP_FAULT_TIMEOUT},
    {"truncate", DSP_FAULT_TRUNCATE}, {"cput500", DSP_FAULT_CPUT500},
    {"nocond", DSP_FAULT_NOCOND},   {"403", DSP_FAULT_403},
    {"delay", DSP_FAULT_DELAY},
};

const char *dsp_fault_kind_name(dsp_fault_kind k)
{
    for (size_t i = 0; i < sizeof kind_names / sizeof kind_names[0]; i++)
        if (kind_names[i].kind == k)
            return kind_names[i].name;
    return "none";
}

/* Parse "get+put" or "any" into a bit mask of dsp_fault_op. */
static int parse_ops(const char *value, unsigned *mask)
{
    char tmp[128];
    size_t len = strlen(value);

    if (len == 0 || len >= sizeof tmp)
        return -1;
    memcpy(tmp, value, len + 1);
    *mask = 0;
    for (char *save = NULL, *name = strtok_r(tmp, "+", &save); name;
         name = strtok_r(NULL, "+", &save)) {
        if (!strcmp(name, "any")) {
            *mask |= (1u << DSP_FOP_COUNT) - 1;
            continue;
        }
        int found = 0;
        for (int i = 0; i < DSP_FOP_COUNT; i++) {
            if (!strcmp(name, op_names[i])) {
                *mask |= 1u << i;
                found = 1;
            }
        }
        if (!found)
            return -1;
    }
    return *mask ? 0 : -1;
}

/* Parse one comma-separated rule and append it to f; a rule may hold only seed=N. */
static dsp_status parse_rule(dsp_fault *f, char *text, const char *whole, dsp_err *err)
{
    fault_rule rule = {.op_mask = (1u << DSP_FOP_COUNT) - 1, .kind = DSP_FAULT_NONE, .rate = -1,
                       .delay_ms = -1};
    int have_op = 0, have_seed = 0;

    for (char *save = NULL, *field = strtok_r(text, ",", &save); field;
         field = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(field, '=');
        if (!eq)
            return dsp_err_set(err, DSP_EINVAL,
                               "invalid fault rule '%s': field '%s' is not name=value", whole,
                               field);
        *eq = '\0';
        const char *name = field, *value = eq + 1;
        if (!strcmp(name, "op")) {
            if (parse_ops(value, &rule.op_mask) != 0)
                return dsp_err_set(err, DSP_EINVAL,
                                   "invalid fault rule '%s': unknown op '%s' (expected get, "
                                   "head, put, cput, list, delete, copy, mpu or any, joined "
                                   "with '+')",
                                   whole, value);
            have_op = 1;
        } else if (!strcmp(name, "error")) {
            size_t i;
            for (i = 0; i < sizeof kind_names / sizeof kind_names[0]; i++)
                if (!strcmp(value, kind_names[i].name))
                    break;
            if (i == sizeof kind_names / sizeof kind_names[0])
                return dsp_err_set(err, DSP_EINVAL,
                                   "invalid fault rule '%s': unknown error '%s' (expected 503, "
                                   "500, reset, timeout, truncate, cput500, nocond, 403 or "
                                   "delay)",
                                   whole, value);
            rule.kind = kind_names[i].kind;
        } else if (!strcmp(name, "rate")) {
            char *end;
            errno = 0;
            double r = strtod(value, &end);
            if (errno || end == value || *end || !(r >= 0.0 && r <= 1.0))
                return dsp_err_set(err, DSP_EINVAL,
                                   "invalid fault rule '%s': rate '%s' is not a number from 0 "
                                   "to 1",
                                   whole, value);
            rule.rate = r;
        } else if (!strcmp(name, "seed")) {
            char *end;
            errno = 0;
            unsigned long long seed = strtoull(value, &end, 10);
            if (errno || end == value || *end)
                return dsp_err_set(err, DSP_EINVAL,
                                   "invalid fault rule '%s': seed '%s' is not an unsigned "
                                   "integer",
                                   whole, value);
            f->seed = seed;
            have_seed = 1;
        } else if (!strcmp(name, "key")) {
            if (!*value || strlen(value) >= FAULT_KEY_MAX)
                return dsp_err_set(err, DSP_EINVAL,
                                   "invalid fault rule '%s': key must be 1 to %d characters",
                                   whole, FAULT_KEY_MAX - 1);
            snprintf(rule.key, sizeof rule.key, "%s", value);
        } else if (!strcmp(name, "delay_ms")) {
            char *end;
            errno = 0;
            long ms = strtol(value, &end, 10);
            if (errno || end == value || *end || ms < 0 || ms > 600000)
                return dsp_err_set(err, DSP_EINVAL,
                                   "invalid fault rule '%s': delay_ms '%s' is not a whole "
                                   "number from 0 to 600000",
                                   whole, value);
            rule.delay_ms = ms;
        } else {
            return dsp_err_set(err, DSP_EINVAL,
                               "invalid fault rule '%s': unknown field '%s' (expected op, "
                               "error, rate, seed, key or delay_ms)",
                               whole, name);
        }
    }

    if (have_seed && !have_op && rule.kind == DSP_FAULT_NONE && rule.rate < 0)
        return DSP_OK;
    if (rule.kind == DSP_FAULT_NONE)
        return dsp_err_set(err, DSP_EINVAL, "invalid fault rule '%s': missing error=", whole);
    if (rule.rate < 0)
        return dsp_err_set(err, DSP_EINVAL, "invalid fault rule '%s': missing rate=", whole);
    if ((rule.kind == DSP_FAULT_CPUT500 || rule.kind == DSP_FAULT_NOCOND) &&
        !(rule.op_mask & (1u << DSP_FOP_CPUT)))
        return dsp_err_set(err, DSP_EINVAL,
                           "invalid fault rule '%s': error=%s applies only to op=cput", whole,
                           dsp_fault_kind_name(rule.kind));
    if (rule.delay_ms >= 0 && rule.kind != DSP_FAULT_DELAY)
        return dsp_err_set(err, DSP_EINVAL,
                           "invalid fault rule '%s': delay_ms applies only to error=delay", whole);
    if (rule.delay_ms < 0)
        rule.delay_ms = FAULT_DEFAULT_DELAY_MS;
    if (f->nrules == FAULT_MAX_RULES)
        return dsp_err_set(err, DSP_EINVAL, "invalid fault spec: more than %d rules",
                           FAULT_MAX_RULES);
    f->rules[f->nrules++] = rule;
    return DSP_OK;
}

dsp_status dsp_fault_parse(const char *spec, dsp_fault **out, dsp_err *err)
{
    dsp_fault *f = dsp_xcalloc(1, sizeof *f);
    char *copy = dsp_xstrdup(spec);
    dsp_status rc = DSP_OK;

    *out = NULL;
    f->seed = dsp_rand64();
    for (char *save = NULL, *rule = strtok_r(copy, ";", &save); rule;
         rule = strtok_r(NULL, ";", &save)) {
        while (*rule == ' ')
            rule++;
        if (!*rule)
            continue;
        char whole[256];
        snprintf(whole, sizeof whole, "%s", rule);
        rc = parse_rule(f, rule, whole, err);
        if (rc != DSP_OK)
            goto out;
    }
    if (f->nrules == 0) {
        rc = dsp_err_set(err, DSP_EINVAL,
                         "invalid fault spec '%s': no rules (expected e.g. "
                         "op=any,error=503,rate=0.2)",
                         spec);
        goto out;
    }
    *out = f;
    f = NULL;
out:
    free(copy);
    free(f);
    return rc;
}

void dsp_fault_free(dsp_fault *f)
{
    free(f);
}

/* splitmix64: a full-period mixer, so seed + counter gives independent draws. */
static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

dsp_fault_kind dsp_fault_pick(dsp_fault *f, dsp_fault_op op)
{
    return dsp_fault_pick_key(f, op, NULL);
}

dsp_fault_kind dsp_fault_pick_key(dsp_fault *f, dsp_fault_op op, const char *key)
{
    if (!f)
        return DSP_FAULT_NONE;
    for (int i = 0; i < f->nrules; i++) {
        const fault_rule *r = &f->rules[i];
        if (!(r->op_mask & (1u << op)))
            continue;
        if (r->key[0] && (!key || !strstr(key, r->key)))
            continue;
        if ((r->kind == DSP_FAULT_CPUT500 || r->kind == DSP_FAULT_NOCOND) && op != DSP_FOP_CPUT)
            continue;
        uint64_t n = atomic_fetch_add(&f->draws, 1);
        /* 53 random bits give a uniform double in [0, 1). */
        double u = (double)(splitmix64(f->seed + n) >> 11) * 0x1.0p-53;
        if (u < r->rate) {
            atomic_fetch_add(&f->injected, 1);
            if (r->kind != DSP_FAULT_DELAY)
                return r->kind;
            dsp_sleep_ms(r->delay_ms);
        }
    }
    return DSP_FAULT_NONE;
}

unsigned long dsp_fault_count(const dsp_fault *f)
{
    return f ? atomic_load(&((dsp_fault *)f)->injected) : 0;
}
