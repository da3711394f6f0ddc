/*
 * Audit rows: written by the op runner in the change's transaction (or alone, for refusals and
 * sign-in events), listed newest first.
 */
#include "store/audit_store.h"

#include "store/sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ft_audit_write(PGconn *c, const ft_audit_entry_t *e, ft_error_t *err)
{
    char *details = e->details != NULL ? json_dumps(e->details, JSON_COMPACT) : NULL;
    const char *params[] = {e->actor,       e->action,      e->entity_type, e->entity_id,  e->customer_id, e->instance_id,
                            e->result,      e->reason,      e->request_id,  e->client_ip,  details};
    /* the tenant of an instance-level change is its instance's customer */
    int rc = ft_sql(c, "writing an audit row",
                    "WITH x AS (SELECT coalesce($6::uuid, CASE WHEN $3 = 'dlq' THEN (SELECT d.instance_id FROM ft_dlq d"
                    "  WHERE d.id::text = $4) END) AS iid)"
                    " INSERT INTO ft_audit (actor, action, entity_type, entity_id, customer_id, instance_id, result, reason, request_id,"
                    " client_ip, details)"
                    " SELECT $1, $2, $3, $4, coalesce($5::uuid, (SELECT customer_id FROM ft_instances WHERE id = x.iid)), x.iid,"
                    " $7, left($8, 1000), $9, $10, $11::jsonb FROM x",
                    11, params, NULL, err);
    free(details);
    return rc;
}

#define AUDIT_JSON                                                                                                             \
    "json_build_object('id', a.id::text, 'at', a.at, 'actor', a.actor, 'action', a.action, 'entity_type', a.entity_type,"    \
    " 'entity_id', a.entity_id, 'customer_id', a.customer_id, 'instance_id', a.instance_id, 'result', a.result,"             \
    " 'reason', a.reason, 'request_id', a.request_id, 'client_ip', a.client_ip, 'details', a.details)::text"

int ft_audit_list(PGconn *c, const ft_call_t *call, const ft_audit_filter_t *f, json_t **out, ft_problem_t *problem, ft_error_t *err)
{
    char lim[16];
    if (f->cursor != NULL) {
        char *end = NULL;
        long long v = strtoll(f->cursor, &end, 10);
        if (end == f->cursor || *end != '\0' || v <= 0)
            return ft_problem(problem, FT_EINVAL, 400, "invalid-parameter", "Invalid parameter",
                              json_pack("{s:[{s:s, s:s}]}", "errors", "parameter", "cursor", "detail", "is not a cursor this API issued"),
                              "Query parameter cursor is not a cursor this API issued.");
    }
    snprintf(lim, sizeof(lim), "%d", f->limit + 1);
    const char *params[] = {call->customer_id, call->instance_id, f->customer_id, f->instance_id, f->actor, f->action,
                            f->entity_type,    f->entity_id,      f->result,      f->since,       f->until, f->cursor, lim};
    PGresult *res = NULL;
    int rc = ft_sql(c, "listing audit rows",
                    "SELECT " AUDIT_JSON ", a.id::text FROM ft_audit a"
                    " WHERE ($1::uuid IS NULL OR a.customer_id = $1) AND ($2::uuid IS NULL OR a.instance_id = $2)"
                    " AND ($3::uuid IS NULL OR a.customer_id = $3) AND ($4::uuid IS NULL OR a.instance_id = $4)"
                    " AND ($5::text IS NULL OR a.actor = $5) AND ($6::text IS NULL OR a.action = $6 OR a.action LIKE $6 || '.%')"
                    " AND ($7::text IS NULL OR a.entity_type = $7) AND ($8::text IS NULL OR a.entity_id = $8)"
                    " AND ($9::text IS NULL OR a.result = $9)"
                    " AND ($10::timestamptz IS NULL OR a.at >= $10) AND ($11::timestamptz IS NULL OR a.at < $11)"
                    " AND ($12::bigint IS NULL OR a.id < $12)"
                    " ORDER BY a.id DESC LIMIT $13::int",
                    13, params, &res, err);
    if (rc != FT_OK)
        return rc;
    *out = ft_sql_page(res, f->limit);
    return FT_OK;
}
