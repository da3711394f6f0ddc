/*
 * farutech keys: API keys: list, create (the key is shown once), revoke.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const fc_column_t columns[] = {
    {"ID", "id"},
    {"NAME", "name"},
    {"PREFIX", "prefix"},
    {"ROLES", "roles"},
    {"CUSTOMER", "customer_id"},
    {"INSTANCE", "instance_id"},
    {"EXPIRES", "expires_at"},
    {"REVOKED", "revoked_at"},
};

static int list(fc_ctx_t *ctx, const fc_args_t *a)
{
    return fc_list(ctx, "/api/v1/api-keys", columns, sizeof(columns) / sizeof(columns[0]));
}

static int create(fc_ctx_t *ctx, const fc_args_t *a)
{
    const char *name = fc_arg(a, "name");
    if (name == NULL || fc_arg(a, "role") == NULL)
        return fc_usage_error("keys create needs --name and at least one --role");
    json_t *roles = json_array(), *out = NULL;
    for (int i = 0; i < a->nopts; i++)
        if (strcmp(a->opt_names[i], "role") == 0)
            json_array_append_new(roles, json_string(a->opt_values[i]));
    json_t *body = json_pack("{s:s, s:o, s:s?, s:s?, s:s?}", "name", name, "roles", roles, "customer_id", fc_arg(a, "customer"),
                             "instance_id", fc_arg(a, "instance"), "expires_at", fc_arg(a, "expires-at"));
    int rc = fc_call(ctx, "POST", "/api/v1/api-keys", body, &out);
    if (rc == 0 && ctx->json) {
        fc_json_print(out);
    } else if (rc == 0) {
        printf("key %s created; it is shown once:\n%s\n", json_string_value(json_object_get(out, "id")),
               json_string_value(json_object_get(out, "key")));
    }
    json_decref(out);
    json_decref(body);
    return rc;
}

static int revoke(fc_ctx_t *ctx, const fc_args_t *a)
{
    return fc_act(ctx, "DELETE", "/api/v1/api-keys/%s", a->pos[0], "key %s revoked");
}

static const fc_opt_t create_opts[] = {
    {"name", 1, "what the key is for (required)"},
    {"role", 1,
     "a role, repeatable (required): platform-admin, operator, product-manager, customer-admin, customer-viewer, child-app"},
    {"customer", 1, "bind to a customer"},
    {"instance", 1, "bind to an instance (child-app)"},
    {"expires-at", 1, "RFC 3339 time"},
    {NULL, 0, NULL},
};
static const fc_command_t commands[] = {
    {"list", NULL, "List API keys", NULL, 0, 0, list},
    {"create", NULL, "Create an API key", create_opts, 0, 0, create},
    {"revoke", "ID", "Revoke an API key", NULL, 1, 1, revoke},
};
const fc_group_t fc_group_keys = {"keys", "API keys: list, create, revoke", commands, sizeof(commands) / sizeof(commands[0])};
