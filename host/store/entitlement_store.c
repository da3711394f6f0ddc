/*
 * Entitlement inputs in one statement per instance (or per page of instances). Plan features
 * and overrides come back as JSON arrays and are read in place.
 */
#include "store/entitlement_store.h"

#include "core/mem.h"
#include "store/sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INPUTS_SQL                                                                                                            \
    "SELECT json_build_array(i.id, i.customer_id, i.product_code, i.status, i.entitlements_version,"                          \
    "  CASE WHEN s.cancel_at_period_end AND now() >= s.current_period_end THEN 'canceled' ELSE s.status END,"                 \
    "  p.plan, p.version,"                                                                                                     \
    "  coalesce((extract(epoch FROM s.trial_ends_at) * 1000000)::bigint, 0),"                                                  \
    "  CASE WHEN (s.pending_plan_code IS NOT NULL OR s.cancel_at_period_end) AND now() < s.current_period_end"               \
    "   THEN (extract(epoch FROM s.current_period_end) * 1000000)::bigint ELSE 0 END,"                                         \
    "  (extract(epoch FROM now()) * 1000000)::bigint,"                                                                         \
    "  coalesce((SELECT json_agg(json_build_array(pf.feature_code, pf.value)) FROM ft_plan_features pf"                       \
    "   WHERE pf.product_code = i.product_code AND pf.plan_code = p.plan AND pf.version = p.version), '[]'),"                  \
    "  coalesce((SELECT json_agg(json_build_array(o.feature_code, o.enabled, o.limit_value,"                                  \
    "   coalesce((extract(epoch FROM o.expires_at) * 1000000)::bigint, 0), o.reason)) FROM ft_feature_overrides o"            \
    "   WHERE o.subscription_id = s.id), '[]'))::text"                                                                        \
    " FROM ft_instances i JOIN ft_subscriptions s ON s.instance_id = i.id"                                                     \
    " CROSS JOIN LATERAL (SELECT CASE WHEN s.pending_plan_code IS NOT NULL AND now() >= s.current_period_end"               \
    "   THEN s.pending_plan_code ELSE s.plan_code END AS plan,"                                                                \
    "   CASE WHEN s.pending_plan_code IS NOT NULL AND now() >= s.current_period_end"                                          \
    "   THEN s.pending_plan_version ELSE s.plan_version END AS version) p"                                                     \
    " WHERE i.status <> 'deleted'"

static const char *s_at(json_t *a, size_t i)
{
    json_t *v = json_array_get(a, i);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int64_t i_at(json_t *a, size_t i)
{
    json_t *v = json_array_get(a, i);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : json_is_real(v) ? (int64_t)json_real_value(v) : 0;
}

static int parse_row(const char *text, ft_ent_row_t *row, ft_error_t *err)
{
    memset(row, 0, sizeof(*row));
    json_error_t jerr;
    json_t *a = json_loads(text, 0, &jerr);
    if (a == NULL || !json_is_array(a)) {
        json_decref(a);
        return ft_error_set(err, FT_EDB, "entitlement inputs do not parse: %s", jerr.text);
    }
    row->holder = a;
    ft_ent_input_t *in = &row->in;
    in->instance_id = s_at(a, 0);
    in->customer_id = s_at(a, 1);
    snprintf(row->product, sizeof(row->product), "%s", s_at(a, 2));
    in->instance_status = s_at(a, 3);
    in->version = (uint64_t)i_at(a, 4);
    in->subscription_status = s_at(a, 5);
    in->plan = s_at(a, 6);
    in->plan_version = (unsigned)i_at(a, 7);
    in->trial_ends_us = i_at(a, 8);
    in->change_due_us = i_at(a, 9);
    in->now_us = i_at(a, 10);
    json_t *items = json_array_get(a, 11), *ovs = json_array_get(a, 12);
    in->nplan_items = json_array_size(items);
    row->items = ft_mem_calloc(in->nplan_items, sizeof(*row->items));
    for (size_t i = 0; i < in->nplan_items; i++) {
        json_t *it = json_array_get(items, i);
        row->items[i].feature = s_at(it, 0);
        row->items[i].value = i_at(it, 1);
    }
    in->plan_items = row->items;
    in->noverrides = json_array_size(ovs);
    row->overrides = ft_mem_calloc(in->noverrides, sizeof(*row->overrides));
    for (size_t i = 0; i < in->noverrides; i++) {
        json_t *o = json_array_get(ovs, i);
        row->overrides[i].feature = s_at(o, 0);
        row->overrides[i].enabled = json_is_true(json_array_get(o, 1));
        row->overrides[i].has_limit = !json_is_null(json_array_get(o, 2));
        row->overrides[i].limit = i_at(o, 2);
        row->overrides[i].expires_us = i_at(o, 3);
        row->overrides[i].reason = s_at(o, 4);
    }
    in->overrides = row->overrides;
    return FT_OK;
}

void ft_ent_row_free(ft_ent_row_t *row)
{
    free(row->items);
    free(row->overrides);
    json_decref(row->holder);
    memset(row, 0, sizeof(*row));
}

int ft_ent_store_load(PGconn *c, const ft_call_t *call, const char *instance_id, ft_ent_row_t *row, ft_error_t *err)
{
    const char *params[] = {instance_id, call->customer_id, call->instance_id};
    PGresult *res = NULL;
    /* prepared: a cold read is this statement alone, and planning it cost about as much as running it */
    int rc = ft_sql_row_prepared(c, "reading entitlement inputs",
                                 INPUTS_SQL
                                 " AND i.id = $1 AND ($2::uuid IS NULL OR i.customer_id = $2) AND ($3::uuid IS NULL OR i.id = $3)",
                                 3, params, &res, err);
    if (rc != FT_OK)
        return rc;
    rc = parse_row(PQgetvalue(res, 0, 0), row, err);
    PQclear(res);
    return rc;
}

int ft_ent_store_load_page(PGconn *c, const char *after, int limit, ft_ent_row_t **rows, size_t *n, ft_error_t *err)
{
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *params[] = {after, lim};
    PGresult *res = NULL;
    *rows = NULL;
    *n = 0;
    int rc = ft_sql(c, "reading entitlement inputs",
                    INPUTS_SQL " AND ($1::uuid IS NULL OR i.id > $1) ORDER BY i.id LIMIT $2::int", 2, params, &res, err);
    if (rc != FT_OK)
        return rc;
    int nt = PQntuples(res);
    *rows = ft_mem_calloc((size_t)nt, sizeof(ft_ent_row_t));
    for (int i = 0; i < nt && rc == FT_OK; i++) {
        rc = parse_row(PQgetvalue(res, i, 0), &(*rows)[i], err);
        if (rc == FT_OK)
            (*n)++;
    }
    PQclear(res);
    return rc;
}
