/*
 * The op runner: one unit of database work per request, answered on the request's thread.
 */
#include "http/op.h"

#include "core/mem.h"
#include "domain/entitlement_service.h"
#include "http/server.h"
#include "infra/log.h"
#include "store/instance_store.h"
#include "store/sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ft_op_t *ft_op_new(ft_req_t *r)
{
    ft_op_t *op = ft_mem_calloc(1, sizeof(*op));
    op->app = r->app;
    snprintf(op->actor, sizeof(op->actor), "%s", r->principal.subject);
    snprintf(op->correlation_id, sizeof(op->correlation_id), "%s", r->request_id);
    op->call.actor = op->actor;
    op->call.correlation_id = op->correlation_id;
    if (r->principal.customer_id[0] != '\0') {
        snprintf(op->scope_customer, sizeof(op->scope_customer), "%s", r->principal.customer_id);
        op->call.customer_id = op->scope_customer;
    }
    if (r->principal.instance_id[0] != '\0') {
        snprintf(op->scope_instance, sizeof(op->scope_instance), "%s", r->principal.instance_id);
        op->call.instance_id = op->scope_instance;
    }
    if (r->body != NULL)
        op->body = json_incref(r->body);
    op->catalog = ft_req_catalog(r);
    return op;
}

static int op_work(PGconn *c, void *arg, ft_error_t *err)
{
    ft_op_t *op = arg;
    return op->fn(c, op, err);
}

void ft_respond_problem_struct(ft_req_t *r, ft_problem_t *p)
{
    json_t *ext = p->ext;
    p->ext = NULL;
    ft_respond_problem(r, p->status, p->slug, p->title, ext, "%s", p->detail);
    ft_problem_clear(p);
}

static void op_done(ft_req_t *r, void *arg, int status, const ft_error_t *err)
{
    ft_op_t *op = arg;
    if (op->invalidate[0] != '\0' && r->app->entitlements != NULL)
        ft_ent_cache_invalidate(ft_ent_service_cache(r->app->entitlements), op->invalidate); /* read-your-writes here */
    if (ft_req_alive(r)) {
        if (status == FT_OK) {
            if (op->location[0] != '\0')
                ft_req_add_header(r, "location", op->location);
            if (op->encode != NULL)
                op->encode(r, op);
            else if (op->status == 204)
                ft_respond_empty(r, 204);
            else
                ft_respond_json(r, op->status, op->out != NULL ? json_incref(op->out) : json_object());
        } else if (op->problem.status != 0) {
            ft_respond_problem_struct(r, &op->problem);
        } else {
            ft_respond_internal(r, 500, err);
        }
    }
    json_decref(op->out);
    json_decref(op->body);
    ft_problem_clear(&op->problem);
    free(op->arg);
    free(op);
}

void ft_op_run(ft_req_t *r, ft_op_t *op, ft_op_fn work, int status)
{
    op->status = status;
    op->fn = work;
    ft_req_defer_db(r, op_work, op_done, op);
}

int ft_op_uuid_param(ft_req_t *r, const char *name, char *dst, size_t len)
{
    const char *v = ft_req_param(r, name);
    if (v == NULL || !ft_uuid_valid(v)) {
        ft_respond_problem(r, 400, "invalid-parameter", "Invalid parameter",
                           json_pack("{s:[{s:s, s:s}]}", "errors", "parameter", name, "detail", "must be a UUID"),
                           "Path parameter %s must be a UUID (got %s).", name, v != NULL ? v : "nothing");
        return -1;
    }
    snprintf(dst, len, "%s", v);
    for (char *p = dst; *p; p++)
        if (*p >= 'A' && *p <= 'F')
            *p = (char)(*p - 'A' + 'a');
    return 0;
}

void ft_respond_bad_param(ft_req_t *r, const char *param, const char *detail)
{
    ft_respond_problem(r, 400, "invalid-parameter", "Invalid parameter",
                       json_pack("{s:[{s:s, s:s}]}", "errors", "parameter", param, "detail", detail), "Query parameter %s %s.", param,
                       detail);
}

ft_op_t *ft_op_with_id(ft_req_t *r, const char *param)
{
    char id[64];
    if (ft_op_uuid_param(r, param, id, sizeof(id)) != 0)
        return NULL;
    ft_op_t *op = ft_op_new(r);
    memcpy(op->id, id, sizeof(op->id));
    return op;
}

int ft_query_copy(ft_req_t *r, const char *name, char *dst, size_t len, const char **out)
{
    const char *v = ft_req_query(r, name);
    *out = NULL;
    if (v == NULL)
        return 0;
    if (strlen(v) >= len) {
        ft_respond_bad_param(r, name, "is too long");
        return -1;
    }
    snprintf(dst, len, "%s", v);
    *out = dst;
    return 0;
}

int ft_query_limit(ft_req_t *r, int *limit)
{
    const char *v = ft_req_query(r, "limit");
    *limit = 50;
    if (v == NULL)
        return 0;
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n < 1 || n > 200) {
        ft_respond_bad_param(r, "limit", "must be an integer from 1 to 200");
        return -1;
    }
    *limit = (int)n;
    return 0;
}

int ft_op_instance_product(PGconn *c, ft_op_t *op, const ft_generation_t **g, ft_error_t *err)
{
    char product[64], status[24];
    int rc = ft_instance_product(c, &op->call, op->id, product, status, &op->problem, err);
    if (rc != FT_OK)
        return rc;
    *g = ft_catalog_find(op->catalog, product);
    if (*g == NULL)
        return ft_problem(&op->problem, FT_EUNAVAILABLE, 503, "product-unavailable", "Product not loaded",
                          json_pack("{s:s}", "product", product), "Product %s is not loaded right now.", product);
    return FT_OK;
}

int ft_op_deprovision_work(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    const ft_generation_t *g;
    int rc = ft_op_instance_product(c, op, &g, err);
    if (rc != FT_OK)
        return rc;
    size_t n = 0;
    ft_job_step_spec_t *steps = ft_lifecycle_steps(g->product, FTP_LIFECYCLE_DEPROVISION, &n);
    rc = ft_instance_deprovision(c, &op->call, op->id, steps, n, &op->out, &op->problem, err);
    free(steps);
    snprintf(op->invalidate, sizeof(op->invalidate), "%s", op->id);
    return rc;
}
