/*
 * /api/v1/auth: sign-in, token refresh (rotating, with reuse detection), sign-out, who am I,
 * and the signing keys (JWKS at /.well-known/jwks.json; rotation and retirement for admins).
 *
 * Sign-in answers the same 401 for an unknown address, a disabled user and a wrong password,
 * and spends the same argon2id work on each, so the answer does not tell which addresses exist.
 * Failed attempts lock the address (FT_LOGIN_MAX_FAILURES within FT_LOGIN_LOCKOUT_S): 429 with
 * Retry-After, whether or not the address belongs to a user.
 */
#include "auth/crypto.h"
#include "auth/identity.h"
#include "auth/rbac.h"
#include "core/mem.h"
#include "http/audit.h"
#include "http/op.h"
#include "http/routes.h"
#include "infra/log.h"
#include "store/audit_store.h"
#include "store/credential_store.h"
#include "store/sql.h"
#include "store/user_store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REFRESH_PREFIX "ftr_"
#define REFRESH_RANDOM_BYTES 32

static const char login_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"email\",\"password\"],\"properties\":{"
    "\"email\":{\"type\":\"string\",\"minLength\":3,\"maxLength\":254},"
    "\"password\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":1024}}}";

static const char refresh_schema[] =
    "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"refresh_token\"],\"properties\":{"
    "\"refresh_token\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200}}}";

/* ---- shared pieces */

typedef struct auth_op {
    ft_app_t *app;
    char request_id[FT_REQUEST_ID_MAX + 1], trace_id[FT_TRACE_ID_LEN + 1], client_ip[48];
    char email[256], password[1025], refresh_in[201];
    /* results */
    int status;          /* HTTP status to answer */
    const char *slug, *title;
    char detail[256];
    long retry_after;
    json_t *out;
} auth_op_t;

static auth_op_t *auth_op_new(ft_req_t *r)
{
    auth_op_t *a = ft_mem_calloc(1, sizeof(*a));
    a->app = r->app;
    snprintf(a->request_id, sizeof(a->request_id), "%s", r->request_id);
    memcpy(a->trace_id, r->trace.trace_id, sizeof(a->trace_id));
    snprintf(a->client_ip, sizeof(a->client_ip), "%s", ft_req_client_ip(r));
    r->audited = 1; /* these handlers write their own audit rows */
    return a;
}

static void auth_op_free(auth_op_t *a)
{
    json_decref(a->out);
    memset(a->password, 0, sizeof(a->password));
    memset(a->refresh_in, 0, sizeof(a->refresh_in));
    free(a);
}

static void refuse(auth_op_t *a, int status, const char *slug, const char *title, const char *detail)
{
    a->status = status;
    a->slug = slug;
    a->title = title;
    snprintf(a->detail, sizeof(a->detail), "%s", detail);
}

static void audit(PGconn *c, auth_op_t *a, const char *actor, const char *action, const char *user_id, const char *customer_id,
                  const char *result, const char *reason, json_t *details)
{
    ft_error_t err = {0};
    ft_audit_entry_t e = {.actor = actor,
                          .action = action,
                          .entity_type = "user",
                          .entity_id = user_id != NULL && *user_id ? user_id : NULL,
                          .customer_id = customer_id != NULL && *customer_id ? customer_id : NULL,
                          .result = result,
                          .reason = reason,
                          .request_id = a->request_id,
                          .client_ip = a->client_ip,
                          .details = details};
    if (ft_audit_write(c, &e, &err) != FT_OK)
        ft_log_traced(FT_LOG_ERROR, a->request_id, a->trace_id, "audit row not written: %s", err.message);
}

/* Issues an access token and a refresh token (in `family`, or a new one) for u into a->out. */
static int issue_tokens(PGconn *c, auth_op_t *a, const ft_user_auth_t *u, const char *family, const char *parent, ft_error_t *err)
{
    unsigned char raw[REFRESH_RANDOM_BYTES], hash[32];
    char refresh[4 + FT_BASE64URL_LEN(REFRESH_RANDOM_BYTES)], fam[37], id[37];
    if (ft_random_bytes(raw, sizeof(raw)) != FT_OK)
        return ft_error_set(err, FT_EIO, "no randomness for a refresh token");
    memcpy(refresh, REFRESH_PREFIX, 4);
    ft_base64url_encode(raw, sizeof(raw), refresh + 4, sizeof(refresh) - 4);
    ft_sha256(refresh, strlen(refresh), hash);
    const ft_config_t *cfg = &a->app->config;
    int rc = ft_refresh_insert(c, u->id, family, parent, hash, cfg->refresh_token_ttl_s, a->client_ip, fam, id, err);
    if (rc != FT_OK)
        return rc;
    json_t *roles = json_loads(u->roles, 0, NULL);
    char *access = NULL;
    unsigned expires_in = 0;
    rc = ft_identity_issue(a->app->identity, u->id, u->email, u->customer_id, roles, &access, &expires_in, err);
    if (rc == FT_OK) {
        a->out = json_pack("{s:s, s:s, s:i, s:s, s:i, s:{s:s, s:s, s:s?, s:O}}", "access_token", access, "token_type", "Bearer",
                           "expires_in", (json_int_t)expires_in, "refresh_token", refresh, "refresh_expires_in",
                           (json_int_t)cfg->refresh_token_ttl_s, "user", "id", u->id, "email", u->email, "customer_id",
                           u->customer_id[0] ? u->customer_id : NULL, "roles", roles);
        a->status = 200;
    }
    json_decref(roles);
    free(access);
    memset(refresh, 0, sizeof(refresh));
    return rc;
}

/* A hash to verify against when the address is unknown, so every failure costs the same. */
static char dummy_hash[FT_PASSWORD_HASH_MAX];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static void make_dummy(void)
{
    ft_error_t err = {0};
    unsigned char raw[24];
    char pw[40];
    ft_random_bytes(raw, sizeof(raw));
    ft_base64url_encode(raw, sizeof(raw), pw, sizeof(pw));
    if (ft_password_hash(pw, dummy_hash, sizeof(dummy_hash), &err) != FT_OK)
        dummy_hash[0] = '\0';
}

static void answer(ft_req_t *r, void *arg, int status, const ft_error_t *err)
{
    auth_op_t *a = arg;
    if (ft_req_alive(r)) {
        if (status != FT_OK) {
            ft_respond_internal(r, 500, err);
        } else if (a->status >= 400) {
            if (a->retry_after > 0) {
                char v[24];
                snprintf(v, sizeof(v), "%ld", a->retry_after);
                ft_req_add_header(r, "retry-after", v);
            }
            if (a->status == 401)
                ft_req_add_header(r, "www-authenticate", "Bearer realm=\"farutech\"");
            ft_respond_problem(r, a->status, a->slug, a->title, NULL, "%s", a->detail);
        } else if (a->status == 204) {
            ft_respond_empty(r, 204);
        } else {
            ft_req_add_header(r, "cache-control", "no-store");
            ft_respond_json(r, a->status, a->out != NULL ? json_incref(a->out) : json_object());
        }
    }
    auth_op_free(a);
}

/* ---- POST /api/v1/auth/login */

/* The judgement of one attempt, inside the caller's transaction. */
static int login_judge(PGconn *c, auth_op_t *a, json_t *details, ft_error_t *err)
{
    const ft_config_t *cfg = &a->app->config;
    long locked = 0;
    int rc = ft_login_locked_for(c, a->email, cfg->login_max_failures, cfg->login_lockout_s, &locked, err);
    if (rc != FT_OK)
        return rc;
    if (locked > 0) {
        /* no password check while locked: the attempt is refused and recorded */
        rc = ft_login_record(c, a->email, NULL, 0, "locked", a->client_ip, err);
        audit(c, a, "anonymous", "auth.login", NULL, NULL, "denied", "address locked after repeated failures", details);
        refuse(a, 429, "login-locked", "Too many failed sign-ins",
               "Too many failed sign-ins for this address; it is locked for a while. Retry after the time in Retry-After.");
        a->retry_after = locked;
        return rc;
    }
    ft_user_auth_t u;
    memset(&u, 0, sizeof(u));
    rc = ft_user_auth_by_email(c, a->email, &u, err);
    if (rc != FT_OK && rc != FT_ENOTFOUND)
        return rc;
    int known = rc == FT_OK;
    pthread_once(&dummy_once, make_dummy);
    int match = ft_password_verify(known ? u.password_hash : dummy_hash, a->password) == 1;
    const char *why = !known ? "unknown address" : !match ? "wrong password" : !u.active ? "user disabled" : NULL;
    memset(u.password_hash, 0, sizeof(u.password_hash));
    if (why != NULL) {
        rc = ft_login_record(c, a->email, known ? u.id : NULL, 0, why, a->client_ip, err);
        audit(c, a, "anonymous", "auth.login", known ? u.id : NULL, known ? u.customer_id : NULL, "failure", why, details);
        refuse(a, 401, "invalid-credentials", "Invalid credentials", "The e-mail address or the password is wrong.");
        return rc;
    }
    char actor[48];
    snprintf(actor, sizeof(actor), "user:%s", u.id);
    rc = ft_login_record(c, a->email, u.id, 1, NULL, a->client_ip, err);
    if (rc == FT_OK)
        rc = issue_tokens(c, a, &u, NULL, NULL, err);
    if (rc == FT_OK)
        audit(c, a, actor, "auth.login", u.id, u.customer_id, "success", NULL, details);
    return rc;
}

/* One transaction per attempt, serialised per address: attempts at the same address run one
 * after the other, so parallel guesses meet the lock like sequential ones. */
static int login_work(PGconn *c, void *arg, ft_error_t *err)
{
    auth_op_t *a = arg;
    json_t *details = json_pack("{s:s}", "email", a->email);
    int rc = ft_sql_begin(c, err);
    if (rc == FT_OK)
        rc = ft_login_serialize(c, a->email, err);
    if (rc == FT_OK)
        rc = login_judge(c, a, details, err);
    if (rc == FT_OK)
        rc = ft_sql_commit(c, err);
    else
        ft_sql_rollback(c);
    json_decref(details);
    return rc;
}

static void login(ft_req_t *r)
{
    auth_op_t *a = auth_op_new(r);
    snprintf(a->email, sizeof(a->email), "%s", json_string_value(json_object_get(r->body, "email")));
    snprintf(a->password, sizeof(a->password), "%s", json_string_value(json_object_get(r->body, "password")));
    ft_req_defer_db(r, login_work, answer, a);
}

/* ---- POST /api/v1/auth/refresh and /logout */

static int refresh_shape(const char *t)
{
    return strncmp(t, REFRESH_PREFIX, 4) == 0 && strlen(t) == 4 + FT_BASE64URL_LEN(REFRESH_RANDOM_BYTES) - 1;
}

static int refresh_work(PGconn *c, void *arg, ft_error_t *err)
{
    auth_op_t *a = arg;
    unsigned char hash[32];
    ft_sha256(a->refresh_in, strlen(a->refresh_in), hash);
    ft_refresh_verdict_t verdict;
    ft_user_auth_t u;
    char family[37] = "", id[37] = "", actor[48];
    memset(&u, 0, sizeof(u));
    int rc = ft_sql_begin(c, err);
    if (rc == FT_OK)
        rc = ft_refresh_use(c, hash, &verdict, &u, family, id, err);
    if (rc != FT_OK) {
        ft_sql_rollback(c);
        return rc;
    }
    snprintf(actor, sizeof(actor), "user:%s", u.id);
    json_t *details = json_pack("{s:s}", "family", family);
    switch (verdict) {
    case FT_REFRESH_OK:
        rc = issue_tokens(c, a, &u, family, id, err);
        if (rc == FT_OK)
            audit(c, a, actor, "auth.refresh", u.id, u.customer_id, "success", NULL, details);
        break;
    case FT_REFRESH_UNKNOWN:
        refuse(a, 401, "invalid-refresh-token", "Invalid refresh token", "The refresh token is not one this service issued.");
        break;
    case FT_REFRESH_EXPIRED:
        refuse(a, 401, "invalid-refresh-token", "Invalid refresh token", "The refresh token expired; sign in again.");
        audit(c, a, actor, "auth.refresh", u.id, u.customer_id, "failure", "refresh token expired", details);
        break;
    case FT_REFRESH_REVOKED:
        refuse(a, 401, "invalid-refresh-token", "Invalid refresh token", "The refresh token was revoked; sign in again.");
        audit(c, a, actor, "auth.refresh", u.id, u.customer_id, "failure", "refresh token revoked", details);
        break;
    case FT_REFRESH_REUSED:
        refuse(a, 401, "refresh-token-reused", "Refresh token reused",
               "This refresh token was already used; every token of this sign-in is now revoked. Sign in again.");
        audit(c, a, actor, "auth.refresh", u.id, u.customer_id, "denied", "reuse of a rotated refresh token: family revoked", details);
        break;
    case FT_REFRESH_INACTIVE:
        refuse(a, 401, "invalid-refresh-token", "Invalid refresh token", "The user is disabled.");
        audit(c, a, actor, "auth.refresh", u.id, u.customer_id, "failure", "user disabled", details);
        break;
    }
    json_decref(details);
    /* the refusals commit too: a revoked family must stay revoked */
    if (rc == FT_OK)
        rc = ft_sql_commit(c, err);
    else
        ft_sql_rollback(c);
    return rc;
}

static int logout_work(PGconn *c, void *arg, ft_error_t *err)
{
    auth_op_t *a = arg;
    unsigned char hash[32];
    char user[37], actor[48];
    ft_sha256(a->refresh_in, strlen(a->refresh_in), hash);
    int rc = ft_refresh_revoke_family(c, hash, "signed out", user, err);
    if (rc == FT_OK && user[0] != '\0') {
        snprintf(actor, sizeof(actor), "user:%s", user);
        audit(c, a, actor, "auth.logout", user, NULL, "success", NULL, NULL);
    }
    a->status = 204; /* also for a token already revoked or unknown: signing out is idempotent */
    return rc;
}

static int take_refresh(ft_req_t *r, auth_op_t *a)
{
    const char *t = json_string_value(json_object_get(r->body, "refresh_token"));
    if (!refresh_shape(t)) {
        ft_respond_problem(r, 400, "invalid-body", "Invalid request body",
                           json_pack("{s:[{s:s, s:s}]}", "errors", "pointer", "#/refresh_token", "detail", "is not a refresh token"),
                           "#/refresh_token is not a refresh token (they start with ftr_).");
        auth_op_free(a);
        return -1;
    }
    snprintf(a->refresh_in, sizeof(a->refresh_in), "%s", t);
    return 0;
}

static void refresh(ft_req_t *r)
{
    auth_op_t *a = auth_op_new(r);
    if (take_refresh(r, a) == 0)
        ft_req_defer_db(r, refresh_work, answer, a);
}

static void logout(ft_req_t *r)
{
    auth_op_t *a = auth_op_new(r);
    if (take_refresh(r, a) == 0)
        ft_req_defer_db(r, logout_work, answer, a);
}

/* ---- GET /api/v1/auth/me */

/* The permissions the routes name that the credential's roles grant, each once, in route order: what
 * a client (the console) needs to show only the controls it may use. Scope narrows them further. */
static json_t *permissions_of(ft_req_t *r)
{
    json_t *perms = json_array();
    const ft_router_t *rt = r->app->router;
    for (size_t i = 0; i < ft_router_count(rt); i++) {
        const char *p = ft_router_at(rt, i)->permission;
        if (p == NULL || !ft_rbac_allows(r->principal.roles, p))
            continue;
        int seen = 0;
        for (size_t j = 0; j < json_array_size(perms) && !seen; j++)
            seen = strcmp(json_string_value(json_array_get(perms, j)), p) == 0;
        if (!seen)
            json_array_append_new(perms, json_string(p));
    }
    return perms;
}

static void me(ft_req_t *r)
{
    json_t *roles = json_array();
    size_t n;
    const unsigned *all = ft_roles_all(&n);
    for (size_t i = 0; i < n; i++)
        if (r->principal.roles & all[i])
            json_array_append_new(roles, json_string(ft_role_name(all[i])));
    ft_respond_json(r, 200,
                    json_pack("{s:s, s:o, s:o, s:s?, s:s?}", "subject", r->principal.subject, "roles", roles, "permissions",
                              permissions_of(r), "customer_id", r->principal.customer_id[0] ? r->principal.customer_id : NULL,
                              "instance_id", r->principal.instance_id[0] ? r->principal.instance_id : NULL));
}

/* ---- signing keys */

static void jwks(ft_req_t *r)
{
    if (r->app->identity == NULL) {
        ft_respond_problem(r, 503, "unavailable", "Service Unavailable", NULL, "Authentication is not available on this host.");
        return;
    }
    ft_req_add_header(r, "cache-control", "public, max-age=60");
    ft_respond_json(r, 200, ft_identity_jwks(r->app->identity));
}

typedef struct key_op {
    ft_identity_t *identity;
    char actor[128], request_id[FT_REQUEST_ID_MAX + 1], client_ip[48], kid[40];
    int retire;
    json_t *out;
    ft_problem_t problem;
} key_op_t;

static int keys_list_work(PGconn *c, void *arg, ft_error_t *err)
{
    key_op_t *k = arg;
    return ft_signing_keys_list(c, &k->out, err);
}

/* Rotation or retirement, its audit row, then this host's keyring at once (others hear NOTIFY). */
static int keys_change_work(PGconn *c, void *arg, ft_error_t *err)
{
    key_op_t *k = arg;
    json_t *listing = NULL;
    int rc = ft_sql_begin(c, err);
    if (rc == FT_OK)
        rc = k->retire ? ft_signing_key_retire(c, k->kid, ft_jwt_alg_name(ft_identity_alg(k->identity)), &listing, &k->problem, err)
                       : ft_identity_rotate(k->identity, c, k->kid, err);
    ft_audit_entry_t e = {.actor = k->actor,
                          .action = k->retire ? "signing_key.retire" : "signing_key.rotate",
                          .entity_type = "signing_key",
                          .entity_id = k->kid,
                          .result = rc == FT_OK ? "success" : "failure",
                          .reason = rc == FT_OK ? NULL : k->problem.status ? k->problem.detail : "internal error",
                          .request_id = k->request_id,
                          .client_ip = k->client_ip};
    if (rc == FT_OK) {
        rc = ft_audit_write(c, &e, err);
        if (rc == FT_OK)
            rc = ft_sql_commit(c, err);
        else
            ft_sql_rollback(c);
    } else {
        ft_sql_rollback(c);
        ft_error_t ignored = {0};
        ft_audit_write(c, &e, &ignored);
    }
    json_decref(listing);
    if (rc == FT_OK)
        rc = ft_identity_reload_keys(k->identity, c, err);
    if (rc == FT_OK)
        rc = ft_signing_keys_list(c, &k->out, err);
    return rc;
}

static void keys_done(ft_req_t *r, void *arg, int status, const ft_error_t *err)
{
    key_op_t *k = arg;
    if (ft_req_alive(r)) {
        if (status == FT_OK)
            ft_respond_json(r, 200, json_pack("{s:O}", "keys", k->out));
        else if (k->problem.status != 0)
            ft_respond_problem_struct(r, &k->problem);
        else
            ft_respond_internal(r, 500, err);
    }
    json_decref(k->out);
    ft_problem_clear(&k->problem);
    free(k);
}

static key_op_t *key_op_new(ft_req_t *r)
{
    key_op_t *k = ft_mem_calloc(1, sizeof(*k));
    k->identity = r->app->identity;
    snprintf(k->actor, sizeof(k->actor), "%s", r->principal.subject);
    snprintf(k->request_id, sizeof(k->request_id), "%s", r->request_id);
    snprintf(k->client_ip, sizeof(k->client_ip), "%s", ft_req_client_ip(r));
    return k;
}

static void list_keys(ft_req_t *r)
{
    ft_req_defer_db(r, keys_list_work, keys_done, key_op_new(r));
}

static void rotate_key(ft_req_t *r)
{
    r->audited = 1;
    ft_req_defer_db(r, keys_change_work, keys_done, key_op_new(r));
}

static void retire_key(ft_req_t *r)
{
    const char *kid = ft_req_param(r, "kid");
    if (strlen(kid) >= 40) {
        ft_respond_bad_param(r, "kid", "is not a key id");
        return;
    }
    key_op_t *k = key_op_new(r);
    k->retire = 1;
    snprintf(k->kid, sizeof(k->kid), "%s", kid);
    r->audited = 1;
    ft_req_defer_db(r, keys_change_work, keys_done, k);
}

/* The API reference's part of each route (see ft_route_doc_t). */
static const ft_route_doc_t doc_post_auth_login = {
    .tag = "Authentication",
    .summary = "Sign in with email and password",
    .responses = (const ft_route_response_t[]){{200, "Tokens", NULL, NULL},
                                               {401, "Problem", NULL, "Wrong email or password"},
                                               {403, "Problem", NULL, "The user is disabled"},
                                               {0}},
};
static const ft_route_doc_t doc_post_auth_refresh = {
    .tag = "Authentication",
    .summary = "Exchange a refresh token for new tokens",
    .responses = (const ft_route_response_t[]){{200, "Tokens", NULL, NULL},
                                               {401, "Problem", NULL, "The refresh token is invalid, used or expired"},
                                               {0}},
};
static const ft_route_doc_t doc_post_auth_logout = {
    .tag = "Authentication",
    .summary = "Revoke a refresh token",
    .responses = (const ft_route_response_t[]){{204, NULL, NULL, "Signed out"}, {401, "Problem", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_get_auth_me = {
    .tag = "Authentication",
    .summary = "Who the credential is",
    .responses = (const ft_route_response_t[]){{200, "Principal", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_get_auth_signing_keys = {
    .tag = "Authentication",
    .summary = "List JWT signing keys",
    .responses = (const ft_route_response_t[]){{200, "SigningKeyList", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_post_auth_signing_keys = {
    .tag = "Authentication",
    .summary = "Rotate the JWT signing key",
    .responses = (const ft_route_response_t[]){{200, "SigningKeyList", NULL, "The keys after the rotation"}, {0}},
};
static const ft_route_doc_t doc_delete_auth_signing_keys_kid = {
    .tag = "Authentication",
    .summary = "Retire a signing key",
    .responses = (const ft_route_response_t[]){{200, "SigningKeyList", NULL, "The keys after the retirement"}, {0}},
};
static const ft_route_doc_t doc_get_well_known_jwks_json = {
    .tag = "Authentication",
    .summary = "The public keys access tokens verify with (JWKS)",
    .responses = (const ft_route_response_t[]){{200, "Jwks", NULL, NULL}, {0}},
};

void ft_routes_auth(ft_router_t *router)
{
    static const ft_route_t routes[] = {
        {.method = "POST", .pattern = "/api/v1/auth/login", .flags = FT_ROUTE_CHAIN | FT_ROUTE_PUBLIC | FT_ROUTE_JSON_BODY,
         .body_schema = login_schema, .handler = login, .doc = &doc_post_auth_login},
        {.method = "POST", .pattern = "/api/v1/auth/refresh", .flags = FT_ROUTE_CHAIN | FT_ROUTE_PUBLIC | FT_ROUTE_JSON_BODY,
         .body_schema = refresh_schema, .handler = refresh, .doc = &doc_post_auth_refresh},
        {.method = "POST", .pattern = "/api/v1/auth/logout", .flags = FT_ROUTE_CHAIN | FT_ROUTE_PUBLIC | FT_ROUTE_JSON_BODY,
         .body_schema = refresh_schema, .handler = logout, .doc = &doc_post_auth_logout},
        {.method = "GET", .pattern = "/api/v1/auth/me", .permission = "self:read", .flags = FT_ROUTE_CHAIN, .handler = me,
         .doc = &doc_get_auth_me},
        {.method = "GET", .pattern = "/api/v1/auth/signing-keys", .permission = "signing-keys:read", .flags = FT_ROUTE_CHAIN,
         .handler = list_keys, .doc = &doc_get_auth_signing_keys},
        {.method = "POST", .pattern = "/api/v1/auth/signing-keys", .permission = "signing-keys:write", .action = "signing_key.rotate",
         .flags = FT_ROUTE_CHAIN | FT_ROUTE_WRITE, .handler = rotate_key, .doc = &doc_post_auth_signing_keys},
        {.method = "DELETE", .pattern = "/api/v1/auth/signing-keys/{kid}", .permission = "signing-keys:write",
         .action = "signing_key.retire", .flags = FT_ROUTE_CHAIN | FT_ROUTE_WRITE, .handler = retire_key,
         .doc = &doc_delete_auth_signing_keys_kid},
        {.method = "GET", .pattern = "/.well-known/jwks.json", .handler = jwks, .doc = &doc_get_well_known_jwks_json},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        ft_router_add(router, &routes[i]);
}
