/*
 * Routing and the middleware stages. Stages are plain functions in one table so that
 * authentication, rate limiting and auditing have one place each, whatever the route.
 */
#include "http/middleware.h"

#include "domain/jsonschema.h"
#include "infra/log.h"

#include <string.h>
#include <strings.h>

/* The caller's identity. No credential scheme is configured in this build, so every caller is
 * anonymous; routes stay reachable and the audit trail records "anonymous". */
static ft_stage_result_t stage_authenticate(ft_req_t *r)
{
    r->principal.authenticated = 0;
    snprintf(r->principal.subject, sizeof(r->principal.subject), "anonymous");
    return FT_STAGE_NEXT;
}

/* Admission control per caller. No limits are configured in this build: every request passes. */
static ft_stage_result_t stage_rate_limit(ft_req_t *r)
{
    return FT_STAGE_NEXT;
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

static const ft_stage_fn chain[] = {stage_authenticate, stage_rate_limit, stage_decode_body};
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

/* The audit stage. State-changing calls are recorded with who, what, and the outcome. */
void ft_middleware_on_response(ft_req_t *r)
{
    if (r->route == NULL || !(r->route->flags & FT_ROUTE_WRITE))
        return;
    json_t *entry = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "msg", "audit", "request_id", r->request_id, "actor",
                              r->principal.subject, "method", r->route->method, "route", r->route->pattern, "status", r->status);
    ft_log_json(FT_LOG_INFO, entry);
}
