/*
 * What entitlement resolution reads: the instance, its subscription with the plan in force,
 * that plan version's features and the subscription's overrides, as of the database's now().
 */
#ifndef FT_ENTITLEMENT_STORE_H
#define FT_ENTITLEMENT_STORE_H

#include <jansson.h>
#include <libpq-fe.h>

#include "core/error.h"
#include "domain/entitlements.h"
#include "store/scope.h"

/* One instance's inputs; the strings point into *holder (free with ft_ent_inputs_free). */
typedef struct ft_ent_row {
    ft_ent_input_t in;
    char product[64];
    ft_ent_plan_item_t *items;
    ft_ent_override_t *overrides;
    json_t *holder;
} ft_ent_row_t;

/* FT_ENOTFOUND when the instance does not exist for this caller (or has no subscription). */
int ft_ent_store_load(PGconn *c, const ft_call_t *call, const char *instance_id, ft_ent_row_t *row, ft_error_t *err);

/* Up to `limit` instances with id > after (NULL: from the start), in id order; *n rows. */
int ft_ent_store_load_page(PGconn *c, const char *after, int limit, ft_ent_row_t **rows, size_t *n, ft_error_t *err);

void ft_ent_row_free(ft_ent_row_t *row);

#endif
