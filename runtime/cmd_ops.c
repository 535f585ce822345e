/*
 * cmd_ops.c - `dspark ops [--json] [NAME]`: print the operator registry, so
 * the options, defaults, units and removal reasons a user sees come from
 * the same tables the operators validate against.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tasks/op.h"
#include "cli.h"

static const char *ops_type_name(dsp_opt_type t)
{
    switch (t) {
    case DSP_OPT_BOOL: return "bool";
    case DSP_OPT_INT: return "int";
    case DSP_OPT_FLOAT: return "float";
    case DSP_OPT_STRING: return "string";
    case DSP_OPT_LIST: return "list";
    }
    return "?";
}

static void ops_print_names(const char *label, const char *const *names)
{
    printf("  %s:", label);
    if (!names || !names[0]) {
        printf(" none\n");
        return;
    }
    for (size_t i = 0; names[i]; i++)
        printf("%s %s", i ? "," : "", names[i]);
    printf("\n");
}

static void ops_print_text(const dsp_op_def *def, int verbose)
{
    printf("%s%s - %s\n", def->name, def->wide ? " (wide: starts a shuffle stage)" : "",
           def->summary);
    if (!verbose)
        return;
    printf("  options:\n");
    if (!def->options || !def->options[0].name)
        printf("    none\n");
    for (const dsp_op_option *o = def->options; o && o->name; o++) {
        printf("    %-26s %-6s default %-10s %s", o->name, ops_type_name(o->type),
               o->default_json ? o->default_json : "(none)", o->help);
        if (o->type == DSP_OPT_INT)
            printf(" (%.0f to %.0f)", o->min, o->max);
        printf("\n");
    }
    ops_print_names("removal reasons", def->reasons);
    if (def->extra_names)
        ops_print_names("extra counters", def->extra_names);
}

static cJSON *ops_names_json(const char *const *names)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; names && names[i]; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(names[i]));
    return a;
}

static cJSON *ops_def_json(const dsp_op_def *def)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", def->name);
    cJSON_AddStringToObject(o, "summary", def->summary);
    cJSON_AddBoolToObject(o, "wide", def->wide);
    cJSON *opts = cJSON_AddArrayToObject(o, "options");
    for (const dsp_op_option *op = def->options; op && op->name; op++) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "name", op->name);
        cJSON_AddStringToObject(j, "type", ops_type_name(op->type));
        cJSON *dflt = op->default_json ? cJSON_Parse(op->default_json) : NULL;
        cJSON_AddItemToObject(j, "default", dflt ? dflt : cJSON_CreateNull());
        cJSON_AddStringToObject(j, "help", op->help);
        if (op->type == DSP_OPT_INT) {
            cJSON_AddNumberToObject(j, "min", op->min);
            cJSON_AddNumberToObject(j, "max", op->max);
        }
        cJSON_AddItemToArray(opts, j);
    }
    cJSON_AddItemToObject(o, "reasons", ops_names_json(def->reasons));
    cJSON_AddItemToObject(o, "extra_counters", ops_names_json(def->extra_names));
    return o;
}

static void ops_usage(FILE *f)
{
    fprintf(f, "usage: dspark ops [--json] [NAME]\n\n"
               "List the operators a job's steps can use. With NAME, show that operator's\n"
               "options (type, default, what each sets and its unit), removal reasons and\n"
               "counters.\n\n"
               "  --json   print JSON instead of text\n"
               "  -h, --help\n");
}

int dsp_cmd_ops(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int json = 0, c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = 1;
            break;
        case 'h':
            ops_usage(stdout);
            return DSP_EXIT_OK;
        default:
            ops_usage(stderr);
            return DSP_EXIT_USAGE;
        }
    }
    if (argc - optind > 1) {
        ops_usage(stderr);
        return DSP_EXIT_USAGE;
    }

    const dsp_op_def *const *all = dsp_op_all();
    const dsp_op_def *one = NULL;
    if (optind < argc) {
        one = dsp_op_find(argv[optind]);
        if (!one) {
            fprintf(stderr, "dspark ops: unknown operator '%s'; run 'dspark ops' for the list\n",
                    argv[optind]);
            return DSP_EXIT_NOTFOUND;
        }
    }

    if (json) {
        cJSON *out;
        if (one) {
            out = ops_def_json(one);
        } else {
            out = cJSON_CreateArray();
            for (size_t i = 0; all[i]; i++)
                cJSON_AddItemToArray(out, ops_def_json(all[i]));
        }
        char *text = cJSON_Print(out);
        printf("%s\n", text);
        free(text);
        cJSON_Delete(out);
        return DSP_EXIT_OK;
    }

    if (one) {
        ops_print_text(one, 1);
        return DSP_EXIT_OK;
    }
    for (size_t i = 0; all[i]; i++) {
        ops_print_text(all[i], 1);
        printf("\n");
    }
    printf("A step is {\"op\": NAME, OPTION: VALUE, ...}; options left out take the default.\n");
    return DSP_EXIT_OK;
}
