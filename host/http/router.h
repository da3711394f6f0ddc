/*
 * The route table: exact method + path patterns with {param} segments. Built at start,
 * read-only afterwards, so every loop thread matches against it without locks.
 */
#ifndef FT_ROUTER_H
#define FT_ROUTER_H

#include <stddef.h>

typedef struct ft_req ft_req_t;
/* A handler answers exactly once, now or later (after deferred work), with an ft_respond_* call. */
typedef void (*ft_handler_fn)(ft_req_t *r);

enum {
    FT_ROUTE_CHAIN = 1u << 0,     /* runs the middleware chain: authentication, rate limit, audit */
    FT_ROUTE_JSON_BODY = 1u << 1, /* expects a JSON document; decoded before the handler */
    FT_ROUTE_WRITE = 1u << 2,     /* changes state: audited */
    FT_ROUTE_OPTIONAL_BODY = 1u << 3, /* like FT_ROUTE_JSON_BODY, but an empty body is fine */
    FT_ROUTE_PUBLIC = 1u << 4,    /* in the chain, but no credential needed: the body carries one (sign-in) */
};

#define FT_ROUTE_MAX_PARAMS 6

typedef struct ft_route {
    const char *method;
    const char *pattern;    /* "/api/v1/products/{code}/plans" */
    const char *permission; /* "catalog:read"; NULL for routes outside the chain and public ones */
    const char *action;     /* audit action of a write, "customer.create"; entity type before the dot */
    unsigned flags;
    ft_handler_fn handler;
    const char *body_schema; /* JSON Schema the body must satisfy (FT_ROUTE_JSON_BODY), or NULL */
    void *schema;            /* body_schema compiled at registration (ft_schema_t) */
    /* filled by the router */
    unsigned id; /* metrics series */
    size_t nsegs;
    char **segs;
    size_t *seglens;
} ft_route_t;

typedef struct ft_route_params {
    size_t count;
    const char *names[FT_ROUTE_MAX_PARAMS];
    const char *values[FT_ROUTE_MAX_PARAMS]; /* point into the matched path, not terminated */
    size_t lens[FT_ROUTE_MAX_PARAMS];
} ft_route_params_t;

typedef struct ft_router ft_router_t;

ft_router_t *ft_router_create(void);
void ft_router_destroy(ft_router_t *router);
/* Adds a copy of `route` (strings must be static). Returns the stored route. */
const ft_route_t *ft_router_add(ft_router_t *router, const ft_route_t *route);

typedef enum { FT_MATCH_OK, FT_MATCH_NO_PATH, FT_MATCH_NO_METHOD } ft_match_t;

/*
 * Finds the route for method and path (no query string). HEAD matches GET routes. On
 * FT_MATCH_NO_METHOD `allow` receives the methods the path accepts, e.g. "GET, HEAD, POST".
 */
ft_match_t ft_router_match(const ft_router_t *router, const char *method, size_t mlen, const char *path, size_t plen,
                           const ft_route_t **route, ft_route_params_t *params, char *allow, size_t allowlen);

size_t ft_router_count(const ft_router_t *router);
const ft_route_t *ft_router_at(const ft_router_t *router, size_t i);

#endif
