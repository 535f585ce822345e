/* cmd_store.c - placeholder until this command group is written. */
#include <stdio.h>
#include "cli.h"
int dsp_cmd_ls(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "dspark: ls is not built yet\n");
    return 2;
}
int dsp_cmd_cat(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "dspark: cat is not built yet\n");
    return 2;
}
int dsp_cmd_cp(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "dspark: cp is not built yet\n");
    return 2;
}
int dsp_cmd_rm(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "dspark: rm is not built yet\n");
    return 2;
}
int dsp_cmd_doctor(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "dspark: doctor is not built yet\n");
    return 2;
}
