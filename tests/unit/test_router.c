/*
 * Route matching: literal and parameter segments, method handling, Allow lists.
 */
#include "ft_test.h"
#include "http/router.h"

static void nop(ft_req_t *r)
{
    (void)r;
}

static ft_router_t *make(void)
{
    ft_router_t *rt = ft_router_create();
    static const ft_route_t routes[] = {
        {.method = "GET", .pattern = "/health", .handler = nop},
        {.method = "GET", .pattern = "/api/v1/products", .handler = nop},
        {.method = "GET", .pattern = "/api/v1/products/{code}", .handler = nop},
        {.method = "PUT", .pattern = "/api/v1/products/{code}", .handler = nop},
        {.method = "GET", .pattern = "/api/v1/products/{code}/plans/{plan}", .handler = nop},
        {.method = "POST", .pattern = "/api/v1/plugins/reload", .handler = nop},
        {.method = "POST", .pattern = "/api/v1/plugins/{product}/reload", .handler = nop},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        ft_router_add(rt, &routes[i]);
    return rt;
}

static ft_match_t match(ft_router_t *rt, const char *method, const char *path, const ft_route_t **route, ft_route_params_t *p,
                        char *allow)
{
    return ft_router_match(rt, method, strlen(method), path, strlen(path), route, p, allow, 128);
}

TEST(literal_route_matches_exactly)
{
    ft_router_t *rt = make();
    const ft_route_t *r = NULL;
    ft_route_params_t p;
    char allow[128];
    CHECK_INT(FT_MATCH_OK, match(rt, "GET", "/health", &r, &p, allow));
    CHECK_STR("/health", r->pattern);
    CHECK_INT(0, p.count);
    CHECK_INT(FT_MATCH_NO_PATH, match(rt, "GET", "/healthz", &r, &p, allow));
    CHECK_INT(FT_MATCH_NO_PATH, match(rt, "GET", "/health/", &r, &p, allow));
    CHECK_INT(FT_MATCH_NO_PATH, match(rt, "GET", "/", &r, &p, allow));
    ft_router_destroy(rt);
}

TEST(parameters_are_captured_in_order)
{
    ft_router_t *rt = make();
    const ft_route_t *r = NULL;
    ft_route_params_t p;
    char allow[128];
    CHECK_INT(FT_MATCH_OK, match(rt, "GET", "/api/v1/products/vet/plans/pro", &r, &p, allow));
    CHECK_STR("/api/v1/products/{code}/plans/{plan}", r->pattern);
    CHECK_INT(2, p.count);
    CHECK_STR("{code}", p.names[0]);
    CHECK_INT(3, p.lens[0]);
    CHECK(memcmp(p.values[0], "vet", 3) == 0);
    CHECK_STR("{plan}", p.names[1]);
    CHECK(memcmp(p.values[1], "pro", 3) == 0);
    ft_router_destroy(rt);
}

TEST(empty_parameter_segment_does_not_match)
{
    ft_router_t *rt = make();
    const ft_route_t *r = NULL;
    ft_route_params_t p;
    char allow[128];
    CHECK_INT(FT_MATCH_NO_PATH, match(rt, "GET", "/api/v1/products//plans/pro", &r, &p, allow));
    ft_router_destroy(rt);
}

TEST(literal_route_wins_over_parameter_route_registered_after_it)
{
    ft_router_t *rt = make();
    const ft_route_t *r = NULL;
    ft_route_params_t p;
    char allow[128];
    CHECK_INT(FT_MATCH_OK, match(rt, "POST", "/api/v1/plugins/reload", &r, &p, allow));
    CHECK_STR("/api/v1/plugins/reload", r->pattern);
    CHECK_INT(FT_MATCH_OK, match(rt, "POST", "/api/v1/plugins/vet/reload", &r, &p, allow));
    CHECK_STR("/api/v1/plugins/{product}/reload", r->pattern);
    ft_router_destroy(rt);
}

TEST(wrong_method_lists_allowed_methods_with_head_beside_get)
{
    ft_router_t *rt = make();
    const ft_route_t *r = NULL;
    ft_route_params_t p;
    char allow[128];
    CHECK_INT(FT_MATCH_NO_METHOD, match(rt, "DELETE", "/api/v1/products/vet", &r, &p, allow));
    CHECK_STR("GET, HEAD, PUT", allow);
    CHECK_INT(FT_MATCH_NO_METHOD, match(rt, "POST", "/health", &r, &p, allow));
    CHECK_STR("GET, HEAD", allow);
    ft_router_destroy(rt);
}

TEST(head_is_served_by_get_routes)
{
    ft_router_t *rt = make();
    const ft_route_t *r = NULL;
    ft_route_params_t p;
    char allow[128];
    CHECK_INT(FT_MATCH_OK, match(rt, "HEAD", "/api/v1/products", &r, &p, allow));
    CHECK_STR("GET", r->method);
    CHECK_INT(FT_MATCH_NO_METHOD, match(rt, "HEAD", "/api/v1/plugins/reload", &r, &p, allow));
    ft_router_destroy(rt);
}

RUN_TESTS(TEST_ENTRY(literal_route_matches_exactly), TEST_ENTRY(parameters_are_captured_in_order),
          TEST_ENTRY(empty_parameter_segment_does_not_match), TEST_ENTRY(literal_route_wins_over_parameter_route_registered_after_it),
          TEST_ENTRY(wrong_method_lists_allowed_methods_with_head_beside_get), TEST_ENTRY(head_is_served_by_get_routes))
