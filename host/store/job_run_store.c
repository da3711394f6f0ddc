/*
 * Job persistence for workers and the jobs/DLQ API. Each function is one transaction.
 */
#include "store/job_run_store.h"

#include "core/mem.h"
#include "domain/events.h"
#include "store/customer_store.h"
#include "store/instance_store.h"
#include "store/job_store.h"
#include "store/outbox_store.h"
#include "store/sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every attempt of a job, each round of replays included, in the order they ended ("at" is the
 * end, as before the rows had a start). */
#define HISTORY_JSON(job_id)                                                                                                       \
    "(SELECT coalesce(json_agg(json_build_object('round', a.round, 'attempt', a.attempt, 'outcome', a.outcome,"                    \
    " 'generation', a.generation, 'product_version', a.product_version, 'step', a.step, 'error', a.error,"                         \
    " 'retryable', a.retryable, 'started_at', a.started_at, 'finished_at', a.finished_at, 'at', a.finished_at)"                    \
    " ORDER BY a.id), '[]') FROM ft_job_attempts a WHERE a.job_id = " job_id ")"

#define JOB_JSON                                                                                                                   \
    "json_build_object('id', j.id, 'instance_id', j.instance_id, 'product', j.product_code, 'kind', j.kind,"                       \
    " 'status', j.status, 'attempts', j.attempts, 'max_attempts', j.max_attempts, 'last_error', j.last_error,"                     \
    " 'correlation_id', j.correlation_id, 'payload', j.payload, 'created_at', j.created_at, 'updated_at', j.updated_at,"           \
    " 'trace_id', substr(j.traceparent, 4, 32),"                                                                                   \
    " 'started_at', j.started_at, 'finished_at', j.finished_at, 'result', j.result,"                                               \
    " 'progress', (SELECT json_build_object('done', count(*) FILTER (WHERE s.status = 'succeeded'), 'total', count(*))"            \
    "   FROM ft_job_steps s WHERE s.job_id = j.id),"                                                                               \
    " 'steps', (SELECT coalesce(json_agg(json_build_object('position', s.position, 'name', s.name, 'version', s.version,"          \
    "   'status', s.status, 'attempts', s.attempts, 'last_error', s.last_error, 'started_at', s.started_at,"                       \
    "   'finished_at', s.finished_at, 'note', s.note) ORDER BY s.ordinal, s.position), '[]')"                                      \
    "   FROM ft_job_steps s WHERE s.job_id = j.id),"                                                                               \
    " 'replays', j.replays, 'history', " HISTORY_JSON("j.id") ")::text"

static int rollback(PGconn *c, int rc)
{
    ft_sql_rollback(c);
    return rc;
}

/* enable_seqscan = off: a worker's statements name their rows by key, a batch's as an array
 * (id = ANY ($1)); a plan that scans a whole table and tests each row against every element of
 * the array costs rows × elements, which grows with the tables' history. */
int ft_job_runner_session(PGconn *c, ft_error_t *err)
{
    return ft_sql(c, "setting up a job runner's session",
                  "SELECT set_config('synchronous_commit', 'off', false), set_config('enable_seqscan', 'off', false)", 0, NULL, NULL,
                  err);
}

/* Makes the open transaction's commit wait for its WAL to reach the disk (and so become visible
 * only once durable), whatever the session's default (see ft_job_runner_session). */
static int durable(PGconn *c, ft_error_t *err)
{
    return ft_sql_prepared(c, "making a commit durable", "SET LOCAL synchronous_commit = on", 0, NULL, NULL, err);
}

void ft_job_row_free(ft_job_row_t *job)
{
    json_decref(job->payload);
    json_decref(job->settings);
    free(job->steps);
    memset(job, 0, sizeof(*job));
}

/* (Re)reads the job's steps in their order. */
/* The job's steps from rows [from, to) of res, their columns (position, name, version, status,
 * ordinal) from column col on. */
static void take_steps(PGresult *res, int from, int to, int col, ft_job_row_t *job)
{
    free(job->steps);
    job->nsteps = (size_t)(to - from);
    job->steps = ft_mem_calloc(job->nsteps + 1, sizeof(*job->steps));
    for (int k = from; k < to; k++) {
        ft_job_step_row_t *st = &job->steps[k - from];
        st->position = atoi(PQgetvalue(res, k, col));
        snprintf(st->name, sizeof(st->name), "%s", PQgetvalue(res, k, col + 1));
        st->version = (unsigned)atoi(PQgetvalue(res, k, col + 2));
        snprintf(st->status, sizeof(st->status), "%s", PQgetvalue(res, k, col + 3));
        st->ordinal = atoi(PQgetvalue(res, k, col + 4));
    }
}

static int read_steps(PGconn *c, ft_job_row_t *job, ft_error_t *err)
{
    const char *p[] = {job->id};
    PGresult *res = NULL;
    int rc =
        ft_sql_prepared(c, "reading job steps",
               "SELECT position, name, version, status, ordinal FROM ft_job_steps WHERE job_id = $1 ORDER BY ordinal, position", 1,
               p, &res, err);
    if (rc != FT_OK)
        return rc;
    take_steps(res, 0, PQntuples(res), 0, job);
    PQclear(res);
    return FT_OK;
}

/* Appends the attempt that just ended to the job's history (a new row; rows are never changed).
 * Its round, number and start come from the job row, its generation from the worker. retryable
 * < 0: not applicable (a success). */
static int record_attempt(PGconn *c, const ft_job_row_t *job, const char *outcome, const char *step, const char *error,
                          int retryable, ft_error_t *err)
{
    char generation[24];
    snprintf(generation, sizeof(generation), "%llu", job->generation);
    const char *p[] = {job->id,
                       outcome,
                       step,
                       error,
                       retryable < 0 ? NULL
                       : retryable   ? "t"
                                     : "f",
                       job->generation ? generation : NULL,
                       job->product_version[0] ? job->product_version : NULL};
    return ft_sql_prepared(
        c, "recording an attempt",
        "INSERT INTO ft_job_attempts (job_id, round, attempt, outcome, step, error, retryable, started_at, finished_at,"
        " generation, product_version)"
        " SELECT id, replays, attempts, $2, $3, $4, $5::bool, attempt_started_at, now(), $6::bigint, $7 FROM ft_jobs WHERE id = $1",
        7, p, NULL, err);
}

/* The job row's columns as the claim reads them, from column `col` of row `row` on. */
static void read_job(PGresult *res, int row, int col, ft_job_row_t *job, char status[16])
{
    snprintf(job->id, sizeof(job->id), "%s", PQgetvalue(res, row, col + 0));
    snprintf(job->instance_id, sizeof(job->instance_id), "%s", PQgetvalue(res, row, col + 1));
    snprintf(job->customer_id, sizeof(job->customer_id), "%s", PQgetvalue(res, row, col + 2));
    snprintf(job->product, sizeof(job->product), "%s", PQgetvalue(res, row, col + 3));
    snprintf(job->kind, sizeof(job->kind), "%s", PQgetvalue(res, row, col + 4));
    job->k = ft_job_kind_find(job->kind);
    snprintf(status, 16, "%s", PQgetvalue(res, row, col + 5));
    job->attempts = atoi(PQgetvalue(res, row, col + 6));
    job->max_attempts = atoi(PQgetvalue(res, row, col + 7));
    snprintf(job->correlation_id, sizeof(job->correlation_id), "%s", PQgetvalue(res, row, col + 8));
    job->payload = json_loads(PQgetvalue(res, row, col + 9), 0, NULL);
    snprintf(job->tier, sizeof(job->tier), "%s", PQgetvalue(res, row, col + 10));
    snprintf(job->code, sizeof(job->code), "%s", PQgetvalue(res, row, col + 11));
    snprintf(job->instance_status, sizeof(job->instance_status), "%s", PQgetvalue(res, row, col + 12));
    job->settings = json_loads(PQgetvalue(res, row, col + 13), 0, NULL);
    job->round = atoi(PQgetvalue(res, row, col + 14));
    ft_trace_begin(&job->trace, PQgetvalue(res, row, col + 15), (size_t)PQgetlength(res, row, col + 15));
}

/* The steps of the started jobs (rows of job_id, position, name, version, status, ordinal, each
 * job's rows together in their order) into their items. */
static void read_batch_steps(PGresult *res, ft_claim_item_t *items, size_t n)
{
    int rows = PQntuples(res);
    for (size_t i = 0; i < n; i++) {
        if (items[i].verdict != FT_CLAIM_RUN)
            continue;
        const char *id = items[i].job.id;
        int from = 0, to;
        while (from < rows && strcmp(PQgetvalue(res, from, 0), id) != 0)
            from++;
        for (to = from; to < rows && strcmp(PQgetvalue(res, to, 0), id) == 0; to++)
            ;
        take_steps(res, from, to, 1, &items[i].job);
    }
}

/* "{a,b}": a PostgreSQL array literal of the ids (uuids need no quoting). */
static char *id_array(const char *const *ids, size_t n)
{
    char *out = ft_mem_alloc(n * 37 + 3), *p = out;
    *p++ = '{';
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s%s", i > 0 ? "," : "", ids[i]);
    *p++ = '}';
    *p = '\0';
    return out;
}

void ft_claim_item_free(ft_claim_item_t *item)
{
    ft_job_row_free(&item->job);
    free(item->tenant_url);
    item->tenant_url = NULL;
}

int ft_job_claim_batch(PGconn *c, ft_claim_item_t *items, size_t n, const char *consumer, int max_attempts, ft_error_t *err)
{
    const char **jobs = ft_mem_calloc(n + 1, sizeof(*jobs)), **events = ft_mem_calloc(n + 1, sizeof(*events));
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        memset(&items[i].job, 0, sizeof(items[i].job));
        items[i].tenant_url = NULL;
        items[i].verdict = FT_CLAIM_WAIT;
        int repeated = 0;
        for (size_t k = 0; k < i && !repeated; k++)
            repeated = strcmp(items[k].job_id, items[i].job_id) == 0;
        if (!repeated) {
            jobs[m] = items[i].job_id;
            events[m++] = items[i].event_id;
        }
    }
    char *job_arr = id_array(jobs, m), *event_arr = id_array(events, m);
    const char *p[] = {job_arr, event_arr, consumer};
    PGresult *res = NULL;
    char **run_ids = ft_mem_calloc(n + 1, sizeof(*run_ids));
    size_t nrun = 0;
    json_t *run = json_array();
    int rc = ft_sql_begin(c, err);
    /* One statement: each job locked (skipping those a concurrent transaction holds), and whether
     * it is done (finished, or this event was applied already: the inbox) or must wait (an earlier
     * job of the instance is unfinished: jobs of one instance run in the order they were asked
     * for); the others are taken for this session with an advisory lock, held until
     * ft_jobs_release or until this connection dies with its worker (then a redelivery may take
     * the job over). The checks may read a snapshot taken before a row lock was granted: an
     * earlier job seen unfinished that has just finished only makes this one wait a little, and a
     * finished job is told by its own (locked, latest) row. */
    if (rc == FT_OK)
        rc = ft_sql_prepared(
            c, "claiming jobs",
            "SELECT r.job_id, j.id, j.instance_id, i.customer_id, j.product_code, j.kind, j.status, j.attempts, j.max_attempts,"
            " j.correlation_id, j.payload::text, i.tier, i.code, i.status, i.settings::text, j.replays, j.traceparent,"
            " (SELECT d.url FROM ft_tenant_databases d WHERE d.id = i.tenant_database_id),"
            " CASE WHEN j.id IS NULL THEN CASE WHEN EXISTS (SELECT 1 FROM ft_jobs x WHERE x.id = r.job_id) THEN 'wait'"
            "   ELSE 'missing' END"
            "  WHEN j.status IN ('succeeded', 'failed')"
            "   OR EXISTS (SELECT 1 FROM ft_inbox b WHERE b.consumer = $3 AND b.event_id = r.event_id) THEN 'done'"
            "  WHEN EXISTS (SELECT 1 FROM ft_jobs e WHERE e.instance_id = j.instance_id AND e.id <> j.id"
            "   AND e.status IN ('queued', 'running') AND e.created_at < j.created_at) THEN 'wait'"
            "  WHEN pg_try_advisory_lock(hashtext('ft_job:' || j.id::text)) THEN 'run'"
            "  ELSE 'wait' END"
            " FROM unnest($1::uuid[], $2::uuid[]) AS r(job_id, event_id)"
            " LEFT JOIN (SELECT * FROM ft_jobs WHERE id = ANY ($1::uuid[]) ORDER BY id FOR UPDATE SKIP LOCKED) j ON j.id = r.job_id"
            " LEFT JOIN ft_instances i ON i.id = j.instance_id",
            3, p, &res, err);
    for (int row = 0; rc == FT_OK && row < PQntuples(res); row++) {
        const char *job_id = PQgetvalue(res, row, 0);
        ft_claim_item_t *it = NULL;
        for (size_t i = 0; i < n && it == NULL; i++)
            if (strcmp(items[i].job_id, job_id) == 0)
                it = &items[i];
        if (it == NULL)
            continue;
        char decision = PQgetvalue(res, row, 18)[0], status[16] = "";
        it->verdict = decision == 'r' ? FT_CLAIM_RUN : decision == 'd' ? FT_CLAIM_DONE : decision == 'm' ? FT_CLAIM_MISSING : FT_CLAIM_WAIT;
        if (it->verdict != FT_CLAIM_RUN)
            continue;
        read_job(res, row, 1, &it->job, status);
        if (it->job.k == NULL) {
            it->verdict = FT_CLAIM_FOREIGN;
            ft_jobs_release(c, &it->job_id, 1);
            continue;
        }
        if (!PQgetisnull(res, row, 17))
            it->tenant_url = ft_mem_strdup(PQgetvalue(res, row, 17));
        it->job.max_attempts = max_attempts;
        it->job.attempts++;
        run_ids[nrun++] = it->job.id;
        json_array_append_new(run, json_pack("{s:s, s:s?, s:s?, s:b}", "id", it->job.id, "running", it->job.k->running,
                                             "running_from", it->job.k->running_from, "interrupted",
                                             strcmp(status, "running") == 0));
    }
    PQclear(res);
    res = NULL;
    char budget[16];
    snprintf(budget, sizeof(budget), "%d", max_attempts);
    char *run_text = json_dumps(run, JSON_COMPACT);
    char *run_arr = id_array((const char *const *)run_ids, nrun);
    const char *sp[] = {run_text, budget, run_arr};
    /* The jobs to run start their attempt: one still running whose lock was free lost its worker
     * before it recorded the attempt (an "interrupted" attempt in its history); their instances
     * show the kind's status at work; their steps are read in their order. */
    if (rc == FT_OK && nrun > 0)
        rc = ft_sql_prepared(
            c, "starting job attempts",
            "WITH r AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, running text, running_from text, interrupted bool)),"
            " interrupted AS (INSERT INTO ft_job_attempts (job_id, round, attempt, outcome, error, retryable, started_at, finished_at)"
            "  SELECT j.id, j.replays, j.attempts, 'interrupted', 'the worker running it stopped', true, j.attempt_started_at, now()"
            "  FROM ft_jobs j JOIN r ON r.id = j.id WHERE j.id = ANY ($3::uuid[]) AND r.interrupted RETURNING 1),"
            " started AS (UPDATE ft_jobs j SET status = 'running', attempts = j.attempts + 1, max_attempts = $2::int,"
            "  started_at = coalesce(j.started_at, now()), attempt_started_at = now(), updated_at = now()"
            "  FROM r WHERE j.id = ANY ($3::uuid[]) AND j.id = r.id RETURNING 1),"
            " busy AS (UPDATE ft_instances i SET status = r.running, status_reason = NULL, updated_at = now()"
            "  FROM r JOIN ft_jobs j ON j.id = r.id WHERE j.id = ANY ($3::uuid[]) AND i.id = j.instance_id"
            "  AND r.running IS NOT NULL AND i.status = ANY (r.running_from::text[]) RETURNING 1)"
            " SELECT s.job_id, s.position, s.name, s.version, s.status, s.ordinal FROM ft_job_steps s"
            " WHERE s.job_id = ANY ($3::uuid[]) ORDER BY s.job_id, s.ordinal, s.position",
            3, sp, &res, err);
    if (rc == FT_OK && nrun > 0)
        read_batch_steps(res, items, n);
    PQclear(res);
    if (rc == FT_OK)
        rc = ft_sql_commit(c, err);
    if (rc != FT_OK) {
        /* a statement that failed half-way may have taken some of the jobs' session locks (a
         * rollback keeps them): the connection holds no other job while it claims, so all go */
        ft_sql_rollback(c);
        ft_error_t ignored = {0};
        ft_sql(c, "releasing the claim's locks", "SELECT pg_advisory_unlock_all()", 0, NULL, NULL, &ignored);
        for (size_t i = 0; i < n; i++) {
            ft_claim_item_free(&items[i]);
            items[i].verdict = FT_CLAIM_WAIT;
        }
    }
    free(run_text);
    free(run_arr);
    json_decref(run);
    free(run_ids);
    free(job_arr);
    free(event_arr);
    free(jobs);
    free(events);
    return rc;
}

int ft_job_steps_apply(PGconn *c, ft_job_row_t *job, const ft_step_plan_item_t *plan, size_t nplan,
                       const ft_job_step_spec_t *current, const char *note, ft_error_t *err)
{
    int next_position = 0, began = 0, rc = FT_OK;
    for (size_t i = 0; i < job->nsteps; i++)
        if (job->steps[i].position >= next_position)
            next_position = job->steps[i].position + 1;
    for (size_t i = 0; i < nplan && rc == FT_OK; i++) {
        const ft_step_plan_item_t *it = &plan[i];
        const ft_job_step_row_t *s = it->recorded >= 0 ? &job->steps[it->recorded] : NULL;
        const ft_job_step_spec_t *want = it->current >= 0 ? &current[it->current] : NULL;
        /* a step still to do runs as the generation declares it */
        int reversion = s != NULL && want != NULL && strcmp(s->status, "succeeded") != 0 && s->version != want->version;
        if (s != NULL && s->ordinal == (int)i && it->status == NULL && !reversion)
            continue;
        if (!began && (rc = ft_sql_begin(c, err)) != FT_OK)
            return rc;
        began = 1;
        char ordinal[16], position[16], version[16];
        snprintf(ordinal, sizeof(ordinal), "%zu", i);
        snprintf(position, sizeof(position), "%d", s != NULL ? s->position : next_position++);
        snprintf(version, sizeof(version), "%u", want != NULL ? want->version : 0);
        if (s != NULL) {
            const char *p[] = {job->id, position, ordinal, it->status, reversion ? version : NULL, note};
            rc = ft_sql(c, "bringing a job step in line",
                        "UPDATE ft_job_steps SET ordinal = $3, status = coalesce($4, status), version = coalesce($5::int, version),"
                        " note = CASE $4 WHEN 'skipped' THEN $6 WHEN 'pending' THEN NULL ELSE note END"
                        " WHERE job_id = $1 AND position = $2",
                        6, p, NULL, err);
        } else {
            const char *p[] = {job->id, position, want->name, version, ordinal};
            rc = ft_sql(c, "adding a job step",
                        "INSERT INTO ft_job_steps (job_id, position, name, version, ordinal) VALUES ($1, $2, $3, $4, $5)", 5, p,
                        NULL, err);
        }
    }
    if (!began)
        return FT_OK;
    if (rc == FT_OK)
        rc = read_steps(c, job, err);
    if (rc == FT_OK)
        return ft_sql_commit(c, err);
    return rollback(c, rc);
}

void ft_jobs_release(PGconn *c, const char *const *job_ids, size_t n)
{
    if (n == 0)
        return;
    char *ids = id_array(job_ids, n);
    const char *p[] = {ids};
    ft_error_t ignored = {0};
    ft_sql_prepared(c, "releasing jobs", "SELECT pg_advisory_unlock(hashtext('ft_job:' || x)) FROM unnest($1::text[]) x", 1, p,
                    NULL, &ignored);
    free(ids);
}

int ft_job_step_running(PGconn *c, const char *job_id, int position, ft_error_t *err)
{
    char pos[16];
    snprintf(pos, sizeof(pos), "%d", position);
    const char *p[] = {job_id, pos};
    return ft_sql_prepared(c, "marking a step running",
                  "UPDATE ft_job_steps SET status = 'running', attempts = attempts + 1, started_at = now(), last_error = NULL"
                  " WHERE job_id = $1 AND position = $2",
                  2, p, NULL, err);
}

int ft_job_steps_mark(PGconn *c, const ft_step_mark_t *marks, size_t n, ft_error_t *err)
{
    int *rank = ft_mem_calloc(n + 1, sizeof(*rank)), ranks = 0, rc = FT_OK;
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < i; k++)
            if (strcmp(marks[k].job_id, marks[i].job_id) == 0)
                rank[i]++;
        if (rank[i] + 1 > ranks)
            ranks = rank[i] + 1;
    }
    const char **ids = ft_mem_calloc(n + 1, sizeof(*ids));
    for (int r = 0; r < ranks && rc == FT_OK; r++) {
        json_t *rows = json_array();
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (rank[i] != r)
                continue;
            ids[m++] = marks[i].job_id;
            json_array_append_new(rows, json_pack("{s:s, s:i, s:b, s:I}", "job_id", marks[i].job_id, "position", marks[i].position,
                                                  "done", marks[i].done, "at", (json_int_t)marks[i].at_us));
        }
        char *text = json_dumps(rows, JSON_COMPACT), *id_arr = id_array(ids, m);
        const char *p[] = {text, id_arr};
        rc = ft_sql_prepared(
            c, "recording step progress",
            "UPDATE ft_job_steps s SET status = CASE WHEN r.done THEN 'succeeded' ELSE 'running' END,"
            " attempts = s.attempts + CASE WHEN r.done THEN 0 ELSE 1 END,"
            " started_at = CASE WHEN r.done THEN s.started_at ELSE 'epoch'::timestamptz + r.at * interval '1 microsecond' END,"
            " finished_at = CASE WHEN r.done THEN 'epoch'::timestamptz + r.at * interval '1 microsecond' ELSE s.finished_at END,"
            " last_error = NULL"
            " FROM jsonb_to_recordset($1::jsonb) AS r(job_id uuid, position int, done bool, at bigint)"
            " WHERE s.job_id = ANY ($2::uuid[]) AND s.job_id = r.job_id AND s.position = r.position",
            2, p, NULL, err);
        free(text);
        free(id_arr);
        json_decref(rows);
    }
    free(ids);
    free(rank);
    return rc;
}

int ft_job_step_done(PGconn *c, const ft_job_row_t *job, int position, json_t *events, const char *result, ft_error_t *err)
{
    char pos[16];
    snprintf(pos, sizeof(pos), "%d", position);
    const char *p[] = {job->id, pos};
    static const char mark[] = "UPDATE ft_job_steps SET status = 'succeeded', finished_at = now(), last_error = NULL"
                               " WHERE job_id = $1 AND position = $2";
    int leaves = json_array_size(events) > 0 || result != NULL;
    if (!leaves) /* progress only: one statement, its own transaction */
        return ft_sql_prepared(c, "marking a step done", mark, 2, p, NULL, err);
    int rc = ft_sql_begin(c, err);
    /* events or a result leave the control plane (the relay, the API): durable before visible */
    if (rc == FT_OK)
        rc = durable(c, err);
    if (rc == FT_OK)
        rc = ft_sql_prepared(c, "marking a step done", mark, 2, p, NULL, err);
    const char *rp[] = {job->id, result};
    if (rc == FT_OK && result != NULL)
        rc = ft_sql(c, "recording the job's result", "UPDATE ft_jobs SET result = $2::jsonb WHERE id = $1", 2, rp, NULL, err);
    ft_event_meta_t meta = {.tenant_id = job->instance_id,
                            .correlation_id = job->correlation_id,
                            .causation_id = job->id,
                            .traceparent = job->trace.traceparent};
    if (rc == FT_OK)
        rc = ft_outbox_emit_plugin_events(c, job->instance_id, &meta, job->id, position, events, err);
    if (rc == FT_OK)
        return ft_sql_commit(c, err);
    return rollback(c, rc);
}

int ft_job_step_failed(PGconn *c, const char *job_id, int position, const char *error, ft_error_t *err)
{
    char pos[16];
    snprintf(pos, sizeof(pos), "%d", position);
    const char *p[] = {job_id, pos, error};
    return ft_sql(
        c, "marking a step failed",
        "UPDATE ft_job_steps SET status = 'failed', finished_at = now(), last_error = $3 WHERE job_id = $1 AND position = $2", 3, p,
        NULL, err);
}

/* The meta of a job's event, and its data (returned) with the job's identity. */
static json_t *identify(const ft_job_row_t *job, json_t *data, ft_event_meta_t *meta)
{
    *meta = (ft_event_meta_t){.tenant_id = job->instance_id,
                              .correlation_id = job->correlation_id,
                              .causation_id = job->id,
                              .traceparent = job->trace.traceparent};
    json_object_set_new(data, "job_id", json_string(job->id));
    json_object_set_new(data, "instance_id", json_string(job->instance_id));
    json_object_set_new(data, "customer_id", json_string(job->customer_id));
    json_object_set_new(data, "product", json_string(job->product));
    json_object_set_new(data, "kind", json_string(job->kind));
    return data;
}

static int emit(PGconn *c, const ft_job_row_t *job, const char *name, json_t *data, ft_error_t *err)
{
    ft_event_meta_t meta;
    identify(job, data, &meta);
    return ft_outbox_emit(c, "instance", job->instance_id, name, &meta, data, err);
}

int ft_job_attempt_failed(PGconn *c, const ft_job_row_t *job, const char *step, const char *error, int retryable, ft_error_t *err)
{
    int rc = ft_sql_begin(c, err);
    if (rc == FT_OK)
        rc = durable(c, err);
    if (rc == FT_OK)
        rc = record_attempt(c, job, "failed", step, error, retryable, err);
    const char *qp[] = {job->id, error};
    if (rc == FT_OK)
        rc = ft_sql(c, "queuing the job again",
                    "UPDATE ft_jobs SET status = 'queued', last_error = $2, updated_at = now() WHERE id = $1", 2, qp, NULL, err);
    if (rc == FT_OK && retryable && job->attempts < job->max_attempts)
        rc = emit(c, job, "job.retrying.v1",
                  json_pack("{s:i, s:i, s:s, s:s}", "attempt", job->attempts, "max_attempts", job->max_attempts, "step",
                            step != NULL ? step : "", "error", error),
                  err);
    if (rc == FT_OK)
        return ft_sql_commit(c, err);
    return rollback(c, rc);
}

static int inbox(PGconn *c, const char *consumer, const char *event_id, ft_error_t *err)
{
    const char *p[] = {consumer, event_id};
    return ft_sql_prepared(c, "recording the inbox",
                  "INSERT INTO ft_inbox (consumer, event_id) VALUES ($1, $2::uuid) ON CONFLICT DO NOTHING", 2, p, NULL, err);
}

/* A job's event into rows: data (stolen) gets the job's identity. */
static void emit_row(ft_outbox_rows_t *rows, const ft_job_row_t *job, const char *name, json_t *data)
{
    ft_event_meta_t meta;
    identify(job, data, &meta);
    ft_outbox_rows_emit(rows, "instance", job->instance_id, name, &meta, data);
}

int ft_jobs_succeeded(PGconn *c, const ft_job_success_t *done, size_t n, const ft_step_mark_t *marks, size_t nmarks,
                      const char *consumer, ft_error_t *err)
{
    json_t *rows = json_array();
    ft_outbox_rows_t events = {0};
    for (size_t i = 0; i < n; i++) {
        const ft_job_row_t *job = done[i].job;
        const ft_job_kind_t *k = job->k;
        json_t *loc = done[i].data_location;
        json_array_append_new(rows, json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:b, s:O?, s:I, s:s?}", "id", job->id, "event_id",
                                              done[i].event_id, "instance_id", job->instance_id, "succeeded", k->succeeded,
                                              "succeeded_from", k->succeeded_from, "records_location", k->records_location, "location",
                                              loc, "generation", (json_int_t)job->generation, "product_version",
                                              job->product_version[0] ? job->product_version : NULL));
        emit_row(&events, job, "job.succeeded.v1", json_pack("{s:i}", "attempts", job->attempts));
        if (k->done != NULL) {
            json_t *data = json_pack("{s:s}", "tier", job->tier);
            if (loc != NULL && k->records_location)
                json_object_set(data, "data_location", loc);
            emit_row(&events, job, k->done, data);
        }
    }
    const char **ids = ft_mem_calloc(n + 1, sizeof(*ids)), **instances = ft_mem_calloc(n + 1, sizeof(*instances));
    for (size_t i = 0; i < n; i++) {
        ids[i] = done[i].job->id;
        instances[i] = done[i].job->instance_id;
    }
    char *text = json_dumps(rows, JSON_COMPACT), *id_arr = id_array(ids, n), *instance_arr = id_array(instances, n);
    const char *p[] = {text, consumer, id_arr, instance_arr};
    int rc = ft_sql_begin(c, err);
    if (rc == FT_OK)
        rc = durable(c, err);
    if (rc == FT_OK && nmarks > 0)
        rc = ft_job_steps_mark(c, marks, nmarks, err);
    /* One statement: the jobs end, their attempts are recorded (read from the jobs as they stood
     * before it: every part of one statement sees the same snapshot), their instances take the
     * kind's status on success with its reason cleared (else only a "last ..." failure note is
     * cleared), and the inbox remembers their events. */
    if (rc == FT_OK)
        rc = ft_sql_prepared(
            c, "finishing jobs",
            "WITH r AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id uuid, event_id uuid, instance_id uuid, succeeded text,"
            "  succeeded_from text, records_location bool, location jsonb, generation bigint, product_version text)),"
            " fin AS (UPDATE ft_jobs j SET status = 'succeeded', last_error = NULL, finished_at = now(), updated_at = now()"
            "  FROM r WHERE j.id = ANY ($3::uuid[]) AND j.id = r.id RETURNING 1),"
            " att AS (INSERT INTO ft_job_attempts (job_id, round, attempt, outcome, started_at, finished_at, generation,"
            "  product_version) SELECT j.id, j.replays, j.attempts, 'succeeded', j.attempt_started_at, now(),"
            "  nullif(r.generation, 0), r.product_version FROM ft_jobs j JOIN r ON r.id = j.id"
            "  WHERE j.id = ANY ($3::uuid[]) RETURNING 1),"
            " inst AS (UPDATE ft_instances i SET"
            "  status = CASE WHEN r.succeeded IS NOT NULL AND (r.succeeded_from IS NULL OR i.status = r.succeeded_from)"
            "   THEN r.succeeded ELSE i.status END,"
            "  status_reason = NULL,"
            "  data_location = CASE WHEN r.records_location THEN r.location ELSE i.data_location END,"
            "  deleted_at = CASE WHEN r.succeeded = 'deleted' THEN now() ELSE i.deleted_at END, updated_at = now()"
            "  FROM r WHERE i.id = ANY ($4::uuid[]) AND i.id = r.instance_id"
            "  AND (r.succeeded IS NOT NULL OR i.status_reason LIKE 'last %') RETURNING 1),"
            " inbox AS (INSERT INTO ft_inbox (consumer, event_id) SELECT $2, r.event_id FROM r ON CONFLICT DO NOTHING RETURNING 1)"
            " SELECT (SELECT count(*) FROM fin), (SELECT count(*) FROM att), (SELECT count(*) FROM inst),"
            " (SELECT count(*) FROM inbox)",
            4, p, NULL, err);
    if (rc == FT_OK)
        rc = ft_outbox_rows_write(c, &events, err);
    free(text);
    free(id_arr);
    free(instance_arr);
    free(ids);
    free(instances);
    json_decref(rows);
    ft_outbox_rows_free(&events);
    if (rc == FT_OK)
        return ft_sql_commit(c, err);
    return rollback(c, rc);
}

int ft_job_history(PGconn *c, const char *job_id, json_t **out, ft_error_t *err)
{
    const char *p[] = {job_id};
    return ft_sql_json(c, "reading a job's history", "SELECT " HISTORY_JSON("$1") "::text", 1, p, out, err);
}

int ft_job_dead(PGconn *c, const ft_job_row_t *job, const char *event_id, const char *consumer, const char *reason,
                const char *dlq_subject, unsigned long long stream_sequence, ft_error_t *err)
{
    char seq[24];
    snprintf(seq, sizeof(seq), "%llu", stream_sequence);
    const char *p[] = {job->id, reason};
    int rc = ft_sql_begin(c, err);
    if (rc == FT_OK)
        rc = durable(c, err);
    if (rc == FT_OK)
        rc = ft_sql(c, "failing a job",
                    "UPDATE ft_jobs SET status = 'failed', last_error = $2, finished_at = now(), updated_at = now() WHERE id = $1",
                    2, p, NULL, err);
    char why[600];
    snprintf(why, sizeof(why), "%s failed: %s", job->kind, reason);
    const char *ip[] = {job->instance_id, why, job->k->failed};
    if (rc == FT_OK)
        rc = ft_sql(c, "failing the instance",
                    "UPDATE ft_instances SET status = coalesce($3, status),"
                    " status_reason = CASE WHEN $3::text IS NULL THEN 'last ' || $2 ELSE $2 END, updated_at = now() WHERE id = $1",
                    3, ip, NULL, err);
    PGresult *res = NULL;
    const char *dp[] = {job->id, job->instance_id, job->kind, dlq_subject, stream_sequence ? seq : NULL, reason};
    if (rc == FT_OK)
        rc = ft_sql(c, "recording the dead letter",
                    "INSERT INTO ft_dlq (job_id, instance_id, kind, subject, stream_sequence, reason, attempts)"
                    " VALUES ($1, $2, $3, $4, $5, $6, " HISTORY_JSON("$1") ") RETURNING id",
                    6, dp, &res, err);
    char dlq_id[37] = "";
    if (rc == FT_OK) {
        snprintf(dlq_id, sizeof(dlq_id), "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    if (rc == FT_OK)
        rc = inbox(c, consumer, event_id, err);
    if (rc == FT_OK)
        rc = emit(c, job, "job.failed.v1",
                  json_pack("{s:i, s:s, s:s}", "attempts", job->attempts, "reason", reason, "dlq_id", dlq_id), err);
    if (rc == FT_OK)
        return ft_sql_commit(c, err);
    return rollback(c, rc);
}

/* A step's change as its event carries it (JobStepEvent): the step as the change left it. */
#define STEP_EVENT_JSON                                                                                                            \
    "json_build_object('job_id', c.job_id, 'seq', c.seq, 'at', c.at, 'previous_status', c.from_status,"                            \
    " 'step', json_build_object('position', c.position, 'name', c.name, 'version', c.version, 'status', c.status,"                 \
    "   'attempts', c.attempts, 'last_error', c.last_error, 'started_at', c.started_at, 'finished_at', c.finished_at,"             \
    "   'note', c.note),"                                                                                                          \
    " 'progress', json_build_object('done', c.done, 'total', c.total))"

int ft_job_watch(PGconn *c, const ft_call_t *call, const char *id, long long after, json_t **out, long long *seq, json_t **steps,
                 ft_problem_t *problem, ft_error_t *err)
{
    char from[24];
    snprintf(from, sizeof(from), "%lld", after);
    const char *p[] = {id, call->customer_id, call->instance_id, after >= 0 ? from : NULL};
    PGresult *res = NULL;
    /* One statement: the state, its number and the changes come from the same snapshot. The
     * changes after `after` are sent only when they follow on from it (the first one's prev_seq
     * is at most `after`); pruned rows leave a gap, and then the state alone is sent. */
    int rc = ft_sql_row(c, "reading a job",
                        "SELECT " JOB_JSON ", greatest(j.change_seq, (SELECT max(s.change_seq) FROM ft_job_steps s"
                        " WHERE s.job_id = j.id)),"
                        " (SELECT coalesce(json_agg(" STEP_EVENT_JSON " ORDER BY c.seq) FILTER (WHERE c.position IS NOT NULL),"
                        "   '[]') FROM ft_job_changes c WHERE c.job_id = j.id AND c.seq > $4::bigint"
                        "   HAVING count(*) = 0 OR (array_agg(c.prev_seq ORDER BY c.seq))[1] <= $4::bigint)::text"
                        " FROM ft_jobs j JOIN ft_instances i ON i.id = j.instance_id WHERE j.id = $1"
                        " AND ($2::uuid IS NULL OR i.customer_id = $2) AND ($3::uuid IS NULL OR i.id = $3)",
                        4, p, &res, err);
    if (rc == FT_ENOTFOUND)
        return ft_problem(problem, FT_ENOTFOUND, 404, "job-not-found", "Job not found", json_pack("{s:s}", "job_id", id),
                          "No job %s.", id);
    if (rc != FT_OK)
        return rc;
    if (seq != NULL)
        *seq = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    if (steps != NULL)
        *steps = PQgetisnull(res, 0, 2) ? json_array() : json_loads(PQgetvalue(res, 0, 2), 0, NULL);
    if (steps != NULL && *steps == NULL)
        *steps = json_array();
    return ft_sql_take_json(res, "job", out, err);
}

int ft_job_changes_prune(PGconn *c, int keep_s, long *n, ft_error_t *err)
{
    char keep[16];
    snprintf(keep, sizeof(keep), "%d", keep_s);
    const char *p[] = {keep};
    PGresult *res = NULL;
    int rc = ft_sql(c, "pruning job changes",
                    "DELETE FROM ft_job_changes c USING ft_jobs j WHERE j.id = c.job_id AND j.status IN ('succeeded', 'failed')"
                    " AND j.finished_at < now() - $1::int * interval '1 second'",
                    1, p, &res, err);
    if (rc == FT_OK) {
        *n = strtol(PQcmdTuples(res), NULL, 10);
        PQclear(res);
    }
    return rc;
}

int ft_job_get(PGconn *c, const ft_call_t *call, const char *id, json_t **out, ft_problem_t *problem, ft_error_t *err)
{
    return ft_job_watch(c, call, id, -1, out, NULL, NULL, problem, err);
}

int ft_job_list(PGconn *c, const ft_call_t *call, const char *instance_id, json_t **out, ft_problem_t *problem, ft_error_t *err)
{
    const char *p[] = {instance_id, call->customer_id, call->instance_id};
    PGresult *res = NULL;
    int rc = ft_sql_row(c, "checking the instance",
                        "SELECT 1 FROM ft_instances WHERE id = $1 AND ($2::uuid IS NULL OR customer_id = $2)"
                        " AND ($3::uuid IS NULL OR id = $3)",
                        3, p, &res, err);
    if (rc == FT_ENOTFOUND)
        return ft_instance_not_found(problem, instance_id);
    if (rc != FT_OK)
        return rc;
    PQclear(res);
    json_t *items = NULL;
    rc = ft_sql_json(c, "listing jobs",
                     "SELECT coalesce(json_agg(x.j::json ORDER BY x.created_at DESC), '[]')::text FROM (SELECT " JOB_JSON
                     " AS j, j.created_at FROM ft_jobs j WHERE j.instance_id = $1) x",
                     1, p, &items, err);
    if (rc == FT_OK)
        *out = json_pack("{s:s, s:o}", "instance_id", instance_id, "items", items);
    return rc;
}

int ft_job_list_all(PGconn *c, const ft_call_t *call, const ft_job_filter_t *f, json_t **out, ft_problem_t *problem,
                    ft_error_t *err)
{
    char micros[24] = "", cid[40] = "", limit[16];
    if (f->cursor != NULL && ft_cursor_parse(f->cursor, micros, sizeof(micros), cid, sizeof(cid), problem) != FT_OK)
        return FT_EINVAL;
    snprintf(limit, sizeof(limit), "%d", f->limit + 1);
    const char *p[] = {call->customer_id,   call->instance_id,
                       f->status,           f->kind,
                       f->product,          f->instance_id,
                       f->customer_id,      f->created_after,
                       f->created_before,   micros[0] ? micros : NULL,
                       cid[0] ? cid : NULL, limit};
    PGresult *res = NULL;
    int rc = ft_sql(c, "listing jobs",
                    "SELECT " JOB_JSON ", (extract(epoch FROM j.created_at) * 1000000)::bigint || '.' || j.id"
                    " FROM ft_jobs j JOIN ft_instances i ON i.id = j.instance_id"
                    " WHERE ($1::uuid IS NULL OR i.customer_id = $1) AND ($2::uuid IS NULL OR j.instance_id = $2)"
                    " AND ($3::text IS NULL OR j.status = $3) AND ($4::text IS NULL OR j.kind = $4)"
                    " AND ($5::text IS NULL OR j.product_code = $5) AND ($6::uuid IS NULL OR j.instance_id = $6)"
                    " AND ($7::uuid IS NULL OR i.customer_id = $7)"
                    " AND ($8::timestamptz IS NULL OR j.created_at > $8) AND ($9::timestamptz IS NULL OR j.created_at < $9)"
                    " AND ($10::bigint IS NULL OR (j.created_at, j.id) <"
                    "  ('epoch'::timestamptz + $10::bigint * interval '1 microsecond', $11::uuid))"
                    " ORDER BY j.created_at DESC, j.id DESC LIMIT $12::int",
                    12, p, &res, err);
    if (rc != FT_OK)
        return rc;
    *out = ft_sql_page(res, f->limit);
    return FT_OK;
}

#define DLQ_JSON                                                                                                                   \
    "json_build_object('id', d.id, 'job_id', d.job_id, 'instance_id', d.instance_id, 'kind', d.kind, 'subject', d.subject,"        \
    " 'stream_sequence', d.stream_sequence, 'reason', d.reason, 'attempts', d.attempts, 'created_at', d.created_at,"               \
    " 'replayed_at', d.replayed_at, 'replayed_by', d.replayed_by, 'discarded_at', d.discarded_at,"                                 \
    " 'discarded_by', d.discarded_by, 'state', CASE WHEN d.replayed_at IS NOT NULL THEN 'replayed'"                                \
    " WHEN d.discarded_at IS NOT NULL THEN 'discarded' ELSE 'open' END)"

int ft_dlq_list(PGconn *c, const ft_call_t *call, int include_closed, json_t **out, ft_error_t *err)
{
    const char *p[] = {call->customer_id, include_closed ? "t" : "f"};
    json_t *items = NULL;
    int rc = ft_sql_json(c, "listing the DLQ",
                         "SELECT coalesce(json_agg(" DLQ_JSON " ORDER BY d.created_at), '[]')::text FROM ft_dlq d"
                         " JOIN ft_instances i ON i.id = d.instance_id WHERE ($1::uuid IS NULL OR i.customer_id = $1)"
                         " AND ($2::bool OR (d.replayed_at IS NULL AND d.discarded_at IS NULL))",
                         2, p, &items, err);
    if (rc == FT_OK)
        *out = json_pack("{s:o}", "items", items);
    return rc;
}

/* Locks a dead letter the caller may see; FT_ENOTFOUND (problem filled) otherwise. */
static int lock_dlq(PGconn *c, const ft_call_t *call, const char *id, PGresult **res, ft_problem_t *problem, ft_error_t *err)
{
    const char *p[] = {id, call->customer_id};
    int rc = ft_sql_row(
        c, "locking a dead letter",
        "SELECT d.job_id, d.replayed_at, d.discarded_at, d.kind, i.customer_id, j.product_code, j.correlation_id,"
        " d.instance_id, i.status FROM ft_dlq d JOIN ft_instances i ON i.id = d.instance_id JOIN ft_jobs j ON j.id = d.job_id"
        " WHERE d.id = $1 AND ($2::uuid IS NULL OR i.customer_id = $2) FOR UPDATE OF d",
        2, p, res, err);
    if (rc == FT_ENOTFOUND)
        return ft_problem(problem, FT_ENOTFOUND, 404, "dlq-entry-not-found", "Dead letter not found",
                          json_pack("{s:s}", "dlq_id", id), "No dead letter %s.", id);
    return rc;
}

int ft_dlq_replay(PGconn *c, const ft_call_t *call, const char *id, json_t **out, ft_problem_t *problem, ft_error_t *err)
{
    PGresult *res = NULL;
    int rc = ft_sql_begin(c, err);
    if (rc != FT_OK)
        return rc;
    if ((rc = lock_dlq(c, call, id, &res, problem, err)) != FT_OK)
        return rollback(c, rc);
    char job_id[37], kind[24], customer[37], product[64], instance[37], correlation[160];
    snprintf(job_id, sizeof(job_id), "%s", PQgetvalue(res, 0, 0));
    int replayed = !PQgetisnull(res, 0, 1), discarded = !PQgetisnull(res, 0, 2);
    snprintf(kind, sizeof(kind), "%s", PQgetvalue(res, 0, 3));
    snprintf(customer, sizeof(customer), "%s", PQgetvalue(res, 0, 4));
    snprintf(product, sizeof(product), "%s", PQgetvalue(res, 0, 5));
    snprintf(correlation, sizeof(correlation), "%s", PQgetvalue(res, 0, 6));
    snprintf(instance, sizeof(instance), "%s", PQgetvalue(res, 0, 7));
    char status[24];
    snprintf(status, sizeof(status), "%s", PQgetvalue(res, 0, 8));
    PQclear(res);
    if (discarded) {
        ft_sql_rollback(c);
        return ft_problem(problem, FT_ESTATE, 409, "dlq-entry-discarded", "Dead letter discarded", json_pack("{s:s}", "dlq_id", id),
                          "Dead letter %s was discarded; it cannot be replayed.", id);
    }
    const ft_job_kind_t *k = ft_job_kind_find(kind);
    if (k == NULL) {
        ft_sql_rollback(c);
        return ft_error_set(err, FT_EINVAL, "dead letter %s holds a job of a kind this host does not know (%s)", id, kind);
    }
    /* Work for an instance that was removed since (or is being removed) would run on a tenant
     * that no longer exists: only the removal itself may be replayed then. */
    if (!replayed &&
        (strcmp(status, "deleted") == 0 || (strcmp(status, "deprovisioning") == 0 && k != &ft_job_kinds[FT_JOB_DEPROVISION]))) {
        ft_sql_rollback(c);
        return ft_problem(problem, FT_ESTATE, 409, "dlq-instance-removed", "Instance removed",
                          json_pack("{s:s, s:s, s:s}", "dlq_id", id, "instance_id", instance, "instance_status", status),
                          "Dead letter %s is a %s job of instance %s, which is %s; replaying it would work on a removed tenant."
                          " Discard it with DELETE /api/v1/dlq/%s.",
                          id, kind, instance, status, id);
    }
    const char *jp[] = {job_id};
    if (!replayed) {
        /* a new round with a fresh attempt budget; the steps done stay done, and the worker
         * brings the others in line with the generation it runs. The replay causes the attempts
         * that follow, so they are spans in its trace (the correlation id stays the original
         * request's) */
        const char *rp[] = {job_id, call->traceparent};
        rc = ft_sql(c, "requeuing the job",
                    "UPDATE ft_jobs SET status = 'queued', attempts = 0, replays = replays + 1, last_error = NULL,"
                    " finished_at = NULL, updated_at = now(), traceparent = coalesce($2, traceparent) WHERE id = $1",
                    2, rp, NULL, err);
        if (rc == FT_OK)
            rc = ft_sql(c, "resetting failed steps",
                        "UPDATE ft_job_steps SET status = 'pending', last_error = NULL WHERE job_id = $1"
                        " AND status NOT IN ('succeeded', 'skipped')",
                        1, jp, NULL, err);
        const char *ip[] = {instance, k->replayed};
        if (rc == FT_OK)
            rc = ft_sql(c, "resetting the instance",
                        "UPDATE ft_instances SET status = coalesce($2, status), status_reason = 'replayed from the DLQ',"
                        " updated_at = now() WHERE id = $1 AND status = 'failed'",
                        2, ip, NULL, err);
        const char *mp[] = {id, call->actor};
        if (rc == FT_OK)
            rc = ft_sql(c, "marking the dead letter replayed",
                        "UPDATE ft_dlq SET replayed_at = now(), replayed_by = $2 WHERE id = $1", 2, mp, NULL, err);
        /* a new message for the workers, with a new event id (the old one is in their inbox) */
        char subject[64];
        snprintf(subject, sizeof(subject), "ft.jobs.%s", kind);
        ft_event_meta_t meta = {
            .tenant_id = instance, .correlation_id = correlation, .causation_id = id, .traceparent = call->traceparent};
        char path[96];
        snprintf(path, sizeof(path), "instances/%s", instance);
        json_t *ev = ft_event_new(k->requested, path, &meta,
                                  json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "job_id", job_id, "instance_id", instance,
                                            "customer_id", customer, "product", product, "kind", kind, "replay", 1),
                                  NULL);
        if (rc == FT_OK)
            rc = ft_outbox_append(c, "instance", instance, subject, ev, err);
        json_decref(ev);
        ft_event_meta_t m2 = {.tenant_id = instance, .correlation_id = call->correlation_id, .traceparent = call->traceparent};
        if (rc == FT_OK)
            rc = ft_outbox_emit(c, "dlq", id, "dlq.replayed.v1", &m2,
                                json_pack("{s:s, s:s, s:s}", "dlq_id", id, "job_id", job_id, "actor", call->actor), err);
    }
    if (rc != FT_OK)
        return rollback(c, rc);
    const char *gp[] = {id};
    rc = ft_sql_row(c, "reading the dead letter", "SELECT " DLQ_JSON "::text FROM ft_dlq d WHERE d.id = $1", 1, gp, &res, err);
    if (rc != FT_OK)
        return rollback(c, rc);
    *out = json_pack("{s:o, s:b}", "dlq", json_loads(PQgetvalue(res, 0, 0), 0, NULL), "replayed_now", !replayed);
    PQclear(res);
    return ft_sql_commit(c, err);
}

int ft_dlq_discard(PGconn *c, const ft_call_t *call, const char *id, ft_problem_t *problem, ft_error_t *err)
{
    PGresult *res = NULL;
    int rc = ft_sql_begin(c, err);
    if (rc != FT_OK)
        return rc;
    if ((rc = lock_dlq(c, call, id, &res, problem, err)) != FT_OK)
        return rollback(c, rc);
    int replayed = !PQgetisnull(res, 0, 1);
    char instance[37], job_id[37];
    snprintf(job_id, sizeof(job_id), "%s", PQgetvalue(res, 0, 0));
    snprintf(instance, sizeof(instance), "%s", PQgetvalue(res, 0, 7));
    PQclear(res);
    if (replayed) {
        ft_sql_rollback(c);
        return ft_problem(problem, FT_ESTATE, 409, "dlq-entry-replayed", "Dead letter replayed", json_pack("{s:s}", "dlq_id", id),
                          "Dead letter %s was replayed; there is nothing to discard.", id);
    }
    const char *p[] = {id, call->actor};
    rc = ft_sql(c, "discarding a dead letter",
                "UPDATE ft_dlq SET discarded_at = coalesce(discarded_at, now()), discarded_by = coalesce(discarded_by, $2)"
                " WHERE id = $1",
                2, p, NULL, err);
    ft_event_meta_t meta = {.tenant_id = instance, .correlation_id = call->correlation_id, .traceparent = call->traceparent};
    if (rc == FT_OK)
        rc = ft_outbox_emit(c, "dlq", id, "dlq.discarded.v1", &meta,
                            json_pack("{s:s, s:s, s:s}", "dlq_id", id, "job_id", job_id, "actor", call->actor), err);
    if (rc == FT_OK)
        return ft_sql_commit(c, err);
    return rollback(c, rc);
}

int ft_subscriptions_roll_periods(PGconn *c, int *changed, ft_error_t *err)
{
    /* A due downgrade or cancellation takes effect; active subscriptions start their next
     * period. Each change goes through the same triggers (version bump, NOTIFY) as any other. */
    PGresult *res = NULL;
    int rc = ft_sql(c, "rolling subscription periods",
                    "WITH due AS (SELECT id FROM ft_subscriptions WHERE current_period_end <= now() AND status <> 'canceled'"
                    "   FOR UPDATE SKIP LOCKED)"
                    " UPDATE ft_subscriptions s SET"
                    "  status = CASE WHEN s.cancel_at_period_end THEN 'canceled' ELSE s.status END,"
                    "  canceled_at = CASE WHEN s.cancel_at_period_end THEN now() ELSE s.canceled_at END,"
                    "  plan_code = coalesce(s.pending_plan_code, s.plan_code),"
                    "  plan_version = coalesce(s.pending_plan_version, s.plan_version),"
                    "  pending_plan_code = NULL, pending_plan_version = NULL,"
                    "  current_period_start = s.current_period_end,"
                    "  current_period_end = s.current_period_end + interval '1 month', updated_at = now()"
                    " FROM due WHERE s.id = due.id RETURNING s.id",
                    0, NULL, &res, err);
    if (rc == FT_OK) {
        *changed = PQntuples(res);
        PQclear(res);
    }
    return rc;
}
