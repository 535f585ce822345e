/* cmd_job.c - placeholder until this command group is written. */
#include <stdio.h>
#include "cli.h"
int dsp_cmd_run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "dspark: run is not built yet\n");
    return 2;
}
int dsp_cmd_submit(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "dspark: submit is not built yet\n");
    return 2;
}
int dsp_cmd_worker(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "dspark: worker is not built yet\n");
    return 2;
}
int dsp_cmd_status(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "dspark: status is not built yet\n");
    return 2;
}
int dsp_cmd_wait(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "dspark: wait is not built yet\n");
    return 2;
}
int dsp_cmd_cancel(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "dspark: cancel is not built yet\n");
    return 2;
}
int dsp_cmd_gc(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "dspark: gc is not built yet\n");
    return 2;
}
