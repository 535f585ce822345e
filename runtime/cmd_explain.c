/* cmd_explain.c - placeholder until this command group is written. */
#include <stdio.h>
#include "cli.h"
int dsp_cmd_explain(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "dspark: explain is not built yet\n");
    return 2;
}
