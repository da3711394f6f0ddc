/*
 * Subscription and override persistence. Every operation locks the subscription row first, so
 * concurrent changes to one instance's entitlements apply one after the other.
 */
#include "store/subscription_store.h"

#include "store/outbox_store.h"
#include "store/representations.h"
#include "store/sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OVERRIDE_JSON                                                                                                         \
    "json_build_object('feature', o.feature_code, 'enabled', o.enabled, 'limit', o.limit_value, 'expires_at', o.expires_at," \
    " 'expired', o.expires_at IS NOT NULL AND o.expires_at <= now(), 'reason', o.reason, 'set_by', o.set_by,"               \
    " 'created_at', o.created_at, 'updated_at', o.updated_at)"

typedef struct locked {
    char id[37], customer[37], product[64], status[16], instance_status[24], plan[64];
    unsigned version;
} locked_t;

/* Opens the transaction and locks the instance's subscription. */
static int lock_sub(PGconn *c, const ft_call_t *call, const char *instance_id, locked_t *l, ft_problem_t *problem, ft_error_t *err)
{
    int rc = ft_sql_begin(c, err);
    if (rc != FT_OK)
        return rc;
    const char *params[] = {instance_id, call->customer_id, call->instance_id};
    PGresult *res = NULL;
    rc = ft_sql_row(c, "locking the subscription",
                    "SELECT s.id, s.customer_id, s.product_code, s.status, i.status, s.plan_code, s.plan_version"
                    " FROM ft_subscriptions s JOIN ft_instances i ON i.id = s.instance_id"
                    " WHERE s.instance_id = $1 AND i.status <> 'deleted' AND ($2::uuid IS NULL OR s.customer_id = $2)"
                    " AND ($3::uuid IS NULL OR s.instance_id = $3) FOR UPDATE OF s",
                    3, params, &res, err);
    if (rc == FT_ENOTFOUND) {
        ft_sql_rollback(c);
        return ft_instance_missing(c, call, instance_id, problem, err);
    }
    if (rc != FT_OK) {
        ft_sql_rollback(c);
        return rc;
    }
    snprintf(l->id, sizeof(l->id), "%s", PQgetvalue(res, 0, 0));
    snprintf(l->customer, sizeof(l->customer), "%s", PQgetvalue(res, 0, 1));
    snprintf(l->product, sizeof(l->product), "%s", PQgetvalue(res, 0, 2));
    snprintf(l->status, sizeof(l->status), "%s", PQgetvalue(res, 0, 3));
    snprintf(l->instance_status, sizeof(l->instance_status), "%s", PQgetvalue(res, 0, 4));
    snprintf(l->plan, sizeof(l->plan), "%s", PQgetvalue(res, 0, 5));
    l->version = (unsigned)atoi(PQgetvalue(res, 0, 6));
    PQclear(res);
    return FT_OK;
}

static int read_sub(PGconn *c, const char *sub_id, json_t **out, ft_error_t *err)
{
    const char *params[] = {sub_id};
    PGresult *res = NULL;
    int rc = ft_sql_row(c, "reading the subscription", "SELECT " FT_SUBSCRIPTION_JSON "::text FROM ft_subscriptions s WHERE s.id = $1", 1, params,
                        &res, err);
    if (rc != FT_OK)
        return rc;
    return ft_sql_take_json(res, "subscription", out, err);
}

/* Emits the event, reads the result and commits; rolls back on any failure. */
static int finish(PGconn *c, const ft_call_t *call, const char *instance_id, const locked_t *l, const char *event, json_t *data,
                  json_t **out, int rc, ft_error_t *err)
{
    if (rc == FT_OK && event != NULL) {
        ft_event_meta_t meta = {.tenant_id = instance_id, .correlation_id = call->correlation_id, .traceparent = call->traceparent};
        json_object_set_new(data, "instance_id", json_string(instance_id));
        json_object_set_new(data, "customer_id", json_string(l->customer));
        json_object_set_new(data, "actor", json_string(call->actor));
        rc = ft_outbox_emit(c, "instance", instance_id, event, &meta, data, err);
        data = NULL;
    }
    json_decref(data);
    if (rc == FT_OK && out != NULL)
        rc = read_sub(c, l->id, out, err);
    if (rc == FT_OK)
        rc = ft_sql_commit(c, err);
    if (rc != FT_OK) {
        ft_sql_rollback(c);
        if (out != NULL) {
            json_decref(*out);
            *out = NULL;
        }
    }
    return rc;
}

static int job_with_id(PGconn *c, const ft_call_t *call, const char *instance_id, const locked_t *l, const ft_job_kind_t *kind,
                       json_t *payload, const ft_job_step_spec_t *steps, size_t nsteps, char job_id[37], ft_error_t *err)
{
    ft_job_spec_t spec = {.instance_id = instance_id,
                          .customer_id = l->customer,
                          .product = l->product,
                          .kind = kind,
                          .payload = payload,
                          .steps = steps,
                          .nsteps = nsteps,
                          .correlation_id = call->correlation_id,
                          .traceparent = call->traceparent};
    return ft_job_enqueue(c, &spec, job_id, err);
}

static int job(PGconn *c, const ft_call_t *call, const char *instance_id, const locked_t *l, const ft_job_kind_t *kind,
               json_t *payload, const ft_job_step_spec_t *steps, size_t nsteps, ft_error_t *err)
{
    char job_id[37];
    return job_with_id(c, call, instance_id, l, kind, payload, steps, nsteps, job_id, err);
}

int ft_subscription_get(PGconn *c, const ft_call_t *call, const char *instance_id, json_t **out, ft_problem_t *problem,
                        ft_error_t *err)
{
    const char *params[] = {instance_id, call->customer_id, call->instance_id};
    PGresult *res = NULL;
    int rc = ft_sql_row(c, "reading the subscription",
                        "SELECT " FT_SUBSCRIPTION_JSON "::text FROM ft_subscriptions s JOIN ft_instances i ON i.id = s.instance_id"
                        " WHERE s.instance_id = $1 AND i.status <> 'deleted' AND ($2::uuid IS NULL OR s.customer_id = $2)"
                        " AND ($3::uuid IS NULL OR s.instance_id = $3)",
                        3, params, &res, err);
    if (rc == FT_ENOTFOUND)
        return ft_instance_missing(c, call, instance_id, problem, err);
    if (rc != FT_OK)
        return rc;
    return ft_sql_take_json(res, "subscription", out, err);
}

static int state_conflict(PGconn *c, ft_problem_t *problem, const locked_t *l, const char *detail)
{
    ft_sql_rollback(c);
    return ft_problem(problem, FT_ESTATE, 409, "subscription-state", "Not allowed in the subscription's state",
                      json_pack("{s:s, s:s}", "subscription_status", l->status, "instance_status", l->instance_status), "%s", detail);
}

int ft_subscription_change_plan(PGconn *c, const ft_call_t *call, const char *instance_id, const ft_plan_change_t *change,
                                json_t **out, ft_problem_t *problem, ft_error_t *err)
{
    locked_t l;
    *out = NULL;
    int rc = lock_sub(c, call, instance_id, &l, problem, err);
    if (rc != FT_OK)
        return rc;
    if (strcmp(l.status, "canceled") == 0)
        return state_conflict(c, problem, &l, "The subscription is canceled; create a new instance to buy again.");
    if (strcmp(l.plan, change->plan) == 0 && l.version == change->version) {
        /* already on it: a no-op that also drops a pending change back to this plan */
        const char *p[] = {l.id};
        rc = ft_sql(c, "clearing a pending change",
                    "UPDATE ft_subscriptions SET pending_plan_code = NULL, pending_plan_version = NULL, updated_at = now()"
                    " WHERE id = $1 AND pending_plan_code IS NOT NULL",
                    1, p, NULL, err);
        return finish(c, call, instance_id, &l, NULL, NULL, out, rc, err);
    }
    char version[16];
    snprintf(version, sizeof(version), "%u", change->version);
    const char *p[] = {l.id, change->plan, version};
    json_t *data = json_pack("{s:{s:s, s:i}, s:{s:s, s:i}, s:s}", "from", "plan", l.plan, "version", (int)l.version, "to", "plan",
                             change->plan, "version", (int)change->version, "effective", change->immediate ? "now" : "period_end");
    if (change->immediate) {
        rc = ft_sql(c, "changing the plan",
                    "UPDATE ft_subscriptions SET plan_code = $2, plan_version = $3, pending_plan_code = NULL,"
                    " pending_plan_version = NULL, updated_at = now() WHERE id = $1",
                    3, p, NULL, err);
        if (rc == FT_OK)
            rc = job(c, call, instance_id, &l, &ft_job_kinds[FT_JOB_FEATURES_CHANGED], data, change->steps, change->nsteps, err);
    } else {
        rc = ft_sql(c, "scheduling the plan change",
                    "UPDATE ft_subscriptions SET pending_plan_code = $2, pending_plan_version = $3, updated_at = now()"
                    " WHERE id = $1",
                    3, p, NULL, err);
    }
    return finish(c, call, instance_id, &l, change->immediate ? "subscription.plan_changed.v1" : "subscription.plan_change_scheduled.v1",
                  data, out, rc, err);
}

int ft_subscription_set_state(PGconn *c, const ft_call_t *call, const char *instance_id, int suspend,
                              const ft_job_step_spec_t *steps, size_t nsteps, json_t **out, ft_problem_t *problem, ft_error_t *err)
{
    locked_t l;
    *out = NULL;
    int rc = lock_sub(c, call, instance_id, &l, problem, err);
    if (rc != FT_OK)
        return rc;
    const char *p[] = {l.id};
    const char *ip[] = {instance_id};
    if (suspend) {
        if (strcmp(l.status, "suspended") == 0)
            return finish(c, call, instance_id, &l, NULL, NULL, out, FT_OK, err); /* idempotent */
        if (strcmp(l.status, "canceled") == 0)
            return state_conflict(c, problem, &l, "A canceled subscription cannot be suspended.");
        rc = ft_sql(c, "suspending",
                    "UPDATE ft_subscriptions SET status = 'suspended', updated_at = now() WHERE id = $1", 1, p, NULL, err);
        if (rc == FT_OK)
            rc = ft_sql(c, "suspending the instance",
                        "UPDATE ft_instances SET status = 'suspended', status_reason = 'subscription suspended',"
                        " updated_at = now() WHERE id = $1 AND status IN ('active', 'failed')",
                        1, ip, NULL, err);
    } else {
        if (strcmp(l.status, "suspended") != 0) {
            if (strcmp(l.status, "canceled") == 0)
                return state_conflict(c, problem, &l, "A canceled subscription cannot be resumed.");
            return finish(c, call, instance_id, &l, NULL, NULL, out, FT_OK, err); /* not suspended: nothing to do */
        }
        rc = ft_sql(c, "resuming",
                    "UPDATE ft_subscriptions SET status = CASE WHEN trial_ends_at IS NOT NULL AND trial_ends_at > now()"
                    " THEN 'trialing' ELSE 'active' END, updated_at = now() WHERE id = $1",
                    1, p, NULL, err);
        if (rc == FT_OK)
            rc = ft_sql(c, "resuming the instance",
                        "UPDATE ft_instances SET status = 'active', status_reason = NULL, updated_at = now()"
                        " WHERE id = $1 AND status = 'suspended'",
                        1, ip, NULL, err);
    }
    if (rc == FT_OK)
        rc = job(c, call, instance_id, &l, &ft_job_kinds[suspend ? FT_JOB_SUSPEND : FT_JOB_RESUME], NULL, steps, nsteps, err);
    return finish(c, call, instance_id, &l, suspend ? "subscription.suspended.v1" : "subscription.resumed.v1", json_object(), out,
                  rc, err);
}

int ft_subscription_cancel(PGconn *c, const ft_call_t *call, const char *instance_id, int at_period_end, json_t **out,
                           ft_problem_t *problem, ft_error_t *err)
{
    locked_t l;
    *out = NULL;
    int rc = lock_sub(c, call, instance_id, &l, problem, err);
    if (rc != FT_OK)
        return rc;
    if (strcmp(l.status, "canceled") == 0)
        return finish(c, call, instance_id, &l, NULL, NULL, out, FT_OK, err);
    const char *p[] = {l.id};
    rc = ft_sql(c, "canceling",
                at_period_end ? "UPDATE ft_subscriptions SET cancel_at_period_end = true, updated_at = now() WHERE id = $1"
                              : "UPDATE ft_subscriptions SET status = 'canceled', canceled_at = now(), cancel_at_period_end = false,"
                                " pending_plan_code = NULL, pending_plan_version = NULL, updated_at = now() WHERE id = $1",
                1, p, NULL, err);
    return finish(c, call, instance_id, &l, "subscription.canceled.v1",
                  json_pack("{s:s}", "effective", at_period_end ? "period_end" : "now"), out, rc, err);
}

int ft_subscription_set_trial(PGconn *c, const ft_call_t *call, const char *instance_id, const char *ends_at, json_t **out,
                              ft_problem_t *problem, ft_error_t *err)
{
    locked_t l;
    *out = NULL;
    int rc = lock_sub(c, call, instance_id, &l, problem, err);
    if (rc != FT_OK)
        return rc;
    if (strcmp(l.status, "canceled") == 0 || strcmp(l.status, "suspended") == 0)
        return state_conflict(c, problem, &l, "A trial can only be set on an active or trialing subscription.");
    const char *p[] = {l.id, ends_at};
    PGresult *res = NULL;
    rc = ft_sql(c, "checking the trial end", "SELECT $1::timestamptz > now()", 1, p + 1, &res, err);
    if (rc == FT_OK) {
        int future = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        PQclear(res);
        if (!future) {
            ft_sql_rollback(c);
            return ft_problem(problem, FT_EINVAL, 422, "invalid-trial", "Invalid trial end",
                              json_pack("{s:[{s:s, s:s}]}", "errors", "pointer", "#/ends_at", "detail", "must be in the future"),
                              "The trial must end in the future (got %s).", ends_at);
        }
        rc = ft_sql(c, "setting the trial",
                    "UPDATE ft_subscriptions SET status = 'trialing', trial_ends_at = $2::timestamptz, updated_at = now()"
                    " WHERE id = $1",
                    2, p, NULL, err);
    }
    return finish(c, call, instance_id, &l, "subscription.trial_set.v1", json_pack("{s:s}", "trial_ends_at", ends_at), out, rc,
                  err);
}

int ft_override_list(PGconn *c, const ft_call_t *call, const char *instance_id, json_t **out, ft_problem_t *problem,
                     ft_error_t *err)
{
    const char *params[] = {instance_id, call->customer_id, call->instance_id};
    PGresult *res = NULL;
    int rc = ft_sql_row(c, "listing overrides",
                        "SELECT coalesce((SELECT json_agg(" OVERRIDE_JSON " ORDER BY o.feature_code) FROM ft_feature_overrides o"
                        " WHERE o.subscription_id = s.id), '[]')::text"
                        " FROM ft_subscriptions s JOIN ft_instances i ON i.id = s.instance_id"
                        " WHERE s.instance_id = $1 AND i.status <> 'deleted' AND ($2::uuid IS NULL OR s.customer_id = $2)"
                        " AND ($3::uuid IS NULL OR s.instance_id = $3)",
                        3, params, &res, err);
    if (rc == FT_ENOTFOUND)
        return ft_instance_missing(c, call, instance_id, problem, err);
    if (rc != FT_OK)
        return rc;
    *out = json_pack("{s:s, s:o}", "instance_id", instance_id, "overrides", json_loads(PQgetvalue(res, 0, 0), 0, NULL));
    PQclear(res);
    return FT_OK;
}

int ft_override_put(PGconn *c, const ft_call_t *call, const char *instance_id, const char *feature, const ft_override_spec_t *spec,
                    const ft_job_step_spec_t *steps, size_t nsteps, json_t **out, ft_problem_t *problem, ft_error_t *err)
{
    locked_t l;
    *out = NULL;
    int rc = lock_sub(c, call, instance_id, &l, problem, err);
    if (rc != FT_OK)
        return rc;
    PGresult *res = NULL;
    json_t *data;
    if (spec != NULL) {
        char limit[32];
        snprintf(limit, sizeof(limit), "%lld", spec->limit);
        const char *p[] = {l.id,         l.product,     feature,    spec->enabled ? "t" : "f", spec->has_limit ? limit : NULL,
                           spec->expires_at, spec->reason, call->actor};
        rc = ft_sql(c, "setting an override",
                    "INSERT INTO ft_feature_overrides (subscription_id, product_code, feature_code, enabled, limit_value,"
                    " expires_at, reason, set_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                    " ON CONFLICT (subscription_id, feature_code) DO UPDATE SET enabled = EXCLUDED.enabled,"
                    " limit_value = EXCLUDED.limit_value, expires_at = EXCLUDED.expires_at, reason = EXCLUDED.reason,"
                    " set_by = EXCLUDED.set_by, updated_at = now()",
                    8, p, NULL, err);
        data = json_pack("{s:s, s:b}", "feature", feature, "enabled", spec->enabled);
        if (spec->has_limit)
            json_object_set_new(data, "limit", json_integer(spec->limit));
        if (spec->expires_at != NULL)
            json_object_set_new(data, "expires_at", json_string(spec->expires_at));
        if (spec->reason != NULL)
            json_object_set_new(data, "reason", json_string(spec->reason));
    } else {
        const char *p[] = {l.id, feature};
        rc = ft_sql(c, "removing an override",
                    "DELETE FROM ft_feature_overrides WHERE subscription_id = $1 AND feature_code = $2 RETURNING 1", 2, p, &res,
                    err);
        if (rc == FT_OK) {
            int gone = PQntuples(res);
            PQclear(res);
            if (gone == 0) {
                ft_sql_rollback(c);
                return ft_problem(problem, FT_ENOTFOUND, 404, "override-not-found", "Override not found",
                                  json_pack("{s:s}", "feature", feature), "Instance %s has no override for %s.", instance_id,
                                  feature);
            }
        }
        data = json_pack("{s:s}", "feature", feature);
    }
    if (rc == FT_OK)
        rc = job(c, call, instance_id, &l, &ft_job_kinds[FT_JOB_FEATURES_CHANGED], data, steps, nsteps, err);
    rc = finish(c, call, instance_id, &l, spec != NULL ? "subscription.override_set.v1" : "subscription.override_removed.v1", data,
                NULL, rc, err);
    if (rc == FT_OK)
        rc = ft_override_list(c, call, instance_id, out, problem, err);
    return rc;
}

int ft_override_replace_all(PGconn *c, const ft_call_t *call, const char *instance_id, const ft_override_spec_t *specs, size_t n,
                            const ft_job_step_spec_t *steps, size_t nsteps, char job_id[37], ft_problem_t *problem,
                            ft_error_t *err)
{
    locked_t l;
    int rc = lock_sub(c, call, instance_id, &l, problem, err);
    if (rc != FT_OK)
        return rc;
    const char *p0[] = {l.id};
    rc = ft_sql(c, "clearing overrides", "DELETE FROM ft_feature_overrides WHERE subscription_id = $1", 1, p0, NULL, err);
    json_t *features = json_array();
    for (size_t i = 0; i < n && rc == FT_OK; i++) {
        char limit[32];
        snprintf(limit, sizeof(limit), "%lld", specs[i].limit);
        const char *p[] = {l.id, l.product, specs[i].feature, specs[i].enabled ? "t" : "f", specs[i].has_limit ? limit : NULL,
                           specs[i].expires_at, specs[i].reason, call->actor};
        rc = ft_sql(c, "setting an override",
                    "INSERT INTO ft_feature_overrides (subscription_id, product_code, feature_code, enabled, limit_value,"
                    " expires_at, reason, set_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    8, p, NULL, err);
        json_array_append_new(features, json_pack("{s:s, s:b}", "feature", specs[i].feature, "enabled", specs[i].enabled));
    }
    json_t *data = json_pack("{s:o}", "overrides", features);
    if (rc == FT_OK)
        rc = job_with_id(c, call, instance_id, &l, &ft_job_kinds[FT_JOB_FEATURES_CHANGED], data, steps, nsteps, job_id, err);
    return finish(c, call, instance_id, &l, "subscription.overrides_replaced.v1", data, NULL, rc, err);
}

int ft_override_list_by_feature(PGconn *c, const ft_call_t *call, const char *product, const char *feature, int include_expired,
                                json_t **out, ft_error_t *err)
{
    const char *params[] = {product, feature, call->customer_id, include_expired ? "t" : "f"};
    PGresult *res = NULL;
    int rc = ft_sql(c, "listing a feature's overrides",
                    "SELECT coalesce(json_agg(json_build_object('customer', json_build_object('id', cu.id, 'legal_name',"
                    " cu.legal_name), 'instance', json_build_object('id', i.id, 'code', i.code, 'status', i.status),"
                    " 'plan', json_build_object('code', s.plan_code, 'version', s.plan_version),"
                    " 'override', " OVERRIDE_JSON ") ORDER BY cu.legal_name, i.code), '[]')::text"
                    " FROM ft_feature_overrides o JOIN ft_subscriptions s ON s.id = o.subscription_id"
                    " JOIN ft_instances i ON i.id = s.instance_id JOIN ft_customers cu ON cu.id = s.customer_id"
                    " WHERE o.product_code = $1 AND o.feature_code = $2 AND i.status <> 'deleted'"
                    " AND ($3::uuid IS NULL OR s.customer_id = $3)"
                    " AND ($4::bool OR o.expires_at IS NULL OR o.expires_at > now())",
                    4, params, &res, err);
    if (rc != FT_OK)
        return rc;
    *out = json_pack("{s:s, s:s, s:o}", "product", product, "feature", feature, "overrides",
                     json_loads(PQgetvalue(res, 0, 0), 0, NULL));
    PQclear(res);
    return FT_OK;
}
