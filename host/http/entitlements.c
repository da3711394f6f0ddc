/*
 * GET /api/v1/instances/{id}/entitlements: the resolved record with its ETag; If-None-Match
 * answers 304. Served from memory when the record is cached.
 */
#include "http/ent_lookup.h"
#include "http/op.h"
#include "http/routes.h"

#include <string.h>

static void release_record(void *e)
{
    ft_entitlements_release(e);
}

static void found(ft_req_t *r, ft_entitlements_t *e, void *arg)
{
    ft_req_add_header(r, "etag", e->etag);
    ft_req_add_header(r, "cache-control", "private, no-cache");
    if (ft_etag_matches(r, e->etag)) {
        ft_respond_empty(r, 304);
        return;
    }
    size_t len;
    const char *json = ft_entitlements_json(e, &len);
    /* the record's own text, held until the response has been written: no copy */
    ft_entitlements_hold(e);
    ft_respond_borrowed(r, 200, "application/json", json, len, release_record, e);
}

static void failed(ft_req_t *r, ft_problem_t *problem, const ft_error_t *err, void *arg)
{
    if (problem->status != 0)
        ft_respond_problem_struct(r, problem);
    else
        ft_respond_internal(r, 500, err);
}

static void get_entitlements(ft_req_t *r)
{
    char id[64];
    if (ft_op_uuid_param(r, "id", id, sizeof(id)) == 0)
        ft_ent_lookup(r, id, found, failed, NULL);
}

/* The API reference's part of each route (see ft_route_doc_t). */
static const ft_route_doc_t doc_get_instances_id_entitlements = {
    .tag = "Entitlements",
    .summary = "The resolved entitlements of an instance",
    .responses = (const ft_route_response_t[]){{200, "Entitlements", NULL, NULL},
                                               {304, NULL, NULL, "Unchanged since If-None-Match"},
                                               {410, "Problem", NULL, "The instance was deleted"},
                                               {0}},
};

void ft_routes_entitlements(ft_router_t *router)
{
    static const ft_route_t routes[] = {
        {.method = "GET", .pattern = "/api/v1/instances/{id}/entitlements", .permission = "entitlements:read",
         .flags = FT_ROUTE_CHAIN, .handler = get_entitlements, .doc = &doc_get_instances_id_entitlements},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        ft_router_add(router, &routes[i]);
}
