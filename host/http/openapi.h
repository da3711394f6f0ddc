/*
 * The API as a contract: the OpenAPI 3.1 document built at start from the route table (paths,
 * methods, permissions, request schemas, each route's doc) and the shared component schemas,
 * served at /api/v1/openapi.json, and the reference page at /api/v1/docs.
 */
#ifndef FT_OPENAPI_H
#define FT_OPENAPI_H

#include "core/error.h"
#include "http/router.h"

#include <stddef.h>

typedef struct ft_openapi ft_openapi_t;

/*
 * Builds the document for every route of `router` (their body schemas must be compiled). Fails
 * (err filled, NULL returned) on a route without a doc, a schema that is not JSON or names an
 * unknown component. `docs_dir` holds the reference page's renderer; a missing one is not an
 * error (the page then answers 503). The caller frees the result with ft_openapi_free.
 */
ft_openapi_t *ft_openapi_create(const ft_router_t *router, const char *docs_dir, const char *version, ft_error_t *err);
void ft_openapi_free(ft_openapi_t *doc);

/* The serialised document (owned by doc) and its length. */
const char *ft_openapi_json(const ft_openapi_t *doc, size_t *len);

/* Registers GET /api/v1/openapi.json, /api/v1/docs and the renderer's script; their handlers
 * read app->openapi. */
void ft_routes_openapi(ft_router_t *router);

#endif
