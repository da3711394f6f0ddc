/*
 * farutech customers: list, show, create, delete.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>

static const fc_column_t columns[] = {
    {"ID", "id"},           {"NAME", "legal_name"}, {"TAX ID", "tax_id"},
    {"COUNTRY", "country"}, {"STATUS", "status"},   {"CREATED", "created_at"},
};

static int list(fc_ctx_t *ctx, const fc_args_t *a)
{
    char *path = fc_strdup("/api/v1/customers");
    fc_query_add(&path, "status", fc_arg(a, "status"));
    fc_query_add(&path, "country", fc_arg(a, "country"));
    fc_query_add(&path, "q", fc_arg(a, "query"));
    fc_query_add(&path, "tax_id", fc_arg(a, "tax-id"));
    int rc = fc_list(ctx, path, columns, sizeof(columns) / sizeof(columns[0]));
    free(path);
    return rc;
}

static int show(fc_ctx_t *ctx, const fc_args_t *a)
{
    return fc_show(ctx, "/api/v1/customers", a->pos[0]);
}

static int create(fc_ctx_t *ctx, const fc_args_t *a)
{
    const char *name = fc_arg(a, "name"), *tax = fc_arg(a, "tax-id"), *country = fc_arg(a, "country");
    if (name == NULL || tax == NULL || country == NULL)
        return fc_usage_error("customers create needs --name, --tax-id and --country");
    json_t *body = json_pack("{s:s, s:s, s:s}", "legal_name", name, "tax_id", tax, "country", country), *out = NULL;
    if (fc_arg(a, "email") != NULL || fc_arg(a, "contact-name") != NULL)
        json_object_set_new(body, "contact",
                            json_pack("{s:s?, s:s?}", "email", fc_arg(a, "email"), "name", fc_arg(a, "contact-name")));
    int rc = fc_call(ctx, "POST", "/api/v1/customers", body, &out);
    if (rc == 0) {
        char *msg = fc_sprintf("customer %s created", json_string_value(json_object_get(out, "id")));
        fc_done(ctx, out, msg);
        free(msg);
    }
    json_decref(out);
    json_decref(body);
    return rc;
}

static int delete (fc_ctx_t *ctx, const fc_args_t *a)
{
    return fc_act(ctx, "DELETE", "/api/v1/customers/%s", a->pos[0], "customer %s deleted");
}

static const fc_opt_t list_opts[] = {
    {"status", 1, "active or suspended"},
    {"country", 1, "ISO 3166 country code"},
    {"query", 1, "search the name"},
    {"tax-id", 1, "exact tax id"},
    {NULL, 0, NULL},
};
static const fc_opt_t create_opts[] = {
    {"name", 1, "legal name (required)"}, {"tax-id", 1, "tax id (required)"},  {"country", 1, "country code, e.g. CO (required)"},
    {"email", 1, "contact email"},        {"contact-name", 1, "contact name"}, {NULL, 0, NULL},
};
static const fc_command_t commands[] = {
    {"list", NULL, "List customers", list_opts, 0, 0, list},
    {"show", "ID", "Show one customer", NULL, 1, 1, show},
    {"create", NULL, "Create a customer", create_opts, 0, 0, create},
    {"delete", "ID", "Delete a customer", NULL, 1, 1, delete},
};
const fc_group_t fc_group_customers = {"customers", "Customers: list, show, create, delete", commands,
                                       sizeof(commands) / sizeof(commands[0])};
