/*
 * Audit rows written from the HTTP layer, and the audit log's read API.
 */
#include "http/audit.h"

#include "core/mem.h"
#include "http/op.h"
#include "http/routes.h"
#include "infra/log.h"
#include "store/audit_store.h"
#include "store/sql.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pending_row {
    char actor[128], action[64], entity_type[32], entity_id[64], customer_id[40], result[16], reason[512];
    char request_id[FT_REQUEST_ID_MAX + 1], client_ip[48];
} pending_row_t;

void ft_audit_entity_type(const char *action, char *out, size_t len)
{
    size_t n = strcspn(action, ".");
    snprintf(out, len, "%.*s", (int)n, action);
}

static int write_work(PGconn *c, void *arg, ft_error_t *err)
{
    pending_row_t *p = arg;
    ft_audit_entry_t e = {.actor = p->actor,
                          .action = p->action,
                          .entity_type = p->entity_type[0] ? p->entity_type : NULL,
                          .entity_id = p->entity_id[0] ? p->entity_id : NULL,
                          .customer_id = p->customer_id[0] ? p->customer_id : NULL,
                          .result = p->result,
                          .reason = p->reason[0] ? p->reason : NULL,
                          .request_id = p->request_id,
                          .client_ip = p->client_ip};
    /* an instance-level entity finds its customer (and instance) in SQL */
    if (e.entity_id != NULL && (strcmp(p->entity_type, "instance") == 0 || strcmp(p->entity_type, "subscription") == 0 ||
                                strcmp(p->entity_type, "override") == 0))
        e.instance_id = e.entity_id;
    return ft_audit_write(c, &e, err);
}

static void write_done(ft_req_t *r, void *arg, int status, const ft_error_t *err)
{
    if (status != FT_OK)
        ft_log_traced(FT_LOG_ERROR, r->request_id, r->trace.trace_id, "audit row not written: %s", err->message);
    free(arg);
}

void ft_audit_request(ft_req_t *r, const char *result, const char *reason_fmt, ...)
{
    if (r->route == NULL || r->route->action == NULL || r->audited || r->app->db == NULL)
        return;
    r->audited = 1;
    pending_row_t *p = ft_mem_calloc(1, sizeof(*p));
    snprintf(p->actor, sizeof(p->actor), "%s", r->principal.subject[0] ? r->principal.subject : "anonymous");
    snprintf(p->action, sizeof(p->action), "%s", r->route->action);
    ft_audit_entity_type(p->action, p->entity_type, sizeof(p->entity_type));
    const char *id = NULL, *product = NULL;
    if (r->req != NULL) { /* path parameters live in h2o's request */
        id = ft_req_param(r, "id");
        if (id == NULL)
            id = ft_req_param(r, "tenantInstanceId");
        product = ft_req_param(r, "product");
    }
    if (id != NULL && ft_uuid_valid(id)) {
        snprintf(p->entity_id, sizeof(p->entity_id), "%s", id);
        if (strcmp(p->entity_type, "customer") == 0)
            snprintf(p->customer_id, sizeof(p->customer_id), "%s", id);
    } else if (product != NULL && strlen(product) < sizeof(p->entity_id)) {
        snprintf(p->entity_id, sizeof(p->entity_id), "%s", product);
    }
    snprintf(p->result, sizeof(p->result), "%s", result);
    if (reason_fmt != NULL) {
        va_list ap;
        va_start(ap, reason_fmt);
        vsnprintf(p->reason, sizeof(p->reason), reason_fmt, ap);
        va_end(ap);
    }
    snprintf(p->request_id, sizeof(p->request_id), "%s", r->request_id);
    snprintf(p->client_ip, sizeof(p->client_ip), "%s", ft_req_client_ip(r));
    ft_req_defer_db(r, write_work, write_done, p);
}

/* ---- GET /api/v1/audit */

typedef struct list_args {
    ft_audit_filter_t f;
    char customer_id[40], instance_id[40], actor[160], action[80], entity_type[40], entity_id[80], result[16], since[40],
        until[40], cursor[24];
} list_args_t;

static int list_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    list_args_t *a = op->arg;
    return ft_audit_list(c, &op->call, &a->f, &op->out, &op->problem, err);
}

static int time_query(ft_req_t *r, const char *name, const char *v)
{
    /* RFC 3339 date-time: checked for shape here, by PostgreSQL for sense */
    if (v == NULL)
        return 0;
    size_t n = strlen(v);
    int ok = n >= 20 && v[4] == '-' && v[7] == '-' && (v[10] == 'T' || v[10] == 't') && v[13] == ':' && v[16] == ':';
    for (size_t i = 0; ok && i < n; i++)
        ok = strchr("0123456789-:.TtZz+", v[i]) != NULL;
    if (!ok) {
        ft_respond_bad_param(r, name, "must be an RFC 3339 date-time such as 2026-01-31T12:00:00Z");
        return -1;
    }
    return 0;
}

static void list_audit(ft_req_t *r)
{
    list_args_t *a = ft_mem_calloc(1, sizeof(*a));
    ft_audit_filter_t *f = &a->f;
    if (ft_query_uuid(r, "customer_id", a->customer_id, sizeof(a->customer_id), &f->customer_id) ||
        ft_query_uuid(r, "instance_id", a->instance_id, sizeof(a->instance_id), &f->instance_id) ||
        ft_query_copy(r, "actor", a->actor, sizeof(a->actor), &f->actor) ||
        ft_query_copy(r, "action", a->action, sizeof(a->action), &f->action) ||
        ft_query_copy(r, "entity_type", a->entity_type, sizeof(a->entity_type), &f->entity_type) ||
        ft_query_copy(r, "entity_id", a->entity_id, sizeof(a->entity_id), &f->entity_id) ||
        ft_query_copy(r, "result", a->result, sizeof(a->result), &f->result) ||
        ft_query_copy(r, "since", a->since, sizeof(a->since), &f->since) ||
        ft_query_copy(r, "until", a->until, sizeof(a->until), &f->until) ||
        ft_query_copy(r, "cursor", a->cursor, sizeof(a->cursor), &f->cursor) || ft_query_limit(r, &f->limit) ||
        time_query(r, "since", f->since) || time_query(r, "until", f->until)) {
        free(a);
        return;
    }
    if (f->result != NULL && strcmp(f->result, "success") != 0 && strcmp(f->result, "failure") != 0 && strcmp(f->result, "denied") != 0) {
        ft_respond_bad_param(r, "result", "must be success, failure or denied");
        free(a);
        return;
    }
    ft_op_t *op = ft_op_new(r);
    op->arg = a;
    ft_op_run(r, op, list_work, 200);
}

void ft_routes_audit(ft_router_t *router)
{
    static const ft_route_t routes[] = {
        {.method = "GET", .pattern = "/api/v1/audit", .permission = "audit:read", .flags = FT_ROUTE_CHAIN, .handler = list_audit},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        ft_router_add(router, &routes[i]);
}
