/*
 * /api/v1/users: platform staff and customer users. Who may grant what: a platform admin any
 * role; a customer admin only customer roles, only in its own customer (the store enforces the
 * customer scope in SQL as well). Passwords are hashed (argon2id) on the worker thread.
 */
#include "auth/crypto.h"
#include "auth/identity.h"
#include "auth/rbac.h"
#include "core/mem.h"
#include "http/op.h"
#include "http/routes.h"
#include "store/sql.h"
#include "store/user_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_PASSWORD 12

#define ROLES_SCHEMA                                                                                                           \
    "{\"type\":\"array\",\"minItems\":1,\"maxItems\":3,\"uniqueItems\":true,\"items\":{\"enum\":[\"platform-admin\","           \
    "\"operator\",\"product-manager\",\"customer-admin\",\"customer-viewer\"]}}"

static const char create_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"email\",\"password\",\"roles\"],\"properties\":{"
    "\"email\":{\"type\":\"string\",\"format\":\"email\",\"maxLength\":254},"
    "\"password\":{\"type\":\"string\",\"minLength\":12,\"maxLength\":1024},"
    "\"display_name\":{\"type\":[\"string\",\"null\"],\"maxLength\":200},"
    "\"customer_id\":{\"type\":[\"string\",\"null\"],\"format\":\"uuid\"},"
    "\"roles\":" ROLES_SCHEMA "}}";

static const char update_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"minProperties\":1,\"properties\":{"
    "\"password\":{\"type\":\"string\",\"minLength\":12,\"maxLength\":1024},"
    "\"display_name\":{\"type\":[\"string\",\"null\"],\"maxLength\":200},"
    "\"status\":{\"enum\":[\"active\",\"disabled\"]},"
    "\"roles\":" ROLES_SCHEMA "}}";

typedef struct user_args {
    char password_hash[FT_PASSWORD_HASH_MAX];
    char password[1025];
    int has_password;
    int64_t revoked_at; /* unix seconds: the change voided the user's access tokens (0: it did not) */
} user_args_t;

/* Roles the caller may hand out: every role for a platform admin, customer roles for a customer
 * admin. Answers 403 and returns -1 otherwise; also checks the roles fit the user's scope
 * (customer_user 1: a customer's user, 0: staff, -1: not known here). */
static int may_grant(ft_req_t *r, json_t *roles, int customer_user)
{
    unsigned want = ft_roles_from_json(roles);
    if (roles == NULL)
        return 0;
    unsigned grantable = (r->principal.roles & FT_ROLE_PLATFORM_ADMIN) ? ~0u
                         : (r->principal.roles & FT_ROLE_CUSTOMER_ADMIN) ? FT_ROLES_CUSTOMER
                                                                         : 0;
    if ((want & ~grantable) != 0) {
        ft_respond_problem(r, 403, "role-not-grantable", "Role not grantable", NULL,
                           "Your credential may not grant the roles asked for (a customer admin grants customer roles only).");
        return -1;
    }
    if (customer_user >= 0 && (customer_user ? (want & ~FT_ROLES_CUSTOMER) != 0 : (want & ~FT_ROLES_STAFF) != 0)) {
        ft_respond_problem(r, 422, "roles-do-not-fit", "Roles do not fit the user",
                           json_pack("{s:[{s:s, s:s}]}", "errors", "pointer", "#/roles", "detail", "do not fit the user's scope"),
                           "%s", customer_user ? "A customer's user holds customer roles only (customer-admin, customer-viewer)."
                                               : "Platform staff hold staff roles only (platform-admin, operator, product-manager).");
        return -1;
    }
    return 0;
}

static int hash_password(ft_op_t *op, ft_error_t *err)
{
    user_args_t *a = op->arg;
    if (!a->has_password)
        return FT_OK;
    int rc = ft_password_hash(a->password, a->password_hash, sizeof(a->password_hash), err);
    memset(a->password, 0, sizeof(a->password));
    return rc;
}

static int create_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    user_args_t *a = op->arg;
    int rc = hash_password(op, err);
    if (rc != FT_OK)
        return rc;
    json_t *in = json_deep_copy(op->body);
    json_object_del(in, "password");
    rc = ft_user_create(c, &op->call, in, a->password_hash, &op->out, &op->problem, err);
    json_decref(in);
    if (rc == FT_OK)
        snprintf(op->location, sizeof(op->location), "/api/v1/users/%s", json_string_value(json_object_get(op->out, "id")));
    return rc;
}

static user_args_t *take_password(ft_req_t *r)
{
    user_args_t *a = ft_mem_calloc(1, sizeof(*a));
    const char *pw = json_string_value(json_object_get(r->body, "password"));
    if (pw != NULL) {
        snprintf(a->password, sizeof(a->password), "%s", pw);
        a->has_password = 1;
    }
    return a;
}

static void create_user(ft_req_t *r)
{
    json_t *body = r->body;
    if (ft_op_own_customer(r, "customer_id") != 0)
        return;
    int customer_user = r->principal.customer_id[0] != '\0' || json_is_string(json_object_get(body, "customer_id"));
    if (may_grant(r, json_object_get(body, "roles"), customer_user) != 0)
        return;
    ft_op_t *op = ft_op_new(r);
    op->arg = take_password(r);
    /* the password never reaches the op's copy of the body kept for audit and replay */
    ft_op_run(r, op, create_work, 201);
}

static int get_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    return ft_user_get(c, &op->call, op->id, &op->out, &op->problem, err);
}

static void get_user(ft_req_t *r)
{
    ft_op_t *op = ft_op_with_id(r, "id");
    if (op != NULL)
        ft_op_run(r, op, get_work, 200);
}

/* Whether this transaction voided the user's access tokens (ft_user_revocations' trigger), kept
 * for revoked_here. */
static int note_revocation(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    user_args_t *a = op->arg;
    const char *params[] = {op->id};
    PGresult *res = NULL;
    int rc = ft_sql(c, "reading the token revocation",
                    "SELECT floor(extract(epoch FROM not_before))::bigint FROM ft_user_revocations "
                    "WHERE user_id = $1 AND not_before >= transaction_timestamp()",
                    1, params, &res, err);
    if (rc == FT_OK && PQntuples(res) == 1)
        a->revoked_at = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return rc;
}

/* After the commit: this host stops accepting the user's older access tokens at once (the
 * NOTIFY tells every host, this one too, a moment later). */
static void revoked_here(ft_req_t *r, ft_op_t *op, int ok)
{
    user_args_t *a = op->arg;
    if (ok && a->revoked_at != 0 && r->app->identity != NULL)
        ft_identity_user_revoked(r->app->identity, op->id, a->revoked_at);
}

static int update_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    user_args_t *a = op->arg;
    ft_user_auth_t u;
    int rc = ft_user_auth_by_id(c, &op->call, op->id, &u, err);
    if (rc == FT_ENOTFOUND)
        return ft_problem(&op->problem, FT_ENOTFOUND, 404, "user-not-found", "User not found", json_pack("{s:s}", "user_id", op->id),
                          "No user %s.", op->id);
    if (rc != FT_OK)
        return rc;
    /* the new roles must fit the user as it is */
    json_t *roles = json_object_get(op->body, "roles");
    unsigned want = ft_roles_from_json(roles);
    if (roles != NULL && (u.customer_id[0] ? (want & ~FT_ROLES_CUSTOMER) : (want & ~FT_ROLES_STAFF)) != 0)
        return ft_problem(&op->problem, FT_EINVAL, 422, "roles-do-not-fit", "Roles do not fit the user",
                          json_pack("{s:[{s:s, s:s}]}", "errors", "pointer", "#/roles", "detail", "do not fit the user's scope"),
                          "%s", u.customer_id[0] ? "A customer's user holds customer roles only." : "Platform staff hold staff roles only.");
    if ((rc = hash_password(op, err)) != FT_OK)
        return rc;
    json_t *in = json_deep_copy(op->body);
    json_object_del(in, "password");
    rc = ft_user_update(c, &op->call, op->id, in, a->has_password ? a->password_hash : NULL, &op->out, &op->problem, err);
    json_decref(in);
    return rc == FT_OK ? note_revocation(c, op, err) : rc;
}

static void update_user(ft_req_t *r)
{
    /* whether the roles fit the user is checked against the user itself, in update_work: a
     * platform admin may change a customer user's roles */
    if (may_grant(r, json_object_get(r->body, "roles"), -1) != 0)
        return;
    ft_op_t *op = ft_op_with_id(r, "id");
    if (op == NULL)
        return;
    op->arg = take_password(r);
    op->after = revoked_here;
    ft_op_run(r, op, update_work, 200);
}

static int delete_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    ft_user_auth_t u;
    if (ft_user_auth_by_id(c, &op->call, op->id, &u, err) == FT_OK)
        snprintf(op->audit_customer, sizeof(op->audit_customer), "%s", u.customer_id); /* the row outlives the user */
    int rc = ft_user_delete(c, &op->call, op->id, &op->problem, err);
    return rc == FT_OK ? note_revocation(c, op, err) : rc;
}

static void delete_user(ft_req_t *r)
{
    char id[64];
    if (ft_op_uuid_param(r, "id", id, sizeof(id)) != 0)
        return;
    if (strncmp(r->principal.subject, "user:", 5) == 0 && strcmp(r->principal.subject + 5, id) == 0) {
        ft_respond_problem(r, 409, "cannot-delete-self", "Cannot delete yourself", NULL,
                           "A user cannot delete itself; ask another administrator.");
        return;
    }
    ft_op_t *op = ft_op_with_id(r, "id");
    if (op == NULL)
        return;
    op->arg = ft_mem_calloc(1, sizeof(user_args_t));
    op->after = revoked_here;
    ft_op_run(r, op, delete_work, 204);
}

typedef struct list_args {
    char customer_id[40], cursor[96];
    const char *customer, *cur;
    int limit;
} list_args_t;

static int list_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    list_args_t *a = op->arg;
    return ft_user_list(c, &op->call, a->customer, a->cur, a->limit, &op->out, &op->problem, err);
}

static void list_users(ft_req_t *r)
{
    list_args_t *a = ft_mem_calloc(1, sizeof(*a));
    if (ft_query_uuid(r, "customer_id", a->customer_id, sizeof(a->customer_id), &a->customer) ||
        ft_query_copy(r, "cursor", a->cursor, sizeof(a->cursor), &a->cur) || ft_query_limit(r, &a->limit)) {
        free(a);
        return;
    }
    ft_op_t *op = ft_op_new(r);
    op->arg = a;
    ft_op_run(r, op, list_work, 200);
}

/* The API reference's part of each route (see ft_route_doc_t). */
static const ft_route_doc_t doc_get_users = {
    .tag = "Users",
    .summary = "List users",
    .flags = FT_DOC_PAGE,
    .responses = (const ft_route_response_t[]){{200, "User", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_post_users = {
    .tag = "Users",
    .summary = "Create a user",
    .responses = (const ft_route_response_t[]){{201, "User", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_get_users_id = {
    .tag = "Users",
    .summary = "Get a user",
    .responses = (const ft_route_response_t[]){{200, "User", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_patch_users_id = {
    .tag = "Users",
    .summary = "Change a user",
    .responses = (const ft_route_response_t[]){{200, "User", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_delete_users_id = {
    .tag = "Users",
    .summary = "Delete a user",
    .responses = (const ft_route_response_t[]){{204, NULL, NULL, "Deleted"}, {0}},
};

void ft_routes_users(ft_router_t *router)
{
    static const ft_route_t routes[] = {
        {.method = "GET", .pattern = "/api/v1/users", .permission = "users:read", .flags = FT_ROUTE_CHAIN, .handler = list_users,
         .doc = &doc_get_users},
        {.method = "POST", .pattern = "/api/v1/users", .permission = "users:write", .action = "user.create",
         .flags = FT_ROUTE_CHAIN | FT_ROUTE_JSON_BODY | FT_ROUTE_WRITE, .body_schema = create_schema, .handler = create_user,
         .doc = &doc_post_users},
        {.method = "GET", .pattern = "/api/v1/users/{id}", .permission = "users:read", .flags = FT_ROUTE_CHAIN, .handler = get_user,
         .doc = &doc_get_users_id},
        {.method = "PATCH", .pattern = "/api/v1/users/{id}", .permission = "users:write", .action = "user.update",
         .flags = FT_ROUTE_CHAIN | FT_ROUTE_JSON_BODY | FT_ROUTE_WRITE, .body_schema = update_schema, .handler = update_user,
         .doc = &doc_patch_users_id},
        {.method = "DELETE", .pattern = "/api/v1/users/{id}", .permission = "users:write", .action = "user.delete",
         .flags = FT_ROUTE_CHAIN | FT_ROUTE_WRITE, .handler = delete_user, .doc = &doc_delete_users_id},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        ft_router_add(router, &routes[i]);
}
