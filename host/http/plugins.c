/*
 * The operator surface of the plugin runtime: list generations, reload one product or all.
 * Reloads block (dlopen, init, catalog sync), so they run on a worker thread.
 */
#include "core/mem.h"
#include "http/audit.h"
#include "http/request.h"
#include "http/routes.h"

#include <stdlib.h>
#include <string.h>

static void list_plugins(ft_req_t *r)
{
    ft_respond_json(r, 200, ft_registry_status(r->app->registry));
}

typedef struct reload_job {
    ft_registry_t *registry;
    char *product; /* NULL: all */
    int force;
    json_t *report;
} reload_job_t;

static int reload_work(void *arg, ft_error_t *err)
{
    reload_job_t *job = arg;
    return ft_registry_reload(job->registry, job->product, job->force, &job->report, err);
}

static void reload_done(ft_req_t *r, void *arg, int status, const ft_error_t *err)
{
    reload_job_t *job = arg;
    if (status == FT_OK)
        ft_audit_request(r, "success", NULL);
    else
        ft_audit_request(r, "failure", "%s", err->message);
    if (ft_req_alive(r)) {
        if (status == FT_ENOTFOUND) {
            ft_respond_problem(r, 404, "plugin-not-found", "Plugin not found", json_pack("{s:s}", "product", job->product),
                               "%s.", err->message);
        } else if (status == FT_EIO) {
            ft_respond_internal(r, 500, err);
        } else if (status != FT_OK) {
            /* each reason says which generation, if any, keeps serving */
            ft_respond_problem(r, 422, "plugin-load-failed", "Plugin load failed", json_pack("{s:O}", "results", job->report),
                               "%s.", err->message[0] != '\0' ? err->message : "load failed");
        } else {
            ft_respond_json(r, 200, json_pack("{s:O}", "results", job->report));
        }
    }
    json_decref(job->report);
    free(job->product);
    free(job);
}

static int force_param(ft_req_t *r)
{
    const char *f = ft_req_query(r, "force");
    return f != NULL && (strcmp(f, "true") == 0 || strcmp(f, "1") == 0);
}

static void start_reload(ft_req_t *r, const char *product)
{
    reload_job_t *job = ft_mem_calloc(1, sizeof(*job));
    job->registry = r->app->registry;
    job->product = product != NULL ? ft_mem_strdup(product) : NULL;
    job->force = force_param(r);
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

void ft_routes_plugins(ft_router_t *router)
{
    static const ft_route_t routes[] = {
        {.method = "GET", .pattern = "/api/v1/plugins", .permission = "plugins:read", .flags = FT_ROUTE_CHAIN,
         .handler = list_plugins},
        {.method = "POST", .pattern = "/api/v1/plugins/reload", .permission = "plugins:reload", .action = "plugin.reload",
         .flags = FT_ROUTE_CHAIN | FT_ROUTE_WRITE, .handler = reload_all},
        {.method = "POST", .pattern = "/api/v1/plugins/{product}/reload", .permission = "plugins:reload", .action = "plugin.reload",
         .flags = FT_ROUTE_CHAIN | FT_ROUTE_WRITE, .handler = reload_product},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        ft_router_add(router, &routes[i]);
}
