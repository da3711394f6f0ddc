/*
 * The host's route table, assembled from each resource's registration function.
 */
#include "http/routes.h"

#include "http/openapi.h"
#include "http/static.h"

#include "auth/rbac.h"
#include "domain/jsonschema.h"
#include "infra/log.h"
#include "infra/metrics.h"

#include <string.h>

int ft_routes_register_all(ft_app_t *app)
{
    ft_router_t *rt = app->router;
    if (!(app->config.roles & FT_ROLE_API)) {
        /* a relay or worker process serves /health, /ready and /metrics only, for its probes */
        ft_routes_ops(rt);
    } else {
        /* the routes child apps call on every screen first: matching is a scan in this order */
        ft_routes_ofrep(rt);
        ft_routes_entitlements(rt);
        ft_routes_ops(rt);
        ft_routes_catalog(rt);
        ft_routes_plugins(rt);
        ft_routes_hosts(rt);
        ft_routes_customers(rt);
        ft_routes_instances(rt);
        ft_routes_subscriptions(rt);
        ft_routes_compat(rt);
        ft_routes_jobs(rt);
        ft_routes_actions(rt);
        ft_routes_auth(rt);
        ft_routes_users(rt);
        ft_routes_api_keys(rt);
        ft_routes_audit(rt);
        ft_routes_tenant_databases(rt);
        ft_routes_openapi(rt);
        ft_routes_console(rt);
        if (app->config.dev_routes)
            ft_routes_dev(rt);
    }
    for (size_t i = 0; i < ft_router_count(rt); i++) {
        ft_route_t *r = (ft_route_t *)ft_router_at(rt, i);
        r->id = ft_metrics_route(r->method, r->pattern);
        /* secure by construction: a chained route names a known permission or says it is public,
         * and a write names its audit action */
        if ((r->flags & FT_ROUTE_CHAIN) && !(r->flags & FT_ROUTE_PUBLIC) &&
            (r->permission == NULL || !ft_rbac_known(r->permission))) {
            ft_log(FT_LOG_ERROR, NULL, "route %s %s: permission %s is not in the role table", r->method, r->pattern,
                   r->permission != NULL ? r->permission : "(none)");
            return -1;
        }
        if ((r->flags & FT_ROUTE_WRITE) && r->action == NULL && (r->permission == NULL || strcmp(r->permission, "dev:use") != 0)) {
            ft_log(FT_LOG_ERROR, NULL, "route %s %s: a write without an audit action", r->method, r->pattern);
            return -1;
        }
        if (r->body_schema != NULL) {
            ft_error_t err = {0};
            r->schema = ft_schema_compile(r->body_schema, &err);
            if (r->schema == NULL) {
                ft_log(FT_LOG_ERROR, NULL, "route %s %s: body schema: %s", r->method, r->pattern, err.message);
                return -1;
            }
        }
    }
    /* every route is in the API's document, or the host does not start */
    ft_error_t err = {0};
    app->openapi = ft_openapi_create(rt, app->config.docs_dir, FT_VERSION_STRING, &err);
    if (app->openapi == NULL) {
        ft_log(FT_LOG_ERROR, NULL, "OpenAPI document: %s", err.message);
        return -1;
    }
    return 0;
}
