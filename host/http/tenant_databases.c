/*
 * /api/v1/tenant-databases: the pooled databases of the Standard tier, their capacity and load.
 * Registering one checks, off the loop, that it is reachable with its URL's credentials and
 * prepares the tenant role there; the URL's password is stored, never shown.
 */
#include "core/mem.h"
#include "http/op.h"
#include "http/routes.h"
#include "infra/tenant_db.h"
#include "store/sql.h"
#include "store/tenant_database_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char create_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"name\",\"url\",\"capacity\"],"
    "\"properties\":{"
    "\"name\":{\"type\":\"string\",\"pattern\":\"^[a-z][a-z0-9-]{0,62}$\"},"
    "\"url\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":2000},"
    "\"capacity\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":2147483647}}}";

static const char update_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"minProperties\":1,"
    "\"properties\":{"
    "\"capacity\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":2147483647},"
    "\"status\":{\"enum\":[\"open\",\"closed\"]}}}";

static int list_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    return ft_tenant_database_list(c, op->app->config.placement_policy, &op->out, err);
}

static void list_databases(ft_req_t *r)
{
    ft_op_run(r, ft_op_new(r), list_work, 200);
}

static int get_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    return ft_tenant_database_get(c, op->id, &op->out, &op->problem, err);
}

static void get_database(ft_req_t *r)
{
    ft_op_t *op = ft_op_with_id(r, "id");
    if (op != NULL)
        ft_op_run(r, op, get_work, 200);
}

typedef struct create_args {
    char display[512];
} create_args_t;

/* Blocking: the probe waits for the database (bounded by the connect timeout). */
static int create_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    create_args_t *a = op->arg;
    const char *name = ft_json_str(op->body, "name"), *url = ft_json_str(op->body, "url");
    ft_error_t perr = {0};
    if (ft_tenant_db_probe(url, &perr) != FT_OK)
        return ft_problem(&op->problem, FT_EINVAL, 422, "tenant-database-unreachable", "Tenant database unreachable",
                          json_pack("{s:[{s:s, s:s}]}", "errors", "pointer", "#/url", "detail", perr.message),
                          "Database %s cannot serve as a pooled tenant database: %s", a->display, perr.message);
    long long capacity = (long long)json_integer_value(json_object_get(op->body, "capacity"));
    int rc = ft_tenant_database_create(c, name, url, a->display, capacity, &op->out, &op->problem, err);
    if (rc == FT_OK)
        snprintf(op->location, sizeof(op->location), "/api/v1/tenant-databases/%s", ft_json_str(op->out, "id"));
    return rc;
}

static void create_database(ft_req_t *r)
{
    create_args_t *a = ft_mem_calloc(1, sizeof(*a));
    if (ft_tenant_db_display_url(ft_json_str(r->body, "url"), a->display, sizeof(a->display)) != 0) {
        free(a);
        ft_respond_problem(r, 422, "invalid-database-url", "Not a PostgreSQL URL",
                           json_pack("{s:[{s:s, s:s}]}", "errors", "pointer", "#/url", "detail",
                                     "expected postgresql://user:password@host:port/dbname or a key=value connection string"),
                           "The url is not a PostgreSQL connection URL.");
        return;
    }
    ft_op_t *op = ft_op_new(r);
    op->arg = a;
    ft_op_run(r, op, create_work, 201);
}

static int update_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    json_t *capacity = json_object_get(op->body, "capacity");
    return ft_tenant_database_update(c, op->id, capacity != NULL ? (long long)json_integer_value(capacity) : -1,
                                     ft_json_str(op->body, "status"), &op->out, &op->problem, err);
}

static void update_database(ft_req_t *r)
{
    ft_op_t *op = ft_op_with_id(r, "id");
    if (op != NULL)
        ft_op_run(r, op, update_work, 200);
}

static int delete_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    return ft_tenant_database_delete(c, op->id, &op->problem, err);
}

static void delete_database(ft_req_t *r)
{
    ft_op_t *op = ft_op_with_id(r, "id");
    if (op != NULL)
        ft_op_run(r, op, delete_work, 204);
}

/* The API reference's part of each route (see ft_route_doc_t). */
static const ft_route_doc_t doc_get_tenant_databases = {
    .tag = "Tenant databases",
    .summary = "List the Standard tier's shared databases",
    .responses = (const ft_route_response_t[]){{200, "TenantDatabaseList", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_post_tenant_databases = {
    .tag = "Tenant databases",
    .summary = "Register a shared tenant database",
    .responses = (const ft_route_response_t[]){{201, "TenantDatabase", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_get_tenant_databases_id = {
    .tag = "Tenant databases",
    .summary = "Get a tenant database",
    .responses = (const ft_route_response_t[]){{200, "TenantDatabase", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_patch_tenant_databases_id = {
    .tag = "Tenant databases",
    .summary = "Change a tenant database",
    .responses = (const ft_route_response_t[]){{200, "TenantDatabase", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_delete_tenant_databases_id = {
    .tag = "Tenant databases",
    .summary = "Remove an empty tenant database",
    .responses = (const ft_route_response_t[]){{204, NULL, NULL, "Removed"}, {0}},
};

void ft_routes_tenant_databases(ft_router_t *router)
{
    static const ft_route_t routes[] = {
        {.method = "GET", .pattern = "/api/v1/tenant-databases", .permission = "tenant-databases:read", .flags = FT_ROUTE_CHAIN,
         .handler = list_databases, .doc = &doc_get_tenant_databases},
        {.method = "POST", .pattern = "/api/v1/tenant-databases", .permission = "tenant-databases:write",
         .action = "tenant_database.create", .flags = FT_ROUTE_CHAIN | FT_ROUTE_JSON_BODY | FT_ROUTE_WRITE,
         .body_schema = create_schema, .handler = create_database, .doc = &doc_post_tenant_databases},
        {.method = "GET", .pattern = "/api/v1/tenant-databases/{id}", .permission = "tenant-databases:read", .flags = FT_ROUTE_CHAIN,
         .handler = get_database, .doc = &doc_get_tenant_databases_id},
        {.method = "PATCH", .pattern = "/api/v1/tenant-databases/{id}", .permission = "tenant-databases:write",
         .action = "tenant_database.update", .flags = FT_ROUTE_CHAIN | FT_ROUTE_JSON_BODY | FT_ROUTE_WRITE,
         .body_schema = update_schema, .handler = update_database, .doc = &doc_patch_tenant_databases_id},
        {.method = "DELETE", .pattern = "/api/v1/tenant-databases/{id}", .permission = "tenant-databases:write",
         .action = "tenant_database.delete", .flags = FT_ROUTE_CHAIN | FT_ROUTE_WRITE, .handler = delete_database,
         .doc = &doc_delete_tenant_databases_id},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        ft_router_add(router, &routes[i]);
}
