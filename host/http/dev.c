/*
 * Diagnostics served only with FT_DEV_ROUTES=true: a request that holds a database
 * connection for a given time (to exercise drains and the database path), and a JSON echo
 * (to exercise body decoding). Never enable them in production.
 */
#include "core/mem.h"
#include "http/request.h"
#include "http/routes.h"
#include "http/server.h"
#include "infra/log.h"

#include <stdio.h>
#include <stdlib.h>

#define SLEEP_MAX_MS 60000

typedef struct sleep_job {
    long ms;
} sleep_job_t;

static int sleep_work(PGconn *conn, void *arg, ft_error_t *err)
{
    sleep_job_t *job = arg;
    char secs[32];
    snprintf(secs, sizeof(secs), "%.3f", (double)job->ms / 1000.0);
    const char *params[] = {secs};
    PGresult *res = PQexecParams(conn, "SELECT pg_sleep($1::float8)", 1, NULL, params, NULL, NULL, 0);
    int rc = PQresultStatus(res) == PGRES_TUPLES_OK ? FT_OK : ft_db_error(conn, res, err, "pg_sleep");
    PQclear(res);
    return rc;
}

static void sleep_done(ft_req_t *r, void *arg, int status, const ft_error_t *err)
{
    sleep_job_t *job = arg;
    if (ft_req_alive(r)) {
        if (status != FT_OK)
            ft_respond_internal(r, 500, err);
        else
            ft_respond_json(r, 200, json_pack("{s:I}", "slept_ms", (json_int_t)job->ms));
    }
    free(job);
}

static void get_sleep(ft_req_t *r)
{
    const char *ms = ft_req_query(r, "ms");
    char *end = NULL;
    long v = ms != NULL ? strtol(ms, &end, 10) : -1;
    if (ms == NULL || *ms == '\0' || *end != '\0' || v < 0 || v > SLEEP_MAX_MS) {
        ft_respond_problem(r, 400, "invalid-parameter", "Invalid parameter",
                           json_pack("{s:[{s:s, s:s}]}", "errors", "parameter", "ms", "detail", "an integer from 0 to 60000"),
                           "Query parameter ms must be an integer from 0 to %d.", SLEEP_MAX_MS);
        return;
    }
    sleep_job_t *job = ft_mem_alloc(sizeof(*job));
    job->ms = v;
    ft_req_defer_db(r, sleep_work, sleep_done, job);
}

/* Holds the request's catalog for ms milliseconds, then says which generation served it. Logs
 * the start, so a test knows the request is held before it replaces the generation. */
typedef struct hold {
    uv_timer_t timer;
    ft_req_t *r;
    ft_generation_t *gen;
} hold_t;

static void hold_closed(uv_handle_t *h)
{
    free(h->data);
}

static void hold_fired(uv_timer_t *timer)
{
    hold_t *h = timer->data;
    ft_respond_json(h->r, 200,
                    json_pack("{s:s, s:I, s:s}", "product", h->gen->product_code, "generation", (json_int_t)h->gen->number,
                              "version", h->gen->product->version));
    h->r->thread->pending_db--;
    ft_req_release(h->r);
    uv_close((uv_handle_t *)&h->timer, hold_closed);
}

static void get_hold(ft_req_t *r)
{
    const char *product = ft_req_query(r, "product");
    const char *ms = ft_req_query(r, "ms");
    long v = ms != NULL ? strtol(ms, NULL, 10) : 0;
    ft_generation_t *g = product != NULL ? ft_catalog_find(ft_req_catalog(r), product) : NULL;
    if (g == NULL || v < 0 || v > SLEEP_MAX_MS) {
        ft_respond_problem(r, 400, "invalid-parameter", "Invalid parameter", NULL,
                           "product must name a loaded product and ms be 0 to %d.", SLEEP_MAX_MS);
        return;
    }
    hold_t *h = ft_mem_calloc(1, sizeof(*h));
    h->r = r;
    h->gen = g;
    h->timer.data = h;
    ft_req_hold(r);
    r->thread->pending_db++; /* counts as deferred work for the drain */
    ft_log(FT_LOG_DEBUG, r->request_id, "dev: holding %s generation %llu for %ld ms", g->product_code, g->number, v);
    uv_timer_init(&r->thread->loop, &h->timer);
    uv_timer_start(&h->timer, hold_fired, (uint64_t)v, 0);
}

static void post_echo(ft_req_t *r)
{
    ft_respond_json(r, 200, json_pack("{s:O}", "echo", r->body));
}

/* The API reference's part of each route (see ft_route_doc_t). */
static const char slept_schema[] = "{\"type\":\"object\",\"required\":[\"slept_ms\"],\"additionalProperties\":false,"
                                   "\"properties\":{\"slept_ms\":{\"type\":\"integer\"}}}";
static const char held_schema[] = "{\"type\":\"object\",\"required\":[\"product\",\"generation\",\"version\"],"
                                  "\"additionalProperties\":false,\"properties\":{\"product\":{\"type\":\"string\"},"
                                  "\"generation\":{\"type\":\"integer\"},\"version\":{\"type\":\"string\"}}}";
static const char echo_schema[] = "{\"type\":\"object\",\"required\":[\"echo\"],\"additionalProperties\":false,"
                                  "\"properties\":{\"echo\":{\"type\":\"object\",\"description\":\"the body as received: open\"}}}";
static const ft_route_doc_t doc_get_dev_sleep = {
    .tag = "Development",
    .summary = "Sleep on a worker thread (FT_DEV_ROUTES only)",
    .query = (const ft_route_query_t[]){{"ms", "{\"type\":\"string\",\"pattern\":\"^[0-9]+$\"}", NULL}, {0}},
    .responses = (const ft_route_response_t[]){{200, slept_schema, NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_get_dev_hold = {
    .tag = "Development",
    .summary = "Hold a plugin generation (FT_DEV_ROUTES only)",
    .query = (const ft_route_query_t[]){{"ms", "{\"type\":\"string\",\"pattern\":\"^[0-9]+$\"}", NULL},
                                        {"product", "{\"type\":\"string\"}", NULL},
                                        {0}},
    .responses = (const ft_route_response_t[]){{200, held_schema, NULL, "The generation that served the request"}, {0}},
};
static const ft_route_doc_t doc_post_dev_echo = {
    .tag = "Development",
    .summary = "Echo the body (FT_DEV_ROUTES only)",
    .responses = (const ft_route_response_t[]){{200, echo_schema, NULL, NULL}, {0}},
};

void ft_routes_dev(ft_router_t *router)
{
    static const ft_route_t routes[] = {
        {.method = "GET", .pattern = "/api/v1/_dev/sleep", .permission = "dev:use", .flags = FT_ROUTE_CHAIN, .handler = get_sleep,
         .doc = &doc_get_dev_sleep},
        {.method = "GET", .pattern = "/api/v1/_dev/hold", .permission = "dev:use", .flags = FT_ROUTE_CHAIN, .handler = get_hold,
         .doc = &doc_get_dev_hold},
        {.method = "POST",
         .pattern = "/api/v1/_dev/echo",
         .permission = "dev:use",
         .flags = FT_ROUTE_CHAIN | FT_ROUTE_JSON_BODY | FT_ROUTE_WRITE,
         .handler = post_echo, .doc = &doc_post_dev_echo},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        ft_router_add(router, &routes[i]);
}
