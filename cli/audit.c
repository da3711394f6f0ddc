/*
 * farutech audit: the audit log, newest first.
 */
#include "cli.h"

#include <stdlib.h>

static const fc_column_t columns[] = {
    {"AT", "at"},         {"ACTOR", "actor"},   {"ACTION", "action"}, {"ENTITY", "entity_type"}, {"ENTITY ID", "entity_id"},
    {"RESULT", "result"}, {"REASON", "reason"},
};

static int list(fc_ctx_t *ctx, const fc_args_t *a)
{
    static const char *const filters[][2] = {
        {"customer", "customer_id"},
        {"instance", "instance_id"},
        {"actor", "actor"},
        {"action", "action"},
        {"entity-type", "entity_type"},
        {"entity-id", "entity_id"},
        {"result", "result"},
        {"since", "since"},
        {"until", "until"},
    };
    char *path = fc_strdup("/api/v1/audit");
    for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++)
        fc_query_add(&path, filters[i][1], fc_arg(a, filters[i][0]));
    int rc = fc_list(ctx, path, columns, sizeof(columns) / sizeof(columns[0]));
    free(path);
    return rc;
}

static const fc_opt_t list_opts[] = {
    {"customer", 1, "customer id"},
    {"instance", 1, "instance id"},
    {"actor", 1, "who acted"},
    {"action", 1, "e.g. instance.create"},
    {"entity-type", 1, "entity type"},
    {"entity-id", 1, "entity id"},
    {"result", 1, "success, failure or denied"},
    {"since", 1, "RFC 3339 time"},
    {"until", 1, "RFC 3339 time"},
    {NULL, 0, NULL},
};
static const fc_command_t commands[] = {
    {"list", NULL, "List audit rows, newest first", list_opts, 0, 0, list},
};
const fc_group_t fc_group_audit = {"audit", "The audit log: list", commands, sizeof(commands) / sizeof(commands[0])};
