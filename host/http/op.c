/*
 * The op runner: one unit of database work per request, answered on the request's thread.
 */
#include "http/op.h"

#include "core/mem.h"
#include "domain/entitlement_service.h"
#include "domain/job_kinds.h"
#include "http/server.h"
#include "infra/log.h"
#include "http/audit.h"
#include "store/audit_store.h"
#include "store/idempotency_store.h"
#include "store/instance_store.h"
#include "store/sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

ft_op_t *ft_op_new(ft_req_t *r)
{
    ft_op_t *op = ft_mem_calloc(1, sizeof(*op));
    op->app = r->app;
    snprintf(op->actor, sizeof(op->actor), "%s", r->principal.subject);
    snprintf(op->correlation_id, sizeof(op->correlation_id), "%s", r->request_id);
    op->call.actor = op->actor;
    op->call.correlation_id = op->correlation_id;
    op->trace = r->trace;
    op->call.traceparent = op->trace.traceparent;
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
    op->route = r->route;
    op->write = r->route != NULL && (r->route->flags & FT_ROUTE_WRITE) && r->route->action != NULL;
    if (op->write) {
        snprintf(op->client_ip, sizeof(op->client_ip), "%s", ft_req_client_ip(r));
        memcpy(op->idem_key, r->idem_key, sizeof(op->idem_key));
        memcpy(op->idem_hash, r->idem_hash, sizeof(op->idem_hash));
        op->idem_ttl_s = r->app->config.idempotency_ttl_s;
    }
    return op;
}

static const char *out_str(ft_op_t *op, const char *key)
{
    json_t *v = json_object_get(op->out, key);
    return json_is_string(v) && ft_uuid_valid(json_string_value(v)) ? json_string_value(v) : NULL;
}

/* The audit row of a write: the entity is what the path names, else what the answer names. */
static int op_audit(PGconn *c, ft_op_t *op, const char *result, const char *reason, ft_error_t *err)
{
    char type[32];
    ft_audit_entity_type(op->route->action, type, sizeof(type));
    const char *verb = strchr(op->route->action, '.');
    int creates = verb != NULL && strcmp(verb, ".create") == 0;
    const char *entity = op->audit_entity[0] ? op->audit_entity
                         : creates          ? out_str(op, "id")
                         : op->id[0]        ? op->id
                                            : out_str(op, "id");
    int instance_level = strcmp(type, "instance") == 0 || strcmp(type, "subscription") == 0 || strcmp(type, "override") == 0;
    json_t *details = op->audit_details != NULL ? json_incref(op->audit_details) : json_object();
    char route[200];
    snprintf(route, sizeof(route), "%s %s", op->route->method, op->route->pattern);
    json_object_set_new(details, "route", json_string(route));
    if (op->id2[0] != '\0')
        json_object_set_new(details, "key", json_string(op->id2));
    if (op->replayed)
        json_object_set_new(details, "idempotent_replay", json_true());
    ft_audit_entry_t e = {.actor = op->actor,
                          .action = op->route->action,
                          .entity_type = type,
                          .entity_id = entity,
                          .customer_id = strcmp(type, "customer") == 0 ? entity
                                         : op->audit_customer[0]        ? op->audit_customer
                                                                        : out_str(op, "customer_id"),
                          .instance_id = instance_level ? entity : out_str(op, "instance_id"),
                          .result = result,
                          .reason = reason,
                          .request_id = op->correlation_id,
                          .client_ip = op->client_ip,
                          .details = details};
    int rc = ft_audit_write(c, &e, err);
    json_decref(details);
    return rc;
}

/* A write: the store's transaction(s), the idempotency record and the audit row commit together. */
static int op_write(PGconn *c, ft_op_t *op, ft_error_t *err)
{
    int rc = ft_sql_outer_begin(c, err);
    if (rc != FT_OK)
        return rc;
    if (op->idem_key[0] != '\0') {
        ft_idem_verdict_t verdict;
        ft_idem_replay_t replay;
        rc = ft_idem_claim(c, op->actor, op->idem_key, op->route->method, op->route->pattern, op->idem_hash, op->idem_ttl_s, &verdict,
                           &replay, err);
        if (rc == FT_OK && verdict == FT_IDEM_MISMATCH) {
            ft_sql_outer_end(c, 0, err);
            return ft_problem(&op->problem, FT_ECONFLICT, 422, "idempotency-key-reused", "Idempotency-Key reused",
                              json_pack("{s:s}", "idempotency_key", op->idem_key),
                              "Idempotency-Key %s was already used for a different request (another method, path or body); "
                              "use a new key for a new request.",
                              op->idem_key);
        }
        if (rc == FT_OK && verdict == FT_IDEM_REPLAY) {
            ft_sql_outer_end(c, 0, err);
            op->replayed = 1;
            op->status = replay.status;
            json_decref(op->out);
            op->out = replay.body;
            snprintf(op->location, sizeof(op->location), "%s", replay.location);
            op->invalidate[0] = '\0';
            op->encode = NULL; /* what was stored is what the client received */
            return FT_OK;
        }
        if (rc != FT_OK) {
            ft_sql_outer_end(c, 0, err);
            return rc;
        }
    }
    rc = op->fn(c, op, err);
    if (rc == FT_OK && op->encode != NULL) {
        /* what the client receives is what a replay must receive */
        json_t *body = op->encode(op);
        json_decref(op->out);
        op->out = body;
        op->encode = NULL;
    }
    int open = ft_sql_outer_open();
    if (rc == FT_OK && open) {
        if (op->idem_key[0] != '\0')
            rc = ft_idem_store(c, op->actor, op->idem_key, op->status, op->status == 204 ? NULL : op->out, op->location, err);
        if (rc == FT_OK)
            rc = op_audit(c, op, "success", NULL, err);
        ft_error_t end_err = {0};
        if (ft_sql_outer_end(c, rc == FT_OK, &end_err) != FT_OK && rc == FT_OK) {
            *err = end_err;
            rc = end_err.code;
        }
        return rc;
    }
    ft_sql_outer_end(c, 0, err);
    /* nothing of the request is committed: record the outcome on its own */
    ft_error_t audit_err = {0};
    if (rc == FT_OK)
        op_audit(c, op, "success", "no change was needed", &audit_err); /* the store found nothing to do */
    else if (op->problem.status != 0)
        op_audit(c, op, "failure", op->problem.detail, &audit_err);
    else
        op_audit(c, op, "failure", "internal error", &audit_err);
    return rc;
}

static int op_work(PGconn *c, void *arg, ft_error_t *err)
{
    ft_op_t *op = arg;
    return op->write ? op_write(c, op, err) : op->fn(c, op, err);
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
    if (op->after != NULL)
        op->after(r, op, status == FT_OK);
    if (ft_req_alive(r)) {
        if (status == FT_OK) {
            if (op->replayed)
                ft_req_add_header(r, "idempotent-replayed", "true");
            if (op->location[0] != '\0')
                ft_req_add_header(r, "location", op->location);
            if (op->encode != NULL) {
                json_t *body = op->encode(op);
                json_decref(op->out);
                op->out = body;
            }
            if (op->status == 204)
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
    json_decref(op->audit_details);
    ft_problem_clear(&op->problem);
    if (op->arg_free != NULL)
        op->arg_free(op->arg);
    else
        free(op->arg);
    free(op);
}

void ft_op_run(ft_req_t *r, ft_op_t *op, ft_op_fn work, int status)
{
    op->status = status;
    op->fn = work;
    if (op->write)
        r->audited = 1; /* the op runner records this request, whatever its outcome */
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

int ft_op_own_customer(ft_req_t *r, const char *member)
{
    const char *named = json_string_value(json_object_get(r->body, member));
    if (r->principal.customer_id[0] == '\0' || named == NULL || strcasecmp(named, r->principal.customer_id) == 0)
        return 0;
    char pointer[64];
    snprintf(pointer, sizeof(pointer), "#/%s", member);
    ft_respond_problem(r, 403, "outside-your-customer", "Outside your customer",
                       json_pack("{s:[{s:s, s:s}]}", "errors", "pointer", pointer, "detail", "not the credential's customer"),
                       "A customer credential acts within its own customer only; %s names another.", member);
    return -1;
}

int ft_query_uuid(ft_req_t *r, const char *name, char *dst, size_t len, const char **out)
{
    if (ft_query_copy(r, name, dst, len, out) != 0)
        return -1;
    if (*out != NULL && !ft_uuid_valid(*out)) {
        ft_respond_bad_param(r, name, "must be a UUID");
        return -1;
    }
    return 0;
}

/* Reads n digits at s into *v; 0 when one is not a digit. */
static int digits(const char *s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        *v = *v * 10 + (s[i] - '0');
    }
    return 1;
}

static int rfc3339_valid(const char *v)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, sec;
    if (strlen(v) < 20 || !digits(v, 4, &y) || v[4] != '-' || !digits(v + 5, 2, &mo) || v[7] != '-' || !digits(v + 8, 2, &d) ||
        (v[10] != 'T' && v[10] != 't') || !digits(v + 11, 2, &h) || v[13] != ':' || !digits(v + 14, 2, &mi) || v[16] != ':' ||
        !digits(v + 17, 2, &sec))
        return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 || sec > 60)
        return 0;
    const char *p = v + 19;
    if (*p == '.') {
        const char *f = ++p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p == f)
            return 0;
    }
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
        return 1;
    int oh, om;
    return (*p == '+' || *p == '-') && digits(p + 1, 2, &oh) && p[3] == ':' && digits(p + 4, 2, &om) && p[6] == '\0' && oh <= 23 &&
           om <= 59;
}

int ft_query_time(ft_req_t *r, const char *name, char *dst, size_t len, const char **out)
{
    if (ft_query_copy(r, name, dst, len, out) != 0)
        return -1;
    if (*out != NULL && !rfc3339_valid(*out)) {
        ft_respond_bad_param(r, name, "must be an RFC 3339 date-time such as 2026-01-31T12:00:00Z");
        return -1;
    }
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
    return rc == FT_OK ? ft_op_product(op, product, g) : rc;
}

int ft_op_product(ft_op_t *op, const char *product, const ft_generation_t **g)
{
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
    ft_job_step_spec_t *steps = ft_job_kind_steps(&ft_job_kinds[FT_JOB_DEPROVISION], g->product, &n);
    rc = ft_instance_deprovision(c, &op->call, op->id, steps, n, &op->out, &op->problem, err);
    free(steps);
    snprintf(op->invalidate, sizeof(op->invalidate), "%s", op->id);
    return rc;
}
