/*
 * GET /api/v1/audit: the audit log, filtered and paged.
 */
#include "core/mem.h"
#include "http/op.h"
#include "http/routes.h"
#include "store/audit_store.h"

#include <stdlib.h>
#include <string.h>

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
        ft_query_time(r, "since", a->since, sizeof(a->since), &f->since) ||
        ft_query_time(r, "until", a->until, sizeof(a->until), &f->until) ||
        ft_query_copy(r, "cursor", a->cursor, sizeof(a->cursor), &f->cursor) || ft_query_limit(r, &f->limit)) {
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

/* The API reference's part of each route (see ft_route_doc_t). */
static const ft_route_doc_t doc_get_audit = {
    .tag = "Audit",
    .summary = "Search the audit log",
    .flags = FT_DOC_PAGE,
    .query = (const ft_route_query_t[]){{"actor", "{\"type\":\"string\"}", NULL},
                                        {"action", "{\"type\":\"string\"}", NULL},
                                        {"entity_type", "{\"type\":\"string\"}", NULL},
                                        {"entity_id", "{\"type\":\"string\"}", NULL},
                                        {"result", "{\"type\":\"string\"}", NULL},
                                        {"since", "{\"type\":\"string\",\"format\":\"date-time\"}", NULL},
                                        {"until", "{\"type\":\"string\",\"format\":\"date-time\"}", NULL},
                                        {0}},
    .responses = (const ft_route_response_t[]){{200, "AuditEntry", NULL, NULL}, {0}},
};

void ft_routes_audit(ft_router_t *router)
{
    static const ft_route_t routes[] = {
        {.method = "GET", .pattern = "/api/v1/audit", .permission = "audit:read", .flags = FT_ROUTE_CHAIN, .handler = list_audit,
         .doc = &doc_get_audit},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        ft_router_add(router, &routes[i]);
}
