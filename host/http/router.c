/*
 * Route matching by path segments. A linear scan: the table holds tens of routes, and a
 * segment compare is a memcmp, so this stays well under a microsecond.
 */
#include "http/router.h"

#include "core/mem.h"
#include "domain/jsonschema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ft_router {
    ft_route_t **routes;
    size_t count;
};

ft_router_t *ft_router_create(void)
{
    return ft_mem_calloc(1, sizeof(ft_router_t));
}

void ft_router_destroy(ft_router_t *router)
{
    if (router == NULL)
        return;
    for (size_t i = 0; i < router->count; i++) {
        for (size_t s = 0; s < router->routes[i]->nsegs; s++)
            free(router->routes[i]->segs[s]);
        free(router->routes[i]->segs);
        free(router->routes[i]->seglens);
        ft_schema_free(router->routes[i]->schema);
        free(router->routes[i]);
    }
    free(router->routes);
    free(router);
}

const ft_route_t *ft_router_add(ft_router_t *router, const ft_route_t *tmpl)
{
    ft_route_t *r = ft_mem_alloc(sizeof(*r));
    *r = *tmpl;
    r->nsegs = 0;
    r->segs = NULL;
    r->seglens = NULL;
    const char *p = r->pattern;
    while (*p == '/') {
        const char *start = ++p;
        while (*p != '\0' && *p != '/')
            p++;
        r->segs = ft_mem_realloc(r->segs, (r->nsegs + 1) * sizeof(char *));
        r->seglens = ft_mem_realloc(r->seglens, (r->nsegs + 1) * sizeof(size_t));
        r->seglens[r->nsegs] = (size_t)(p - start);
        r->segs[r->nsegs++] = ft_mem_strndup(start, (size_t)(p - start));
    }
    router->routes = ft_mem_realloc(router->routes, (router->count + 1) * sizeof(ft_route_t *));
    router->routes[router->count++] = r;
    return r;
}

static int is_param(const char *seg)
{
    return seg[0] == '{';
}

static int path_matches(const ft_route_t *r, const char *path, size_t plen, ft_route_params_t *params)
{
    size_t pos = 0, seg = 0;
    if (params != NULL)
        params->count = 0;
    while (pos < plen) {
        if (path[pos] != '/' || seg == r->nsegs)
            return 0;
        size_t start = ++pos;
        while (pos < plen && path[pos] != '/')
            pos++;
        size_t len = pos - start;
        size_t wlen = r->seglens[seg];
        const char *want = r->segs[seg++];
        if (is_param(want)) {
            if (len == 0)
                return 0;
            if (params != NULL && params->count < FT_ROUTE_MAX_PARAMS) {
                params->names[params->count] = want;
                params->values[params->count] = path + start;
                params->lens[params->count] = len;
                params->count++;
            }
        } else if (wlen != len || memcmp(want, path + start, len) != 0) {
            return 0;
        }
    }
    return seg == r->nsegs;
}

static int method_is(const char *want, const char *method, size_t mlen)
{
    return strlen(want) == mlen && memcmp(want, method, mlen) == 0;
}

ft_match_t ft_router_match(const ft_router_t *router, const char *method, size_t mlen, const char *path, size_t plen,
                           const ft_route_t **route, ft_route_params_t *params, char *allow, size_t allowlen)
{
    int is_head = method_is("HEAD", method, mlen);
    int path_seen = 0;
    for (size_t i = 0; i < router->count; i++) {
        const ft_route_t *r = router->routes[i];
        if (!path_matches(r, path, plen, NULL))
            continue;
        path_seen = 1;
        if (method_is(r->method, method, mlen) || (is_head && strcmp(r->method, "GET") == 0)) {
            path_matches(r, path, plen, params);
            *route = r;
            return FT_MATCH_OK;
        }
    }
    if (!path_seen)
        return FT_MATCH_NO_PATH;

    /* Build the Allow list: each method once, HEAD beside GET. */
    size_t used = 0;
    if (allowlen > 0)
        allow[0] = '\0';
    for (size_t i = 0; i < router->count; i++) {
        const ft_route_t *r = router->routes[i];
        if (!path_matches(r, path, plen, NULL))
            continue;
        int dup = 0;
        for (size_t j = 0; j < i && !dup; j++)
            dup = strcmp(router->routes[j]->method, r->method) == 0 && path_matches(router->routes[j], path, plen, NULL);
        if (dup)
            continue;
        int n = snprintf(allow + used, allowlen - used, "%s%s%s", used ? ", " : "", r->method,
                         strcmp(r->method, "GET") == 0 ? ", HEAD" : "");
        if (n < 0 || (size_t)n >= allowlen - used)
            break;
        used += (size_t)n;
    }
    return FT_MATCH_NO_METHOD;
}

size_t ft_router_count(const ft_router_t *router)
{
    return router->count;
}

const ft_route_t *ft_router_at(const ft_router_t *router, size_t i)
{
    return router->routes[i];
}
