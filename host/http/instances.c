/*
 * Tenant instances: /api/v1/customers/{id}/instances and /api/v1/instances. Creating one
 * checks the product, plan and settings against the loaded catalog, then creates the
 * instance (a Standard one placed on a pooled database), its subscription and its provisioning
 * job in one transaction.
 */
#include "core/mem.h"
#include "domain/job_kinds.h"
#include "domain/settings.h"
#include "http/op.h"
#include "http/routes.h"
#include "store/instance_store.h"
#include "store/sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char create_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"code\",\"product\",\"plan\"],"
    "\"properties\":{"
    "\"code\":{\"type\":\"string\",\"pattern\":\"^[a-z][a-z0-9-]{0,39}$\"},"
    "\"product\":{\"type\":\"string\",\"pattern\":\"^[a-z][a-z0-9_]{0,30}$\"},"
    "\"plan\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":63},"
    "\"tier\":{\"enum\":[\"standard\",\"enterprise\"],\"default\":\"standard\"},"
    "\"environment\":{\"enum\":[\"production\",\"staging\",\"development\",\"sandbox\"],\"default\":\"production\"},"
    "\"settings\":{\"type\":\"object\"},"
    "\"trial\":{\"type\":\"boolean\"},"
    "\"trial_ends_at\":{\"type\":\"string\",\"format\":\"date-time\"}}}";

/* RFC 3339 UTC for now + days. */
static void days_from_now(unsigned days, char *out, size_t len)
{
    time_t t = time(NULL) + (time_t)days * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* 422 naming the body member at fault. */
static void unprocessable(ft_req_t *r, const char *slug, const char *title, const char *pointer, const char *detail_fmt,
                          const char *a, const char *b)
{
    char detail[256];
    snprintf(detail, sizeof(detail), detail_fmt, a, b);
    ft_respond_problem(r, 422, slug, title, json_pack("{s:[{s:s, s:s}]}", "errors", "pointer", pointer, "detail", detail), "%s",
                       detail);
}

typedef struct create_args {
    ft_instance_spec_t spec;
    ft_job_step_spec_t *steps;
    json_t *settings;
    char trial_ends_at[40];
} create_args_t;

static int create_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    create_args_t *a = op->arg;
    a->spec.customer_id = op->id;
    int rc = ft_instance_create(c, &op->call, &a->spec, &op->out, &op->problem, err);
    if (rc == FT_OK)
        snprintf(op->location, sizeof(op->location), "/api/v1/instances/%s", json_string_value(json_object_get(op->out, "id")));
    return rc;
}

static void free_create_args(void *arg)
{
    create_args_t *a = arg;
    free(a->steps);
    json_decref(a->settings);
    free(a);
}

static void create_instance(ft_req_t *r)
{
    ft_op_t *op = ft_op_with_id(r, "id");
    if (op == NULL)
        return;
    json_t *b = op->body;
    const char *product = json_string_value(json_object_get(b, "product"));
    const char *plan = json_string_value(json_object_get(b, "plan"));
    ft_generation_t *g = ft_catalog_find(op->catalog, product);
    const ft_plan_t *pl = g != NULL ? ft_product_plan(g->product, plan) : NULL;
    if (g == NULL) {
        unprocessable(r, "unknown-product", "Unknown product", "#/product", "no product %s is loaded%s", product, "");
        goto discard;
    }
    if (pl == NULL) {
        unprocessable(r, "unknown-plan", "Unknown plan", "#/plan", "product %s has no plan %s", product, plan);
        goto discard;
    }
    create_args_t *a = ft_mem_calloc(1, sizeof(*a));
    json_t *settings = json_object_get(b, "settings");
    a->settings = settings != NULL ? json_deep_copy(settings) : json_object();
    ft_problem_t problem = {0};
    if (ft_settings_check(g, a->settings, &problem) != FT_OK) {
        ft_respond_problem_struct(r, &problem);
        json_decref(a->settings);
        free(a);
        goto discard;
    }
    const char *ends = json_string_value(json_object_get(b, "trial_ends_at"));
    if (ends != NULL) {
        snprintf(a->trial_ends_at, sizeof(a->trial_ends_at), "%s", ends);
    } else if (json_is_true(json_object_get(b, "trial"))) {
        if (pl->trial_days == 0) {
            json_decref(a->settings);
            free(a);
            unprocessable(r, "no-trial", "Plan has no trial", "#/trial", "plan %s of %s offers no trial", plan, product);
            goto discard;
        }
        days_from_now(pl->trial_days, a->trial_ends_at, sizeof(a->trial_ends_at));
    }
    a->steps = ft_job_kind_steps(&ft_job_kinds[FT_JOB_PROVISION], g->product, &a->spec.nsteps);
    a->spec.steps = a->steps;
    a->spec.code = json_string_value(json_object_get(b, "code"));
    a->spec.product = g->product_code;
    a->spec.plan = pl->code;
    a->spec.plan_version = pl->version;
    a->spec.tier = json_string_value(json_object_get(b, "tier"));
    a->spec.environment = json_string_value(json_object_get(b, "environment"));
    a->spec.settings = a->settings;
    a->spec.trial_ends_at = a->trial_ends_at[0] ? a->trial_ends_at : NULL;
    ft_placement_policy_parse(r->app->config.placement_policy, &a->spec.placement);
    op->arg = a;
    op->arg_free = free_create_args;
    ft_op_run(r, op, create_work, 202);
    return;
discard:
    json_decref(op->body);
    free(op);
}

static int get_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    return ft_instance_get(c, &op->call, op->id, &op->out, &op->problem, err);
}

static void get_instance(ft_req_t *r)
{
    ft_op_t *op = ft_op_with_id(r, "id");
    if (op != NULL)
        ft_op_run(r, op, get_work, 200);
}

typedef struct list_args {
    ft_instance_filter_t f;
    char customer[40], product[40], status[24], environment[24], code[48], cursor[96];
} list_args_t;

static int list_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    list_args_t *a = op->arg;
    return ft_instance_list(c, &op->call, &a->f, &op->out, &op->problem, err);
}

static void list(ft_req_t *r, const char *customer)
{
    list_args_t *a = ft_mem_calloc(1, sizeof(*a));
    const char *qcustomer = NULL;
    if (ft_query_copy(r, "customer_id", a->customer, sizeof(a->customer), &qcustomer) ||
        ft_query_copy(r, "product", a->product, sizeof(a->product), &a->f.product) ||
        ft_query_copy(r, "status", a->status, sizeof(a->status), &a->f.status) ||
        ft_query_copy(r, "environment", a->environment, sizeof(a->environment), &a->f.environment) ||
        ft_query_copy(r, "code", a->code, sizeof(a->code), &a->f.code) ||
        ft_query_copy(r, "cursor", a->cursor, sizeof(a->cursor), &a->f.cursor) || ft_query_limit(r, &a->f.limit)) {
        free(a);
        return;
    }
    if (customer != NULL)
        snprintf(a->customer, sizeof(a->customer), "%s", customer);
    if (customer != NULL || qcustomer != NULL) {
        if (!ft_uuid_valid(a->customer)) {
            ft_respond_bad_param(r, "customer_id", "must be a UUID");
            free(a);
            return;
        }
        a->f.customer_id = a->customer;
    }
    static const char *const statuses[] = {"pending", "provisioning", "active", "failed", "suspended", "deprovisioning", "deleted"};
    if (a->f.status != NULL) {
        int ok = 0;
        for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
            ok |= strcmp(statuses[i], a->f.status) == 0;
        if (!ok) {
            ft_respond_bad_param(r, "status", "must be one of pending, provisioning, active, failed, suspended, deprovisioning, deleted");
            free(a);
            return;
        }
    }
    ft_op_t *op = ft_op_new(r);
    op->arg = a;
    ft_op_run(r, op, list_work, 200);
}

static void list_all(ft_req_t *r)
{
    list(r, NULL);
}

static void list_of_customer(ft_req_t *r)
{
    char id[64];
    if (ft_op_uuid_param(r, "id", id, sizeof(id)) == 0)
        list(r, id);
}

static void remove_instance(ft_req_t *r)
{
    ft_op_t *op = ft_op_with_id(r, "id");
    if (op != NULL)
        ft_op_run(r, op, ft_op_deprovision_work, 202);
}

/* The API reference's part of each route (see ft_route_doc_t). */
/* the filters both instance lists take (a customer's list has the customer in its path) */
#define INSTANCE_FILTERS                                                                                                           \
    {"status", "{\"type\":\"string\"}", NULL}, {"product", "{\"type\":\"string\"}", NULL},                                    \
        {"environment", "{\"type\":\"string\"}", NULL}, {"code", "{\"type\":\"string\"}", NULL}
static const ft_route_doc_t doc_get_customers_id_instances = {
    .tag = "Instances",
    .summary = "List a customer's instances",
    .flags = FT_DOC_PAGE,
    .query = (const ft_route_query_t[]){INSTANCE_FILTERS, {0}},
    .responses = (const ft_route_response_t[]){{200, "Instance", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_post_customers_id_instances = {
    .tag = "Instances",
    .summary = "Create an instance: provisioning runs as a job",
    .responses = (const ft_route_response_t[]){{202, "Instance", NULL, "Accepted; provisioning runs as a job"}, {0}},
};
static const ft_route_doc_t doc_get_instances = {
    .tag = "Instances",
    .summary = "List instances",
    .flags = FT_DOC_PAGE,
    .query = (const ft_route_query_t[]){{"customer_id", "{\"type\":\"string\"}", NULL}, INSTANCE_FILTERS, {0}},
    .responses = (const ft_route_response_t[]){{200, "Instance", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_get_instances_id = {
    .tag = "Instances",
    .summary = "Get an instance",
    .responses =
        (const ft_route_response_t[]){{200, "Instance", NULL, NULL}, {410, "Problem", NULL, "The instance was deleted"}, {0}},
};
static const ft_route_doc_t doc_delete_instances_id = {
    .tag = "Instances",
    .summary = "Deprovision an instance: runs as a job",
    .responses = (const ft_route_response_t[]){{202, "Instance", NULL, "Accepted; deprovisioning runs as a job (`latest_job`)"},
                                               {410, "Problem", NULL, "The instance was deleted"},
                                               {0}},
};

void ft_routes_instances(ft_router_t *router)
{
    static const ft_route_t routes[] = {
        {.method = "GET", .pattern = "/api/v1/customers/{id}/instances", .permission = "instances:read", .flags = FT_ROUTE_CHAIN,
         .handler = list_of_customer, .doc = &doc_get_customers_id_instances},
        {.method = "POST", .pattern = "/api/v1/customers/{id}/instances", .permission = "instances:create", .action = "instance.create",
         .flags = FT_ROUTE_CHAIN | FT_ROUTE_JSON_BODY | FT_ROUTE_WRITE, .body_schema = create_schema, .handler = create_instance,
         .doc = &doc_post_customers_id_instances},
        {.method = "GET", .pattern = "/api/v1/instances", .permission = "instances:read", .flags = FT_ROUTE_CHAIN,
         .handler = list_all, .doc = &doc_get_instances},
        {.method = "GET", .pattern = "/api/v1/instances/{id}", .permission = "instances:read", .flags = FT_ROUTE_CHAIN,
         .handler = get_instance, .doc = &doc_get_instances_id},
        {.method = "DELETE", .pattern = "/api/v1/instances/{id}", .permission = "instances:delete", .action = "instance.deprovision",
         .flags = FT_ROUTE_CHAIN | FT_ROUTE_WRITE, .handler = remove_instance, .doc = &doc_delete_instances_id},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        ft_router_add(router, &routes[i]);
}
