/*
 * Jobs and the dead-letter queue: GET /api/v1/jobs/{id}, GET /api/v1/instances/{id}/jobs,
 * GET /api/v1/dlq, POST /api/v1/dlq/{id}/replay, DELETE /api/v1/dlq/{id}.
 */
#include "http/op.h"
#include "http/routes.h"
#include "store/job_run_store.h"

#include <stdlib.h>
#include <string.h>

static int get_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    return ft_job_get(c, &op->call, op->id, &op->out, &op->problem, err);
}

static void get_job(ft_req_t *r)
{
    ft_op_t *op = ft_op_with_id(r, "id");
    if (op != NULL)
        ft_op_run(r, op, get_work, 200);
}

static int list_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    return ft_job_list(c, &op->call, op->id, &op->out, &op->problem, err);
}

static void list_jobs(ft_req_t *r)
{
    ft_op_t *op = ft_op_with_id(r, "id");
    if (op != NULL)
        ft_op_run(r, op, list_work, 200);
}

static int dlq_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    return ft_dlq_list(c, &op->call, op->id[0] == '1', &op->out, err);
}

static void list_dlq(ft_req_t *r)
{
    const char *all = ft_req_query(r, "include_closed");
    ft_op_t *op = ft_op_new(r);
    op->id[0] = all != NULL && strcmp(all, "true") == 0 ? '1' : '0';
    ft_op_run(r, op, dlq_work, 200);
}

static int replay_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    return ft_dlq_replay(c, &op->call, op->id, &op->out, &op->problem, err);
}

static void replay(ft_req_t *r)
{
    ft_op_t *op = ft_op_with_id(r, "id");
    if (op != NULL)
        ft_op_run(r, op, replay_work, 202);
}

static int discard_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    return ft_dlq_discard(c, &op->call, op->id, &op->problem, err);
}

static void discard(ft_req_t *r)
{
    ft_op_t *op = ft_op_with_id(r, "id");
    if (op != NULL)
        ft_op_run(r, op, discard_work, 204);
}

/* The API reference's part of each route (see ft_route_doc_t). */
static const ft_route_doc_t doc_get_jobs_id = {
    .tag = "Jobs",
    .summary = "Get a job with its steps",
    .responses = (const ft_route_response_t[]){{200, "Job", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_get_instances_id_jobs = {
    .tag = "Jobs",
    .summary = "List an instance's jobs",
    .responses = (const ft_route_response_t[]){{200, "JobList", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_get_dlq = {
    .tag = "Jobs",
    .summary = "List dead letters",
    .query = (const ft_route_query_t[]){{"include_closed", "{\"type\":\"string\",\"enum\":[\"true\",\"false\"]}", NULL}, {0}},
    .responses = (const ft_route_response_t[]){{200, "DeadLetterList", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_post_dlq_id_replay = {
    .tag = "Jobs",
    .summary = "Replay a dead letter",
    .responses = (const ft_route_response_t[]){{202, "Object", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_delete_dlq_id = {
    .tag = "Jobs",
    .summary = "Discard a dead letter",
    .responses = (const ft_route_response_t[]){{204, NULL, NULL, "Discarded"}, {0}},
};

void ft_routes_jobs(ft_router_t *router)
{
    static const ft_route_t routes[] = {
        {.method = "GET", .pattern = "/api/v1/jobs/{id}", .permission = "jobs:read", .flags = FT_ROUTE_CHAIN, .handler = get_job,
         .doc = &doc_get_jobs_id},
        {.method = "GET", .pattern = "/api/v1/instances/{id}/jobs", .permission = "jobs:read", .flags = FT_ROUTE_CHAIN,
         .handler = list_jobs, .doc = &doc_get_instances_id_jobs},
        {.method = "GET", .pattern = "/api/v1/dlq", .permission = "dlq:read", .flags = FT_ROUTE_CHAIN, .handler = list_dlq,
         .doc = &doc_get_dlq},
        {.method = "POST", .pattern = "/api/v1/dlq/{id}/replay", .permission = "dlq:write", .action = "dlq.replay", .flags = FT_ROUTE_CHAIN | FT_ROUTE_WRITE,
         .handler = replay, .doc = &doc_post_dlq_id_replay},
        {.method = "DELETE", .pattern = "/api/v1/dlq/{id}", .permission = "dlq:write", .action = "dlq.discard", .flags = FT_ROUTE_CHAIN | FT_ROUTE_WRITE,
         .handler = discard, .doc = &doc_delete_dlq_id},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        ft_router_add(router, &routes[i]);
}
