/*
 * The operator surface of the plugin runtime: list generations and the fleet's releases and
 * skew, reload one product or all across the fleet. Reloads block (dlopen, init, catalog sync,
 * waiting for the other hosts), so they run on a worker thread.
 */
#include "core/mem.h"
#include "domain/fleet_view.h"
#include "http/audit.h"
#include "http/request.h"
#include "http/routes.h"
#include "infra/log.h"
#include "messaging/fleet.h"
#include "store/fleet_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct list_job {
    json_t *releases, *hosts;
} list_job_t;

static int list_work(PGconn *conn, void *arg, ft_error_t *err)
{
    list_job_t *job = arg;
    int rc = ft_fleet_store_releases(conn, &job->releases, err);
    return rc == FT_OK ? ft_fleet_store_hosts(conn, 0, &job->hosts, err) : rc;
}

static void list_done(ft_req_t *r, void *arg, int status, const ft_error_t *err)
{
    list_job_t *job = arg;
    if (ft_req_alive(r)) {
        /* this host's own state needs no database: without one the fleet view is null */
        json_t *body = ft_registry_status(r->app->registry);
        const char *id = ft_fleet_host_id(r->app->fleet);
        if (status == FT_OK && id != NULL)
            json_object_set_new(body, "fleet",
                                json_pack("{s:s, s:O, s:o}", "host_id", id, "releases", job->releases, "skew",
                                          ft_fleet_skew(job->hosts, job->releases)));
        else
            json_object_set_new(body, "fleet", json_null());
        if (status != FT_OK)
            ft_log(FT_LOG_WARN, r->request_id, "plugins: fleet view unavailable: %s", err->message);
        ft_respond_json(r, 200, body);
    }
    json_decref(job->releases);
    json_decref(job->hosts);
    free(job);
}

static void list_plugins(ft_req_t *r)
{
    ft_req_defer_db(r, list_work, list_done, ft_mem_calloc(1, sizeof(list_job_t)));
}

typedef struct reload_job {
    ft_fleet_t *fleet;
    ft_rollout_request_t req;
    char *product; /* NULL: all */
    char actor[128];
    json_t *answer;
} reload_job_t;

static int reload_work(void *arg, ft_error_t *err)
{
    reload_job_t *job = arg;
    return ft_fleet_rollout(job->fleet, &job->req, &job->answer, err);
}

static void answer_reload(ft_req_t *r, reload_job_t *job, int status, const ft_error_t *err)
{
    if (status == FT_ENOTFOUND) {
        ft_respond_problem(r, 404, "plugin-not-found", "Plugin not found", json_pack("{s:s}", "product", job->product),
                           "%s.", err->message);
    } else if (job->answer == NULL) {
        ft_respond_internal(r, status == FT_EIO ? 500 : 503, err);
    } else if (status == FT_ETIMEOUT) {
        /* the answer's hosts say which host did not answer and what it last reported */
        ft_respond_problem(r, 422, "plugin-rollout-incomplete", "Plugin rollout incomplete", json_incref(job->answer), "%s.",
                           err->message);
    } else if (status != FT_OK) {
        /* each reason says which generation, if any, keeps serving */
        ft_respond_problem(r, 422, "plugin-load-failed", "Plugin load failed", json_incref(job->answer), "%s.",
                           err->message[0] != '\0' ? err->message : "load failed");
    } else {
        ft_respond_json(r, 200, json_incref(job->answer));
    }
}

static void reload_done(ft_req_t *r, void *arg, int status, const ft_error_t *err)
{
    reload_job_t *job = arg;
    if (status == FT_OK)
        ft_audit_request(r, "success", NULL);
    else
        ft_audit_request(r, "failure", "%s", err->message);
    if (ft_req_alive(r))
        answer_reload(r, job, status, err);
    json_decref(job->answer);
    free(job->product);
    free(job);
}

static int flag_param(ft_req_t *r, const char *name)
{
    const char *f = ft_req_query(r, name);
    return f != NULL && (strcmp(f, "true") == 0 || strcmp(f, "1") == 0);
}

static void start_reload(ft_req_t *r, const char *product)
{
    reload_job_t *job = ft_mem_calloc(1, sizeof(*job));
    job->fleet = r->app->fleet;
    job->product = product != NULL ? ft_mem_strdup(product) : NULL;
    snprintf(job->actor, sizeof(job->actor), "%s", r->principal.subject);
    job->req = (ft_rollout_request_t){.product = job->product,
                                      .force = flag_param(r, "force"),
                                      .canary = flag_param(r, "canary"),
                                      .rollback = flag_param(r, "rollback"),
                                      .actor = job->actor};
    ft_req_defer(r, reload_work, reload_done, job);
}

static void reload_all(ft_req_t *r)
{
    start_reload(r, NULL);
}

static void reload_product(ft_req_t *r)
{
    const char *product = ft_req_param(r, "product");
    for (const char *c = product; *c != '\0'; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_')) {
            ft_respond_problem(r, 400, "invalid-parameter", "Invalid parameter",
                               json_pack("{s:[{s:s, s:s}]}", "errors", "parameter", "product", "detail",
                                         "a product code: lowercase letters, digits and _"),
                               "%s is not a product code.", product);
            return;
        }
    }
    start_reload(r, product);
}

/* The API reference's part of each route (see ft_route_doc_t). */
static const ft_route_query_t reload_query[] = {
    {"force", "{\"type\":\"string\",\"enum\":[\"true\",\"false\",\"1\",\"0\"]}", "reload even an unchanged file"},
    {"canary", "{\"type\":\"string\",\"enum\":[\"true\",\"false\",\"1\",\"0\"]}", "load on this host first, then the others"},
    {"rollback", "{\"type\":\"string\",\"enum\":[\"true\",\"false\",\"1\",\"0\"]}",
     "let a file that was an earlier release become current again"},
    {0},
};
static const ft_route_doc_t doc_get_plugins = {
    .tag = "Plugins",
    .summary = "List loaded product plugins",
    .responses = (const ft_route_response_t[]){{200, "PluginList", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_post_plugins_reload = {
    .tag = "Plugins",
    .summary = "Reload every product plugin on every host",
    .query = reload_query,
    .responses = (const ft_route_response_t[]){{200, "PluginReload", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_post_plugins_product_reload = {
    .tag = "Plugins",
    .summary = "Reload one product's plugin on every host",
    .query = reload_query,
    .responses = (const ft_route_response_t[]){{200, "PluginReload", NULL, NULL}, {0}},
};

void ft_routes_plugins(ft_router_t *router)
{
    static const ft_route_t routes[] = {
        {.method = "GET", .pattern = "/api/v1/plugins", .permission = "plugins:read", .flags = FT_ROUTE_CHAIN,
         .handler = list_plugins, .doc = &doc_get_plugins},
        {.method = "POST", .pattern = "/api/v1/plugins/reload", .permission = "plugins:reload", .action = "plugin.reload",
         .flags = FT_ROUTE_CHAIN | FT_ROUTE_WRITE, .handler = reload_all, .doc = &doc_post_plugins_reload},
        {.method = "POST", .pattern = "/api/v1/plugins/{product}/reload", .permission = "plugins:reload", .action = "plugin.reload",
         .flags = FT_ROUTE_CHAIN | FT_ROUTE_WRITE, .handler = reload_product, .doc = &doc_post_plugins_product_reload},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        ft_router_add(router, &routes[i]);
}
