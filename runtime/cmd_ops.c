/* cmd_ops.c - placeholder until this command group is written. */
#include <stdio.h>
#include "cli.h"
int dsp_cmd_ops(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "dspark: ops is not built yet\n");
    return 2;
}
