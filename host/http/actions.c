/*
 * /api/v1/instances/{id}/actions: the operations a product declares (ftp_action_t), run in
 * the instance's own database while the caller waits.
 *
 * An action runs only on an active instance whose entitlements have its required feature on;
 * its input is checked against the action's JSON Schema (defaults filled in) before the plugin
 * sees it. The plugin's return code becomes the answer, as the ABI header says: FTP_OK 200
 * {action, instance_id, output}, FTP_E_INVALID 422, FTP_E_NOTFOUND 404, FTP_E_CONFLICT 409,
 * retryable codes 503, others 500. Events the action emits go to the outbox with the request's
 * audit row. The tenant work commits in the tenant database first; if the control-plane commit
 * then failed, the answer is a 500 although the action happened (the audit log would miss it):
 * a window of one failed COMMIT, accepted rather than a two-phase commit across databases.
 *
 * With "Prefer: respond-async" the same checks run and the action is queued as a job instead
 * (202, Location: /api/v1/jobs/{id}); a worker runs it with the usual retries and the job's
 * "result" holds the output. A retry runs the action again only after a failure the plugin
 * reported (its transaction rolled back), or after a worker died between the tenant commit and
 * the record of it: an action meant to run as a job should be idempotent, as steps are.
 */
#include "core/mem.h"
#include "domain/action_rules.h"
#include "domain/entitlement_service.h"
#include "domain/job_kinds.h"
#include "http/op.h"
#include "http/routes.h"
#include "infra/tenant_db.h"
#include "plugins/invoke.h"
#include "store/instance_store.h"
#include "store/job_store.h"
#include "store/outbox_store.h"
#include "store/sql.h"
#include "store/tenant_database_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The action check's entitlement lookup: resolves the instance's entitlements once (kept for
 * the invocation), then looks the feature up. */
typedef struct lookup {
    PGconn *c;
    ft_op_t *op;
    ft_entitlements_t *ent;
    int rc;
    ft_error_t *err;
} lookup_t;

static int resolve(lookup_t *l)
{
    if (l->ent == NULL && l->rc == FT_OK)
        l->rc = ft_ent_service_resolve(l->op->app->entitlements, l->c, l->op->catalog, &l->op->call, l->op->id, &l->ent,
                                       &l->op->problem, l->err);
    return l->rc;
}

static int entitled(void *arg, const char *feature)
{
    lookup_t *l = arg;
    int64_t ignored;
    return resolve(l) != FT_OK ? -1 : ft_entitlements_value(l->ent, feature, &ignored);
}

/* The instance (one read), its product's generation, the action, and the instance's
 * entitlements, with the input checked: FT_OK or a problem. The caller releases *inst and *ent. */
static int prepare(PGconn *c, ft_op_t *op, json_t **inst, const ft_generation_t **gp, const ft_action_t **action,
                   ft_entitlements_t **ent, ft_error_t *err)
{
    int rc = ft_instance_get(c, &op->call, op->id, inst, &op->problem, err);
    if (rc == FT_OK && strcmp(ft_json_str(*inst, "status"), "deleted") == 0)
        rc = ft_instance_gone(&op->problem, op->id, ft_json_str(*inst, "updated_at"));
    if (rc == FT_OK)
        rc = ft_op_product(op, ft_json_str(*inst, "product"), gp);
    if (rc != FT_OK)
        return rc;
    const ft_product_t *p = (*gp)->product;
    const char *status = ft_json_str(*inst, "status");
    lookup_t l = {.c = c, .op = op, .rc = FT_OK, .err = err};
    ft_action_check_t chk;
    switch (ft_action_check(*gp, op->id2, status, op->body, entitled, &l, &chk)) {
    case FT_ACTION_ALLOWED:
        rc = resolve(&l);
        break;
    case FT_ACTION_UNKNOWN:
        rc = ft_problem(&op->problem, FT_ENOTFOUND, 404, "action-not-found", "Action not found",
                        json_pack("{s:s, s:s}", "action", op->id2, "product", p->code), "Product %s has no action %s.", p->code,
                        op->id2);
        break;
    case FT_ACTION_NOT_ACTIVE:
        rc = ft_problem(&op->problem, FT_ESTATE, 409, "instance-not-active", "Instance not active",
                        json_pack("{s:s}", "status", status), "Actions run on active instances; %s is %s.", op->id, status);
        break;
    case FT_ACTION_BAD_INPUT:
        rc = ft_problem(&op->problem, FT_EINVAL, 422, "invalid-action-input", "Invalid action input",
                        json_pack("{s:o}", "errors", chk.errors), "The input does not satisfy action %s's schema (see errors).",
                        op->id2);
        break;
    case FT_ACTION_NOT_ENTITLED:
        rc = ft_problem(&op->problem, FT_ESTATE, 403, "feature-not-entitled", "Feature not entitled",
                        json_pack("{s:s, s:s}", "action", op->id2, "required_feature", chk.feature),
                        "Action %s needs feature %s, which this instance's entitlements do not include.", op->id2, chk.feature);
        break;
    case FT_ACTION_LOOKUP_FAILED:
        rc = l.rc;
        break;
    }
    *action = chk.action;
    *ent = l.ent;
    return rc;
}

/* Maps the plugin's answer onto HTTP, as the ABI promises. */
static int plugin_failed(ft_op_t *op, int rc, const char *message)
{
    int status = rc == FTP_E_INVALID ? 422 : rc == FTP_E_NOTFOUND ? 404 : rc == FTP_E_CONFLICT ? 409 : FTP_IS_RETRYABLE(rc) ? 503 : 500;
    const char *slug = status == 422 ? "action-refused" : status == 404 ? "action-target-not-found" : status == 409 ? "action-conflict"
                       : status == 503                                   ? "action-unavailable"
                                                                         : "action-failed";
    return ft_problem(&op->problem, status == 503 ? FT_EUNAVAILABLE : FT_EINVAL, status, slug, "Action failed",
                      json_pack("{s:s, s:i}", "action", op->id2, "plugin_code", rc), "%s: %s", op->id2,
                      message[0] ? message : "the action failed");
}

static int run_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    json_t *inst = NULL;
    const ft_generation_t *g = NULL;
    const ft_action_t *action = NULL;
    ft_entitlements_t *ent = NULL;
    PGconn *tenant = NULL;
    char *input = NULL, *settings = NULL, *output = NULL, *pooled = NULL;
    int rc = prepare(c, op, &inst, &g, &action, &ent, err);
    if (rc != FT_OK)
        goto out;
    const ft_config_t *cfg = &op->app->config;
    ft_tenant_db_config_t tcfg = {.shared_url = cfg->tenant_database_url, .retention_days = cfg->archive_retention_days};
    const char *tier = ft_json_str(inst, "tier");
    if ((rc = ft_tenant_database_url_of(c, op->id, &pooled, err)) != FT_OK)
        goto out;
    rc = ft_tenant_db_open(&tcfg, tier, op->id, g->product->code, pooled, 0, &tenant, NULL, err);
    if (rc == FT_ENOTFOUND) {
        rc = ft_problem(&op->problem, FT_ESTATE, 409, "instance-not-provisioned", "Instance has no database",
                        json_pack("{s:s}", "instance_id", op->id), "%s", err->message);
        goto out;
    }
    if (rc != FT_OK)
        goto out;
    input = json_dumps(op->body, JSON_COMPACT);
    settings = json_dumps(json_object_get(inst, "settings") != NULL ? json_object_get(inst, "settings") : json_object(), JSON_COMPACT);
    ft_invocation_t inv = {.product = g->product,
                           .conn = tenant,
                           .instance_id = op->id,
                           .instance_code = ft_json_str(inst, "code"),
                           .customer_id = ft_json_str(inst, "customer_id"),
                           .tier = strcmp(tier, "enterprise") == 0 ? FTP_TIER_ENTERPRISE : FTP_TIER_STANDARD,
                           .settings_json = settings,
                           .payload_json = input,
                           .entitlement = ft_entitlements_value,
                           .entitlement_arg = ent,
                           .log_id = op->correlation_id,
                           .trace_id = op->trace.trace_id};
    ft_error_t perr = {0};
    int prc = ft_invoke_action(&inv, action, &output, &perr);
    if (prc != FTP_OK) {
        rc = plugin_failed(op, prc, perr.message);
    } else {
        json_t *result = json_loads(output != NULL ? output : "{}", 0, NULL);
        op->out = json_pack("{s:s, s:s, s:o}", "action", op->id2, "instance_id", op->id, "output",
                            result != NULL ? result : json_object());
        /* the events the action emitted, in the request's transaction with its audit row */
        ft_event_meta_t meta = {.tenant_id = op->id, .correlation_id = op->correlation_id, .traceparent = op->trace.traceparent};
        rc = ft_outbox_emit_plugin_events(c, op->id, &meta, NULL, 0, inv.events, err);
    }
    json_decref(inv.events);
out:
    if (tenant != NULL)
        PQfinish(tenant);
    ft_entitlements_release(ent);
    json_decref(inst);
    free(input);
    free(settings);
    free(output);
    free(pooled);
    return rc;
}

/* "Prefer: respond-async" (RFC 7240): the action becomes a job (kind "action", one step, the
 * action's name) that the workers run with retries like any other; 202 with the job, its URL in
 * Location, and the output in the job's "result" once it has run. */
static int enqueue_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    json_t *inst = NULL;
    const ft_generation_t *g = NULL;
    const ft_action_t *action = NULL;
    ft_entitlements_t *ent = NULL;
    int rc = prepare(c, op, &inst, &g, &action, &ent, err);
    if (rc == FT_OK)
        rc = ft_sql_begin(c, err);
    if (rc == FT_OK) {
        ft_job_step_spec_t step = {.name = action->name, .version = 1};
        json_t *payload = json_pack("{s:s, s:O}", "action", action->name, "input", op->body);
        ft_job_spec_t spec = {.instance_id = op->id,
                              .customer_id = ft_json_str(inst, "customer_id"),
                              .product = g->product->code,
                              .kind = &ft_job_kinds[FT_JOB_ACTION],
                              .payload = payload,
                              .steps = &step,
                              .nsteps = 1,
                              .correlation_id = op->correlation_id,
                              .traceparent = op->trace.traceparent};
        char job_id[37];
        rc = ft_job_enqueue(c, &spec, job_id, err);
        json_decref(payload);
        if (rc == FT_OK)
            rc = ft_sql_commit(c, err);
        else
            ft_sql_rollback(c);
        if (rc == FT_OK) {
            op->out = json_pack("{s:s, s:s, s:s, s:s}", "action", op->id2, "instance_id", op->id, "job_id", job_id, "status", "queued");
            snprintf(op->location, sizeof(op->location), "/api/v1/jobs/%s", job_id);
        }
    }
    ft_entitlements_release(ent);
    json_decref(inst);
    return rc;
}

/* 1 when the Prefer header asks for respond-async (a preference among others, any case). */
static int prefers_async(ft_req_t *r)
{
    const char *prefer = ft_req_header(r, "prefer");
    if (prefer == NULL)
        return 0;
    for (const char *p = prefer; *p != '\0';) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        size_t n = strcspn(p, ",;= \t");
        if (n == 13 && strncasecmp(p, "respond-async", 13) == 0)
            return 1;
        p += strcspn(p, ",");
    }
    return 0;
}

static void run_action(ft_req_t *r)
{
    const char *name = ft_req_param(r, "name");
    size_t n = strlen(name);
    int ok = n >= 1 && n <= 63;
    for (size_t i = 0; ok && i < n; i++)
        ok = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') || name[i] == '-' || name[i] == '_';
    if (!ok) {
        ft_respond_problem(r, 400, "invalid-parameter", "Invalid parameter",
                           json_pack("{s:[{s:s, s:s}]}", "errors", "parameter", "name", "detail", "an action name: [a-z0-9_-], 1 to 63"),
                           "%s is not an action name.", name);
        return;
    }
    ft_op_t *op = ft_op_with_id(r, "id");
    if (op == NULL)
        return;
    snprintf(op->id2, sizeof(op->id2), "%s", name);
    if (op->body == NULL)
        op->body = json_object(); /* no body: no input */
    if (prefers_async(r)) {
        ft_req_add_header(r, "preference-applied", "respond-async");
        ft_op_run(r, op, enqueue_work, 202);
        return;
    }
    ft_op_run(r, op, run_work, 200);
}

/* GET: the actions of the instance's product, with their input schemas and whether its
 * entitlements allow each now. */
static int list_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    const ft_generation_t *g = NULL;
    ft_entitlements_t *ent = NULL;
    int rc = ft_op_instance_product(c, op, &g, err);
    if (rc == FT_OK)
        rc = ft_ent_service_resolve(op->app->entitlements, c, op->catalog, &op->call, op->id, &ent, &op->problem, err);
    if (rc != FT_OK)
        return rc;
    json_t *items = json_array();
    for (size_t i = 0; i < g->product->nactions; i++) {
        const ft_action_t *a = &g->product->actions[i];
        int64_t ignored;
        json_t *schema = a->input_schema != NULL ? json_loads(a->input_schema, 0, NULL) : NULL;
        json_array_append_new(
            items, json_pack("{s:s, s:s?, s:s?, s:o, s:b}", "name", a->name, "description", a->description, "required_feature",
                             a->required_feature, "input_schema", schema != NULL ? schema : json_object(), "allowed",
                             a->required_feature == NULL || ft_entitlements_value(ent, a->required_feature, &ignored)));
    }
    ft_entitlements_release(ent);
    op->out = json_pack("{s:s, s:o}", "product", g->product->code, "actions", items);
    return FT_OK;
}

static void list_actions(ft_req_t *r)
{
    ft_op_t *op = ft_op_with_id(r, "id");
    if (op != NULL)
        ft_op_run(r, op, list_work, 200);
}

/* The API reference's part of each route (see ft_route_doc_t). */
static const ft_route_doc_t doc_get_instances_id_actions = {
    .tag = "Actions",
    .summary = "List the actions an instance's product offers",
    .responses = (const ft_route_response_t[]){{200, "ActionList", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_post_instances_id_actions_name = {
    .tag = "Actions",
    .summary = "Run an action (synchronous or as a job)",
    .responses = (const ft_route_response_t[]){{200, "ActionResult", NULL, NULL}, {202, "ActionQueued", NULL, NULL}, {0}},
};

void ft_routes_actions(ft_router_t *router)
{
    static const ft_route_t routes[] = {
        {.method = "GET", .pattern = "/api/v1/instances/{id}/actions", .permission = "instances:read", .flags = FT_ROUTE_CHAIN,
         .handler = list_actions, .doc = &doc_get_instances_id_actions},
        {.method = "POST", .pattern = "/api/v1/instances/{id}/actions/{name}", .permission = "actions:run", .action = "instance.action",
         .flags = FT_ROUTE_CHAIN | FT_ROUTE_OPTIONAL_BODY | FT_ROUTE_WRITE, .handler = run_action,
         .doc = &doc_post_instances_id_actions_name},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        ft_router_add(router, &routes[i]);
}
