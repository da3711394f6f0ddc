/*
 * farutech instances: list, show, create, suspend, resume, delete.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const fc_column_t columns[] = {
    {"ID", "id"},     {"CODE", "code"},     {"PRODUCT", "product"},      {"PLAN", "subscription.plan.code"},
    {"TIER", "tier"}, {"STATUS", "status"}, {"CUSTOMER", "customer_id"}, {"CREATED", "created_at"},
};

static int list(fc_ctx_t *ctx, const fc_args_t *a)
{
    char *path = fc_strdup("/api/v1/instances");
    fc_query_add(&path, "customer_id", fc_arg(a, "customer"));
    fc_query_add(&path, "product", fc_arg(a, "product"));
    fc_query_add(&path, "status", fc_arg(a, "status"));
    fc_query_add(&path, "environment", fc_arg(a, "environment"));
    fc_query_add(&path, "code", fc_arg(a, "code"));
    int rc = fc_list(ctx, path, columns, sizeof(columns) / sizeof(columns[0]));
    free(path);
    return rc;
}

static int show(fc_ctx_t *ctx, const fc_args_t *a)
{
    return fc_show(ctx, "/api/v1/instances", a->pos[0]);
}

/* --setting k=v (repeatable) over --settings JSON. */
static int settings(const fc_args_t *a, json_t **out)
{
    const char *text = fc_arg(a, "settings");
    json_t *s = text != NULL ? json_loads(text, 0, NULL) : json_object();
    if (!json_is_object(s)) {
        json_decref(s);
        return fc_usage_error("--settings must be a JSON object");
    }
    for (int i = 0; i < a->nopts; i++) {
        if (strcmp(a->opt_names[i], "setting") != 0)
            continue;
        const char *eq = strchr(a->opt_values[i], '=');
        if (eq == NULL || eq == a->opt_values[i]) {
            json_decref(s);
            return fc_usage_error("--setting takes NAME=VALUE");
        }
        char *name = fc_sprintf("%.*s", (int)(eq - a->opt_values[i]), a->opt_values[i]);
        json_t *v = json_loads(eq + 1, JSON_DECODE_ANY, NULL); /* numbers and booleans as such */
        json_object_set_new(s, name, v != NULL ? v : json_string(eq + 1));
        free(name);
    }
    *out = s;
    return 0;
}

static int create(fc_ctx_t *ctx, const fc_args_t *a)
{
    const char *customer = fc_arg(a, "customer"), *code = fc_arg(a, "code"), *product = fc_arg(a, "product"),
               *plan = fc_arg(a, "plan");
    json_t *body = NULL, *out = NULL, *s = NULL;
    char *path = NULL;
    int rc;
    if (customer == NULL || code == NULL || product == NULL || plan == NULL)
        return fc_usage_error("instances create needs --customer, --code, --product and --plan");
    if ((rc = settings(a, &s)) != 0)
        return rc;
    body = json_pack("{s:s, s:s, s:s, s:o}", "code", code, "product", product, "plan", plan, "settings", s);
    if (fc_arg(a, "tier") != NULL)
        json_object_set_new(body, "tier", json_string(fc_arg(a, "tier")));
    if (fc_arg(a, "environment") != NULL)
        json_object_set_new(body, "environment", json_string(fc_arg(a, "environment")));
    if (fc_flag(a, "trial"))
        json_object_set_new(body, "trial", json_true());
    path = fc_sprintf("/api/v1/customers/%s/instances", customer);
    if ((rc = fc_call(ctx, "POST", path, body, &out)) == 0) {
        const char *job = json_string_value(fc_get_path(out, "latest_job.id"));
        char *msg = fc_sprintf("instance %s created; provisioning job %s queued (farutech jobs watch %s)",
                               json_string_value(json_object_get(out, "id")), job ? job : "-", job ? job : "-");
        fc_done(ctx, out, msg);
        free(msg);
    }
    free(path);
    json_decref(out);
    json_decref(body);
    return rc;
}

static int suspend(fc_ctx_t *ctx, const fc_args_t *a)
{
    return fc_act(ctx, "POST", "/api/v1/instances/%s/subscription/suspend", a->pos[0], "instance %s suspended");
}

static int resume(fc_ctx_t *ctx, const fc_args_t *a)
{
    return fc_act(ctx, "POST", "/api/v1/instances/%s/subscription/resume", a->pos[0], "instance %s resumed");
}

static int delete (fc_ctx_t *ctx, const fc_args_t *a)
{
    return fc_act(ctx, "DELETE", "/api/v1/instances/%s", a->pos[0], "instance %s queued for deprovisioning");
}

static const fc_opt_t list_opts[] = {
    {"customer", 1, "customer id"},
    {"product", 1, "product code"},
    {"status", 1, "status (deleted ones only when asked)"},
    {"environment", 1, "production, staging, development or sandbox"},
    {"code", 1, "instance code"},
    {NULL, 0, NULL},
};
static const fc_opt_t create_opts[] = {
    {"customer", 1, "customer id (required)"},
    {"code", 1, "code, unique within the customer (required)"},
    {"product", 1, "product code (required)"},
    {"plan", 1, "plan code (required)"},
    {"tier", 1, "standard or enterprise"},
    {"environment", 1, "production, staging, development or sandbox"},
    {"setting", 1, "NAME=VALUE, repeatable (JSON values are taken as such)"},
    {"settings", 1, "settings as a JSON object"},
    {"trial", 0, "start on a trial"},
    {NULL, 0, NULL},
};
static const fc_command_t commands[] = {
    {"list", NULL, "List instances", list_opts, 0, 0, list},
    {"show", "ID", "Show one instance", NULL, 1, 1, show},
    {"create", NULL, "Create an instance and queue its provisioning", create_opts, 0, 0, create},
    {"suspend", "ID", "Suspend an instance's subscription", NULL, 1, 1, suspend},
    {"resume", "ID", "Resume an instance's subscription", NULL, 1, 1, resume},
    {"delete", "ID", "Queue an instance's deprovisioning", NULL, 1, 1, delete},
};
const fc_group_t fc_group_instances = {"instances", "Tenant instances: list, show, create, suspend, resume, delete", commands,
                                       sizeof(commands) / sizeof(commands[0])};
