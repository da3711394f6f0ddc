/*
 * The catalog API: products, their modules and features, their plans. Answers come from the
 * request's pinned catalog, serialised once when the generation was loaded.
 */
#include "http/request.h"
#include "http/routes.h"

#include <string.h>

static ft_generation_t *product_or_404(ft_req_t *r)
{
    const char *code = ft_req_param(r, "code");
    ft_generation_t *g = ft_catalog_find(ft_req_catalog(r), code);
    if (g == NULL)
        ft_respond_problem(r, 404, "product-not-found", "Product not found", json_pack("{s:s}", "product", code),
                           "No product %s is loaded; GET /api/v1/products lists them.", code);
    return g;
}

static void list_products(ft_req_t *r)
{
    const ft_catalog_t *c = ft_req_catalog(r);
    ft_respond_raw(r, 200, "application/json", c->list_json, strlen(c->list_json));
}

static void get_product(ft_req_t *r)
{
    ft_generation_t *g = product_or_404(r);
    if (g != NULL)
        ft_respond_raw(r, 200, "application/json", g->detail_json, strlen(g->detail_json));
}

static void list_plans(ft_req_t *r)
{
    ft_generation_t *g = product_or_404(r);
    if (g != NULL)
        ft_respond_raw(r, 200, "application/json", g->plans_json, strlen(g->plans_json));
}

static void get_plan(ft_req_t *r)
{
    ft_generation_t *g = product_or_404(r);
    if (g == NULL)
        return;
    const char *plan = ft_req_param(r, "plan");
    for (size_t i = 0; i < g->product->nplans; i++) {
        if (strcmp(g->product->plans[i].code, plan) == 0) {
            ft_respond_raw(r, 200, "application/json", g->plan_json[i], strlen(g->plan_json[i]));
            return;
        }
    }
    ft_respond_problem(r, 404, "plan-not-found", "Plan not found", json_pack("{s:s, s:s}", "product", g->product_code, "plan", plan),
                       "Product %s has no plan %s.", g->product_code, plan);
}

/* The API reference's part of each route (see ft_route_doc_t). */
static const ft_route_doc_t doc_get_products = {
    .tag = "Catalog",
    .summary = "List products",
    .responses = (const ft_route_response_t[]){{200, "ProductList", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_get_products_code = {
    .tag = "Catalog",
    .summary = "Get a product with its modules and features",
    .responses = (const ft_route_response_t[]){{200, "Product", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_get_products_code_plans = {
    .tag = "Catalog",
    .summary = "List a product's plans",
    .responses = (const ft_route_response_t[]){{200, "PlanList", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_get_products_code_plans_plan = {
    .tag = "Catalog",
    .summary = "Get a plan",
    .responses = (const ft_route_response_t[]){{200, "Plan", NULL, NULL}, {0}},
};

void ft_routes_catalog(ft_router_t *router)
{
    static const ft_route_t routes[] = {
        {.method = "GET", .pattern = "/api/v1/products", .permission = "catalog:read", .flags = FT_ROUTE_CHAIN,
         .handler = list_products, .doc = &doc_get_products},
        {.method = "GET", .pattern = "/api/v1/products/{code}", .permission = "catalog:read", .flags = FT_ROUTE_CHAIN,
         .handler = get_product, .doc = &doc_get_products_code},
        {.method = "GET", .pattern = "/api/v1/products/{code}/plans", .permission = "catalog:read", .flags = FT_ROUTE_CHAIN,
         .handler = list_plans, .doc = &doc_get_products_code_plans},
        {.method = "GET", .pattern = "/api/v1/products/{code}/plans/{plan}", .permission = "catalog:read",
         .flags = FT_ROUTE_CHAIN, .handler = get_plan, .doc = &doc_get_products_code_plans_plan},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        ft_router_add(router, &routes[i]);
}
