/*
 * Filling and clearing ft_problem_t.
 */
#include "core/problem.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int ft_problem(ft_problem_t *p, int code, int status, const char *slug, const char *title, json_t *ext, const char *fmt, ...)
{
    ft_problem_clear(p);
    p->status = status;
    snprintf(p->slug, sizeof(p->slug), "%s", slug);
    snprintf(p->title, sizeof(p->title), "%s", title);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->detail, sizeof(p->detail), fmt, ap);
    va_end(ap);
    p->ext = ext;
    return code;
}

void ft_problem_clear(ft_problem_t *p)
{
    json_decref(p->ext);
    memset(p, 0, sizeof(*p));
}
