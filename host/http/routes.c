/*
 * The host's route table, assembled from each resource's registration function.
 */
#include "http/routes.h"

#include "infra/metrics.h"

void ft_routes_register_all(ft_app_t *app)
{
    ft_routes_ops(app->router);
    ft_routes_catalog(app->router);
    ft_routes_plugins(app->router);
    if (app->config.dev_routes)
        ft_routes_dev(app->router);
    for (size_t i = 0; i < ft_router_count(app->router); i++) {
        ft_route_t *r = (ft_route_t *)ft_router_at(app->router, i);
        r->id = ft_metrics_route(r->method, r->pattern);
    }
}
