/*
 * farutech dlq: dead letters of jobs that used up their attempts: list, show, replay, discard.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const fc_column_t columns[] = {
    {"ID", "id"},         {"JOB", "job_id"},        {"KIND", "kind"},
    {"STATE", "state"},   {"ATTEMPTS", "attempts"}, {"CREATED", "created_at"},
    {"REASON", "reason"},
};

static int list(fc_ctx_t *ctx, const fc_args_t *a)
{
    return fc_list(ctx, fc_flag(a, "closed") ? "/api/v1/dlq?include_closed=true" : "/api/v1/dlq", columns,
                   sizeof(columns) / sizeof(columns[0]));
}

/* The API has no single-entry route: the entry is found in the full list. */
static int show(fc_ctx_t *ctx, const fc_args_t *a)
{
    json_t *all = NULL, *e, *found = NULL;
    size_t i;
    int rc = fc_call(ctx, "GET", "/api/v1/dlq?include_closed=true", NULL, &all);
    if (rc != 0)
        return rc;
    json_array_foreach(json_object_get(all, "items"), i, e)
    {
        const char *id = json_string_value(json_object_get(e, "id"));
        if (id != NULL && strcmp(id, a->pos[0]) == 0)
            found = e;
    }
    if (found == NULL) {
        fprintf(stderr, "error: Dead letter not found: no dead letter %s\n", a->pos[0]);
        rc = FC_EXIT_NOT_FOUND;
    } else if (ctx->json) {
        fc_json_print(found);
    } else {
        fc_object_print(found);
    }
    json_decref(all);
    return rc;
}

static int replay(fc_ctx_t *ctx, const fc_args_t *a)
{
    return fc_act(ctx, "POST", "/api/v1/dlq/%s/replay", a->pos[0], "dead letter %s replayed");
}

static int discard(fc_ctx_t *ctx, const fc_args_t *a)
{
    return fc_act(ctx, "DELETE", "/api/v1/dlq/%s", a->pos[0], "dead letter %s discarded");
}

static const fc_opt_t list_opts[] = {
    {"closed", 0, "also the replayed and discarded entries"},
    {NULL, 0, NULL},
};
static const fc_command_t commands[] = {
    {"list", NULL, "List open dead letters", list_opts, 0, 0, list},
    {"show", "ID", "Show one dead letter", NULL, 1, 1, show},
    {"replay", "ID", "Run the job again with a fresh attempt budget", NULL, 1, 1, replay},
    {"discard", "ID", "Discard a dead letter", NULL, 1, 1, discard},
};
const fc_group_t fc_group_dlq = {"dlq", "Dead letters: list, show, replay, discard", commands,
                                 sizeof(commands) / sizeof(commands[0])};
