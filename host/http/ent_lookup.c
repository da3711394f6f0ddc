/*
 * The cache-first entitlement lookup behind GET .../entitlements and OFREP.
 */
#include "http/ent_lookup.h"

#include "core/mem.h"
#include "domain/entitlement_service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t ft_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void ft_req_call(ft_req_t *r, ft_call_t *call)
{
    memset(call, 0, sizeof(*call));
    call->customer_id = r->principal.customer_id[0] ? r->principal.customer_id : NULL;
    call->instance_id = r->principal.instance_id[0] ? r->principal.instance_id : NULL;
    call->actor = r->principal.subject;
    call->correlation_id = r->request_id;
    call->traceparent = r->trace.traceparent;
}

int ft_etag_matches(ft_req_t *r, const char *etag)
{
    const char *inm = ft_req_header(r, "if-none-match");
    if (inm == NULL)
        return 0;
    if (strcmp(inm, "*") == 0)
        return 1;
    size_t tl = strlen(etag);
    for (const char *p = inm; (p = strstr(p, etag)) != NULL; p += tl) {
        char after = p[tl];
        if (after == '\0' || after == ',' || after == ' ')
            return 1;
    }
    return 0;
}

typedef struct lookup {
    char instance[40], customer[40], bound[40], actor[160], request_id[FT_REQUEST_ID_MAX + 1];
    ft_call_t call;
    const ft_catalog_t *catalog;
    ft_ent_service_t *service;
    ft_entitlements_t *e;
    ft_problem_t problem;
    ft_ent_found_fn found;
    ft_ent_failed_fn failed;
    void *arg;
} lookup_t;

static int lookup_work(PGconn *c, void *p, ft_error_t *err)
{
    lookup_t *l = p;
    return ft_ent_service_resolve(l->service, c, l->catalog, &l->call, l->instance, &l->e, &l->problem, err);
}

static void lookup_done(ft_req_t *r, void *p, int status, const ft_error_t *err)
{
    lookup_t *l = p;
    if (ft_req_alive(r)) {
        if (status == FT_OK)
            l->found(r, l->e, l->arg);
        else
            l->failed(r, &l->problem, err, l->arg);
    }
    ft_entitlements_release(l->e);
    ft_problem_clear(&l->problem);
    free(l->arg);
    free(l);
}

void ft_ent_lookup(ft_req_t *r, const char *instance_id, ft_ent_found_fn found, ft_ent_failed_fn failed, void *arg)
{
    ft_call_t call;
    ft_req_call(r, &call);
    ft_entitlements_t *e = ft_ent_service_cached(r->app->entitlements, &call, instance_id, ft_now_us());
    if (e != NULL) {
        found(r, e, arg);
        ft_entitlements_release(e);
        free(arg);
        return;
    }
    lookup_t *l = ft_mem_calloc(1, sizeof(*l));
    snprintf(l->instance, sizeof(l->instance), "%s", instance_id);
    for (char *c = l->instance; *c; c++)
        if (*c >= 'A' && *c <= 'F')
            *c = (char)(*c - 'A' + 'a');
    snprintf(l->actor, sizeof(l->actor), "%s", r->principal.subject);
    snprintf(l->request_id, sizeof(l->request_id), "%s", r->request_id);
    l->call.actor = l->actor;
    l->call.correlation_id = l->request_id;
    if (call.customer_id != NULL) {
        snprintf(l->customer, sizeof(l->customer), "%s", call.customer_id);
        l->call.customer_id = l->customer;
    }
    if (call.instance_id != NULL) {
        snprintf(l->bound, sizeof(l->bound), "%s", call.instance_id);
        l->call.instance_id = l->bound;
    }
    l->catalog = ft_req_catalog(r);
    l->service = r->app->entitlements;
    l->found = found;
    l->failed = failed;
    l->arg = arg;
    /* on the readers' lane when there is one: a cold read never waits behind the pool's writes,
     * lists and slow queries */
    if (r->app->ent_readers != NULL)
        ft_req_defer_lane(r, r->app->ent_readers, lookup_work, lookup_done, l);
    else
        ft_req_defer_db(r, lookup_work, lookup_done, l);
}
