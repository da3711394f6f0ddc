/*
 * farutech jobs: list, show, and watch (a progress bar fed by the job's event stream). The CLI
 * ships with the host, so it expects the host's routes (GET /api/v1/jobs, the job stream).
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BAR_WIDTH 30
#define RECONNECTS 5

static const fc_column_t columns[] = {
    {"ID", "id"},
    {"KIND", "kind"},
    {"PRODUCT", "product"},
    {"STATUS", "status"},
    {"DONE", "progress.done"},
    {"STEPS", "progress.total"},
    {"INSTANCE", "instance_id"},
    {"CREATED", "created_at"},
};

static int list(fc_ctx_t *ctx, const fc_args_t *a)
{
    static const char *const filters[][2] = {
        {"status", "status"},
        {"kind", "kind"},
        {"product", "product"},
        {"instance", "instance_id"},
        {"customer", "customer_id"},
        {"created-after", "created_after"},
        {"created-before", "created_before"},
    };
    char *path = fc_strdup("/api/v1/jobs");
    for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++)
        fc_query_add(&path, filters[i][1], fc_arg(a, filters[i][0]));
    int rc = fc_list(ctx, path, columns, sizeof(columns) / sizeof(columns[0]));
    free(path);
    return rc;
}

static const fc_column_t step_columns[] = {
    {"STEP", "name"},          {"STATUS", "status"},        {"ATTEMPTS", "attempts"},
    {"STARTED", "started_at"}, {"FINISHED", "finished_at"}, {"LAST ERROR", "last_error"},
    {"NOTE", "note"},
};

/* The job's members, then its steps as a table (its history with --json only). */
static int show(fc_ctx_t *ctx, const fc_args_t *a)
{
    if (ctx->json)
        return fc_show(ctx, "/api/v1/jobs", a->pos[0]);
    char *path = fc_sprintf("/api/v1/jobs/%s", a->pos[0]);
    json_t *job = NULL;
    int rc = fc_call(ctx, "GET", path, NULL, &job);
    if (rc == 0) {
        json_t *head = json_copy(job);
        json_object_del(head, "steps");
        json_object_del(head, "history");
        json_object_del(head, "payload");
        fc_object_print(head);
        putchar('\n');
        fc_table_print(json_object_get(job, "steps"), step_columns, sizeof(step_columns) / sizeof(step_columns[0]));
        json_decref(head);
    }
    json_decref(job);
    free(path);
    return rc;
}

typedef struct watch {
    fc_ctx_t *ctx;
    int tty, drawn;
    char *last_id;
    char status[32];
    char *last_error; /* the job's, once it failed */
    json_t *seen;     /* step name -> last status printed */
} watch_t;

static int terminal(const char *status)
{
    return strcmp(status, "succeeded") == 0 || strcmp(status, "failed") == 0 || strcmp(status, "canceled") == 0;
}

static const char *current_step(const json_t *job)
{
    size_t i;
    const json_t *s;
    const char *pending = NULL;
    json_array_foreach(json_object_get(job, "steps"), i, s)
    {
        const char *st = json_string_value(json_object_get(s, "status"));
        if (st != NULL && strcmp(st, "running") == 0)
            return json_string_value(json_object_get(s, "name"));
        if (pending == NULL && st != NULL && strcmp(st, "pending") == 0)
            pending = json_string_value(json_object_get(s, "name"));
    }
    return pending;
}

static void draw_bar(watch_t *w, const json_t *job)
{
    json_int_t done = json_integer_value(fc_get_path(job, "progress.done"));
    json_int_t total = json_integer_value(fc_get_path(job, "progress.total"));
    int fill = total > 0 ? (int)(done * BAR_WIDTH / total) : 0;
    const char *step = current_step(job);
    char bar[BAR_WIDTH + 1];
    for (int i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < fill ? '#' : '-';
    bar[BAR_WIDTH] = '\0';
    printf("\r\033[K[%s] %lld/%lld %s", bar, (long long)done, (long long)total, step && !terminal(w->status) ? step : w->status);
    fflush(stdout);
    w->drawn = 1;
}

/* A plain line for a step whose status is not the one last printed for it. */
static void print_step(watch_t *w, const json_t *s)
{
    const char *name = json_string_value(json_object_get(s, "name")), *st = json_string_value(json_object_get(s, "status"));
    if (name == NULL || st == NULL)
        return;
    const char *before = json_string_value(json_object_get(w->seen, name));
    if (before != NULL && strcmp(before, st) == 0)
        return;
    const char *err = json_string_value(json_object_get(s, "last_error"));
    int failed = err != NULL && strcmp(st, "failed") == 0;
    printf("step %s: %s%s%s\n", name, st, failed ? ": " : "", failed ? err : "");
    json_object_set_new(w->seen, name, json_string(st));
}

/* Plain lines: each step whose status changed, and the job's. */
static void print_changes(watch_t *w, const json_t *job)
{
    size_t i;
    const json_t *s;
    json_array_foreach(json_object_get(job, "steps"), i, s)
    {
        print_step(w, s);
    }
    fflush(stdout);
}

/* Shows one state of the job; returns nonzero once it is terminal. */
static int render(watch_t *w, const json_t *job)
{
    const char *status = json_string_value(json_object_get(job, "status"));
    int changed = status != NULL && strcmp(status, w->status) != 0;
    if (status != NULL)
        snprintf(w->status, sizeof(w->status), "%s", status);
    const char *err = json_string_value(json_object_get(job, "last_error"));
    if (err != NULL) {
        free(w->last_error);
        w->last_error = fc_strdup(err);
    }
    if (w->ctx->json) {
        char *line = json_dumps(job, JSON_COMPACT);
        puts(line);
        fflush(stdout);
        free(line);
    } else if (w->tty) {
        draw_bar(w, job);
    } else {
        print_changes(w, job);
        if (changed)
            printf("job %s\n", w->status);
        fflush(stdout);
    }
    return terminal(w->status);
}

static int on_event(const char *event, const char *id, const char *data, void *arg)
{
    watch_t *w = arg;
    if (id != NULL) {
        free(w->last_id);
        w->last_id = fc_strdup(id);
    }
    /* each step change has its own event: plain lines show every one (a running step included) */
    if (strcmp(event, "step") == 0 && !w->ctx->json && !w->tty) {
        json_t *change = json_loads(data, 0, NULL);
        print_step(w, json_object_get(change, "step"));
        fflush(stdout);
        json_decref(change);
    }
    if (strcmp(event, "job") != 0)
        return 0;
    json_t *job = json_loads(data, 0, NULL);
    int stop = job != NULL && render(w, job);
    json_decref(job);
    return stop;
}

static int watch(fc_ctx_t *ctx, const fc_args_t *a)
{
    watch_t w = {.ctx = ctx, .tty = isatty(STDOUT_FILENO), .seen = json_object()};
    char *path = fc_sprintf("/api/v1/jobs/%s", a->pos[0]);
    long status = 0;
    int rc = fc_sse_read(ctx, path, NULL, on_event, &w, &status);
    /* a stream that ended or broke before the job did is picked up where it stopped */
    for (int tries = 0; (rc == 0 || (rc == FC_EXIT_UNAVAILABLE && w.last_id != NULL)) && !terminal(w.status) && tries < RECONNECTS;
         tries++)
        rc = fc_sse_read(ctx, path, w.last_id, on_event, &w, &status);
    if (rc == 1 || (rc == 0 && !terminal(w.status))) {
        fprintf(stderr, "error: job %s: %s\n", a->pos[0],
                rc == 1 ? "the server answered without an event stream" : "the event stream ended before the job did");
        rc = FC_EXIT_UNAVAILABLE;
    }
    if (w.drawn)
        putchar('\n');
    if (rc == 0 && !ctx->json && w.tty)
        printf("job %s %s\n", a->pos[0], w.status);
    if (rc == 0 && strcmp(w.status, "succeeded") != 0) {
        if (!ctx->json)
            fprintf(stderr, "error: job %s %s%s%s\n", a->pos[0], w.status, w.last_error ? ": " : "",
                    w.last_error ? w.last_error : "");
        rc = FC_EXIT_FAILED;
    }
    json_decref(w.seen);
    free(w.last_error);
    free(w.last_id);
    free(path);
    return rc;
}

static const fc_opt_t list_opts[] = {
    {"status", 1, "queued, running, succeeded or failed"},
    {"kind", 1, "provision, deprovision, suspend, resume, features-changed, action"},
    {"product", 1, "product code"},
    {"instance", 1, "instance id"},
    {"customer", 1, "customer id"},
    {"created-after", 1, "RFC 3339 time"},
    {"created-before", 1, "RFC 3339 time"},
    {NULL, 0, NULL},
};
static const fc_command_t commands[] = {
    {"list", NULL, "List jobs, newest first", list_opts, 0, 0, list},
    {"show", "ID", "Show a job with its steps and history", NULL, 1, 1, show},
    {"watch", "ID", "Follow a job to its end (exit 0 succeeded, 7 failed)", NULL, 1, 1, watch},
};
const fc_group_t fc_group_jobs = {"jobs", "Jobs: list, show, watch", commands, sizeof(commands) / sizeof(commands[0])};
