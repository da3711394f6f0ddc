/*
 * A user-caused failure as the domain and the stores describe it, before HTTP turns it into
 * RFC 9457 problem+json: the status to answer, a stable type slug, a title, a detail naming
 * what was wrong, and optional extension members.
 */
#ifndef FT_PROBLEM_H
#define FT_PROBLEM_H

#include <jansson.h>

typedef struct ft_problem {
    int status; /* 0: none */
    char slug[48];
    char title[64];
    char detail[512];
    json_t *ext; /* owned; may be NULL */
} ft_problem_t;

/* Fills p and returns `code` (a negative FT_E* status), for `return ft_problem(...)`. ext is stolen. */
int ft_problem(ft_problem_t *p, int code, int status, const char *slug, const char *title, json_t *ext, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
void ft_problem_clear(ft_problem_t *p);

#endif
