/*
 * Jobs and the dead-letter queue: GET /api/v1/jobs (filtered, paged), GET /api/v1/jobs/{id} (also
 * as an event stream of its changes), GET /api/v1/instances/{id}/jobs,
 * GET /api/v1/dlq, POST /api/v1/dlq/{id}/replay, DELETE /api/v1/dlq/{id}.
 */
#include "core/mem.h"
#include "http/ent_lookup.h"
#include "http/op.h"
#include "http/routes.h"
#include "http/sse.h"
#include "store/job_run_store.h"
#include "store/sql.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int get_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    return ft_job_get(c, &op->call, op->id, &op->out, &op->problem, err);
}

/* --- GET /api/v1/jobs/{id} with Accept: text/event-stream: every step change, then the job --- */

typedef struct job_watch {
    char id[40];
    long long seen; /* the change number the client has (Last-Event-ID), or -1 */
    uint64_t last;  /* a hash of the last job sent: a write that changed nothing shown sends nothing */
} job_watch_t;

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

typedef struct job_read {
    ft_sse_stream_t *s; /* valid while the request is alive */
    job_watch_t *w;     /* likewise */
    char id[40];        /* the work's own copy: the stream may go while it runs */
    long long after;    /* likewise: the change the client had when the read began */
    ft_call_t call;
    json_t *job, *steps;
    long long seq;
    ft_problem_t problem;
} job_read_t;

static int job_read_work(PGconn *c, void *p, ft_error_t *err)
{
    job_read_t *rd = p;
    return ft_job_watch(c, &rd->call, rd->id, rd->after, &rd->job, &rd->seq, &rd->steps, &rd->problem, err);
}

/* One `step` event per step change the read found, in order, each with its change number. */
static void send_steps(job_read_t *rd)
{
    size_t i;
    json_t *change;
    json_array_foreach(rd->steps, i, change)
    {
        long long seq = (long long)json_integer_value(json_object_get(change, "seq"));
        if (seq <= rd->w->seen)
            continue;
        char id[24];
        snprintf(id, sizeof(id), "%lld", seq);
        char *data = json_dumps(change, JSON_COMPACT | JSON_REAL_PRECISION(10));
        ft_sse_send(rd->s, id, "step", data, strlen(data));
        free(data);
    }
}

static void job_read_done(ft_req_t *r, void *p, int status, const ft_error_t *err)
{
    job_read_t *rd = p;
    if (!ft_req_alive(r))
        goto out;
    if (status != FT_OK) {
        /* before the first event the client gets the problem; later the stream just ends and the
         * client reconnects with its Last-Event-ID */
        if (rd->problem.status != 0)
            ft_respond_problem_struct(r, &rd->problem);
        else if (r->status == 0)
            ft_respond_internal(r, 500, err);
        ft_sse_end(rd->s);
        goto out;
    }
    const char *st = ft_json_str(rd->job, "status");
    int terminal = st != NULL && (strcmp(st, "succeeded") == 0 || strcmp(st, "failed") == 0);
    if (rd->seq > rd->w->seen) {
        send_steps(rd);
        char id[24];
        snprintf(id, sizeof(id), "%lld", rd->seq);
        char *data = json_dumps(rd->job, JSON_COMPACT | JSON_REAL_PRECISION(10));
        uint64_t h = fnv1a(data);
        if (h != rd->w->last)
            ft_sse_send(rd->s, id, "job", data, strlen(data));
        free(data);
        rd->w->seen = rd->seq;
        rd->w->last = h;
    }
    if (terminal) {
        ft_sse_end(rd->s); /* 204 when the client had seen it all: EventSource stops reconnecting */
    } else {
        ft_sse_begin(rd->s);
        ft_sse_refreshed(rd->s);
    }
out:
    json_decref(rd->job);
    json_decref(rd->steps);
    ft_problem_clear(&rd->problem);
    free(rd);
}

static void job_refresh(ft_sse_stream_t *s, void *arg)
{
    job_read_t *rd = ft_mem_calloc(1, sizeof(*rd));
    rd->s = s;
    rd->w = arg;
    memcpy(rd->id, rd->w->id, sizeof(rd->id));
    /* the changes after the client's; with none (a new stream) the job as it is comes alone */
    rd->after = rd->w->seen;
    ft_req_call(ft_sse_req(s), &rd->call); /* borrowed from the request, which the wait holds */
    ft_req_defer_db(ft_sse_req(s), job_read_work, job_read_done, rd);
}

static void watch_job(ft_req_t *r)
{
    job_watch_t *w = ft_mem_calloc(1, sizeof(*w));
    if (ft_op_uuid_param(r, "id", w->id, sizeof(w->id)) != 0) {
        free(w);
        return;
    }
    const char *last = ft_sse_last_event_id(r);
    char *end = NULL;
    long long seen = last != NULL ? strtoll(last, &end, 10) : -1;
    w->seen = last != NULL && *last != '\0' && *end == '\0' && seen >= 0 ? seen : -1;
    ft_sse_open(r, FT_SSE_JOB, w->id, job_refresh, w);
}

static void get_job(ft_req_t *r)
{
    if (ft_sse_wanted(r)) {
        watch_job(r);
        return;
    }
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

typedef struct filter_args {
    ft_job_filter_t f;
    char status[16], kind[24], product[64], instance_id[40], customer_id[40], after[40], before[40], cursor[96];
} filter_args_t;

static int list_all_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    filter_args_t *a = op->arg;
    return ft_job_list_all(c, &op->call, &a->f, &op->out, &op->problem, err);
}

static int one_of(const char *v, const char *const *values, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v, values[i]) == 0)
            return 1;
    return 0;
}

static void list_all(ft_req_t *r)
{
    filter_args_t *a = ft_mem_calloc(1, sizeof(*a));
    ft_job_filter_t *f = &a->f;
    static const char *const statuses[] = {"queued", "running", "succeeded", "failed"};
    if (ft_query_copy(r, "status", a->status, sizeof(a->status), &f->status) ||
        ft_query_copy(r, "kind", a->kind, sizeof(a->kind), &f->kind) ||
        ft_query_copy(r, "product", a->product, sizeof(a->product), &f->product) ||
        ft_query_uuid(r, "instance_id", a->instance_id, sizeof(a->instance_id), &f->instance_id) ||
        ft_query_uuid(r, "customer_id", a->customer_id, sizeof(a->customer_id), &f->customer_id) ||
        ft_query_time(r, "created_after", a->after, sizeof(a->after), &f->created_after) ||
        ft_query_time(r, "created_before", a->before, sizeof(a->before), &f->created_before) ||
        ft_query_copy(r, "cursor", a->cursor, sizeof(a->cursor), &f->cursor) || ft_query_limit(r, &f->limit))
        goto refused;
    if (f->status != NULL && !one_of(f->status, statuses, sizeof(statuses) / sizeof(statuses[0]))) {
        ft_respond_bad_param(r, "status", "must be one of queued, running, succeeded, failed");
        goto refused;
    }
    if (f->kind != NULL && ft_job_kind_find(f->kind) == NULL) {
        char detail[256] = "must be one of";
        size_t n = strlen(detail);
        for (size_t i = 0; i < FT_JOB_KIND_COUNT; i++)
            n += (size_t)snprintf(detail + n, sizeof(detail) - n, "%s %s", i == 0 ? "" : ",", ft_job_kinds[i].name);
        ft_respond_bad_param(r, "kind", detail);
        goto refused;
    }
    ft_op_t *op = ft_op_new(r);
    op->arg = a;
    ft_op_run(r, op, list_all_work, 200);
    return;
refused:
    free(a);
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

/* The API reference's part of each route (see ft_route_doc_t). The event stream's schema says what
 * its events are (a media type's description is its schema's: a status has one description) and
 * names their data's schemas in x-events (event name → schema); contentSchema (JSON Schema 2020-12) says
 * the same for tools that read only standard keywords: each event's data is one of them. */
#define SSE_STREAM                                                                                                                 \
    "{\"type\":\"string\",\"description\":\"Server-Sent Events until the job ends. `event: step` (id: the change's number;"      \
    " data: a JobStepEvent): one per change of one of the job's steps, in the order they were made. `event: job` (id: the number"  \
    " of the last change it shows; data: the Job as the plain GET answers it): first, and after the step events of each read;"     \
    " the stream ends after the job event whose status is succeeded or failed. Last-Event-ID resumes right after the change it"     \
    " names (0: from the job's start); a `: keepalive` comment line keeps an idle stream open.\","                                  \
    "\"contentSchema\":{\"oneOf\":[{\"$ref\":\"#/components/schemas/JobStepEvent\"},{\"$ref\":\"#/components/schemas/Job\"}]},"    \
    "\"x-events\":{\"step\":{\"$ref\":\"#/components/schemas/JobStepEvent\"},\"job\":{\"$ref\":\"#/components/schemas/Job\"}}}"
static const ft_route_doc_t doc_get_jobs = {
    .tag = "Jobs",
    .summary = "List jobs, newest first",
    .flags = FT_DOC_PAGE,
    .query = (const ft_route_query_t[]){{"status", "{\"type\":\"string\",\"enum\":[\"queued\",\"running\",\"succeeded\",\"failed\"]}", NULL},
                                        {"kind", "{\"type\":\"string\"}", "a job kind, such as provision"},
                                        {"product", "{\"type\":\"string\"}", NULL},
                                        {"instance_id", "{\"type\":\"string\",\"format\":\"uuid\"}", NULL},
                                        {"customer_id", "{\"type\":\"string\",\"format\":\"uuid\"}", NULL},
                                        {"created_after", "{\"type\":\"string\",\"format\":\"date-time\"}", "exclusive"},
                                        {"created_before", "{\"type\":\"string\",\"format\":\"date-time\"}", "exclusive"},
                                        {0}},
    .responses = (const ft_route_response_t[]){{200, "Job", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_get_jobs_id = {
    .tag = "Jobs",
    .summary = "Get a job with its steps; with Accept: text/event-stream, follow it until it ends",
    .responses = (const ft_route_response_t[]){{200, "Job", NULL, "The job; with Accept: text/event-stream, its event stream"},
                                               {200, SSE_STREAM, "text/event-stream", NULL},
                                               {204, NULL, NULL, "Last-Event-ID already saw the job's final state"},
                                               {0}},
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
    .responses = (const ft_route_response_t[]){{202, "DeadLetterReplay", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_delete_dlq_id = {
    .tag = "Jobs",
    .summary = "Discard a dead letter",
    .responses = (const ft_route_response_t[]){{204, NULL, NULL, "Discarded"}, {0}},
};

void ft_routes_jobs(ft_router_t *router)
{
    static const ft_route_t routes[] = {
        {.method = "GET", .pattern = "/api/v1/jobs", .permission = "jobs:read", .flags = FT_ROUTE_CHAIN, .handler = list_all,
         .doc = &doc_get_jobs},
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
