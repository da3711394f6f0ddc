/*
 * Route registration: each resource file adds its routes to the router at start.
 */
#ifndef FT_ROUTES_H
#define FT_ROUTES_H

#include "app.h"

void ft_routes_ops(ft_router_t *router);
void ft_routes_dev(ft_router_t *router);
void ft_routes_catalog(ft_router_t *router);
void ft_routes_plugins(ft_router_t *router);
void ft_routes_hosts(ft_router_t *router);
void ft_routes_customers(ft_router_t *router);
void ft_routes_instances(ft_router_t *router);
void ft_routes_subscriptions(ft_router_t *router);
void ft_routes_entitlements(ft_router_t *router);
void ft_routes_ofrep(ft_router_t *router);
void ft_routes_compat(ft_router_t *router);
void ft_routes_jobs(ft_router_t *router);
void ft_routes_actions(ft_router_t *router);
void ft_routes_auth(ft_router_t *router);
void ft_routes_users(ft_router_t *router);
void ft_routes_api_keys(ft_router_t *router);
void ft_routes_audit(ft_router_t *router);
void ft_routes_tenant_databases(ft_router_t *router);

/* Registers every route of the host in order, their metrics series and their body schemas.
 * Returns -1 (logged) if a route's schema does not compile. */
int ft_routes_register_all(ft_app_t *app);

#endif
