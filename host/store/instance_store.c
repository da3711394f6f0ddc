/*
 * Instance persistence. INSTANCE_JSON is the one definition of an instance's representation,
 * with its subscription embedded.
 */
#include "store/instance_store.h"

#include "store/customer_store.h"
#include "store/outbox_store.h"
#include "store/representations.h"
#include "store/sql.h"
#include "store/tenant_database_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Ready (serving), Progressing (work under way) and Degraded (the last job failed), each with a
 * reason and a message, as an operator reads them. */
#define CONDITIONS_JSON                                                                                                       \
    "json_build_array("                                                                                                       \
    " json_build_object('type', 'Ready', 'status', i.status = 'active',"                                                      \
    "  'reason', CASE i.status WHEN 'active' THEN 'Provisioned' WHEN 'pending' THEN 'WaitingForProvisioning'"                 \
    "   WHEN 'provisioning' THEN 'Provisioning' WHEN 'failed' THEN 'Failed' WHEN 'suspended' THEN 'Suspended'"                  \
    "   WHEN 'deprovisioning' THEN 'Deprovisioning' ELSE 'Deleted' END,"                                                        \
    "  'message', coalesce(i.status_reason, 'instance is ' || i.status)),"                                                     \
    " (SELECT json_build_object('type', 'Progressing', 'status', j.id IS NOT NULL,"                                            \
    "  'reason', CASE WHEN j.id IS NULL THEN 'Idle' ELSE initcap(j.kind) || CASE j.status WHEN 'running' THEN 'Running'"       \
    "   ELSE 'Queued' END END,"                                                                                                \
    "  'message', CASE WHEN j.id IS NULL THEN 'no job is queued or running' ELSE j.kind || ' job ' || j.id || ', attempt '"   \
    "   || j.attempts || ' of ' || j.max_attempts || ', step ' || (SELECT count(*) FROM ft_job_steps s WHERE s.job_id = j.id" \
    "   AND s.status = 'succeeded') || ' of ' || (SELECT count(*) FROM ft_job_steps s WHERE s.job_id = j.id) ||"               \
    "   coalesce(', last error: ' || j.last_error, '') END)"                                                                  \
    "  FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT * FROM ft_jobs WHERE instance_id = i.id AND status IN ('queued',"          \
    "   'running') ORDER BY created_at LIMIT 1) j ON true),"                                                                     \
    " (SELECT json_build_object('type', 'Degraded', 'status', coalesce(j.status = 'failed', false),"                           \
    "  'reason', CASE WHEN j.status = 'failed' THEN 'JobFailed' ELSE 'AsExpected' END,"                                        \
    "  'message', CASE WHEN j.status = 'failed' THEN j.kind || ' job ' || j.id || ' failed: ' || coalesce(j.last_error, '?')" \
    "   ELSE 'the last finished job succeeded' END)"                                                                           \
    "  FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT * FROM ft_jobs WHERE instance_id = i.id AND status IN ('succeeded',"       \
    "   'failed') ORDER BY finished_at DESC NULLS LAST LIMIT 1) j ON true))"

#define INSTANCE_JSON                                                                                                         \
    "json_build_object('id', i.id, 'customer_id', i.customer_id, 'code', i.code, 'product', i.product_code,"                 \
    " 'tier', i.tier, 'environment', i.environment, 'settings', i.settings, 'status', i.status,"                            \
    " 'status_reason', i.status_reason, 'data_location', i.data_location,"                                                   \
    " 'placement', (SELECT json_build_object('database_id', d.id, 'database_name', d.name) FROM ft_tenant_databases d"         \
    "   WHERE d.id = i.tenant_database_id),"                                                                                   \
    " 'entitlements_version', i.entitlements_version, 'created_at', i.created_at, 'updated_at', i.updated_at,"               \
    " 'subscription', (SELECT " FT_SUBSCRIPTION_JSON " FROM ft_subscriptions s WHERE s.instance_id = i.id),"                    \
    " 'latest_job', (SELECT json_build_object('id', j.id, 'kind', j.kind, 'status', j.status) FROM ft_jobs j"               \
    "   WHERE j.instance_id = i.id ORDER BY j.created_at DESC LIMIT 1),"                                                     \
    " 'conditions', " CONDITIONS_JSON ")::text"

int ft_instance_not_found(ft_problem_t *p, const char *id)
{
    return ft_problem(p, FT_ENOTFOUND, 404, "instance-not-found", "Instance not found", json_pack("{s:s}", "instance_id", id),
                      "No instance %s.", id);
}

int ft_instance_gone(ft_problem_t *p, const char *id, const char *deleted_at)
{
    return ft_problem(p, FT_ENOTFOUND, 410, "instance-deleted", "Instance deleted",
                      json_pack("{s:s, s:s}", "instance_id", id, "deleted_at", deleted_at),
                      "Instance %s was deleted at %s: its subscription, entitlements and actions are gone."
                      " GET /api/v1/instances/%s still shows its record and /api/v1/instances/%s/jobs its history.",
                      id, deleted_at, id, id);
}

int ft_instance_missing(PGconn *c, const ft_call_t *call, const char *id, ft_problem_t *p, ft_error_t *err)
{
    const char *params[] = {id, call->customer_id, call->instance_id};
    PGresult *res = NULL;
    int rc = ft_sql_row(c, "reading a deleted instance",
                        "SELECT to_json(coalesce(deleted_at, updated_at)) #>> '{}' FROM ft_instances WHERE id = $1"
                        " AND status = 'deleted' AND ($2::uuid IS NULL OR customer_id = $2) AND ($3::uuid IS NULL OR id = $3)",
                        3, params, &res, err);
    if (rc == FT_ENOTFOUND)
        return ft_instance_not_found(p, id);
    if (rc != FT_OK)
        return rc;
    rc = ft_instance_gone(p, id, PQgetvalue(res, 0, 0));
    PQclear(res);
    return rc;
}

static int load(PGconn *c, const char *id, json_t **out, ft_error_t *err)
{
    const char *params[] = {id};
    PGresult *res = NULL;
    int rc = ft_sql_row(c, "reading an instance", "SELECT " INSTANCE_JSON " FROM ft_instances i WHERE i.id = $1", 1, params, &res,
                        err);
    if (rc != FT_OK)
        return rc;
    return ft_sql_take_json(res, "instance", out, err);
}

int ft_instance_create(PGconn *c, const ft_call_t *call, const ft_instance_spec_t *spec, json_t **out, ft_problem_t *problem,
                       ft_error_t *err)
{
    PGresult *res = NULL;
    char instance_id[37] = "", job_id[37];
    *out = NULL;
    int rc = ft_sql_begin(c, err);
    if (rc != FT_OK)
        return rc;

    /* the customer, locked against deletion while its instance is added */
    const char *cp[] = {spec->customer_id, call->customer_id};
    rc = ft_sql_row(c, "reading the customer",
                    "SELECT status FROM ft_customers WHERE id = $1 AND ($2::uuid IS NULL OR id = $2) FOR SHARE", 2, cp, &res, err);
    if (rc == FT_ENOTFOUND) {
        ft_sql_rollback(c);
        return ft_problem(problem, FT_ENOTFOUND, 404, "customer-not-found", "Customer not found",
                          json_pack("{s:s}", "customer_id", spec->customer_id), "No customer %s.", spec->customer_id);
    }
    if (rc != FT_OK)
        goto fail;
    if (strcmp(PQgetvalue(res, 0, 0), "active") != 0) {
        ft_problem(problem, FT_ESTATE, 409, "customer-not-active", "Customer not active",
                   json_pack("{s:s}", "customer_status", PQgetvalue(res, 0, 0)), "Customer %s is %s; new instances need an active customer.",
                   spec->customer_id, PQgetvalue(res, 0, 0));
        PQclear(res);
        ft_sql_rollback(c);
        return FT_ESTATE;
    }
    PQclear(res);

    char *settings = spec->settings != NULL ? json_dumps(spec->settings, JSON_COMPACT) : strdup("{}");
    const char *ip[] = {spec->customer_id, spec->code, spec->product, spec->tier, spec->environment, settings};
    rc = ft_sql_row(c, "inserting an instance",
                    "INSERT INTO ft_instances (customer_id, code, product_code, tier, environment, settings)"
                    " VALUES ($1, $2, $3, $4, $5, $6::jsonb) RETURNING id",
                    6, ip, &res, err);
    free(settings);
    if (rc == FT_ECONFLICT) {
        ft_sql_rollback(c);
        return ft_problem(problem, FT_ECONFLICT, 409, "instance-code-taken", "Instance code already used",
                          json_pack("{s:[{s:s, s:s}]}", "errors", "pointer", "#/code", "detail", "already used by this customer"),
                          "Customer %s already has an instance with code %s.", spec->customer_id, spec->code);
    }
    if (rc != FT_OK)
        goto fail;
    snprintf(instance_id, sizeof(instance_id), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);

    char version[16];
    snprintf(version, sizeof(version), "%u", spec->plan_version);
    const char *sp[] = {spec->customer_id, instance_id, spec->product, spec->plan, version, spec->trial_ends_at};
    rc = ft_sql_row(c, "inserting the subscription",
                    "INSERT INTO ft_subscriptions (customer_id, instance_id, product_code, plan_code, plan_version, status,"
                    " trial_ends_at) VALUES ($1, $2, $3, $4, $5, CASE WHEN $6::timestamptz IS NULL THEN 'active' ELSE"
                    " 'trialing' END, $6::timestamptz) RETURNING id",
                    6, sp, &res, err);
    if (rc != FT_OK)
        goto fail;
    char subscription_id[37];
    snprintf(subscription_id, sizeof(subscription_id), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);

    for (size_t i = 0; i < spec->noverrides && rc == FT_OK; i++) {
        const ft_override_spec_t *o = &spec->overrides[i];
        char limit[32];
        snprintf(limit, sizeof(limit), "%lld", o->limit);
        const char *op[] = {subscription_id, spec->product, o->feature, o->enabled ? "t" : "f", o->has_limit ? limit : NULL,
                            o->expires_at, o->reason, call->actor};
        rc = ft_sql(c, "inserting an override",
                    "INSERT INTO ft_feature_overrides (subscription_id, product_code, feature_code, enabled, limit_value,"
                    " expires_at, reason, set_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    8, op, NULL, err);
    }
    if (rc != FT_OK)
        goto fail;

    ft_job_spec_t job = {.instance_id = instance_id,
                         .customer_id = spec->customer_id,
                         .product = spec->product,
                         .kind = &ft_job_kinds[FT_JOB_PROVISION],
                         .steps = spec->steps,
                         .nsteps = spec->nsteps,
                         .correlation_id = call->correlation_id,
                         .traceparent = call->traceparent};
    if ((rc = ft_job_enqueue(c, &job, job_id, err)) != FT_OK)
        goto fail;
    if ((rc = load(c, instance_id, out, err)) != FT_OK)
        goto fail;
    /* a Standard instance's rows go to one of the pooled databases (an Enterprise one has its own):
     * placed last, as the placement locks every open pooled database until the commit */
    json_t *placement = NULL;
    if (strcmp(spec->tier, "standard") == 0) {
        if ((rc = ft_tenant_database_place(c, instance_id, spec->placement, &placement, problem, err)) != FT_OK)
            goto fail;
        json_object_set_new(*out, "placement", placement);
    }
    ft_event_meta_t meta = {.tenant_id = instance_id, .correlation_id = call->correlation_id, .traceparent = call->traceparent};
    rc = ft_outbox_emit(c, "instance", instance_id, "instance.created.v1", &meta,
                        json_pack("{s:O, s:s}", "instance", *out, "actor", call->actor), err);
    if (rc == FT_OK)
        rc = ft_sql_commit(c, err);
    if (rc == FT_OK)
        return FT_OK;
fail:
    ft_sql_rollback(c);
    json_decref(*out);
    *out = NULL;
    return rc;
}

int ft_instance_get(PGconn *c, const ft_call_t *call, const char *id, json_t **out, ft_problem_t *problem, ft_error_t *err)
{
    const char *params[] = {id, call->customer_id, call->instance_id};
    PGresult *res = NULL;
    int rc = ft_sql_row(c, "reading an instance",
                        "SELECT " INSTANCE_JSON " FROM ft_instances i WHERE i.id = $1"
                        " AND ($2::uuid IS NULL OR i.customer_id = $2) AND ($3::uuid IS NULL OR i.id = $3)",
                        3, params, &res, err);
    if (rc == FT_ENOTFOUND)
        return ft_instance_not_found(problem, id);
    if (rc != FT_OK)
        return rc;
    return ft_sql_take_json(res, "instance", out, err);
}

int ft_instance_product(PGconn *c, const ft_call_t *call, const char *id, char product[64], char status[24], ft_problem_t *problem,
                        ft_error_t *err)
{
    const char *params[] = {id, call->customer_id, call->instance_id};
    PGresult *res = NULL;
    int rc = ft_sql_row(c, "reading an instance",
                        "SELECT product_code, status FROM ft_instances WHERE id = $1 AND status <> 'deleted'"
                        " AND ($2::uuid IS NULL OR customer_id = $2) AND ($3::uuid IS NULL OR id = $3)",
                        3, params, &res, err);
    if (rc == FT_ENOTFOUND)
        return ft_instance_missing(c, call, id, problem, err);
    if (rc != FT_OK)
        return rc;
    snprintf(product, 64, "%s", PQgetvalue(res, 0, 0));
    snprintf(status, 24, "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    return FT_OK;
}

int ft_instance_list(PGconn *c, const ft_call_t *call, const ft_instance_filter_t *f, json_t **out, ft_problem_t *problem,
                     ft_error_t *err)
{
    char micros[24] = "", cid[40] = "", limit[16];
    if (f->cursor != NULL && ft_cursor_parse(f->cursor, micros, sizeof(micros), cid, sizeof(cid), problem) != FT_OK)
        return FT_EINVAL;
    snprintf(limit, sizeof(limit), "%d", f->limit + 1);
    const char *params[] = {call->customer_id, call->instance_id, f->customer_id, f->product, f->status, f->environment, f->code,
                            micros[0] ? micros : NULL, cid[0] ? cid : NULL, limit};
    PGresult *res = NULL;
    int rc = ft_sql(c, "listing instances",
                    "SELECT " INSTANCE_JSON ", (extract(epoch FROM i.created_at) * 1000000)::bigint || '.' || i.id"
                    " FROM ft_instances i"
                    " WHERE ($1::uuid IS NULL OR i.customer_id = $1) AND ($2::uuid IS NULL OR i.id = $2)"
                    " AND ($3::uuid IS NULL OR i.customer_id = $3) AND ($4::text IS NULL OR i.product_code = $4)"
                    " AND (CASE WHEN $5::text IS NULL THEN i.status <> 'deleted' ELSE i.status = $5 END)"
                    " AND ($6::text IS NULL OR i.environment = $6) AND ($7::text IS NULL OR i.code = $7)"
                    " AND ($8::bigint IS NULL OR (i.created_at, i.id) > (to_timestamp($8::bigint / 1000000.0), $9::uuid))"
                    " ORDER BY i.created_at, i.id LIMIT $10::int",
                    10, params, &res, err);
    if (rc != FT_OK)
        return rc;
    *out = ft_sql_page(res, f->limit);
    return FT_OK;
}

int ft_instance_deprovision(PGconn *c, const ft_call_t *call, const char *id, const ft_job_step_spec_t *steps, size_t nsteps,
                            json_t **out, ft_problem_t *problem, ft_error_t *err)
{
    PGresult *res = NULL;
    *out = NULL;
    int rc = ft_sql_begin(c, err);
    if (rc != FT_OK)
        return rc;
    const char *params[] = {id, call->customer_id, call->instance_id};
    rc = ft_sql_row(c, "locking an instance",
                    "SELECT status, customer_id, product_code FROM ft_instances WHERE id = $1 AND status <> 'deleted'"
                    " AND ($2::uuid IS NULL OR customer_id = $2) AND ($3::uuid IS NULL OR id = $3) FOR UPDATE",
                    3, params, &res, err);
    if (rc == FT_ENOTFOUND) {
        ft_sql_rollback(c);
        return ft_instance_missing(c, call, id, problem, err);
    }
    if (rc != FT_OK)
        goto fail;
    char status[24], customer[37], product[64];
    snprintf(status, sizeof(status), "%s", PQgetvalue(res, 0, 0));
    snprintf(customer, sizeof(customer), "%s", PQgetvalue(res, 0, 1));
    snprintf(product, sizeof(product), "%s", PQgetvalue(res, 0, 2));
    PQclear(res);
    if (strcmp(status, "provisioning") == 0) {
        ft_sql_rollback(c);
        return ft_problem(problem, FT_ESTATE, 409, "instance-busy", "Instance is being provisioned",
                          json_pack("{s:s}", "instance_status", status),
                          "Instance %s is being provisioned; remove it once provisioning has finished or failed.", id);
    }
    if (strcmp(status, "deprovisioning") != 0) {
        const char *up[] = {id};
        rc = ft_sql(c, "marking the instance deprovisioning",
                    "UPDATE ft_instances SET status = 'deprovisioning', status_reason = 'removal requested',"
                    " updated_at = now() WHERE id = $1",
                    1, up, NULL, err);
        char job_id[37];
        ft_job_spec_t job = {.instance_id = id,
                             .customer_id = customer,
                             .product = product,
                             .kind = &ft_job_kinds[FT_JOB_DEPROVISION],
                             .steps = steps,
                             .nsteps = nsteps,
                             .correlation_id = call->correlation_id,
                             .traceparent = call->traceparent};
        if (rc == FT_OK)
            rc = ft_job_enqueue(c, &job, job_id, err);
        if (rc != FT_OK)
            goto fail;
    }
    if ((rc = load(c, id, out, err)) == FT_OK)
        rc = ft_sql_commit(c, err);
    if (rc == FT_OK)
        return FT_OK;
fail:
    ft_sql_rollback(c);
    json_decref(*out);
    *out = NULL;
    return rc;
}
