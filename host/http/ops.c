/*
 * Operational endpoints: liveness, readiness and Prometheus metrics. None of them touches
 * the database or NATS on the request path.
 */
#include "http/request.h"
#include "http/routes.h"
#include "infra/metrics.h"

#include <stdlib.h>
#include <string.h>

static void get_health(ft_req_t *r)
{
    static const char body[] = "{\"status\":\"ok\"}";
    ft_respond_raw(r, 200, "application/json", body, sizeof(body) - 1);
}

static void get_ready(ft_req_t *r)
{
    ft_readiness_report_t rep;
    int ready = ft_readiness_get(r->app->readiness, &rep);
    json_t *checks = json_pack("{s:s, s:s, s:s, s:s}", "database", rep.database, "migrations", rep.migrations, "nats", rep.nats,
                               "jetstream", rep.streams);
    if (ready) {
        ft_respond_json(r, 200, json_pack("{s:s, s:o}", "status", "ready", "checks", checks));
        return;
    }
    char what[128];
    ft_readiness_failing(&rep, what, sizeof(what));
    ft_req_add_header(r, "retry-after", "1");
    ft_respond_problem(r, 503, "not-ready", "Not Ready", json_pack("{s:o}", "checks", checks), "Not ready: %s (see checks).", what);
}

static void get_metrics(ft_req_t *r)
{
    char *text = NULL;
    size_t len = 0;
    ft_metrics_render(&text, &len);
    ft_respond_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
}

/* The API reference's part of each route (see ft_route_doc_t). */
static const ft_route_doc_t doc_get_health = {
    .tag = "Operations",
    .summary = "Liveness: the process serves HTTP",
    .responses = (const ft_route_response_t[]){{200, "Health", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_get_ready = {
    .tag = "Operations",
    .summary = "Readiness: database, migrations, NATS and JetStream are usable",
    .responses = (const ft_route_response_t[]){{200, "Ready", NULL, NULL}, {503, "Problem", NULL, "Not ready (see `checks`)"}, {0}},
};
static const ft_route_doc_t doc_get_metrics = {
    .tag = "Operations",
    .summary = "Prometheus metrics",
    .responses =
        (const ft_route_response_t[]){{200, "{\"type\":\"string\"}", "text/plain", "Prometheus text exposition format 0.0.4"}, {0}},
};

void ft_routes_ops(ft_router_t *router)
{
    static const ft_route_t routes[] = {
        {.method = "GET", .pattern = "/health", .handler = get_health, .doc = &doc_get_health},
        {.method = "GET", .pattern = "/ready", .handler = get_ready, .doc = &doc_get_ready},
        {.method = "GET", .pattern = "/metrics", .handler = get_metrics, .doc = &doc_get_metrics},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        ft_router_add(router, &routes[i]);
}
