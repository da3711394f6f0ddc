/*
 * An instance's subscription and feature overrides: plan changes, trials, suspension,
 * resumption, cancellation, overrides, and who has an override of a feature.
 */
#include "core/mem.h"
#include "domain/job_kinds.h"
#include "http/op.h"
#include "http/routes.h"
#include "store/subscription_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char plan_schema[] = "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"plan\"],\"properties\":{"
                                  "\"plan\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":63},"
                                  "\"when\":{\"enum\":[\"now\",\"period_end\"]}}}";
static const char cancel_schema[] = "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
                                    "\"at_period_end\":{\"type\":\"boolean\",\"default\":false}}}";
static const char trial_schema[] = "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"ends_at\"],\"properties\":{"
                                   "\"ends_at\":{\"type\":\"string\",\"format\":\"date-time\"}}}";
static const char override_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"enabled\"],\"properties\":{"
    "\"enabled\":{\"type\":\"boolean\"},"
    "\"limit\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":9007199254740991},"
    "\"expires_at\":{\"type\":[\"string\",\"null\"],\"format\":\"date-time\"},"
    "\"reason\":{\"type\":[\"string\",\"null\"],\"maxLength\":500}}}";

/* The instance's product, from the database and then the request's catalog. */
static int product_of(PGconn *c, ft_op_t *op, const ft_product_t **p, ft_error_t *err)
{
    const ft_generation_t *g;
    int rc = ft_op_instance_product(c, op, &g, err);
    if (rc == FT_OK)
        *p = g->product;
    return rc;
}

static int get_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    return ft_subscription_get(c, &op->call, op->id, &op->out, &op->problem, err);
}

static void get_subscription(ft_req_t *r)
{
    ft_op_t *op = ft_op_with_id(r, "id");
    if (op != NULL)
        ft_op_run(r, op, get_work, 200);
}

/* Position of a plan in the product's table: later plans are the bigger ones. */
static long plan_rank(const ft_product_t *p, const char *code)
{
    for (size_t i = 0; i < p->nplans; i++)
        if (strcmp(p->plans[i].code, code) == 0)
            return (long)i;
    return -1;
}

static int plan_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    const ft_product_t *p;
    int rc = product_of(c, op, &p, err);
    if (rc != FT_OK)
        return rc;
    const char *plan = json_string_value(json_object_get(op->body, "plan"));
    const char *when = json_string_value(json_object_get(op->body, "when"));
    const ft_plan_t *pl = ft_product_plan(p, plan);
    if (pl == NULL)
        return ft_problem(&op->problem, FT_EINVAL, 422, "unknown-plan", "Unknown plan",
                          json_pack("{s:[{s:s, s:s}]}", "errors", "pointer", "#/plan", "detail", "not a plan of this product"),
                          "Product %s has no plan %s.", p->code, plan);
    json_t *current = NULL;
    if ((rc = ft_subscription_get(c, &op->call, op->id, &current, &op->problem, err)) != FT_OK)
        return rc;
    const char *from = json_string_value(json_object_get(json_object_get(current, "plan"), "code"));
    int upgrade = plan_rank(p, plan) >= plan_rank(p, from);
    json_decref(current);
    ft_plan_change_t change = {.plan = pl->code, .version = pl->version};
    change.immediate = when != NULL ? strcmp(when, "now") == 0 : upgrade; /* upgrades now, downgrades at period end */
    ft_job_step_spec_t *steps = ft_job_kind_steps(&ft_job_kinds[FT_JOB_FEATURES_CHANGED], p, &change.nsteps);
    change.steps = steps;
    rc = ft_subscription_change_plan(c, &op->call, op->id, &change, &op->out, &op->problem, err);
    free(steps);
    snprintf(op->invalidate, sizeof(op->invalidate), "%s", op->id);
    return rc;
}

static void change_plan(ft_req_t *r)
{
    ft_op_t *op = ft_op_with_id(r, "id");
    if (op != NULL)
        ft_op_run(r, op, plan_work, 200);
}

static int state_work(PGconn *c, ft_op_t *op, int suspend, ft_error_t *err)
{
    const ft_product_t *p;
    int rc = product_of(c, op, &p, err);
    if (rc != FT_OK)
        return rc;
    size_t n = 0;
    ft_job_step_spec_t *steps = ft_job_kind_steps(&ft_job_kinds[suspend ? FT_JOB_SUSPEND : FT_JOB_RESUME], p, &n);
    rc = ft_subscription_set_state(c, &op->call, op->id, suspend, steps, n, &op->out, &op->problem, err);
    free(steps);
    snprintf(op->invalidate, sizeof(op->invalidate), "%s", op->id);
    return rc;
}

static int suspend_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    return state_work(c, op, 1, err);
}

static int resume_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    return state_work(c, op, 0, err);
}

static void suspend(ft_req_t *r)
{
    ft_op_t *op = ft_op_with_id(r, "id");
    if (op != NULL)
        ft_op_run(r, op, suspend_work, 200);
}

static void resume(ft_req_t *r)
{
    ft_op_t *op = ft_op_with_id(r, "id");
    if (op != NULL)
        ft_op_run(r, op, resume_work, 200);
}

static int cancel_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    int at_end = op->body != NULL && json_is_true(json_object_get(op->body, "at_period_end"));
    snprintf(op->invalidate, sizeof(op->invalidate), "%s", op->id);
    return ft_subscription_cancel(c, &op->call, op->id, at_end, &op->out, &op->problem, err);
}

static void cancel(ft_req_t *r)
{
    ft_op_t *op = ft_op_with_id(r, "id");
    if (op != NULL)
        ft_op_run(r, op, cancel_work, 200);
}

static int trial_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    snprintf(op->invalidate, sizeof(op->invalidate), "%s", op->id);
    return ft_subscription_set_trial(c, &op->call, op->id, json_string_value(json_object_get(op->body, "ends_at")), &op->out,
                                     &op->problem, err);
}

static void set_trial(ft_req_t *r)
{
    ft_op_t *op = ft_op_with_id(r, "id");
    if (op != NULL)
        ft_op_run(r, op, trial_work, 200);
}

static int overrides_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    return ft_override_list(c, &op->call, op->id, &op->out, &op->problem, err);
}

static void list_overrides(ft_req_t *r)
{
    ft_op_t *op = ft_op_with_id(r, "id");
    if (op != NULL)
        ft_op_run(r, op, overrides_work, 200);
}

/* PUT and DELETE of an override. The feature must exist in the product and not be retired
 * (the catalog holds only live features); a limit only goes with a limit feature. */
static int override_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    const ft_product_t *p;
    int rc = product_of(c, op, &p, err);
    if (rc != FT_OK)
        return rc;
    const char *feature = op->id2;
    const ft_feature_t *f = ft_product_feature(p, feature);
    if (f == NULL)
        return ft_problem(&op->problem, FT_EINVAL, 422, "unknown-feature", "Unknown or retired feature",
                          json_pack("{s:s, s:s}", "product", p->code, "feature", feature),
                          "Product %s has no live feature %s; overrides apply only to current features.", p->code, feature);
    ft_override_spec_t spec = {.feature = feature};
    if (op->body != NULL) {
        json_t *limit = json_object_get(op->body, "limit");
        spec.enabled = json_is_true(json_object_get(op->body, "enabled"));
        if (limit != NULL) {
            if (f->kind != FTP_FEATURE_LIMIT)
                return ft_problem(&op->problem, FT_EINVAL, 422, "limit-on-flag", "A flag has no limit",
                                  json_pack("{s:[{s:s, s:s}]}", "errors", "pointer", "#/limit", "detail",
                                            "only limit features take a limit"),
                                  "%s is a flag; leave out limit.", feature);
            spec.has_limit = 1;
            spec.limit = (long long)json_integer_value(limit);
        }
        spec.expires_at = json_string_value(json_object_get(op->body, "expires_at"));
        spec.reason = json_string_value(json_object_get(op->body, "reason"));
    }
    size_t n = 0;
    ft_job_step_spec_t *steps = ft_job_kind_steps(&ft_job_kinds[FT_JOB_FEATURES_CHANGED], p, &n);
    rc = ft_override_put(c, &op->call, op->id, feature, op->body != NULL ? &spec : NULL, steps, n, &op->out, &op->problem, err);
    free(steps);
    snprintf(op->invalidate, sizeof(op->invalidate), "%s", op->id);
    return rc;
}

static void override_op(ft_req_t *r)
{
    ft_op_t *op = ft_op_with_id(r, "id");
    if (op == NULL)
        return;
    snprintf(op->id2, sizeof(op->id2), "%s", ft_req_param(r, "feature"));
    ft_op_run(r, op, override_work, 200);
}

static int by_feature_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    int expired = op->arg != NULL;
    return ft_override_list_by_feature(c, &op->call, op->id, op->id2, expired, &op->out, err);
}

static void overrides_of_feature(ft_req_t *r)
{
    const char *product = ft_req_param(r, "code"), *feature = ft_req_param(r, "feature");
    ft_generation_t *g = ft_catalog_find(ft_req_catalog(r), product);
    if (g == NULL) {
        ft_respond_problem(r, 404, "product-not-found", "Product not found", json_pack("{s:s}", "product", product),
                           "No product %s is loaded.", product);
        return;
    }
    if (strlen(feature) >= 96) {
        ft_respond_bad_param(r, "feature", "is too long");
        return;
    }
    ft_op_t *op = ft_op_new(r);
    snprintf(op->id, sizeof(op->id), "%s", product);
    snprintf(op->id2, sizeof(op->id2), "%s", feature);
    const char *exp = ft_req_query(r, "include_expired");
    if (exp != NULL && strcmp(exp, "true") == 0)
        op->arg = ft_mem_strdup("1");
    ft_op_run(r, op, by_feature_work, 200);
}

/* The API reference's part of each route (see ft_route_doc_t). */
static const ft_route_doc_t doc_get_instances_id_subscription = {
    .tag = "Subscriptions",
    .summary = "Get an instance's subscription",
    .responses = (const ft_route_response_t[]){{200, "Subscription", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_post_instances_id_subscription_plan = {
    .tag = "Subscriptions",
    .summary = "Change the plan (now or at period end)",
    .responses = (const ft_route_response_t[]){{200, "Subscription", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_post_instances_id_subscription_suspend = {
    .tag = "Subscriptions",
    .summary = "Suspend the subscription",
    .responses = (const ft_route_response_t[]){{200, "Subscription", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_post_instances_id_subscription_resume = {
    .tag = "Subscriptions",
    .summary = "Resume the subscription",
    .responses = (const ft_route_response_t[]){{200, "Subscription", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_post_instances_id_subscription_cancel = {
    .tag = "Subscriptions",
    .summary = "Cancel the subscription",
    .responses = (const ft_route_response_t[]){{200, "Subscription", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_post_instances_id_subscription_trial = {
    .tag = "Subscriptions",
    .summary = "Set or extend the trial",
    .responses = (const ft_route_response_t[]){{200, "Subscription", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_get_instances_id_overrides = {
    .tag = "Subscriptions",
    .summary = "List the instance's feature overrides (expired ones too, marked `expired`)",
    .responses = (const ft_route_response_t[]){{200, "OverrideList", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_put_instances_id_overrides_feature = {
    .tag = "Subscriptions",
    .summary = "Set a feature override",
    .responses = (const ft_route_response_t[]){{200, "OverrideList", NULL, "The instance's overrides after the change"}, {0}},
};
static const ft_route_doc_t doc_delete_instances_id_overrides_feature = {
    .tag = "Subscriptions",
    .summary = "Remove a feature override",
    .responses = (const ft_route_response_t[]){{200, "OverrideList", NULL, "The instance's overrides after the change"}, {0}},
};
static const ft_route_doc_t doc_get_products_code_features_feature_overrides = {
    .tag = "Subscriptions",
    .summary = "Instances overriding a feature",
    .query =
        (const ft_route_query_t[]){
            {"include_expired", "{\"type\":\"string\",\"enum\":[\"true\",\"false\"]}", "also list expired overrides"}, {0}},
    .responses = (const ft_route_response_t[]){{200, "FeatureOverrides", NULL, NULL}, {0}},
};

void ft_routes_subscriptions(ft_router_t *router)
{
    static const ft_route_t routes[] = {
        {.method = "GET", .pattern = "/api/v1/instances/{id}/subscription", .permission = "subscriptions:read",
         .flags = FT_ROUTE_CHAIN, .handler = get_subscription, .doc = &doc_get_instances_id_subscription},
        {.method = "POST", .pattern = "/api/v1/instances/{id}/subscription/plan", .permission = "subscriptions:write", .action = "subscription.change_plan",
         .flags = FT_ROUTE_CHAIN | FT_ROUTE_JSON_BODY | FT_ROUTE_WRITE, .body_schema = plan_schema, .handler = change_plan,
         .doc = &doc_post_instances_id_subscription_plan},
        {.method = "POST", .pattern = "/api/v1/instances/{id}/subscription/suspend", .permission = "subscriptions:manage", .action = "subscription.suspend",
         .flags = FT_ROUTE_CHAIN | FT_ROUTE_WRITE, .handler = suspend, .doc = &doc_post_instances_id_subscription_suspend},
        {.method = "POST", .pattern = "/api/v1/instances/{id}/subscription/resume", .permission = "subscriptions:manage", .action = "subscription.resume",
         .flags = FT_ROUTE_CHAIN | FT_ROUTE_WRITE, .handler = resume, .doc = &doc_post_instances_id_subscription_resume},
        {.method = "POST", .pattern = "/api/v1/instances/{id}/subscription/cancel", .permission = "subscriptions:write", .action = "subscription.cancel",
         .flags = FT_ROUTE_CHAIN | FT_ROUTE_OPTIONAL_BODY | FT_ROUTE_WRITE, .body_schema = cancel_schema, .handler = cancel,
         .doc = &doc_post_instances_id_subscription_cancel},
        {.method = "POST", .pattern = "/api/v1/instances/{id}/subscription/trial", .permission = "subscriptions:manage", .action = "subscription.set_trial",
         .flags = FT_ROUTE_CHAIN | FT_ROUTE_JSON_BODY | FT_ROUTE_WRITE, .body_schema = trial_schema, .handler = set_trial,
         .doc = &doc_post_instances_id_subscription_trial},
        {.method = "GET", .pattern = "/api/v1/instances/{id}/overrides", .permission = "subscriptions:read",
         .flags = FT_ROUTE_CHAIN, .handler = list_overrides, .doc = &doc_get_instances_id_overrides},
        {.method = "PUT", .pattern = "/api/v1/instances/{id}/overrides/{feature}", .permission = "overrides:write", .action = "override.set",
         .flags = FT_ROUTE_CHAIN | FT_ROUTE_JSON_BODY | FT_ROUTE_WRITE, .body_schema = override_schema, .handler = override_op,
         .doc = &doc_put_instances_id_overrides_feature},
        {.method = "DELETE", .pattern = "/api/v1/instances/{id}/overrides/{feature}", .permission = "overrides:write", .action = "override.remove",
         .flags = FT_ROUTE_CHAIN | FT_ROUTE_WRITE, .handler = override_op, .doc = &doc_delete_instances_id_overrides_feature},
        {.method = "GET", .pattern = "/api/v1/products/{code}/features/{feature}/overrides", .permission = "overrides:read",
         .flags = FT_ROUTE_CHAIN, .handler = overrides_of_feature, .doc = &doc_get_products_code_features_feature_overrides},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        ft_router_add(router, &routes[i]);
}
