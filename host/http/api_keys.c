/*
 * /api/v1/api-keys: keys for services and child apps. The key itself is in the creation answer
 * and nowhere else (not in the database, not in the idempotency record, not in the audit log).
 * Scopes: unscoped keys hold staff roles; customer keys customer roles; an instance key is a
 * child app's and holds the child-app role only.
 */
#include "auth/identity.h"
#include "auth/rbac.h"
#include "core/mem.h"
#include "http/op.h"
#include "http/routes.h"
#include "store/sql.h"
#include "store/credential_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char create_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"name\",\"roles\"],\"properties\":{"
    "\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200},"
    "\"roles\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":3,\"uniqueItems\":true,\"items\":{\"enum\":[\"platform-admin\","
    "\"operator\",\"product-manager\",\"customer-admin\",\"customer-viewer\",\"child-app\"]}},"
    "\"customer_id\":{\"type\":[\"string\",\"null\"],\"format\":\"uuid\"},"
    "\"instance_id\":{\"type\":[\"string\",\"null\"],\"format\":\"uuid\"},"
    "\"expires_at\":{\"type\":[\"string\",\"null\"],\"format\":\"date-time\"}}}";

typedef struct key_args {
    char *full; /* the key, shown once */
    char prefix[FT_API_KEY_PREFIX_LEN + 1];
    unsigned char hash[32];
} key_args_t;

static void free_key_args(key_args_t *a)
{
    if (a->full != NULL) {
        memset(a->full, 0, strlen(a->full));
        free(a->full);
    }
}

static int create_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    key_args_t *a = op->arg;
    int rc = ft_api_key_create(c, &op->call, op->body, a->prefix, a->hash, &op->out, &op->problem, err);
    if (rc == FT_OK)
        snprintf(op->location, sizeof(op->location), "/api/v1/api-keys/%s", json_string_value(json_object_get(op->out, "id")));
    return rc;
}

/* Adds the key to the answer after the idempotency record and the audit row took theirs. */
static void reveal(ft_req_t *r, ft_op_t *op, int ok)
{
    key_args_t *a = op->arg;
    if (ok && !op->replayed && a->full != NULL && op->out != NULL)
        json_object_set_new(op->out, "key", json_string(a->full));
    free_key_args(a);
}

static void create_key(ft_req_t *r)
{
    json_t *b = r->body;
    if (ft_op_own_customer(r, "customer_id") != 0)
        return;
    unsigned roles = ft_roles_from_json(json_object_get(b, "roles"));
    const char *customer = r->principal.customer_id[0] ? r->principal.customer_id : json_string_value(json_object_get(b, "customer_id"));
    const char *instance = json_string_value(json_object_get(b, "instance_id"));
    unsigned grantable = (r->principal.roles & FT_ROLE_PLATFORM_ADMIN) ? ~0u
                         : (r->principal.roles & FT_ROLE_CUSTOMER_ADMIN) ? (FT_ROLES_CUSTOMER | FT_ROLE_CHILD_APP)
                                                                         : 0;
    if ((roles & ~grantable) != 0) {
        ft_respond_problem(r, 403, "role-not-grantable", "Role not grantable", NULL,
                           "Your credential may not grant the roles asked for (a customer admin grants customer roles and "
                           "child-app only).");
        return;
    }
    const char *misfit = NULL;
    if ((roles & FT_ROLE_CHILD_APP) && (roles != FT_ROLE_CHILD_APP || instance == NULL))
        misfit = "child-app is a key of its own, bound to one instance: give instance_id and no other role";
    else if (instance != NULL && roles != FT_ROLE_CHILD_APP)
        misfit = "a key bound to an instance holds the child-app role only";
    else if ((roles & FT_ROLES_STAFF) && (customer != NULL || (roles & ~FT_ROLES_STAFF)))
        misfit = "staff roles belong to unscoped keys: no customer_id, no customer roles";
    else if ((roles & FT_ROLES_CUSTOMER) && customer == NULL)
        misfit = "customer roles need the key's customer_id";
    if (misfit != NULL) {
        ft_respond_problem(r, 422, "invalid-key-scope", "Roles do not fit the key's scope",
                           json_pack("{s:[{s:s, s:s}]}", "errors", "pointer", "#/roles", "detail", misfit), "%s.", misfit);
        return;
    }
    key_args_t *a = ft_mem_calloc(1, sizeof(*a));
    ft_error_t err = {0};
    if (ft_api_key_make(&a->full, a->prefix, a->hash, &err) != FT_OK) {
        free(a);
        ft_respond_internal(r, 500, &err);
        return;
    }
    ft_op_t *op = ft_op_new(r);
    op->arg = a;
    op->after = reveal;
    ft_op_run(r, op, create_work, 201);
}

static int get_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    return ft_api_key_get(c, &op->call, op->id, &op->out, &op->problem, err);
}

static void get_key(ft_req_t *r)
{
    ft_op_t *op = ft_op_with_id(r, "id");
    if (op != NULL)
        ft_op_run(r, op, get_work, 200);
}

static int revoke_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    return ft_api_key_revoke(c, &op->call, op->id, &op->out, op->id2, &op->problem, err);
}

/* This host forgets the key at once; the others hear the database's NOTIFY. */
static void forget(ft_req_t *r, ft_op_t *op, int ok)
{
    if (ok && op->id2[0] != '\0' && r->app->identity != NULL)
        ft_identity_key_forget(r->app->identity, op->id2);
}

static void revoke_key(ft_req_t *r)
{
    ft_op_t *op = ft_op_with_id(r, "id");
    if (op == NULL)
        return;
    op->after = forget;
    ft_op_run(r, op, revoke_work, 200);
}

typedef struct list_args {
    char customer_id[40], cursor[96], revoked[8];
    const char *customer, *cur, *rev;
    int limit;
} list_args_t;

static int list_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    list_args_t *a = op->arg;
    return ft_api_key_list(c, &op->call, a->customer, a->rev != NULL && strcmp(a->rev, "true") == 0, a->cur, a->limit, &op->out,
                           &op->problem, err);
}

static void list_keys(ft_req_t *r)
{
    list_args_t *a = ft_mem_calloc(1, sizeof(*a));
    if (ft_query_uuid(r, "customer_id", a->customer_id, sizeof(a->customer_id), &a->customer) ||
        ft_query_copy(r, "cursor", a->cursor, sizeof(a->cursor), &a->cur) ||
        ft_query_copy(r, "include_revoked", a->revoked, sizeof(a->revoked), &a->rev) || ft_query_limit(r, &a->limit)) {
        free(a);
        return;
    }
    if (a->rev != NULL && strcmp(a->rev, "true") != 0 && strcmp(a->rev, "false") != 0) {
        ft_respond_bad_param(r, "include_revoked", "must be true or false");
        free(a);
        return;
    }
    ft_op_t *op = ft_op_new(r);
    op->arg = a;
    ft_op_run(r, op, list_work, 200);
}

/* The API reference's part of each route (see ft_route_doc_t). */
static const ft_route_doc_t doc_get_api_keys = {
    .tag = "API keys",
    .summary = "List API keys",
    .flags = FT_DOC_PAGE,
    .query = (const ft_route_query_t[]){{"include_revoked", "{\"type\":\"string\",\"enum\":[\"true\",\"false\"]}", NULL}, {0}},
    .responses = (const ft_route_response_t[]){{200, "ApiKey", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_post_api_keys = {
    .tag = "API keys",
    .summary = "Create an API key (its secret is shown once)",
    .responses = (const ft_route_response_t[]){{201, "ApiKeyCreated", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_get_api_keys_id = {
    .tag = "API keys",
    .summary = "Get an API key",
    .responses = (const ft_route_response_t[]){{200, "ApiKey", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_delete_api_keys_id = {
    .tag = "API keys",
    .summary = "Revoke an API key",
    .responses = (const ft_route_response_t[]){{200, "ApiKey", NULL, NULL}, {0}},
};

void ft_routes_api_keys(ft_router_t *router)
{
    static const ft_route_t routes[] = {
        {.method = "GET", .pattern = "/api/v1/api-keys", .permission = "api-keys:read", .flags = FT_ROUTE_CHAIN, .handler = list_keys,
         .doc = &doc_get_api_keys},
        {.method = "POST", .pattern = "/api/v1/api-keys", .permission = "api-keys:write", .action = "api_key.create",
         .flags = FT_ROUTE_CHAIN | FT_ROUTE_JSON_BODY | FT_ROUTE_WRITE, .body_schema = create_schema, .handler = create_key,
         .doc = &doc_post_api_keys},
        {.method = "GET", .pattern = "/api/v1/api-keys/{id}", .permission = "api-keys:read", .flags = FT_ROUTE_CHAIN, .handler = get_key,
         .doc = &doc_get_api_keys_id},
        {.method = "DELETE", .pattern = "/api/v1/api-keys/{id}", .permission = "api-keys:write", .action = "api_key.revoke",
         .flags = FT_ROUTE_CHAIN | FT_ROUTE_WRITE, .handler = revoke_key, .doc = &doc_delete_api_keys_id},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        ft_router_add(router, &routes[i]);
}
