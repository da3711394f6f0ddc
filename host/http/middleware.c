/*
 * Routing and the middleware stages. Stages are plain functions in one table so that
 * authentication, rate limiting and auditing have one place each, whatever the route.
 */
#include "http/middleware.h"

#include "auth/crypto.h"
#include "auth/identity.h"
#include "auth/ratelimit.h"
#include "auth/rbac.h"
#include "core/mem.h"
#include "domain/jsonschema.h"
#include "http/audit.h"
#include "infra/log.h"
#include "infra/metrics.h"
#include "store/credential_store.h"

#include <stdio.h>
#include <stdlib.h>

#include <string.h>
#include <strings.h>

/* ---- rate limits */

FT_COUNTER(refusals_total, "ft_ratelimit_refusals_total", "Requests refused with 429 by a rate limit, by scope (ip, credential).",
           FT_LABELS("scope"));

static void too_many(ft_req_t *r, const ft_ratelimit_result_t *res, const char *scope, const char *whose)
{
    ft_counter_inc(ft_metric_series(&refusals_total, scope));
    char v[24];
    unsigned secs = (res->retry_after_ms + 999) / 1000;
    snprintf(v, sizeof(v), "%u", secs > 0 ? secs : 1);
    ft_req_add_header(r, "retry-after", v);
    snprintf(v, sizeof(v), "%u", res->limit);
    ft_req_add_header(r, "ratelimit-limit", v);
    ft_req_add_header(r, "ratelimit-remaining", "0");
    snprintf(v, sizeof(v), "%u", (res->reset_ms + 999) / 1000);
    ft_req_add_header(r, "ratelimit-reset", v);
    ft_respond_problem(r, 429, "rate-limited", "Too Many Requests", json_pack("{s:s, s:i}", "limited_by", whose, "retry_after_ms",
                                                                             (json_int_t)res->retry_after_ms),
                       "Too many requests from this %s; retry in %u s.", whose, secs > 0 ? secs : 1);
}

/* Per client address, before anything else is spent on the request. */
static ft_stage_result_t stage_limit_ip(ft_req_t *r)
{
    if (r->app->limit_ip == NULL)
        return FT_STAGE_NEXT;
    const char *ip = ft_req_client_ip(r);
    ft_ratelimit_result_t res;
    ft_ratelimit_take(r->app->limit_ip, ip, strlen(ip), r->started_ns, &res); /* one clock read per request */
    if (res.allowed)
        return FT_STAGE_NEXT;
    too_many(r, &res, "ip", "client address");
    return FT_STAGE_HALT;
}

/* Per credential, once it is known. */
static ft_stage_result_t stage_limit_credential(ft_req_t *r)
{
    if (r->app->limit_credential == NULL || !r->principal.authenticated)
        return FT_STAGE_NEXT;
    ft_ratelimit_result_t res;
    ft_ratelimit_take(r->app->limit_credential, r->principal.subject, strlen(r->principal.subject), r->started_ns, &res);
    if (res.allowed)
        return FT_STAGE_NEXT;
    too_many(r, &res, "credential", "credential");
    return FT_STAGE_HALT;
}

/* ---- authentication */

/* 401 with the RFC 6750 challenge; `why` is safe to show (no token material). */
static void unauthenticated(ft_req_t *r, const char *why, int invalid_token)
{
    char challenge[320];
    if (invalid_token)
        snprintf(challenge, sizeof(challenge), "Bearer realm=\"farutech\", error=\"invalid_token\", error_description=\"%s\"", why);
    else
        snprintf(challenge, sizeof(challenge), "Bearer realm=\"farutech\"");
    ft_req_add_header(r, "www-authenticate", challenge);
    ft_respond_problem(r, 401, "unauthenticated", "Unauthorized", NULL, "%s", why);
}

/* An authentic access token past its exp: a type of its own and the way to a new one, since the
 * client holds (or held) a refresh token. Nothing about the token itself is echoed. */
static void token_expired(ft_req_t *r)
{
    ft_req_add_header(r, "www-authenticate",
                      "Bearer realm=\"farutech\", error=\"invalid_token\", error_description=\"the access token expired\"");
    ft_respond_problem(r, 401, "token-expired", "Access token expired", NULL,
                       "The access token expired. Get a new one with POST /api/v1/auth/refresh {\"refresh_token\": ...} and the"
                       " refresh token issued with it, or sign in again with POST /api/v1/auth/login.");
}

/* On every authenticated request: plain copies (the fields are NUL-terminated and fit). */
static void accept_credential(ft_req_t *r, const ft_credential_t *cred)
{
    _Static_assert(sizeof(r->principal.subject) >= sizeof(cred->subject), "subject fits");
    _Static_assert(sizeof(r->principal.customer_id) >= sizeof(cred->customer_id), "customer fits");
    _Static_assert(sizeof(r->principal.instance_id) >= sizeof(cred->instance_id), "instance fits");
    r->principal.authenticated = 1;
    memcpy(r->principal.subject, cred->subject, sizeof(cred->subject));
    r->principal.roles = cred->roles;
    memcpy(r->principal.customer_id, cred->customer_id, sizeof(cred->customer_id));
    memcpy(r->principal.instance_id, cred->instance_id, sizeof(cred->instance_id));
}

FT_COUNTER(key_lookups_total, "ft_api_key_lookups_total",
           "API key rows read from the database, by reason (miss: a request waited for a key not cached or expired here;"
           " refresh: read ahead of its expiry in the background while the cached row answered) and result (found,"
           " unknown: no key has the prefix, error).",
           FT_LABELS("reason", "result"));

typedef struct key_lookup {
    char prefix[FT_API_KEY_PREFIX_LEN + 1];
    char secret[FT_API_KEY_SECRET_LEN + 1];
    int found;
    uint64_t epoch;
    ft_api_key_row_t row;
} key_lookup_t;

static int key_lookup_work(PGconn *c, void *arg, ft_error_t *err)
{
    key_lookup_t *k = arg;
    int rc = ft_api_key_lookup(c, k->prefix, &k->row, err);
    if (rc == FT_ENOTFOUND)
        return FT_OK;
    k->found = rc == FT_OK;
    return rc;
}

/* last_used_at, stamped after the request went on: its commit is nobody's wait. */
static int touch_work(PGconn *c, void *arg, ft_error_t *err)
{
    return ft_api_key_touch(c, arg, err); /* at most once a minute per key */
}

static void touch_done(ft_req_t *r, void *arg, int status, const ft_error_t *err)
{
    if (status != FT_OK)
        ft_log_traced(FT_LOG_DEBUG, r->request_id, r->trace.trace_id, "API key last_used_at not stamped: %s", err->message);
    free(arg);
}

static void count_lookup(const char *reason, int status, int found, uint64_t n)
{
    ft_counter_add(ft_metric_series(&key_lookups_total, reason, status != FT_OK ? "error" : found ? "found" : "unknown"), n);
}

static void key_lookup_done(ft_req_t *r, void *arg, int status, const ft_error_t *err)
{
    key_lookup_t *k = arg;
    count_lookup("miss", status, k->found, 1);
    /* cached unless a key was forgotten since the read began */
    if (status == FT_OK)
        ft_identity_key_learn(r->app->identity, k->prefix, k->found ? &k->row : NULL, ft_now_ns(), k->epoch);
    if (ft_req_alive(r)) {
        if (status != FT_OK) {
            ft_respond_internal(r, 503, err);
        } else {
            ft_credential_t cred;
            ft_error_t why = {0};
            /* judged on the row itself: the cache may be emptied meanwhile (a NOTIFY, a reconnect) */
            if (ft_identity_check_row(k->found ? &k->row : NULL, k->secret, &cred, &why) == FT_KEY_VALID) {
                accept_credential(r, &cred);
                ft_pipeline_next(r);
                ft_req_defer_db(r, touch_work, touch_done, ft_mem_strdup(k->row.id));
            } else {
                unauthenticated(r, why.message[0] ? why.message : "the API key is not valid", 1);
            }
        }
    }
    memset(k->secret, 0, sizeof(k->secret));
    free(k);
}

/* Keys read again ahead of their expiry, in one statement per batch (see ft_identity_key_refresh_push).
 * The batch rides on the request that took it, which answers without waiting for it. */
#define KEY_REFRESH_BATCH 128
typedef struct key_refresh {
    size_t n;
    uint64_t epoch;
    char prefixes[KEY_REFRESH_BATCH][FT_API_KEY_PREFIX_LEN + 1];
    const char *names[KEY_REFRESH_BATCH];
    ft_api_key_row_t rows[KEY_REFRESH_BATCH];
    int found[KEY_REFRESH_BATCH];
} key_refresh_t;

static int key_refresh_work(PGconn *c, void *arg, ft_error_t *err)
{
    key_refresh_t *b = arg;
    for (size_t i = 0; i < b->n; i++)
        b->names[i] = b->prefixes[i];
    return ft_api_key_refresh(c, b->names, b->n, b->rows, b->found, err); /* stamps last_used_at too */
}

/* A failed batch leaves the cached rows to their expiry; the cache hands their refresh out again. */
static void key_refresh_done(ft_req_t *r, void *arg, int status, const ft_error_t *err)
{
    key_refresh_t *b = arg;
    uint64_t now = ft_now_ns(), found = 0;
    for (size_t i = 0; status == FT_OK && i < b->n; i++) {
        ft_identity_key_learn(r->app->identity, b->prefixes[i], b->found[i] ? &b->rows[i] : NULL, now, b->epoch);
        found += (uint64_t)b->found[i];
    }
    ft_identity_key_refresh_end(r->app->identity);
    if (status != FT_OK) {
        count_lookup("refresh", status, 0, b->n);
        ft_log_traced(FT_LOG_DEBUG, r->request_id, r->trace.trace_id, "%zu API keys not refreshed: %s", b->n, err->message);
    } else {
        count_lookup("refresh", FT_OK, 1, found);
        count_lookup("refresh", FT_OK, 0, b->n - found);
    }
    free(b);
}

static void key_refresh(ft_req_t *r, const char *prefix)
{
    char taken[KEY_REFRESH_BATCH][FT_API_KEY_PREFIX_LEN + 1];
    ft_identity_key_refresh_push(r->app->identity, prefix);
    size_t n = ft_identity_key_refresh_take(r->app->identity, taken, KEY_REFRESH_BATCH);
    if (n == 0)
        return; /* a batch is out: this key goes with the next */
    key_refresh_t *b = ft_mem_alloc(sizeof(*b));
    b->n = n;
    b->epoch = ft_identity_key_epoch(r->app->identity);
    memcpy(b->prefixes, taken, n * sizeof(taken[0]));
    ft_req_defer_db(r, key_refresh_work, key_refresh_done, b);
}

static ft_stage_result_t authenticate_key(ft_req_t *r, const char *key, size_t len)
{
    char prefix[FT_API_KEY_PREFIX_LEN + 1], secret[FT_API_KEY_SECRET_LEN + 1];
    if (ft_api_key_split(key, len, prefix, secret) != 0) {
        unauthenticated(r, "the API key is malformed", 1);
        return FT_STAGE_HALT;
    }
    ft_credential_t cred;
    ft_error_t why = {0};
    int refresh = 0;
    switch (ft_identity_check_key(r->app->identity, prefix, secret, r->started_ns, &cred, &refresh, &why)) {
    case FT_KEY_VALID:
        accept_credential(r, &cred);
        if (refresh)
            key_refresh(r, prefix);
        return FT_STAGE_NEXT;
    case FT_KEY_INVALID:
        unauthenticated(r, why.message, 1);
        return FT_STAGE_HALT;
    case FT_KEY_UNKNOWN_HERE:
        break;
    }
    key_lookup_t *k = ft_mem_calloc(1, sizeof(*k));
    memcpy(k->prefix, prefix, sizeof(k->prefix));
    k->epoch = ft_identity_key_epoch(r->app->identity);
    memcpy(k->secret, secret, sizeof(k->secret));
    memset(secret, 0, sizeof(secret));
    ft_req_defer_db(r, key_lookup_work, key_lookup_done, k);
    return FT_STAGE_HALT;
}

/*
 * Who is calling: "Authorization: Bearer <access token | API key>" or "X-API-Key: <API key>".
 * Access tokens verify in memory; an API key not yet cached here is looked up once.
 */
static ft_stage_result_t stage_authenticate(ft_req_t *r)
{
    memcpy(r->principal.subject, "anonymous", sizeof("anonymous"));
    if (r->route->flags & FT_ROUTE_PUBLIC)
        return FT_STAGE_NEXT;
    if (r->app->identity == NULL) {
        ft_respond_problem(r, 503, "unavailable", "Service Unavailable", NULL, "Authentication is not available on this host.");
        return FT_STAGE_HALT;
    }
    const char *auth = ft_req_header(r, "authorization");
    const char *apikey = ft_req_header(r, "x-api-key");
    if (auth != NULL) {
        if (strncasecmp(auth, "Bearer ", 7) != 0) {
            unauthenticated(r, "the Authorization header must use the Bearer scheme", 0);
            return FT_STAGE_HALT;
        }
        const char *tok = auth + 7;
        while (*tok == ' ')
            tok++;
        size_t len = strlen(tok);
        while (len > 0 && tok[len - 1] == ' ')
            len--;
        if (len == 0) {
            unauthenticated(r, "the Bearer credential is empty", 1);
            return FT_STAGE_HALT;
        }
        if (len > 4 && memcmp(tok, "ftk_", 4) == 0)
            return authenticate_key(r, tok, len);
        ft_credential_t cred;
        ft_error_t err = {0};
        int rc = ft_identity_verify_token(r->app->identity, tok, len, &cred, &err);
        if (rc == FT_EEXPIRED)
            token_expired(r);
        else if (rc != FT_OK)
            unauthenticated(r, err.message, 1);
        if (rc != FT_OK)
            return FT_STAGE_HALT;
        accept_credential(r, &cred);
        return FT_STAGE_NEXT;
    }
    if (apikey != NULL)
        return authenticate_key(r, apikey, strlen(apikey));
    unauthenticated(r, "this resource needs a credential: an access token or an API key (Authorization: Bearer ...)", 0);
    return FT_STAGE_HALT;
}

/* ---- authorization */

static ft_stage_result_t stage_authorize(ft_req_t *r)
{
    if (r->route->flags & FT_ROUTE_PUBLIC)
        return FT_STAGE_NEXT;
    if (ft_rbac_allows(r->principal.roles, r->route->permission))
        return FT_STAGE_NEXT;
    char held[160] = "";
    size_t n;
    const unsigned *all = ft_roles_all(&n);
    for (size_t i = 0; i < n; i++)
        if (r->principal.roles & all[i])
            snprintf(held + strlen(held), sizeof(held) - strlen(held), "%s%s", held[0] ? ", " : "", ft_role_name(all[i]));
    if (r->route->flags & FT_ROUTE_WRITE)
        ft_audit_request(r, "denied", "lacks permission %s", r->route->permission);
    ft_respond_problem(r, 403, "forbidden", "Forbidden", json_pack("{s:s}", "required_permission", r->route->permission),
                       "%s %s needs permission %s, which your credential (roles: %s) does not grant.", r->route->method,
                       r->route->pattern, r->route->permission, held[0] ? held : "none");
    return FT_STAGE_HALT;
}

/* application/json, or any application/<x>+json, with optional parameters. */
static int is_json_media_type(const char *ct)
{
    size_t n = strcspn(ct, ";");
    while (n > 0 && ct[n - 1] == ' ')
        n--;
    if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
        return 1;
    return n > 17 && strncasecmp(ct, "application/", 12) == 0 && strncasecmp(ct + n - 5, "+json", 5) == 0;
}

static ft_stage_result_t stage_decode_body(ft_req_t *r)
{
    if (!(r->route->flags & (FT_ROUTE_JSON_BODY | FT_ROUTE_OPTIONAL_BODY)))
        return FT_STAGE_NEXT;
    h2o_req_t *req = r->req;
    if ((req->entity.base == NULL || req->entity.len == 0) && (r->route->flags & FT_ROUTE_OPTIONAL_BODY))
        return FT_STAGE_NEXT;
    if (req->entity.base == NULL || req->entity.len == 0) {
        ft_respond_problem(r, 400, "missing-body", "Request body required", NULL,
                           "%s %s expects a JSON object in the request body.", r->route->method, r->route->pattern);
        return FT_STAGE_HALT;
    }
    const char *ct = ft_req_header(r, "content-type");
    if (ct == NULL || !is_json_media_type(ct)) {
        ft_req_add_header(r, "accept-post", "application/json");
        ft_respond_problem(r, 415, "unsupported-media-type", "Unsupported Media Type", NULL,
                           "The request body must be sent as application/json (got %s).", ct != NULL ? ct : "no Content-Type");
        return FT_STAGE_HALT;
    }
    if (req->entity.len > r->app->config.max_body_bytes) {
        ft_respond_problem(r, 413, "body-too-large", "Content Too Large", NULL,
                           "The request body is %zu bytes; the limit is %zu bytes.", req->entity.len,
                           r->app->config.max_body_bytes);
        return FT_STAGE_HALT;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(req->entity.base, req->entity.len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        json_t *ext = json_pack("{s:i, s:i}", "line", jerr.line, "column", jerr.column);
        ft_respond_problem(r, 400, "malformed-json", "Malformed JSON", ext, "The request body is not valid JSON: %s at line %d, column %d.",
                           jerr.text, jerr.line, jerr.column);
        return FT_STAGE_HALT;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        ft_respond_problem(r, 400, "invalid-body", "Invalid request body", NULL, "The request body must be a JSON object.");
        return FT_STAGE_HALT;
    }
    json_t *errors = NULL;
    if (r->route->schema != NULL && ft_schema_validate(r->route->schema, doc, 1, &errors) != FT_OK) {
        json_decref(doc);
        size_t n = json_array_size(errors);
        const char *first = json_string_value(json_object_get(json_array_get(errors, 0), "pointer"));
        const char *what = json_string_value(json_object_get(json_array_get(errors, 0), "detail"));
        ft_respond_problem(r, 400, "invalid-body", "Invalid request body", json_pack("{s:o}", "errors", errors),
                           "%s %s%s", first != NULL ? first : "#", what != NULL ? what : "is invalid",
                           n > 1 ? " (and more: see errors)" : ".");
        return FT_STAGE_HALT;
    }
    r->body = doc;
    return FT_STAGE_NEXT;
}

/* Idempotency-Key on writes: checked here, honoured by the op runner in the change's transaction.
 * The request's fingerprint is the method, the path and the body re-serialised with sorted
 * keys, so formatting and member order do not make "another" request. */
static ft_stage_result_t stage_idempotency(ft_req_t *r)
{
    if (!(r->route->flags & FT_ROUTE_WRITE))
        return FT_STAGE_NEXT;
    const char *key = ft_req_header(r, "idempotency-key");
    if (key == NULL)
        return FT_STAGE_NEXT;
    size_t len = strlen(key);
    int ok = len >= 1 && len <= 255;
    for (size_t i = 0; ok && i < len; i++)
        ok = key[i] > 0x20 && key[i] < 0x7f;
    if (!ok) {
        ft_respond_problem(r, 400, "invalid-idempotency-key", "Invalid Idempotency-Key",
                           json_pack("{s:[{s:s, s:s}]}", "errors", "header", "Idempotency-Key", "detail", "1 to 255 visible ASCII characters"),
                           "The Idempotency-Key header must be 1 to 255 visible ASCII characters.");
        return FT_STAGE_HALT;
    }
    snprintf(r->idem_key, sizeof(r->idem_key), "%s", key);
    /* a password never goes into a stored fingerprint */
    json_t *shown = r->body != NULL ? json_copy(r->body) : NULL;
    json_object_del(shown, "password");
    char *canon = shown != NULL ? json_dumps(shown, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(shown);
    h2o_req_t *req = r->req;
    size_t n = req->path.len + strlen(r->method) + (canon != NULL ? strlen(canon) : 0) + 3;
    char *buf = ft_mem_alloc(n);
    int w = snprintf(buf, n, "%s %.*s\n%s", r->method, (int)req->path.len, req->path.base, canon != NULL ? canon : "");
    ft_sha256_hex(buf, (size_t)w, r->idem_hash);
    free(buf);
    free(canon);
    return FT_STAGE_NEXT;
}

static const ft_stage_fn chain[] = {stage_limit_ip,          stage_authenticate, stage_authorize,
                                    stage_limit_credential, stage_decode_body,  stage_idempotency};
#define NSTAGES (sizeof(chain) / sizeof(chain[0]))

void ft_pipeline_next(ft_req_t *r)
{
    while (r->stage < NSTAGES) {
        if (chain[r->stage++](r) == FT_STAGE_HALT)
            return;
    }
    r->route->handler(r);
}

void ft_pipeline_begin(ft_req_t *r)
{
    h2o_req_t *req = r->req;
    char allow[128];
    ft_match_t m = ft_router_match(r->app->router, req->method.base, req->method.len, req->path_normalized.base,
                                   req->path_normalized.len, &r->route, &r->params, allow, sizeof(allow));
    if (m == FT_MATCH_NO_PATH) {
        r->route = NULL;
        ft_respond_problem(r, 404, "not-found", "Not Found", NULL, "No resource at %.*s.", (int)req->path_normalized.len,
                           req->path_normalized.base);
        return;
    }
    if (m == FT_MATCH_NO_METHOD) {
        r->route = NULL;
        ft_req_add_header(r, "allow", allow);
        if (strcmp(r->method, "OPTIONS") == 0) {
            ft_respond_empty(r, 204);
            return;
        }
        ft_respond_problem(r, 405, "method-not-allowed", "Method Not Allowed", json_pack("{s:s}", "allow", allow),
                           "%.*s is not allowed on %.*s; allowed: %s.", (int)req->method.len, req->method.base,
                           (int)req->path_normalized.len, req->path_normalized.base, allow);
        return;
    }
    if (r->route->flags & FT_ROUTE_CHAIN) {
        r->stage = 0;
        ft_pipeline_next(r);
    } else {
        r->route->handler(r);
    }
}

/* Writes that end without a change (refused, failed before their work ran) are recorded here;
 * those that ran their work are recorded by the op runner, in their own transaction. */
void ft_middleware_on_response(ft_req_t *r)
{
    if (r->route == NULL || !(r->route->flags & FT_ROUTE_WRITE) || r->audited)
        return;
    if (r->status == 401 || r->status == 429)
        return; /* no credential to attribute, or a flood: the log line is the record */
    if (r->status == 403)
        ft_audit_request(r, "denied", "answered 403 before any change");
    else if (r->status >= 400)
        ft_audit_request(r, "failure", "answered %d before any change", r->status);
}
