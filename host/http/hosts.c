/*
 * GET /api/v1/hosts: every live host of the fleet (?all=true: also the stale and stopped ones
 * seen in the last hour) with the product generations it serves, and the skew between them.
 */
#include "core/mem.h"
#include "domain/fleet_view.h"
#include "http/request.h"
#include "http/routes.h"
#include "store/fleet_store.h"

#include <stdlib.h>
#include <string.h>

typedef struct hosts_job {
    int all;
    json_t *hosts, *releases;
} hosts_job_t;

static int hosts_work(PGconn *conn, void *arg, ft_error_t *err)
{
    hosts_job_t *job = arg;
    int rc = ft_fleet_store_hosts(conn, job->all, &job->hosts, err);
    return rc == FT_OK ? ft_fleet_store_releases(conn, &job->releases, err) : rc;
}

static void hosts_done(ft_req_t *r, void *arg, int status, const ft_error_t *err)
{
    hosts_job_t *job = arg;
    if (ft_req_alive(r) && status != FT_OK)
        ft_respond_internal(r, 503, err);
    else if (ft_req_alive(r))
        ft_respond_json(r, 200, json_pack("{s:O, s:o}", "hosts", job->hosts, "skew", ft_fleet_skew(job->hosts, job->releases)));
    json_decref(job->hosts);
    json_decref(job->releases);
    free(job);
}

static void list_hosts(ft_req_t *r)
{
    const char *all = ft_req_query(r, "all");
    if (all != NULL && strcmp(all, "true") != 0 && strcmp(all, "false") != 0) {
        ft_respond_problem(r, 400, "invalid-parameter", "Invalid parameter",
                           json_pack("{s:[{s:s, s:s}]}", "errors", "parameter", "all", "detail", "true or false"),
                           "all must be true or false.");
        return;
    }
    hosts_job_t *job = ft_mem_calloc(1, sizeof(*job));
    job->all = all != NULL && strcmp(all, "true") == 0;
    ft_req_defer_db(r, hosts_work, hosts_done, job);
}

/* The API reference's part of each route (see ft_route_doc_t). */
static const ft_route_doc_t doc_get_hosts = {
    .tag = "Operations",
    .summary = "The fleet of hosts",
    .query =
        (const ft_route_query_t[]){{"all", "{\"type\":\"string\",\"enum\":[\"true\",\"false\"]}", "also hosts that stopped"}, {0}},
    .responses = (const ft_route_response_t[]){{200, "HostList", NULL, NULL}, {0}},
};

void ft_routes_hosts(ft_router_t *router)
{
    static const ft_route_t routes[] = {
        {.method = "GET", .pattern = "/api/v1/hosts", .permission = "hosts:read", .flags = FT_ROUTE_CHAIN, .handler = list_hosts,
         .doc = &doc_get_hosts},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        ft_router_add(router, &routes[i]);
}
