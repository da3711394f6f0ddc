/*
 * farutech plugins: list what the server (or, with --hosts, each host of the fleet) serves, and
 * reload fleet-wide with a per-host table of results (exit 7 when any host failed).
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const fc_column_t plugin_columns[] = {
    {"PRODUCT", "product"}, {"GENERATION", "generation"}, {"STATE", "state"},   {"VERSION", "version"},
    {"ABI", "abi"},         {"LOADED", "loaded_at"},      {"REASON", "reason"}, {"LAST RELOAD ERROR", "last_reload_error.reason"},
};
static const fc_column_t host_columns[] = {
    {"HOST", "hostname"},   {"STATUS", "status"}, {"PRODUCT", "product"},  {"GENERATION", "generation"},
    {"VERSION", "version"}, {"SHA256", "sha256"}, {"LOADED", "loaded_at"}, {"LAST ERROR", "last_error"},
};
static const fc_column_t host_result_columns[] = {
    {"HOST", "hostname"}, {"PRODUCT", "product"}, {"RESULT", "result"}, {"GENERATION", "generation"}, {"REASON", "reason"},
};
static const fc_column_t result_columns[] = {
    {"PRODUCT", "product"},
    {"RESULT", "result"},
    {"GENERATION", "generation"},
    {"PREVIOUS", "previous_generation"},
    {"SERVING", "serving_generation"},
    {"REASON", "reason"},
};

/* One row per (host, item of its member): the host's own members copied into each row. */
static json_t *flatten(const json_t *hosts, const char *member)
{
    json_t *rows = json_array();
    size_t i, j;
    const json_t *h, *p;
    json_array_foreach(hosts, i, h)
    {
        const json_t *items = json_object_get(h, member);
        if (json_array_size(items) == 0) {
            json_array_append_new(rows, json_deep_copy(h));
            continue;
        }
        json_array_foreach(items, j, p)
        {
            json_t *row = json_deep_copy(p);
            json_object_set(row, "hostname", json_object_get(h, "hostname"));
            json_object_set(row, "status", json_object_get(h, "status"));
            json_array_append_new(rows, row);
        }
    }
    return rows;
}

static int list_hosts(fc_ctx_t *ctx)
{
    fc_response_t resp = {0};
    int rc = fc_http(ctx, "GET", "/api/v1/hosts", NULL, &resp);
    if (rc != 0)
        goto out;
    if (resp.status == 404) {
        fprintf(stderr, "farutech: this server does not report its hosts (GET /api/v1/hosts is not there)\n");
        rc = FC_EXIT_NOT_FOUND;
    } else if (resp.status != 200) {
        rc = fc_report(ctx, &resp);
    } else if (ctx->json) {
        fc_json_print(resp.body);
    } else {
        json_t *rows = flatten(json_object_get(resp.body, "hosts"), "plugins");
        fc_table_print(rows, host_columns, sizeof(host_columns) / sizeof(host_columns[0]));
        json_decref(rows);
        size_t i;
        const json_t *s;
        json_array_foreach(json_object_get(resp.body, "skew"), i, s)
        {
            char *t = fc_value_text(s);
            fprintf(stderr, "skew: %s\n", t);
            free(t);
        }
    }
out:
    fc_response_free(&resp);
    return rc;
}

static int list(fc_ctx_t *ctx, const fc_args_t *a)
{
    json_t *out = NULL;
    if (fc_flag(a, "hosts"))
        return list_hosts(ctx);
    int rc = fc_call(ctx, "GET", "/api/v1/plugins", NULL, &out);
    if (rc == 0 && ctx->json)
        fc_json_print(out);
    else if (rc == 0)
        fc_table_print(json_is_array(out) ? out : json_object_get(out, "plugins"), plugin_columns,
                       sizeof(plugin_columns) / sizeof(plugin_columns[0]));
    json_decref(out);
    return rc;
}

static int any_failed(const json_t *rows)
{
    size_t i;
    const json_t *r;
    json_array_foreach(rows, i, r)
    {
        const char *result = json_string_value(json_object_get(r, "result"));
        if (result != NULL && strcmp(result, "failed") == 0)
            return 1;
    }
    return 0;
}

static int reload(fc_ctx_t *ctx, const fc_args_t *a)
{
    char *path = a->npos > 0 ? fc_sprintf("/api/v1/plugins/%s/reload", a->pos[0]) : fc_strdup("/api/v1/plugins/reload");
    fc_response_t resp = {0};
    json_t *rows = NULL;
    if (fc_flag(a, "canary"))
        fc_query_add(&path, "canary", "true");
    if (fc_flag(a, "force"))
        fc_query_add(&path, "force", "true");
    int rc = fc_http(ctx, "POST", path, NULL, &resp);
    if (rc != 0)
        goto out;
    const json_t *hosts = json_object_get(resp.body, "hosts"), *results = json_object_get(resp.body, "results");
    if (resp.status != 200 && !json_is_array(hosts) && !json_is_array(results)) {
        rc = fc_report(ctx, &resp);
        goto out;
    }
    rows = json_is_array(hosts) ? flatten(hosts, "results") : json_incref((json_t *)results);
    if (ctx->json) {
        fc_json_print(resp.body);
    } else {
        if (json_is_array(hosts))
            fc_table_print(rows, host_result_columns, sizeof(host_result_columns) / sizeof(host_result_columns[0]));
        else
            fc_table_print(rows, result_columns, sizeof(result_columns) / sizeof(result_columns[0]));
        if (resp.status != 200)
            fc_report(ctx, &resp);
    }
    rc = resp.status != 200 || any_failed(rows) ? FC_EXIT_FAILED : FC_EXIT_OK;
out:
    json_decref(rows);
    fc_response_free(&resp);
    free(path);
    return rc;
}

static const fc_opt_t list_opts[] = {
    {"hosts", 0, "per host of the fleet (GET /api/v1/hosts)"},
    {NULL, 0, NULL},
};
static const fc_opt_t reload_opts[] = {
    {"canary", 0, "load on one host first, then the rest"},
    {"force", 0, "reload even an unchanged file"},
    {NULL, 0, NULL},
};
static const fc_command_t commands[] = {
    {"list", NULL, "List the loaded products", list_opts, 0, 0, list},
    {"reload", "[PRODUCT]", "Reload one product (or all) on every host; exit 7 when any failed", reload_opts, 0, 1, reload},
};
const fc_group_t fc_group_plugins = {"plugins", "Product plugins: list, reload fleet-wide", commands,
                                     sizeof(commands) / sizeof(commands[0])};
