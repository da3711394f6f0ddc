/*
 * /api/v1/customers: the legal, paying entities. Bodies are validated by the routes' JSON
 * Schemas before the handlers run.
 */
#include "core/mem.h"
#include "http/op.h"
#include "http/routes.h"
#include "store/customer_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONTACT_SCHEMA                                                                                                        \
    "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"                                                    \
    "\"name\":{\"type\":[\"string\",\"null\"],\"maxLength\":200},"                                                            \
    "\"email\":{\"type\":[\"string\",\"null\"],\"format\":\"email\",\"maxLength\":254},"                                      \
    "\"phone\":{\"type\":[\"string\",\"null\"],\"maxLength\":40,\"pattern\":\"^[+0-9 ()./-]+$\"}}}"

static const char create_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"legal_name\",\"tax_id\",\"country\"],"
    "\"properties\":{"
    "\"legal_name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200,\"pattern\":\"[^ ]\"},"
    "\"tax_id\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":64,\"pattern\":\"^[A-Za-z0-9./-]+$\"},"
    "\"country\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{2}$\"},"
    "\"contact\":" CONTACT_SCHEMA ","
    "\"status\":{\"enum\":[\"active\",\"suspended\"]}}}";

static const char update_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"minProperties\":1,"
    "\"properties\":{"
    "\"legal_name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200,\"pattern\":\"[^ ]\"},"
    "\"tax_id\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":64,\"pattern\":\"^[A-Za-z0-9./-]+$\"},"
    "\"country\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{2}$\"},"
    "\"contact\":" CONTACT_SCHEMA ","
    "\"status\":{\"enum\":[\"active\",\"suspended\"]}}}";

static int create_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    int rc = ft_customer_create(c, &op->call, op->body, &op->out, &op->problem, err);
    if (rc == FT_OK)
        snprintf(op->location, sizeof(op->location), "/api/v1/customers/%s", json_string_value(json_object_get(op->out, "id")));
    return rc;
}

static void create_customer(ft_req_t *r)
{
    ft_op_run(r, ft_op_new(r), create_work, 201);
}

static int get_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    return ft_customer_get(c, &op->call, op->id, &op->out, &op->problem, err);
}

static void get_customer(ft_req_t *r)
{
    ft_op_t *op = ft_op_with_id(r, "id");
    if (op != NULL)
        ft_op_run(r, op, get_work, 200);
}

static int update_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    return ft_customer_update(c, &op->call, op->id, op->body, &op->out, &op->problem, err);
}

static void update_customer(ft_req_t *r)
{
    /* a customer edits its own details; its standing (status) is the platform's to set */
    if (r->principal.customer_id[0] != '\0' && json_object_get(r->body, "status") != NULL) {
        ft_respond_problem(r, 403, "forbidden", "Forbidden", json_pack("{s:[{s:s, s:s}]}", "errors", "pointer", "#/status", "detail",
                                                                     "set by platform staff only"),
                           "A customer credential cannot change the customer's status; platform staff do.");
        return;
    }
    ft_op_t *op = ft_op_with_id(r, "id");
    if (op != NULL)
        ft_op_run(r, op, update_work, 200);
}

static int delete_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    return ft_customer_delete(c, &op->call, op->id, &op->problem, err);
}

static void delete_customer(ft_req_t *r)
{
    ft_op_t *op = ft_op_with_id(r, "id");
    if (op != NULL)
        ft_op_run(r, op, delete_work, 204);
}

typedef struct list_args {
    ft_customer_filter_t f;
    char status[16], country[4], q[128], tax_id[80], cursor[96];
} list_args_t;

static int list_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    list_args_t *a = op->arg;
    return ft_customer_list(c, &op->call, &a->f, &op->out, &op->problem, err);
}

static void list_customers(ft_req_t *r)
{
    list_args_t *a = ft_mem_calloc(1, sizeof(*a));
    if (ft_query_copy(r, "status", a->status, sizeof(a->status), &a->f.status) || ft_query_copy(r, "country", a->country, sizeof(a->country), &a->f.country) ||
        ft_query_copy(r, "q", a->q, sizeof(a->q), &a->f.q) || ft_query_copy(r, "tax_id", a->tax_id, sizeof(a->tax_id), &a->f.tax_id) ||
        ft_query_copy(r, "cursor", a->cursor, sizeof(a->cursor), &a->f.cursor) || ft_query_limit(r, &a->f.limit)) {
        free(a);
        return;
    }
    if (a->f.status != NULL && strcmp(a->f.status, "active") != 0 && strcmp(a->f.status, "suspended") != 0 &&
        strcmp(a->f.status, "closed") != 0) {
        ft_respond_bad_param(r, "status", "must be active, suspended or closed");
        free(a);
        return;
    }
    ft_op_t *op = ft_op_new(r);
    op->arg = a;
    ft_op_run(r, op, list_work, 200);
}

/* The API reference's part of each route (see ft_route_doc_t). */
static const ft_route_doc_t doc_get_customers = {
    .tag = "Customers",
    .summary = "List customers",
    .flags = FT_DOC_PAGE,
    .query = (const ft_route_query_t[]){{"status", "{\"enum\":[\"active\",\"suspended\",\"closed\"]}", NULL},
                                        {"country", "{\"type\":\"string\"}", "ISO 3166-1 alpha-2"},
                                        {"q", "{\"type\":\"string\"}", "part of the legal name"},
                                        {"tax_id", "{\"type\":\"string\"}", NULL},
                                        {0}},
    .responses = (const ft_route_response_t[]){{200, "Customer", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_post_customers = {
    .tag = "Customers",
    .summary = "Create a customer",
    .responses = (const ft_route_response_t[]){{201, "Customer", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_get_customers_id = {
    .tag = "Customers",
    .summary = "Get a customer",
    .responses = (const ft_route_response_t[]){{200, "Customer", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_patch_customers_id = {
    .tag = "Customers",
    .summary = "Change a customer",
    .responses = (const ft_route_response_t[]){{200, "Customer", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_delete_customers_id = {
    .tag = "Customers",
    .summary = "Delete a customer with nothing live left",
    .responses = (const ft_route_response_t[]){{204, NULL, NULL, "Deleted"},
                                               {409, "Problem", NULL, "The customer still has live instances, jobs, keys or users"},
                                               {0}},
};

void ft_routes_customers(ft_router_t *router)
{
    static const ft_route_t routes[] = {
        {.method = "GET", .pattern = "/api/v1/customers", .permission = "customers:read", .flags = FT_ROUTE_CHAIN,
         .handler = list_customers, .doc = &doc_get_customers},
        {.method = "POST", .pattern = "/api/v1/customers", .permission = "customers:create", .action = "customer.create",
         .flags = FT_ROUTE_CHAIN | FT_ROUTE_JSON_BODY | FT_ROUTE_WRITE, .body_schema = create_schema, .handler = create_customer,
         .doc = &doc_post_customers},
        {.method = "GET", .pattern = "/api/v1/customers/{id}", .permission = "customers:read", .flags = FT_ROUTE_CHAIN,
         .handler = get_customer, .doc = &doc_get_customers_id},
        {.method = "PATCH", .pattern = "/api/v1/customers/{id}", .permission = "customers:update", .action = "customer.update",
         .flags = FT_ROUTE_CHAIN | FT_ROUTE_JSON_BODY | FT_ROUTE_WRITE, .body_schema = update_schema, .handler = update_customer,
         .doc = &doc_patch_customers_id},
        {.method = "DELETE", .pattern = "/api/v1/customers/{id}", .permission = "customers:delete", .action = "customer.delete",
         .flags = FT_ROUTE_CHAIN | FT_ROUTE_WRITE, .handler = delete_customer, .doc = &doc_delete_customers_id},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        ft_router_add(router, &routes[i]);
}
