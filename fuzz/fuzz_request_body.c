/*
 * Fuzzes what the middleware does to a request body before a handler runs (stage_decode_body
 * in http/middleware.c): JSON with duplicate keys rejected, then validation against the route's
 * compiled body schema, with the error report the problem+json answer is built from.
 *
 * The route table is built as the daemon builds it (ft_routes_register_all, dev routes
 * included), so every route with a body schema is covered, whatever routes are added later.
 * Input: the first byte picks a route with a schema (modulo their number), the rest is the body.
 */
#include "app.h"
#include "core/error.h"
#include "domain/jsonschema.h"
#include "http/routes.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ft_app_t app;
static const ft_route_t **routes; /* those with a body schema, in registration order */
static size_t nroutes;
static int verbose; /* FT_FUZZ_VERBOSE: list the routes, print each verdict and its errors */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    app.config.dev_routes = 1;
    app.config.roles = FT_ROLE_API; /* the API surface; other roles register only the probes */
    app.router = ft_router_create();
    if (ft_routes_register_all(&app) != 0)
        abort();
    routes = calloc(ft_router_count(app.router), sizeof(*routes));
    for (size_t i = 0; i < ft_router_count(app.router); i++) {
        const ft_route_t *r = ft_router_at(app.router, i);
        if (r->schema != NULL)
            routes[nroutes++] = r;
    }
    if (nroutes == 0)
        abort();
    verbose = getenv("FT_FUZZ_VERBOSE") != NULL;
    if (verbose)
        for (size_t i = 0; i < nroutes; i++)
            fprintf(stderr, "route %zu: %s %s\n", i, routes[i]->method, routes[i]->pattern);
    return 0;
}

/* The errors array as ft_schema_validate documents it, and the detail the middleware writes. */
static void check_errors(json_t *errors)
{
    size_t n = json_array_size(errors);
    if (verbose) {
        char *text = json_dumps(errors, JSON_INDENT(1));
        fprintf(stderr, "errors: %s\n", text != NULL ? text : "(not serializable)");
        free(text);
    }
    if (!json_is_array(errors) || n == 0 || n > FT_SCHEMA_MAX_ERRORS)
        abort();
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e)
    {
        const char *pointer = json_string_value(json_object_get(e, "pointer"));
        const char *detail = json_string_value(json_object_get(e, "detail"));
        if (pointer == NULL || pointer[0] != '#' || detail == NULL || detail[0] == '\0')
            abort();
    }
    const char *first = json_string_value(json_object_get(json_array_get(errors, 0), "pointer"));
    const char *what = json_string_value(json_object_get(json_array_get(errors, 0), "detail"));
    /* as ft_respond_problem builds the answer: a cut-off detail may not be UTF-8 any more */
    char message[1024];
    snprintf(message, sizeof(message), "%s %s%s", first, what, n > 1 ? " (and more: see errors)" : ".");
    json_t *detail = json_string(message);
    json_t *problem = json_pack("{s:O, s:o}", "errors", errors, "detail",
                                detail != NULL ? detail : json_string("(detail not representable as UTF-8)"));
    char *text = json_dumps(problem, JSON_COMPACT);
    if (text == NULL)
        abort();
    free(text);
    json_decref(problem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const ft_route_t *route = routes[data[0] % nroutes];
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)data + 1, size - 1, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL || !json_is_object(doc)) {
        json_decref(doc);
        return 0;
    }
    /* the verdict alone (stops at the first violation) must agree with the full report */
    json_t *copy = json_deep_copy(doc);
    int quick = ft_schema_validate(route->schema, copy, 0, NULL);
    json_decref(copy);

    json_t *errors = NULL;
    int rc = ft_schema_validate(route->schema, doc, 1, &errors);
    if (verbose)
        fprintf(stderr, "%s %s: %s\n", route->method, route->pattern, rc == FT_OK ? "valid" : "invalid");
    if (rc != quick || (rc != FT_OK && rc != FT_EINVAL))
        abort();
    if (rc == FT_OK) {
        if (errors != NULL)
            abort();
        /* the defaults filled in satisfy the schema: the handler may rely on them */
        if (ft_schema_validate(route->schema, doc, 0, NULL) != FT_OK)
            abort();
    } else {
        check_errors(errors);
        json_decref(errors);
    }
    json_decref(doc);
    return 0;
}
