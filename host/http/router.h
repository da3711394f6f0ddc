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

/*
 * What the API reference says about a route beyond what the route itself declares (method,
 * pattern, permission, body schema): the OpenAPI document is built from both at start, and a
 * route without a doc is a start-up error. Everything here is static data.
 *
 * A schema is either the name of a shared component ("Customer", see docs/openapi/components.json)
 * or an inline JSON Schema ("{\"type\":\"string\"}").
 */
typedef struct ft_route_response {
    int status;
    const char *schema;       /* NULL: no body */
    const char *content_type; /* NULL: application/problem+json for "Problem", else application/json */
    const char *description;  /* NULL: the status' reason phrase */
} ft_route_response_t;

typedef struct ft_route_query {
    const char *name;
    const char *schema; /* inline JSON Schema */
    const char *description;
} ft_route_query_t;

enum {
    FT_DOC_PAGE = 1u << 0, /* a list: `limit` and `cursor` query parameters, and the 200 response's schema
                            * names the item inside the {items, next_cursor} envelope */
    FT_DOC_UNLISTED = 1u << 1, /* served but left out of the document: a second path for what a listed
                                * route serves (/console/ is /console/index.html; an OpenAPI path
                                * may not end in a slash) */
};

typedef struct ft_route_doc {
    const char *tag;     /* the reference's section, "Customers" */
    const char *summary; /* one line */
    unsigned flags;      /* FT_DOC_* */
    const ft_route_query_t *query;         /* terminated by a NULL name; may be NULL */
    const ft_route_response_t *responses;  /* terminated by status 0: the successes and the route's own
                                            * problems; the generic ones (auth, body, 5xx) are added from flags */
    const char *request; /* an optional body the handler reads itself (no FT_ROUTE_JSON_BODY: a protocol
                          * with errors of its own, such as OFREP): a component name or inline JSON Schema */
} ft_route_doc_t;

typedef struct ft_route {
    const char *method;
    const char *pattern;    /* "/api/v1/products/{code}/plans" */
    const char *permission; /* "catalog:read"; NULL for routes outside the chain and public ones */
    const char *action;     /* audit action of a write, "customer.create"; entity type before the dot */
    unsigned flags;
    ft_handler_fn handler;
    const char *body_schema; /* JSON Schema the body must satisfy (FT_ROUTE_JSON_BODY), or NULL */
    void *schema;            /* body_schema compiled at registration (ft_schema_t) */
    const ft_route_doc_t *doc; /* the API reference's part; required */
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
