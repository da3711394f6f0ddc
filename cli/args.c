/*
 * Looking up parsed options, and the usage-error message.
 */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *fc_arg(const fc_args_t *a, const char *name)
{
    const char *v = NULL;
    for (int i = 0; i < a->nopts; i++)
        if (strcmp(a->opt_names[i], name) == 0)
            v = a->opt_values[i];
    return v;
}

int fc_flag(const fc_args_t *a, const char *name)
{
    return fc_arg(a, name) != NULL;
}

int fc_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("farutech: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see --help)\n", stderr);
    va_end(ap);
    return FC_EXIT_USAGE;
}
