/*
 * Customers: the legal, paying entities. JSON in and out (jansson), SQL only here.
 */
#ifndef FT_CUSTOMER_STORE_H
#define FT_CUSTOMER_STORE_H

#include <jansson.h>
#include <libpq-fe.h>

#include "core/error.h"
#include "core/problem.h"
#include "store/scope.h"

/* Each returns FT_OK with *out (caller frees with json_decref), a negative code with `problem`
 * filled for what the caller caused (404, 409), or with err filled for internal failures. */
int ft_customer_create(PGconn *c, const ft_call_t *call, json_t *in, json_t **out, ft_problem_t *problem, ft_error_t *err);
int ft_customer_get(PGconn *c, const ft_call_t *call, const char *id, json_t **out, ft_problem_t *problem, ft_error_t *err);
int ft_customer_update(PGconn *c, const ft_call_t *call, const char *id, json_t *in, json_t **out, ft_problem_t *problem,
                       ft_error_t *err);
int ft_customer_delete(PGconn *c, const ft_call_t *call, const char *id, ft_problem_t *problem, ft_error_t *err);

typedef struct ft_customer_filter {
    const char *status, *country, *q, *tax_id;
    const char *cursor; /* opaque, from a previous page's next_cursor */
    int limit;
} ft_customer_filter_t;

/* {"items":[...], "next_cursor": "..." | null} */
int ft_customer_list(PGconn *c, const ft_call_t *call, const ft_customer_filter_t *f, json_t **out, ft_problem_t *problem,
                     ft_error_t *err);

/* Keyset cursors over (created_at, id): "<microseconds since epoch>.<uuid>". Splits one into
 * micros and id; a cursor this API did not issue fills problem (400) and returns FT_EINVAL. */
int ft_cursor_parse(const char *cursor, char *micros, size_t mlen, char *id, size_t idlen, ft_problem_t *problem);

#endif
