/*
 * The worker threads and the job runner. Each thread has its own pull subscription on the
 * shared durable consumer and its own control-plane connection, fetches up to a batch of
 * messages at once and runs their jobs one after the other, in stream order; a heartbeat thread
 * keeps the messages it holds from being redelivered while they wait or run (InProgress).
 */
#include "messaging/worker.h"

#include "core/clock.h"
#include "core/mem.h"
#include "core/uuid.h"
#include "domain/action_rules.h"
#include "domain/entitlements.h"
#include "domain/step_plan.h"
#include "infra/db_pool.h"
#include "infra/log.h"
#include "infra/metrics.h"
#include "plugins/invoke.h"
#include "store/entitlement_store.h"
#include "store/idempotency_store.h"
#include "store/job_run_store.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CONSUMER FT_WORKER_CONSUMER
#define FETCH_WAIT_MS 1000
/* A thread fetches as many messages as its recent jobs suggest it runs in this time (at most
 * FT_WORKER_BATCH, one at first): the jobs it claims wait their turn on it, so a batch of slow
 * jobs stays short and the other threads and workers take the rest of the queue. */
#define BATCH_MS 1000

static const double job_bounds[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
static const double step_bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};
FT_COUNTER(jobs_total, "ft_jobs_total", "Jobs that ended, by kind and outcome (succeeded, failed: sent to the DLQ).",
           FT_LABELS("kind", "outcome"));
FT_COUNTER(attempts_total, "ft_job_attempts_total", "Job attempts run, by kind and outcome (succeeded, failed).",
           FT_LABELS("kind", "outcome"));
FT_HISTOGRAM(job_seconds, "ft_job_duration_seconds", "Time one attempt of a job took on a worker, by kind.", job_bounds,
             FT_LABELS("kind"));
FT_HISTOGRAM(step_seconds, "ft_job_step_duration_seconds", "Time one run of a plugin step or action took, by product and step.",
             step_bounds, FT_LABELS("product", "step"));

typedef struct worker_thread {
    struct ft_workers *pool;
    pthread_t tid;
    unsigned index;
    pthread_mutex_t mutex; /* guards the batch fields below, shared with the heartbeat */
    natsMsg *running;      /* the message whose job runs now */
    natsMsg **batch;       /* the fetched messages; those from next to end wait their turn */
    int next, end;
    uint64_t fetched_ns; /* when the batch came */
    PGconn *shared;   /* the last pooled database used, kept open between jobs */
    char *shared_url; /* its URL (NULL: the default one) */
    ft_tenant_memo_t memo; /* what shared is known to hold */
    /* jobs that succeeded, not yet recorded (then their messages are acknowledged) */
    ft_job_success_t *done;
    natsMsg **done_msgs;
    size_t ndone, capdone;
    uint64_t done_since;
    /* step progress of quick jobs, written with their outcomes (or before any other write) */
    ft_step_mark_t *marks;
    size_t nmarks, capmarks;
    int deferring; /* the running job's progress goes to marks */
    double kind_ms[FT_JOB_KIND_COUNT]; /* recent attempt time per kind (moving average), 0: none yet */
    double recent_ms;                  /* the same over every kind: sizes the next fetch */
    unsigned fetch;                    /* messages the next fetch asks for */
} worker_thread_t;

struct ft_workers {
    ft_worker_config_t cfg;
    char *url;
    jsCtx *js;
    worker_thread_t *threads;
    pthread_t heartbeat, sweeper;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    atomic_int stopping;
};

unsigned ft_backoff_ms(unsigned attempt, unsigned base, unsigned cap, double r)
{
    double d = base;
    for (unsigned i = 1; i < attempt && d < cap; i++)
        d *= 2;
    if (d > cap)
        d = cap;
    return (unsigned)(d / 2 + r * (d / 2));
}

static double uniform(void)
{
    uint32_t x = 0;
    RAND_bytes((unsigned char *)&x, sizeof(x));
    return (double)x / 4294967296.0;
}

/* Sleeps up to ms; returns 1 when stopping. */
static int nap(ft_workers_t *w, unsigned ms)
{
    struct timespec deadline = ft_mono_deadline(ms);
    pthread_mutex_lock(&w->mutex);
    while (!atomic_load(&w->stopping) && pthread_cond_timedwait(&w->cond, &w->mutex, &deadline) == 0)
        ;
    pthread_mutex_unlock(&w->mutex);
    return atomic_load(&w->stopping);
}

/* ---------------------------------------------------------------- running a job */

typedef struct outcome {
    int ok, retryable;
    char step[64];
    char error[600];
} outcome_t;

static void fail(outcome_t *o, int retryable, const char *step, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void fail(outcome_t *o, int retryable, const char *step, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->error, sizeof(o->error), fmt, ap);
    va_end(ap);
    snprintf(o->step, sizeof(o->step), "%s", step != NULL ? step : "");
    o->ok = 0;
    o->retryable = retryable;
}

/* The instance's entitlements, read the first time a step or an action asks (most steps never do). */
typedef struct lazy_ent {
    PGconn *control;
    const ft_product_t *product;
    const char *instance_id;
    ft_entitlements_t *ent;
    ft_ent_row_t row;
    int loaded, have_row;
} lazy_ent_t;

static int lazy_value(void *arg, const char *feature, int64_t *value)
{
    lazy_ent_t *l = arg;
    if (!l->loaded) {
        l->loaded = 1;
        ft_call_t call = {0};
        ft_error_t err = {0};
        if (ft_ent_store_load(l->control, &call, l->instance_id, &l->row, &err) == FT_OK) {
            l->have_row = 1;
            l->ent = ft_entitlements_resolve(l->product, &l->row.in);
        }
    }
    return ft_entitlements_value(l->ent, feature, value);
}

static void lazy_release(lazy_ent_t *l)
{
    ft_entitlements_release(l->ent);
    if (l->have_row)
        ft_ent_row_free(&l->row);
}

static int entitled(void *arg, const char *feature)
{
    int64_t ignored;
    return lazy_value(arg, feature, &ignored);
}

/* An action job's one step: the product's action of that name, still allowed by the instance's
 * entitlements, and its input (checked again against the action's schema: the product may have
 * been reloaded since the job was queued). 0, or -1 with the failure in o (not retryable). */
static int prepare_action(const ft_generation_t *g, const ft_job_row_t *job, const char *name, lazy_ent_t *ent,
                          const ft_action_t **action, char **input, outcome_t *o)
{
    const ft_product_t *p = g->product;
    json_t *in = json_deep_copy(json_object_get(job->payload, "input"));
    if (in == NULL)
        in = json_object();
    ft_action_check_t chk;
    char *text = NULL;
    ft_action_verdict_t v = ft_action_check(g, name, job->instance_status, in, entitled, ent, &chk);
    switch (v) {
    case FT_ACTION_ALLOWED:
        *input = json_dumps(in, JSON_COMPACT);
        *action = chk.action;
        break;
    case FT_ACTION_UNKNOWN:
        fail(o, 0, name, "product %s %s has no action %s any more", p->code, p->version, name);
        break;
    case FT_ACTION_NOT_ACTIVE:
        fail(o, 0, name, "actions run on active instances; %s is %s", job->instance_id, job->instance_status);
        break;
    case FT_ACTION_BAD_INPUT:
        text = json_dumps(chk.errors, JSON_COMPACT);
        fail(o, 0, name, "the input no longer satisfies action %s's schema: %s", name, text != NULL ? text : "");
        break;
    case FT_ACTION_NOT_ENTITLED:
    case FT_ACTION_LOOKUP_FAILED: /* no entitlements could be read: none is on */
        fail(o, 0, name, "action %s needs feature %s, which the instance's entitlements no longer include", name,
             chk.action->required_feature);
        break;
    }
    free(text);
    json_decref(chk.errors);
    json_decref(in);
    return v == FT_ACTION_ALLOWED ? 0 : -1;
}

/* Brings the job's steps in line with the generation about to run them. On every attempt, not
 * only after a replay: a product reloaded between two retries is the same situation as one fixed
 * before a replay, and a job queued by a host with another generation runs what this one has.
 * Steps done stay done (their work is in the tenant's data); steps still to do that this
 * generation lacks are skipped with a note; its new steps are added in its order. 0, or -1 with
 * the failure in o. */
static int reconcile(PGconn *control, ft_job_row_t *job, const ft_generation_t *g, outcome_t *o)
{
    size_t ncurrent = 0, nplan = 0;
    ft_job_step_spec_t *current = ft_job_kind_steps(job->k, g->product, &ncurrent);
    const char **names = ft_mem_calloc(job->nsteps + 1, sizeof(*names));
    const char **status = ft_mem_calloc(job->nsteps + 1, sizeof(*status));
    for (size_t i = 0; i < job->nsteps; i++) {
        names[i] = job->steps[i].name;
        status[i] = job->steps[i].status;
    }
    ft_step_plan_item_t *plan = ft_step_plan(names, status, job->nsteps, current, ncurrent, &nplan);
    char note[256];
    snprintf(note, sizeof(note), "skipped: product %s %s (generation %llu) has no %s step of that name", g->product->code,
             g->product->version, g->number, job->kind);
    ft_error_t err = {0};
    int rc = ft_job_steps_apply(control, job, plan, nplan, current, note, &err);
    if (rc != FT_OK)
        fail(o, 1, NULL, "bringing the steps in line with product %s %s: %s", g->product->code, g->product->version, err.message);
    free(plan);
    free(names);
    free(status);
    free(current);
    return rc == FT_OK ? 0 : -1;
}

/* Writes the step marks kept so far (before any other write about a job, so its changes keep
 * their order). */
static int marks_out(worker_thread_t *t, PGconn *control, ft_error_t *err)
{
    if (t->nmarks == 0)
        return FT_OK;
    int rc = ft_job_steps_mark(control, t->marks, t->nmarks, err);
    t->nmarks = 0;
    return rc;
}

/* A step started (done 0) or succeeded without events or a result (done 1): kept for later when
 * the job is a quick one, else written now. */
static int mark_step(worker_thread_t *t, PGconn *control, const ft_job_row_t *job, int position, int done, ft_error_t *err)
{
    if (!t->deferring) {
        int rc = marks_out(t, control, err);
        if (rc != FT_OK)
            return rc;
        if (!done)
            return ft_job_step_running(control, job->id, position, err);
        return ft_job_step_done(control, job, position, NULL, NULL, err);
    }
    if (t->nmarks == t->capmarks) {
        t->capmarks = t->capmarks ? t->capmarks * 2 : 32;
        t->marks = ft_mem_realloc(t->marks, t->capmarks * sizeof(*t->marks));
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    t->marks[t->nmarks++] = (ft_step_mark_t){
        .job_id = job->id, .position = position, .done = done, .at_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000};
    return FT_OK;
}

/* Runs the steps still to do. The tenant database work of each step is its own transaction;
 * its completion is recorded in the control plane right after. */
static void run_steps(worker_thread_t *t, PGconn *control, ft_job_row_t *job, const char *tenant_url, json_t **location,
                      outcome_t *o)
{
    ft_workers_t *w = t->pool;
    ft_error_t err = {0};
    ft_catalog_t *catalog = ft_catalog_acquire(w->cfg.registry);
    ft_generation_t *g = ft_catalog_find(catalog, job->product);
    PGconn *tenant = NULL;
    lazy_ent_t ent = {.control = control, .instance_id = job->instance_id};
    o->ok = 1;
    if (g == NULL) {
        fail(o, 1, NULL, "product %s is not loaded on this worker", job->product);
        goto out;
    }
    job->generation = g->number;
    snprintf(job->product_version, sizeof(job->product_version), "%s", g->product->version);
    if (job->k->lifecycle != 0 && reconcile(control, job, g, o) != 0)
        goto out;
    int deprovision = job->k->tenant_db == FT_TENANT_DB_REMOVE;
    int shared = strcmp(job->tier, "standard") == 0;
    ent.product = g->product;
    /* the Standard instance's pooled database; NULL: the default one */
    char *pooled = shared && tenant_url != NULL ? ft_mem_strdup(tenant_url) : NULL;
    int rc;
    int same = (pooled == NULL) == (t->shared_url == NULL) && (pooled == NULL || strcmp(pooled, t->shared_url) == 0);
    if (shared && same && t->shared != NULL && PQstatus(t->shared) == CONNECTION_OK &&
        PQtransactionStatus(t->shared) == PQTRANS_IDLE) {
        tenant = t->shared;
        rc = ft_tenant_db_open(&w->cfg.tenant, job->tier, job->instance_id, job->product, pooled, 0, NULL, location, &err);
        free(pooled);
    } else {
        /* only provisioning creates an instance's own database: any other job on an Enterprise
         * instance whose database is gone fails instead of working on an empty new one */
        int create = shared ? !deprovision : job->k->tenant_db == FT_TENANT_DB_CREATE;
        rc = ft_tenant_db_open(&w->cfg.tenant, job->tier, job->instance_id, job->product, pooled, create, &tenant, location, &err);
        if (rc == FT_OK && shared) {
            PQfinish(t->shared);
            free(t->shared_url);
            t->shared = tenant;
            t->shared_url = pooled;
            memset(&t->memo, 0, sizeof(t->memo));
        } else {
            free(pooled);
        }
    }
    if (rc == FT_ENOTFOUND && deprovision) {
        /* an Enterprise database that never got created: nothing of the tenant to remove */
        goto out;
    }
    if (rc != FT_OK) {
        fail(o, rc == FT_EUNAVAILABLE, NULL, "%s", err.message);
        goto out;
    }
    if (deprovision && strcmp(job->tier, "standard") == 0 &&
        ft_tenant_db_archive_rows(&w->cfg.tenant, tenant, job->product, job->instance_id, &err) != FT_OK) {
        fail(o, 1, NULL, "archive: %s", err.message);
        goto out;
    }
    char *settings = json_dumps(job->settings != NULL ? job->settings : json_object(), JSON_COMPACT);
    char *payload = json_dumps(job->payload != NULL ? job->payload : json_object(), JSON_COMPACT);
    uint32_t lifecycle = job->k->lifecycle;
    int is_action = lifecycle == 0;
    for (size_t i = 0; i < job->nsteps && o->ok; i++) {
        ft_job_step_row_t *s = &job->steps[i];
        if (strcmp(s->status, "succeeded") == 0 || strcmp(s->status, "skipped") == 0)
            continue;
        const ft_step_t *step = NULL;
        const ft_action_t *action = NULL;
        char *input = NULL;
        for (size_t k = 0; k < g->product->nsteps && step == NULL && !is_action; k++)
            if (g->product->steps[k].lifecycle == lifecycle && strcmp(g->product->steps[k].name, s->name) == 0)
                step = &g->product->steps[k];
        if (is_action && prepare_action(g, job, s->name, &ent, &action, &input, o) != 0) {
            marks_out(t, control, &err);
            ft_job_step_failed(control, job->id, s->position, o->error, &err);
            break;
        }
        if (step == NULL && action == NULL) {
            fail(o, 0, s->name, "product %s %s has no %s step %s any more", job->product, g->product->version, job->kind, s->name);
            break;
        }
        if (mark_step(t, control, job, s->position, 0, &err) != FT_OK) {
            fail(o, 1, s->name, "%s", err.message);
            break;
        }
        ft_invocation_t inv = {.product = g->product,
                               .conn = tenant,
                               .instance_id = job->instance_id,
                               .instance_code = job->code,
                               .customer_id = job->customer_id,
                               .tier = strcmp(job->tier, "enterprise") == 0 ? FTP_TIER_ENTERPRISE : FTP_TIER_STANDARD,
                               .settings_json = settings,
                               .payload_json = payload,
                               .entitlement = lazy_value,
                               .entitlement_arg = &ent,
                               .memo = tenant == t->shared ? &t->memo : NULL,
                               .log_id = job->correlation_id,
                               .trace_id = job->trace.trace_id};
        ft_error_t serr = {0};
        char *output = NULL, *result = NULL;
        uint64_t step_t0 = ft_mono_ns();
        if (action != NULL) {
            inv.payload_json = input;
            rc = ft_invoke_action(&inv, action, &output, &serr);
            json_t *out = rc == FTP_OK ? json_loads(output != NULL ? output : "{}", 0, NULL) : NULL;
            result = rc == FTP_OK ? json_dumps(out != NULL ? out : json_object(), JSON_COMPACT) : NULL;
            json_decref(out);
        } else {
            rc = ft_invoke_step(&inv, step, &serr);
        }
        ft_histogram_observe(ft_metric_series(&step_seconds, g->product->code, s->name), (double)(ft_mono_ns() - step_t0) / 1e9);
        if (rc != FTP_OK) {
            fail(o, FTP_IS_RETRYABLE(rc), s->name, "%s %s: %s", action != NULL ? "action" : "step", s->name, serr.message);
            marks_out(t, control, &err);
            ft_job_step_failed(control, job->id, s->position, serr.message, &err);
        } else {
            /* done without events or a result, and without touching the tenant database: progress
             * only, kept for later in a quick job. A step that changed the tenant's data is
             * recorded done at once, as soon after its own commit as before: a worker killed in
             * between runs it again on redelivery, and that window stays as short as it was. */
            int quiet = json_array_size(inv.events) == 0 && result == NULL && !inv.used_database;
            int wrc = quiet ? mark_step(t, control, job, s->position, 1, &err) : marks_out(t, control, &err);
            if (wrc == FT_OK && !quiet)
                wrc = ft_job_step_done(control, job, s->position, inv.events, result, &err);
            if (wrc != FT_OK)
                fail(o, 1, s->name, "recording step %s: %s", s->name, err.message);
        }
        json_decref(inv.events);
        free(output);
        free(result);
        free(input);
    }
    free(settings);
    free(payload);
    if (o->ok && deprovision && !shared) {
        PQfinish(tenant);
        tenant = NULL;
        if (ft_tenant_db_drop(&w->cfg.tenant, job->instance_id, &err) != FT_OK)
            fail(o, 1, NULL, "removing the database: %s", err.message);
    }
out:
    if (tenant != NULL && tenant != t->shared)
        PQfinish(tenant);
    lazy_release(&ent);
    ft_catalog_release(catalog);
}

/* The job's final failure goes to the DLQ stream; returns the stream sequence (0 if it could not). */
static unsigned long long dead_letter(ft_workers_t *w, PGconn *control, const ft_job_row_t *job, const char *event_json,
                                      const char *reason, char subject[64])
{
    ft_error_t err = {0};
    json_t *history = NULL;
    ft_job_history(control, job->id, &history, &err);
    json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:o, s:o}", "job_id", job->id, "instance_id", job->instance_id,
                             "product", job->product, "kind", job->kind, "reason", reason, "attempts", job->attempts, "history",
                             history != NULL ? history : json_array(), "event", json_loads(event_json, 0, NULL));
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    snprintf(subject, 64, "ft.dlq.%s", job->kind);
    char msg_id[96];
    snprintf(msg_id, sizeof(msg_id), "dlq-%s-%d-%d", job->id, job->round, job->attempts); /* one per round */
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = msg_id;
    jsPubAck *pa = NULL;
    natsStatus s = js_Publish(&pa, w->js, subject, text, (int)strlen(text), &po, NULL);
    free(text);
    unsigned long long seq = 0;
    if (s == NATS_OK && pa != NULL)
        seq = pa->Sequence;
    else
        ft_log_traced(FT_LOG_WARN, job->correlation_id, job->trace.trace_id, "worker: publishing job %s to the DLQ stream: %s",
                      job->id, natsStatus_GetText(s));
    jsPubAck_Destroy(pa);
    return seq;
}

/* (Re)connects the thread's control-plane connection; 0, or -1 when the database is unreachable. */
static int ensure_control(ft_workers_t *w, PGconn **control)
{
    if (*control != NULL && PQstatus(*control) == CONNECTION_OK)
        return 0;
    ft_error_t err = {0};
    PQfinish(*control);
    *control = ft_db_connect(w->url, "farutech-worker", &err);
    if (*control != NULL && ft_job_runner_session(*control, &err) != FT_OK) {
        PQfinish(*control);
        *control = NULL;
    }
    return *control != NULL ? 0 : -1;
}

/* Records the successes waiting in t->done in one transaction, then acknowledges their messages
 * (or, when the database failed, hands them back to be claimed again) and lets their jobs go. */
static void flush(worker_thread_t *t, PGconn *control)
{
    if (t->ndone == 0) {
        ft_error_t err = {0};
        if (marks_out(t, control, &err) != FT_OK)
            ft_log(FT_LOG_WARN, NULL, "worker: recording step progress: %s", err.message);
        return;
    }
    ft_error_t err = {0};
    int rc = ft_jobs_succeeded(control, t->done, t->ndone, t->marks, t->nmarks, CONSUMER, &err);
    t->nmarks = 0;
    const char **ids = ft_mem_calloc(t->ndone, sizeof(*ids));
    for (size_t i = 0; i < t->ndone; i++) {
        const ft_job_row_t *job = t->done[i].job;
        ids[i] = job->id;
        if (rc == FT_OK) {
            natsMsg_Ack(t->done_msgs[i], NULL);
            ft_counter_inc(ft_metric_series(&jobs_total, job->kind, "succeeded"));
            ft_log_traced(FT_LOG_INFO, job->correlation_id, job->trace.trace_id, "worker: job %s succeeded", job->id);
        } else {
            ft_log_traced(FT_LOG_WARN, job->correlation_id, job->trace.trace_id, "worker: recording job %s: %s", job->id,
                          err.message);
            natsMsg_NakWithDelay(t->done_msgs[i], 1000, NULL);
        }
        json_decref(t->done[i].data_location);
    }
    ft_jobs_release(control, ids, t->ndone);
    free(ids);
    t->ndone = 0;
}

/* Notes how long an attempt of the kind took (moving averages). */
static void note_time(worker_thread_t *t, const ft_job_kind_t *k, double ms)
{
    double *avg = &t->kind_ms[k - ft_job_kinds];
    *avg = *avg == 0 ? ms : *avg * 0.8 + ms * 0.2;
    t->recent_ms = t->recent_ms == 0 ? ms : t->recent_ms * 0.8 + ms * 0.2;
}

/* Runs a claimed job. A success joins t->done (recorded by flush); a failure is recorded now. */
static void run_claimed(worker_thread_t *t, PGconn *control, ft_claim_item_t *c, natsMsg *msg)
{
    ft_workers_t *w = t->pool;
    ft_error_t err = {0};
    ft_job_row_t *job = &c->job;
    ft_log_traced(FT_LOG_INFO, job->correlation_id, job->trace.trace_id, "worker: job %s (%s of %s) attempt %d of %d", job->id,
                  job->kind, job->instance_id, job->attempts, job->max_attempts);
    outcome_t o = {0};
    json_t *location = NULL;
    uint64_t t0 = ft_mono_ns();
    double expect = t->kind_ms[job->k - ft_job_kinds];
    t->deferring = expect > 0 && expect < w->cfg.flush_ms;
    run_steps(t, control, job, c->tenant_url, &location, &o);
    t->deferring = 0;
    double seconds = (double)(ft_mono_ns() - t0) / 1e9;
    note_time(t, job->k, seconds * 1000);
    ft_histogram_observe(ft_metric_series(&job_seconds, job->kind), seconds);
    ft_counter_inc(ft_metric_series(&attempts_total, job->kind, o.ok ? "succeeded" : "failed"));

    if (o.ok) {
        if (t->ndone == t->capdone) {
            t->capdone = t->capdone ? t->capdone * 2 : 16;
            t->done = ft_mem_realloc(t->done, t->capdone * sizeof(*t->done));
            t->done_msgs = ft_mem_realloc(t->done_msgs, t->capdone * sizeof(*t->done_msgs));
        }
        if (t->ndone == 0)
            t->done_since = ft_mono_ns();
        t->done[t->ndone] = (ft_job_success_t){.job = job, .event_id = c->event_id, .data_location = location};
        t->done_msgs[t->ndone++] = msg;
        return;
    }
    marks_out(t, control, &err);
    ft_job_attempt_failed(control, job, o.step[0] ? o.step : NULL, o.error, o.retryable, &err);
    if (o.retryable && job->attempts < job->max_attempts) {
        unsigned delay = ft_backoff_ms((unsigned)job->attempts, w->cfg.backoff_ms, w->cfg.backoff_max_ms, uniform());
        ft_log_traced(FT_LOG_WARN, job->correlation_id, job->trace.trace_id, "worker: job %s attempt %d failed (%s); retrying in %u ms",
                      job->id, job->attempts, o.error, delay);
        natsMsg_NakWithDelay(msg, delay, NULL);
    } else {
        char subject[64];
        char *copy = ft_mem_strndup(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg));
        unsigned long long seq = dead_letter(w, control, job, copy, o.error, subject);
        free(copy);
        if (ft_job_dead(control, job, c->event_id, CONSUMER, o.error, subject, seq, &err) == FT_OK) {
            natsMsg_Ack(msg, NULL);
            ft_counter_inc(ft_metric_series(&jobs_total, job->kind, "failed"));
            ft_log_traced(FT_LOG_ERROR, job->correlation_id, job->trace.trace_id, "worker: job %s failed for good after %d attempt(s): %s",
                          job->id, job->attempts, o.error);
        } else {
            ft_log_traced(FT_LOG_WARN, job->correlation_id, job->trace.trace_id, "worker: recording job %s as dead: %s", job->id,
                          err.message);
            natsMsg_NakWithDelay(msg, 1000, NULL);
        }
    }
    const char *id = job->id;
    ft_jobs_release(control, &id, 1);
    json_decref(location);
}

/* The next fetch's size: as many messages as the recent jobs suggest the thread runs in BATCH_MS,
 * growing from one by doubling at most (FT_WORKER_BATCH at most). */
static void size_next_fetch(worker_thread_t *t, unsigned batch)
{
    unsigned fit = t->recent_ms <= 0 ? batch : (unsigned)(BATCH_MS / t->recent_ms);
    unsigned next = t->fetch * 2 < fit ? t->fetch * 2 : fit;
    t->fetch = next < 1 ? 1 : next > batch ? batch : next;
}

/* Handles a fetched batch: parses the messages, claims their jobs in one transaction, settles
 * those not to run, then runs the others one after the other in stream order (so jobs of one
 * instance run in the order they were asked for), recording successes a few at a time. */
static void run_batch(worker_thread_t *t, PGconn **control, natsMsgList *list)
{
    ft_workers_t *w = t->pool;
    size_t n = (size_t)list->Count, m = 0, nrun = 0;
    natsMsg **msgs = ft_mem_calloc(n + 1, sizeof(*msgs)), **run = ft_mem_calloc(n + 1, sizeof(*run));
    json_t **evs = ft_mem_calloc(n + 1, sizeof(*evs));
    ft_claim_item_t *claims = ft_mem_calloc(n + 1, sizeof(*claims));
    size_t *run_index = ft_mem_calloc(n + 1, sizeof(*run_index));
    for (size_t i = 0; i < n; i++) {
        natsMsg *msg = list->Msgs[i];
        json_t *ev = json_loadb(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), 0, NULL);
        const char *event_id = json_string_value(json_object_get(ev, "id"));
        const char *job_id = json_string_value(json_object_get(json_object_get(ev, "data"), "job_id"));
        uint8_t bytes[16];
        if (event_id == NULL || job_id == NULL || !ft_uuid_parse(event_id, bytes) || !ft_uuid_parse(job_id, bytes)) {
            ft_log(FT_LOG_ERROR, NULL, "worker: message on %s is not a job request; dropped", natsMsg_GetSubject(msg));
            natsMsg_Term(msg, NULL);
            json_decref(ev);
            continue;
        }
        msgs[m] = msg;
        evs[m] = ev;
        claims[m].job_id = job_id;
        claims[m++].event_id = event_id;
    }
    ft_error_t err = {0};
    int claimed = m > 0 && ensure_control(w, control) == 0 &&
                  ft_job_claim_batch(*control, claims, m, CONSUMER, (int)w->cfg.max_attempts, &err) == FT_OK;
    if (m > 0 && !claimed && err.message[0] != '\0')
        ft_log(FT_LOG_WARN, NULL, "worker: claiming %zu job(s): %s", m, err.message);
    for (size_t i = 0; i < m; i++) {
        ft_claim_t v = claimed ? claims[i].verdict : FT_CLAIM_FOREIGN;
        if (v == FT_CLAIM_RUN) {
            run_index[nrun] = i;
            run[nrun++] = msgs[i];
        } else if (v == FT_CLAIM_MISSING || v == FT_CLAIM_DONE) {
            natsMsg_Ack(msgs[i], NULL);
        } else if (v == FT_CLAIM_WAIT) {
            natsMsg_NakWithDelay(msgs[i], 500, NULL);
        } else {
            if (claimed)
                ft_log(FT_LOG_WARN, NULL, "worker: job %s is of a kind this host does not know (%s)", claims[i].job_id,
                       claims[i].job.kind);
            natsMsg_NakWithDelay(msgs[i], 1000, NULL);
        }
    }
    pthread_mutex_lock(&t->mutex);
    t->batch = run;
    t->next = 0;
    t->end = (int)nrun;
    pthread_mutex_unlock(&t->mutex);
    for (size_t r = 0; r < nrun; r++) {
        ft_claim_item_t *c = &claims[run_index[r]];
        /* a success waiting is recorded before a job that may take long, or once it waited enough */
        double expect = t->kind_ms[c->job.k - ft_job_kinds];
        /* (marks kept are a waiting success's: a failed job's are written before its failure) */
        if (t->ndone > 0 && (expect == 0 || expect >= w->cfg.flush_ms || ft_mono_ns() - t->done_since >= w->cfg.flush_ms * 1000000ull))
            flush(t, *control);
        pthread_mutex_lock(&t->mutex);
        t->running = run[r];
        t->next = (int)r + 1;
        pthread_mutex_unlock(&t->mutex);
        run_claimed(t, *control, c, run[r]);
    }
    flush(t, *control);
    pthread_mutex_lock(&t->mutex);
    t->batch = NULL;
    t->running = NULL;
    t->next = t->end = 0;
    pthread_mutex_unlock(&t->mutex);
    size_next_fetch(t, w->cfg.batch);
    for (size_t i = 0; i < m; i++) {
        ft_claim_item_free(&claims[i]);
        json_decref(evs[i]);
    }
    free(claims);
    free(evs);
    free(msgs);
    free(run);
    free(run_index);
}

static int ensure_consumer(ft_workers_t *w, ft_error_t *err);

static void *worker_main(void *arg)
{
    worker_thread_t *t = arg;
    ft_workers_t *w = t->pool;
    natsSubscription *sub = NULL;
    PGconn *control = NULL;
    while (!atomic_load(&w->stopping)) {
        if (!ft_nats_connected(w->cfg.nats)) {
            if (nap(w, 200))
                break;
            continue;
        }
        if (sub == NULL) {
            jsSubOptions so;
            jsSubOptions_Init(&so);
            so.Stream = FT_STREAM_JOBS;
            so.Consumer = CONSUMER;
            jsErrCode jerr = 0;
            natsStatus s = js_PullSubscribe(&sub, w->js, "ft.jobs.>", CONSUMER, NULL, &so, &jerr);
            if (s != NATS_OK) {
                sub = NULL;
                /* the stream or the consumer may not exist yet (nats-server was down at start, or lost its state) */
                ft_error_t err = {0};
                if (ft_nats_ensure_streams(w->cfg.nats, &err) == FT_OK)
                    ensure_consumer(w, &err);
                if (nap(w, 500))
                    break;
                continue;
            }
        }
        natsMsgList list = {0};
        natsStatus s = natsSubscription_Fetch(&list, sub, (int)t->fetch, FETCH_WAIT_MS, NULL);
        if (s == NATS_TIMEOUT)
            continue;
        if (s != NATS_OK) {
            ft_nats_sub_destroy(w->cfg.nats, sub);
            sub = NULL;
            if (nap(w, 200))
                break;
            continue;
        }
        run_batch(t, &control, &list);
        natsMsgList_Destroy(&list);
    }
    ft_nats_sub_destroy(w->cfg.nats, sub);
    if (control != NULL)
        PQfinish(control);
    PQfinish(t->shared);
    free(t->shared_url);
    free(t->done);
    free(t->done_msgs);
    free(t->marks);
    return NULL;
}

/* Keeps the messages the threads hold (running, or claimed and waiting their turn) from being
 * redelivered. */
static void *heartbeat_main(void *arg)
{
    ft_workers_t *w = arg;
    unsigned every = w->cfg.ack_wait_ms / 3 > 0 ? w->cfg.ack_wait_ms / 3 : 1;
    while (!nap(w, every)) {
        for (unsigned i = 0; i < w->cfg.threads; i++) {
            worker_thread_t *t = &w->threads[i];
            pthread_mutex_lock(&t->mutex);
            for (int k = t->next; k < t->end; k++)
                natsMsg_InProgress(t->batch[k], NULL);
            if (t->running != NULL)
                natsMsg_InProgress(t->running, NULL);
            pthread_mutex_unlock(&t->mutex);
        }
    }
    return NULL;
}

/* Subscription periods that ended, archives past their retention, expired idempotency keys, the
 * change log of jobs that ended a while ago. */
static void *sweeper_main(void *arg)
{
    ft_workers_t *w = arg;
    PGconn *c = NULL;
    do {
        ft_error_t err = {0};
        if (c == NULL || PQstatus(c) != CONNECTION_OK) {
            PQfinish(c);
            c = ft_db_connect(w->url, "farutech-sweeper", &err);
        }
        int changed = 0;
        if (c != NULL && ft_subscriptions_roll_periods(c, &changed, &err) == FT_OK && changed > 0)
            ft_log(FT_LOG_INFO, NULL, "sweeper: %d subscription(s) started a new period", changed);
        ft_tenant_db_prune_archives(&w->cfg.tenant);
        long expired = 0;
        if (c != NULL && ft_idem_sweep(c, &expired, &err) == FT_OK && expired > 0)
            ft_log(FT_LOG_DEBUG, NULL, "sweeper: %ld expired idempotency key(s) forgotten", expired);
        long pruned = 0;
        if (c != NULL && ft_job_changes_prune(c, FT_JOB_CHANGES_KEEP_S, &pruned, &err) == FT_OK && pruned > 0)
            ft_log(FT_LOG_DEBUG, NULL, "sweeper: %ld change(s) of finished jobs pruned", pruned);
    } while (!nap(w, w->cfg.sweep_ms));
    PQfinish(c);
    return NULL;
}

static int ensure_consumer(ft_workers_t *w, ft_error_t *err)
{
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = CONSUMER;
    cc.Description = "farutech workers";
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = (int64_t)w->cfg.ack_wait_ms * 1000000;
    cc.MaxDeliver = -1; /* attempts are counted by the workers themselves, in the database */
    cc.FilterSubject = "ft.jobs.>";
    cc.MaxAckPending = 10000; /* room for every thread of a fleet to hold a full batch */
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_AddConsumer(&ci, w->js, FT_STREAM_JOBS, &cc, NULL, &jerr);
    if (s != NATS_OK && jerr == JSConsumerNameExistErr) {
        jerr = 0;
        s = js_UpdateConsumer(&ci, w->js, FT_STREAM_JOBS, &cc, NULL, &jerr);
    }
    jsConsumerInfo_Destroy(ci);
    if (s != NATS_OK)
        return ft_error_set(err, FT_ENATS, "consumer %s: %s (JetStream error %d)", CONSUMER, natsStatus_GetText(s), (int)jerr);
    return FT_OK;
}

ft_workers_t *ft_workers_start(const ft_worker_config_t *cfg, ft_error_t *err)
{
    ft_workers_t *w = ft_mem_calloc(1, sizeof(*w));
    w->cfg = *cfg;
    w->url = ft_mem_strdup(cfg->database_url);
    pthread_mutex_init(&w->mutex, NULL);
    ft_cond_init_mono(&w->cond);
    natsConnection_JetStream(&w->js, ft_nats_connection(cfg->nats), NULL);
    if (ft_tenant_db_bootstrap(&cfg->tenant, err) != FT_OK) {
        ft_log(FT_LOG_WARN, NULL, "workers: tenant database: %s (steps will retry)", err->message);
    }
    /* the consumer may be created later, once nats-server is reachable */
    for (int i = 0; i < 50 && !ft_nats_connected(cfg->nats); i++)
        usleep(100000);
    if (ft_nats_connected(cfg->nats)) {
        ft_nats_ensure_streams(cfg->nats, err);
        if (ensure_consumer(w, err) != FT_OK)
            ft_log(FT_LOG_WARN, NULL, "workers: %s", err->message);
    }
    w->threads = ft_mem_calloc(cfg->threads, sizeof(*w->threads));
    for (unsigned i = 0; i < cfg->threads; i++) {
        w->threads[i].pool = w;
        w->threads[i].index = i;
        w->threads[i].fetch = 1;
        pthread_mutex_init(&w->threads[i].mutex, NULL);
        pthread_create(&w->threads[i].tid, NULL, worker_main, &w->threads[i]);
    }
    pthread_create(&w->heartbeat, NULL, heartbeat_main, w);
    pthread_create(&w->sweeper, NULL, sweeper_main, w);
    return w;
}

void ft_workers_stop(ft_workers_t *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mutex);
    atomic_store(&w->stopping, 1);
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mutex);
    for (unsigned i = 0; i < w->cfg.threads; i++)
        pthread_join(w->threads[i].tid, NULL);
    pthread_join(w->heartbeat, NULL);
    pthread_join(w->sweeper, NULL);
    for (unsigned i = 0; i < w->cfg.threads; i++)
        pthread_mutex_destroy(&w->threads[i].mutex);
    jsCtx_Destroy(w->js);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->mutex);
    free(w->threads);
    free(w->url);
    free(w);
}
