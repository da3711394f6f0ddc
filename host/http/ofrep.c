/*
 * The OpenFeature Remote Evaluation Protocol (OFREP): any OpenFeature SDK's OFREP provider
 * reads entitlements here. Flag key = feature code; flags evaluate to booleans, limits to
 * integers. The instance is the one the child-app API key is bound to, whatever the evaluation
 * context says; for other credentials, context.targetingKey names it (within their scope).
 * Evaluation errors follow the protocol's body, not problem+json.
 */
#include "core/mem.h"
#include "domain/entitlement_render.h"
#include "domain/ofrep_context.h"
#include "http/ent_lookup.h"
#include "http/routes.h"
#include "infra/log.h"
#include "store/sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Answers {key?, errorCode, errorDetails} with `status`. key may be NULL (bulk). */
static void ofrep_error(ft_req_t *r, int status, const char *key, const char *code, const char *detail)
{
    json_t *body = json_pack("{s:s, s:s}", "errorCode", code, "errorDetails", detail);
    if (key != NULL) {
        json_t *k = json_string(key);
        json_object_set_new(body, "key", k != NULL ? k : json_string("(not UTF-8)"));
    }
    ft_respond_json(r, status, body);
}

/* Which instance to evaluate. An instance-bound credential (a child app's key) decides alone:
 * the context cannot point elsewhere. Any other credential names the instance in
 * context.targetingKey, within what its scope may see. On failure answers and returns -1. */
static int target(ft_req_t *r, const char *key, char instance[40])
{
    ft_ofrep_context_t ctx;
    h2o_iovec_t body = r->req->entity;
    if (ft_ofrep_context_parse(body.base, body.len, &ctx) != FT_OK) {
        ofrep_error(r, 400, key, ctx.error_code, ctx.detail);
        return -1;
    }
    if (r->principal.instance_id[0] != '\0') {
        _Static_assert(sizeof(r->principal.instance_id) <= 40, "an instance id fits");
        memcpy(instance, r->principal.instance_id, sizeof(r->principal.instance_id));
        return 0;
    }
    if (ft_ofrep_context_instance(&ctx) != FT_OK) {
        ofrep_error(r, 400, key, ctx.error_code, ctx.detail);
        return -1;
    }
    snprintf(instance, 40, "%s", ctx.targeting_key);
    return 0;
}

static void failed(ft_req_t *r, ft_problem_t *problem, const ft_error_t *err, void *arg)
{
    const char *key = arg; /* NULL for bulk */
    if (problem->status == 404) {
        ofrep_error(r, 400, key, "INVALID_CONTEXT", "context.targetingKey names no tenant instance this credential may read");
        return;
    }
    if (problem->status != 0 && problem->status < 500) {
        ofrep_error(r, problem->status, key, "GENERAL", problem->detail);
        return;
    }
    if (problem->status == 0 && (err->code == FT_EUNAVAILABLE || err->code == FT_ETIMEOUT)) {
        /* as ft_respond_internal answers the REST routes: a dependency is down, retry shortly */
        ft_log_traced(FT_LOG_WARN, r->request_id, r->trace.trace_id, "ofrep: %s", err->message);
        ft_req_add_header(r, "retry-after", "1");
        ofrep_error(r, 503, key, "GENERAL", "the control plane cannot evaluate right now; retry shortly");
        return;
    }
    ft_log_traced(FT_LOG_ERROR, r->request_id, r->trace.trace_id, "ofrep: %s",
                  problem->status != 0 ? problem->detail : err->message);
    ofrep_error(r, 500, key, "GENERAL", "the evaluation failed on the server; quote the X-Request-Id when reporting it");
}

static void found_single(ft_req_t *r, ft_entitlements_t *e, void *arg)
{
    const char *key = arg;
    const ft_ent_feature_t *f = ft_entitlements_find(e, key);
    if (f == NULL) {
        char detail[200];
        snprintf(detail, sizeof(detail), "product %s has no feature with this key", e->base->product);
        ofrep_error(r, 404, key, "FLAG_NOT_FOUND", detail);
        return;
    }
    ft_req_add_header(r, "etag", e->etag);
    if (ft_etag_matches(r, e->etag)) {
        ft_respond_empty(r, 304);
        return;
    }
    char body[FT_ENT_OFREP_FLAG_MAX];
    size_t n = ft_entitlements_ofrep_flag(e, f, body);
    ft_respond_raw(r, 200, "application/json", body, n);
}

static void evaluate_flag(ft_req_t *r)
{
    const char *key = ft_req_param(r, "key");
    char instance[40];
    if (target(r, key, instance) != 0)
        return;
    ft_ent_lookup(r, instance, found_single, failed, ft_mem_strdup(key));
}

static void found_bulk(ft_req_t *r, ft_entitlements_t *e, void *arg)
{
    ft_req_add_header(r, "etag", e->etag);
    if (ft_etag_matches(r, e->etag)) {
        ft_respond_empty(r, 304);
        return;
    }
    size_t len;
    char *body = ft_entitlements_ofrep_bulk(e, &len);
    ft_respond_borrowed(r, 200, "application/json", body, len, free, body);
}

static void evaluate_all(ft_req_t *r)
{
    char instance[40];
    if (target(r, NULL, instance) != 0)
        return;
    ft_ent_lookup(r, instance, found_bulk, failed, NULL);
}

static void configuration(ft_req_t *r)
{
    static const char body[] = "{\"name\":\"farutech\",\"capabilities\":{\"cacheInvalidation\":{\"polling\":{\"enabled\":true,"
                               "\"minPollingIntervalMs\":1000}},\"flagEvaluation\":{\"supportedTypes\":[\"boolean\",\"int\"]}}}";
    ft_respond_raw(r, 200, "application/json", body, sizeof(body) - 1);
}

/* The API reference's part of each route (see ft_route_doc_t). Evaluation errors are OFREP's own
 * JSON; the auth chain's refusals before them are problem+json. */
#define OFREP_ERRORS                                                                                                          \
    {400, "OfrepError", NULL, "Invalid context, or a rule refuses"}, {500, "OfrepError", NULL, NULL},                         \
        {503, "OfrepError", NULL, NULL}
static const ft_route_doc_t doc_post_ofrep_v1_evaluate_flags_key = {
    .tag = "OpenFeature",
    .summary = "Evaluate one flag (OFREP)",
    .request = "OfrepEvaluationRequest",
    .responses = (const ft_route_response_t[]){{200, "FlagEvaluation", NULL, NULL},
                                               {304, NULL, NULL, "Unchanged since If-None-Match"},
                                               {404, "OfrepError", NULL, "Flag not found"},
                                               OFREP_ERRORS,
                                               {0}},
};
static const ft_route_doc_t doc_post_ofrep_v1_evaluate_flags = {
    .tag = "OpenFeature",
    .summary = "Evaluate every flag of the instance (OFREP bulk)",
    .request = "OfrepEvaluationRequest",
    .responses = (const ft_route_response_t[]){{200, "BulkEvaluation", NULL, NULL},
                                               {304, NULL, NULL, "Unchanged since If-None-Match"},
                                               OFREP_ERRORS,
                                               {0}},
};
static const ft_route_doc_t doc_get_ofrep_v1_configuration = {
    .tag = "OpenFeature",
    .summary = "OFREP provider configuration",
    .responses = (const ft_route_response_t[]){{200, "OfrepConfiguration", NULL, NULL}, {0}},
};

void ft_routes_ofrep(ft_router_t *router)
{
    static const ft_route_t routes[] = {
        {.method = "POST", .pattern = "/ofrep/v1/evaluate/flags/{key}", .permission = "entitlements:read",
         .flags = FT_ROUTE_CHAIN, .handler = evaluate_flag, .doc = &doc_post_ofrep_v1_evaluate_flags_key},
        {.method = "POST", .pattern = "/ofrep/v1/evaluate/flags", .permission = "entitlements:read", .flags = FT_ROUTE_CHAIN,
         .handler = evaluate_all, .doc = &doc_post_ofrep_v1_evaluate_flags},
        {.method = "GET", .pattern = "/ofrep/v1/configuration", .permission = "entitlements:read", .flags = FT_ROUTE_CHAIN,
         .handler = configuration, .doc = &doc_get_ofrep_v1_configuration},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        ft_router_add(router, &routes[i]);
}
