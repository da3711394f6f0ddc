/*
 * The endpoints of the system this control plane replaces, kept with their request and
 * response shapes so its clients keep working:
 *   POST   /api/provisioning/provision              {customerId, productId, environment, moduleIds, customFeatures}
 *   DELETE /api/provisioning/{tenantInstanceId}
 *   PUT    /api/provisioning/{tenantInstanceId}/features   {moduleIds, customFeatures}
 * They map onto the v1 model: a Standard-tier instance on the product's entry plan, with the
 * listed modules' features and the custom features as overrides of that plan.
 * customFeatures is an object {"feature_code": true|false|number} or an array of
 * {"code"|"featureCode"|"key": ..., "value"|"enabled"|"limit": ...}.
 */
#include "core/mem.h"
#include "domain/job_kinds.h"
#include "domain/settings.h"
#include "http/op.h"
#include "http/routes.h"
#include "store/instance_store.h"
#include "store/subscription_store.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

static const char provision_schema[] =
    "{\"type\":\"object\",\"required\":[\"customerId\",\"productId\"],\"additionalProperties\":false,\"properties\":{"
    "\"customerId\":{\"type\":\"string\",\"format\":\"uuid\"},"
    "\"productId\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":31},"
    "\"environment\":{\"type\":\"string\",\"maxLength\":32},"
    "\"moduleIds\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"maxLength\":63},\"maxItems\":100,\"uniqueItems\":true},"
    "\"customFeatures\":{\"type\":[\"object\",\"array\",\"null\"]},"
    "\"settings\":{\"type\":\"object\"}}}";

static const char features_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
    "\"moduleIds\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"maxLength\":63},\"maxItems\":100,\"uniqueItems\":true},"
    "\"customFeatures\":{\"type\":[\"object\",\"array\",\"null\"]}}}";

/* Environment names as the old system wrote them ("Production", "prod", "dev"...). */
static const char *environment_of(const char *in)
{
    if (in == NULL)
        return "production";
    char low[33];
    size_t i;
    for (i = 0; in[i] != '\0' && i < sizeof(low) - 1; i++)
        low[i] = (char)tolower((unsigned char)in[i]);
    low[i] = '\0';
    if (strcmp(low, "production") == 0 || strcmp(low, "prod") == 0)
        return "production";
    if (strcmp(low, "staging") == 0 || strcmp(low, "stage") == 0 || strcmp(low, "qa") == 0)
        return "staging";
    if (strcmp(low, "development") == 0 || strcmp(low, "dev") == 0)
        return "development";
    if (strcmp(low, "sandbox") == 0 || strcmp(low, "test") == 0)
        return "sandbox";
    return NULL;
}

typedef struct overrides {
    ft_override_spec_t *items;
    size_t n;
} overrides_t;

static void add(overrides_t *o, const char *feature, int enabled, int has_limit, long long limit)
{
    for (size_t i = 0; i < o->n; i++) {
        if (strcmp(o->items[i].feature, feature) == 0) { /* custom features win over modules */
            o->items[i] = (ft_override_spec_t){.feature = feature, .enabled = enabled, .has_limit = has_limit, .limit = limit};
            return;
        }
    }
    o->items = ft_mem_realloc(o->items, (o->n + 1) * sizeof(*o->items));
    o->items[o->n++] = (ft_override_spec_t){.feature = feature, .enabled = enabled, .has_limit = has_limit, .limit = limit,
                                            .reason = "set through /api/provisioning"};
}

/* Adds the override for one customFeatures value: true/false, or a whole number (a limit, or
 * 0/1 for a flag). */
static int custom_value(const ft_product_t *p, const char *code, json_t *v, const char *pointer, overrides_t *o,
                        ft_problem_t *problem)
{
    const ft_feature_t *f = code != NULL ? ft_product_feature(p, code) : NULL;
    if (f == NULL)
        return ft_problem(problem, FT_EINVAL, 422, "unknown-feature", "Unknown or retired feature",
                          json_pack("{s:[{s:s, s:s}]}", "errors", "pointer", pointer, "detail", "not a live feature of this product"),
                          "%s: product %s has no live feature %.80s.", pointer, p->code, code != NULL ? code : "(no code given)");
    if (json_is_boolean(v))
        add(o, f->code, json_is_true(v), 0, 0);
    else if (json_is_integer(v) && json_integer_value(v) >= 0 && f->kind == FTP_FEATURE_LIMIT)
        add(o, f->code, 1, 1, (long long)json_integer_value(v));
    else if (json_is_integer(v) && json_integer_value(v) >= 0)
        add(o, f->code, json_integer_value(v) != 0, 0, 0);
    else
        return ft_problem(problem, FT_EINVAL, 400, "invalid-body", "Invalid request body",
                          json_pack("{s:[{s:s, s:s}]}", "errors", "pointer", pointer, "detail",
                                    "must be true, false or a whole number >= 0"),
                          "%s must be true, false or a whole number >= 0.", pointer);
    return FT_OK;
}

/* Turns moduleIds and customFeatures into overrides of `plan`. FT_OK, or problem filled. */
static int build_overrides(const ft_product_t *p, const ft_plan_t *plan, json_t *body, overrides_t *o, ft_problem_t *problem)
{
    json_t *modules = json_object_get(body, "moduleIds"), *custom = json_object_get(body, "customFeatures");
    size_t i;
    json_t *v;
    json_array_foreach(modules, i, v)
    {
        const char *m = json_string_value(v);
        if (ft_product_module(p, m) == NULL) {
            char pointer[32];
            snprintf(pointer, sizeof(pointer), "#/moduleIds/%zu", i);
            return ft_problem(problem, FT_EINVAL, 422, "unknown-module", "Unknown module",
                              json_pack("{s:[{s:s, s:s}]}", "errors", "pointer", pointer, "detail", "not a module of this product"),
                              "Product %s has no module %s.", p->code, m);
        }
        for (size_t k = 0; k < p->nfeatures; k++) {
            const ft_feature_t *f = &p->features[k];
            int in_plan = 0;
            for (size_t j = 0; j < plan->nitems && !in_plan; j++)
                in_plan = strcmp(plan->items[j].feature, f->code) == 0;
            if (strcmp(f->module, m) == 0 && !in_plan)
                add(o, f->code, 1, 0, 0);
        }
    }
    int rc = FT_OK;
    if (json_is_object(custom)) {
        const char *key;
        json_object_foreach(custom, key, v)
        {
            char pointer[96];
            snprintf(pointer, sizeof(pointer), "#/customFeatures/%.80s", key);
            if ((rc = custom_value(p, key, v, pointer, o, problem)) != FT_OK)
                return rc;
        }
    } else if (json_is_array(custom)) {
        json_array_foreach(custom, i, v)
        {
            char pointer[48];
            snprintf(pointer, sizeof(pointer), "#/customFeatures/%zu", i);
            const char *code = NULL;
            static const char *const names[] = {"code", "featureCode", "key", "feature"};
            for (size_t k = 0; k < 4 && code == NULL; k++)
                code = json_string_value(json_object_get(v, names[k]));
            json_t *val = json_object_get(v, "value");
            if (val == NULL)
                val = json_object_get(v, "enabled");
            if (val == NULL)
                val = json_object_get(v, "limit");
            if ((rc = custom_value(p, code, val, pointer, o, problem)) != FT_OK)
                return rc;
        }
    }
    return FT_OK;
}

typedef struct provision_args {
    ft_instance_spec_t spec;
    ft_job_step_spec_t *steps;
    overrides_t overrides;
    json_t *settings;
    char code[48];
} provision_args_t;

static json_t *encode_provision(ft_op_t *op)
{
    json_t *i = op->out, *job = json_object_get(i, "latest_job");
    return (json_pack("{s:O, s:O, s:O, s:O, s:O}", "tenantInstanceId", json_object_get(i, "id"), "tenantCode",
                              json_object_get(i, "code"), "status", json_object_get(i, "status"), "taskId",
                              job != NULL ? json_object_get(job, "id") : json_null(), "createdAt", json_object_get(i, "created_at")));
}

static int provision_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    provision_args_t *a = op->arg;
    a->spec.overrides = a->overrides.items;
    a->spec.noverrides = a->overrides.n;
    int rc = ft_instance_create(c, &op->call, &a->spec, &op->out, &op->problem, err);
    if (rc == FT_OK) {
        snprintf(op->location, sizeof(op->location), "/api/v1/instances/%s", json_string_value(json_object_get(op->out, "id")));
        snprintf(op->audit_entity, sizeof(op->audit_entity), "%s", json_string_value(json_object_get(op->out, "id")));
    }
    return rc;
}

static void free_provision_args(void *arg)
{
    provision_args_t *a = arg;
    free(a->steps);
    free(a->overrides.items);
    json_decref(a->settings);
    free(a);
}

static void provision(ft_req_t *r)
{
    json_t *b = r->body;
    const char *product = json_string_value(json_object_get(b, "productId"));
    const char *env = environment_of(json_string_value(json_object_get(b, "environment")));
    if (env == NULL) {
        ft_respond_problem(r, 400, "invalid-body", "Invalid request body",
                           json_pack("{s:[{s:s, s:s}]}", "errors", "pointer", "#/environment", "detail",
                                     "must be production, staging, development or sandbox"),
                           "environment must be production, staging, development or sandbox.");
        return;
    }
    ft_generation_t *g = ft_catalog_find(ft_req_catalog(r), product);
    if (g == NULL) {
        ft_respond_problem(r, 422, "unknown-product", "Unknown product",
                           json_pack("{s:[{s:s, s:s}]}", "errors", "pointer", "#/productId", "detail", "no such product is loaded"),
                           "No product %s is loaded.", product);
        return;
    }
    const ft_product_t *p = g->product;
    const ft_plan_t *plan = &p->plans[0];
    provision_args_t *a = ft_mem_calloc(1, sizeof(*a));
    ft_problem_t problem = {0};
    if (build_overrides(p, plan, b, &a->overrides, &problem) != FT_OK) {
        ft_respond_problem_struct(r, &problem);
        free(a->overrides.items);
        free(a);
        return;
    }
    json_t *settings = json_object_get(b, "settings");
    a->settings = settings != NULL ? json_deep_copy(settings) : json_object();
    if (ft_settings_check(g, a->settings, &problem) != FT_OK) {
        ft_respond_problem_struct(r, &problem);
        json_decref(a->settings);
        free(a->overrides.items);
        free(a);
        return;
    }
    /* the old system let the service pick the code: <product>-<6 hex> */
    uuid_t u;
    char uu[37];
    uuid_generate_random(u);
    uuid_unparse_lower(u, uu);
    snprintf(a->code, sizeof(a->code), "%s-%.6s", p->code, uu);
    for (char *c = a->code; *c; c++)
        if (*c == '_')
            *c = '-';
    a->steps = ft_job_kind_steps(&ft_job_kinds[FT_JOB_PROVISION], p, &a->spec.nsteps);
    a->spec.steps = a->steps;
    a->spec.code = a->code;
    a->spec.product = p->code;
    a->spec.plan = plan->code;
    a->spec.plan_version = plan->version;
    a->spec.tier = "standard";
    a->spec.environment = env;
    a->spec.settings = a->settings;
    ft_placement_policy_parse(r->app->config.placement_policy, &a->spec.placement);
    ft_op_t *op = ft_op_new(r);
    snprintf(op->id, sizeof(op->id), "%s", json_string_value(json_object_get(b, "customerId")));
    a->spec.customer_id = op->id;
    op->arg = a;
    op->arg_free = free_provision_args;
    op->encode = encode_provision;
    ft_op_run(r, op, provision_work, 202);
}

static json_t *encode_removal(ft_op_t *op)
{
    json_t *i = op->out, *job = json_object_get(i, "latest_job");
    return (json_pack("{s:O, s:O, s:O, s:O}", "tenantInstanceId", json_object_get(i, "id"), "tenantCode",
                              json_object_get(i, "code"), "status", json_object_get(i, "status"), "taskId",
                              job != NULL ? json_object_get(job, "id") : json_null()));
}

static void deprovision(ft_req_t *r)
{
    ft_op_t *op = ft_op_with_id(r, "tenantInstanceId");
    if (op == NULL)
        return;
    op->encode = encode_removal;
    ft_op_run(r, op, ft_op_deprovision_work, 202);
}

static json_t *encode_features(ft_op_t *op)
{
    json_t *i = op->out;
    return (json_pack("{s:O, s:O, s:O, s:s, s:O}", "tenantInstanceId", json_object_get(i, "id"), "tenantCode",
                              json_object_get(i, "code"), "status", json_object_get(i, "status"), "taskId", op->id2, "updatedAt",
                              json_object_get(i, "updated_at")));
}

/* The instance's product is only known from the database, so the codes are checked in the
 * worker and reported through op->problem. */
static int features_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    const ft_generation_t *g;
    int rc = ft_op_instance_product(c, op, &g, err);
    if (rc != FT_OK)
        return rc;
    json_t *sub = NULL;
    if ((rc = ft_subscription_get(c, &op->call, op->id, &sub, &op->problem, err)) != FT_OK)
        return rc;
    const ft_plan_t *plan = ft_product_plan(g->product, json_string_value(json_object_get(json_object_get(sub, "plan"), "code")));
    json_decref(sub);
    if (plan == NULL)
        plan = &g->product->plans[0];
    overrides_t o = {0};
    if ((rc = build_overrides(g->product, plan, op->body, &o, &op->problem)) != FT_OK) {
        free(o.items);
        return rc;
    }
    size_t n = 0;
    ft_job_step_spec_t *steps = ft_job_kind_steps(&ft_job_kinds[FT_JOB_FEATURES_CHANGED], g->product, &n);
    char job_id[37] = "";
    rc = ft_override_replace_all(c, &op->call, op->id, o.items, o.n, steps, n, job_id, &op->problem, err);
    free(steps);
    free(o.items);
    snprintf(op->invalidate, sizeof(op->invalidate), "%s", op->id);
    snprintf(op->id2, sizeof(op->id2), "%s", job_id);
    if (rc == FT_OK)
        rc = ft_instance_get(c, &op->call, op->id, &op->out, &op->problem, err);
    return rc;
}

static void replace_features(ft_req_t *r)
{
    ft_op_t *op = ft_op_with_id(r, "tenantInstanceId");
    if (op == NULL)
        return;
    op->encode = encode_features;
    ft_op_run(r, op, features_work, 200);
}

/* The API reference's part of each route (see ft_route_doc_t). */
static const ft_route_doc_t doc_post_api_provisioning_provision = {
    .tag = "Compatibility",
    .summary = "Provision (compatibility API)",
    .responses = (const ft_route_response_t[]){{202, "CompatProvisioned", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_delete_api_provisioning_tenantinstanceid = {
    .tag = "Compatibility",
    .summary = "Deprovision (compatibility API)",
    .responses = (const ft_route_response_t[]){{202, "CompatRemoved", NULL, NULL}, {410, "Problem", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_put_api_provisioning_tenantinstanceid_features = {
    .tag = "Compatibility",
    .summary = "Replace feature overrides (compatibility API)",
    .responses = (const ft_route_response_t[]){{200, "CompatFeatures", NULL, NULL}, {0}},
};

void ft_routes_compat(ft_router_t *router)
{
    static const ft_route_t routes[] = {
        {.method = "POST", .pattern = "/api/provisioning/provision", .permission = "instances:create", .action = "instance.create",
         .flags = FT_ROUTE_CHAIN | FT_ROUTE_JSON_BODY | FT_ROUTE_WRITE, .body_schema = provision_schema, .handler = provision,
         .doc = &doc_post_api_provisioning_provision},
        {.method = "DELETE", .pattern = "/api/provisioning/{tenantInstanceId}", .permission = "instances:delete", .action = "instance.deprovision",
         .flags = FT_ROUTE_CHAIN | FT_ROUTE_WRITE, .handler = deprovision, .doc = &doc_delete_api_provisioning_tenantinstanceid},
        {.method = "PUT", .pattern = "/api/provisioning/{tenantInstanceId}/features", .permission = "overrides:write", .action = "override.set",
         .flags = FT_ROUTE_CHAIN | FT_ROUTE_JSON_BODY | FT_ROUTE_WRITE, .body_schema = features_schema,
         .handler = replace_features, .doc = &doc_put_api_provisioning_tenantinstanceid_features},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        ft_router_add(router, &routes[i]);
}
