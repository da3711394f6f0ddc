/*
 * The OpenAPI 3.1 document, built once at start from the route table: nothing about a route is
 * written twice. The route gives method, path, permission, flags and body schema; its doc gives
 * summary, tag, query parameters and its own responses; the generic responses every route of a
 * kind can give (authentication, body decoding, Idempotency-Key, 5xx) are added from its flags.
 * Shared schemas come from docs/openapi/components.json, compiled into the binary.
 */
#include "http/openapi.h"

#include "app.h"
#include "auth/crypto.h"
#include "auth/rbac.h"
#include "core/mem.h"
#include "http/request.h"
#include "http/routes.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* docs/openapi/components.json, NUL-terminated (generated at build time). */
extern const char ft_openapi_components[];

#define RENDERER_FILE "redoc.standalone.js"

struct ft_openapi {
    char *json;
    size_t len;
    char etag[70];
    char *renderer; /* the reference page's script, NULL if not installed */
    size_t renderer_len;
};

/* A schema from a doc: a component's name becomes a $ref, inline JSON is parsed. NULL on error. */
static json_t *schema_of(const char *s, json_t *schemas, const ft_route_t *r, ft_error_t *err)
{
    if (s[0] == '{') {
        json_error_t je;
        json_t *v = json_loads(s, 0, &je);
        if (v == NULL)
            ft_error_set(err, FT_EINVAL, "route %s %s: schema is not JSON: %s", r->method, r->pattern, je.text);
        return v;
    }
    if (json_object_get(schemas, s) == NULL) {
        ft_error_set(err, FT_EINVAL, "route %s %s: no component schema named %s", r->method, r->pattern, s);
        return NULL;
    }
    char ref[160];
    snprintf(ref, sizeof(ref), "#/components/schemas/%s", s);
    return json_pack("{s:s}", "$ref", ref);
}

static json_t *page_of(json_t *item)
{
    return json_pack("{s:s, s:[s,s], s:b, s:{s:{s:s, s:o}, s:{s:[s,s], s:s}}}", "type", "object", "required", "items",
                     "next_cursor", "additionalProperties", 0, "properties", "items", "type", "array", "items", item, "next_cursor",
                     "type", "string", "null", "description", "pass as `cursor` for the next page; null on the last");
}

static int add_response(json_t *responses, const ft_route_response_t *d, json_t *schemas, int page, const ft_route_t *r,
                        ft_error_t *err)
{
    char key[8];
    snprintf(key, sizeof(key), "%d", d->status);
    /* the first description of a status wins, the route's own before the generic one; a status
     * answered in two media types (OFREP's errors, the auth chain's problems) lists both */
    json_t *resp = json_object_get(responses, key);
    if (resp == NULL) {
        resp = json_pack("{s:s}", "description", d->description != NULL ? d->description : ft_http_reason(d->status));
        json_object_set_new(responses, key, resp);
    }
    if (d->schema == NULL)
        return 0;
    const char *ct = d->content_type != NULL             ? d->content_type
                     : strcmp(d->schema, "Problem") == 0 ? "application/problem+json"
                                                         : "application/json";
    json_t *content = json_object_get(resp, "content");
    if (content == NULL) {
        content = json_object();
        json_object_set_new(resp, "content", content);
    }
    if (json_object_get(content, ct) != NULL)
        return 0;
    json_t *schema = schema_of(d->schema, schemas, r, err);
    if (schema == NULL)
        return -1;
    if (page && d->status == 200)
        schema = page_of(schema);
    json_object_set_new(content, ct, json_pack("{s:o}", "schema", schema));
    return 0;
}

static void add_problem(json_t *responses, int status, const char *description, json_t *schemas, const ft_route_t *r)
{
    ft_route_response_t d = {status, "Problem", NULL, description};
    add_response(responses, &d, schemas, 0, r, NULL);
}

/* The responses every route of this kind can give, whatever its doc says. */
static void add_generic(json_t *responses, const ft_route_t *r, int has_params, int has_path_params, json_t *schemas)
{
    int body = (r->flags & (FT_ROUTE_JSON_BODY | FT_ROUTE_OPTIONAL_BODY)) != 0;
    if (body || has_params || (r->flags & FT_ROUTE_WRITE))
        add_problem(responses, 400, "The body, a parameter or the Idempotency-Key is malformed or invalid (see `errors`).", schemas,
                    r);
    if ((r->flags & FT_ROUTE_CHAIN) && !(r->flags & FT_ROUTE_PUBLIC)) {
        add_problem(responses, 401, "No credential, or one that does not verify or has expired.", schemas, r);
        add_problem(responses, 403, "The credential lacks the permission, or the resource is outside its scope.", schemas, r);
    }
    if (has_path_params || (body && (r->flags & FT_ROUTE_WRITE)))
        add_problem(responses, 404, "No such resource, or none the body names (or none the credential may see).", schemas, r);
    /* a route that addresses one instance finds a deleted one gone (ft_instance_gone) */
    if (strstr(r->pattern, "/instances/{id}") != NULL || strstr(r->pattern, "/{tenantInstanceId}") != NULL)
        add_problem(responses, 410, "The instance was deleted.", schemas, r);
    if (body) {
        add_problem(responses, 413, "The body is larger than FT_MAX_BODY_BYTES.", schemas, r);
        add_problem(responses, 415, "The body is not application/json.", schemas, r);
    }
    if ((r->flags & FT_ROUTE_CHAIN) && (r->flags & FT_ROUTE_WRITE)) {
        add_problem(responses, 409, "The change collides with the resource's state (see `type`).", schemas, r);
        add_problem(responses, 422, "A domain rule refuses the change, or the Idempotency-Key was used for another request.",
                    schemas, r);
    }
    if (r->flags & FT_ROUTE_CHAIN)
        add_problem(responses, 429, "A rate limit was reached; see Retry-After.", schemas, r);
    add_problem(responses, 500, "An internal error; quote the request id.", schemas, r);
    add_problem(responses, 503, "A dependency (database, NATS) is unavailable; retry after Retry-After.", schemas, r);
}

/* "GET /api/v1/customers/{id}/instances" -> "get_customers_id_instances" */
static void operation_id(const ft_route_t *r, char *out, size_t len)
{
    size_t n = 0;
    for (const char *m = r->method; *m != '\0' && n + 1 < len; m++)
        out[n++] = (char)(*m - 'A' + 'a');
    const char *p = r->pattern;
    if (strncmp(p, "/api/v1/", 8) == 0)
        p += 7;
    for (; *p != '\0' && n + 1 < len; p++) {
        char c = *p;
        if (c == '{' || c == '}')
            continue;
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && n > 0 && out[n - 1] == '_')
            continue;
        out[n++] = alnum ? c : '_';
    }
    while (n > 0 && out[n - 1] == '_')
        n--;
    out[n] = '\0';
}

static json_t *parameters_of(const ft_route_t *r, json_t *schemas, ft_error_t *err)
{
    json_t *params = json_array();
    for (size_t s = 0; s < r->nsegs; s++) {
        if (r->segs[s][0] != '{')
            continue;
        json_t *name = json_stringn(r->segs[s] + 1, r->seglens[s] - 2);
        json_array_append_new(
            params, json_pack("{s:o, s:s, s:b, s:{s:s}}", "name", name, "in", "path", "required", 1, "schema", "type", "string"));
    }
    if (r->doc->flags & FT_DOC_PAGE) {
        json_array_append_new(params, json_pack("{s:s}", "$ref", "#/components/parameters/Limit"));
        json_array_append_new(params, json_pack("{s:s}", "$ref", "#/components/parameters/Cursor"));
    }
    for (const ft_route_query_t *q = r->doc->query; q != NULL && q->name != NULL; q++) {
        json_t *schema = schema_of(q->schema, schemas, r, err);
        if (schema == NULL) {
            json_decref(params);
            return NULL;
        }
        json_t *p = json_pack("{s:s, s:s, s:o}", "name", q->name, "in", "query", "schema", schema);
        if (q->description != NULL)
            json_object_set_new(p, "description", json_string(q->description));
        json_array_append_new(params, p);
    }
    if ((r->flags & FT_ROUTE_CHAIN) && (r->flags & FT_ROUTE_WRITE))
        json_array_append_new(params, json_pack("{s:s}", "$ref", "#/components/parameters/IdempotencyKey"));
    return params;
}

static json_t *security_of(const ft_route_t *r)
{
    if (!(r->flags & FT_ROUTE_CHAIN) || (r->flags & FT_ROUTE_PUBLIC))
        return json_array();
    json_t *sec = json_pack("[{s:[]}, {s:[]}]", "bearerJwt", "apiKey");
    if (ft_rbac_allows(ft_role_parse("child-app"), r->permission))
        json_array_append_new(sec, json_pack("{s:[]}", "childAppKey"));
    return sec;
}

static json_t *operation_of(const ft_route_t *r, json_t *schemas, ft_error_t *err)
{
    const ft_route_doc_t *d = r->doc;
    json_t *op = NULL, *params = NULL, *responses = json_object();
    char opid[160];
    operation_id(r, opid, sizeof(opid));
    params = parameters_of(r, schemas, err);
    if (params == NULL)
        goto out;
    for (const ft_route_response_t *resp = d->responses; resp != NULL && resp->status != 0; resp++)
        if (add_response(responses, resp, schemas, (d->flags & FT_DOC_PAGE) != 0, r, err) != 0)
            goto out;
    add_generic(responses, r, json_array_size(params) > 0, strchr(r->pattern, '{') != NULL, schemas);
    op = json_pack("{s:[s], s:s, s:s, s:O, s:o}", "tags", d->tag, "summary", d->summary, "operationId", opid, "responses",
                   responses, "security", security_of(r));
    if (json_array_size(params) > 0)
        json_object_set(op, "parameters", params);
    if (r->permission != NULL)
        json_object_set_new(op, "x-permission", json_string(r->permission));
    if (r->flags & (FT_ROUTE_JSON_BODY | FT_ROUTE_OPTIONAL_BODY)) {
        json_t *schema = r->body_schema != NULL ? json_loads(r->body_schema, 0, NULL) : json_pack("{s:s}", "type", "object");
        json_object_set_new(op, "requestBody",
                            json_pack("{s:b, s:{s:{s:o}}}", "required", (r->flags & FT_ROUTE_JSON_BODY) != 0, "content",
                                      "application/json", "schema", schema != NULL ? schema : json_object()));
    } else if (d->request != NULL) {
        json_t *schema = schema_of(d->request, schemas, r, err);
        if (schema == NULL) {
            json_decref(op);
            op = NULL;
            goto out;
        }
        json_object_set_new(op, "requestBody", json_pack("{s:b, s:{s:{s:o}}}", "required", 0, "content", "application/json",
                                                         "schema", schema));
    }
out:
    json_decref(params);
    json_decref(responses);
    return op;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap != 0 ? cap * 2 : 1 << 20;
            buf = ft_mem_realloc(buf, cap);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* A route's tag must be one of the document's (components.json "tags"), each with its description. */
static int tag_known(json_t *tags, const char *name)
{
    for (size_t i = 0; i < json_array_size(tags); i++)
        if (strcmp(json_string_value(json_object_get(json_array_get(tags, i), "name")), name) == 0)
            return 1;
    return 0;
}

ft_openapi_t *ft_openapi_create(const ft_router_t *router, const char *docs_dir, const char *version, ft_error_t *err)
{
    ft_openapi_t *doc = NULL;
    json_error_t je;
    json_t *root = json_loads(ft_openapi_components, 0, &je);
    if (root == NULL) {
        ft_error_set(err, FT_EINVAL, "docs/openapi/components.json: %s at line %d", je.text, je.line);
        return NULL;
    }
    json_object_set_new(json_object_get(root, "info"), "version", json_string(version));
    json_t *schemas = json_object_get(json_object_get(root, "components"), "schemas");
    json_t *paths = json_object();
    json_object_set_new(root, "paths", paths);
    for (size_t i = 0; i < ft_router_count(router); i++) {
        const ft_route_t *r = ft_router_at(router, i);
        if (r->doc == NULL) {
            ft_error_set(err, FT_EINVAL, "route %s %s has no API documentation (ft_route_t.doc)", r->method, r->pattern);
            goto out;
        }
        if (!tag_known(json_object_get(root, "tags"), r->doc->tag)) {
            ft_error_set(err, FT_EINVAL, "route %s %s: tag %s is not in docs/openapi/components.json", r->method, r->pattern,
                         r->doc->tag);
            goto out;
        }
        if (r->doc->flags & FT_DOC_UNLISTED)
            continue;
        json_t *op = operation_of(r, schemas, err);
        if (op == NULL)
            goto out;
        json_t *item = json_object_get(paths, r->pattern);
        if (item == NULL) {
            item = json_object();
            json_object_set_new(paths, r->pattern, item);
        }
        char method[16];
        snprintf(method, sizeof(method), "%s", r->method);
        for (char *c = method; *c != '\0'; c++)
            *c = (char)(*c - 'A' + 'a');
        json_object_set_new(item, method, op);
    }
    doc = ft_mem_calloc(1, sizeof(*doc));
    doc->json = json_dumps(root, JSON_COMPACT);
    doc->len = strlen(doc->json);
    char hash[65];
    ft_sha256_hex(doc->json, doc->len, hash);
    snprintf(doc->etag, sizeof(doc->etag), "\"%.32s\"", hash);
    if (docs_dir != NULL && docs_dir[0] != '\0') {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", docs_dir, RENDERER_FILE);
        doc->renderer = read_file(path, &doc->renderer_len);
    }
out:
    json_decref(root);
    return doc;
}

void ft_openapi_free(ft_openapi_t *doc)
{
    if (doc == NULL)
        return;
    free(doc->json);
    free(doc->renderer);
    free(doc);
}

const char *ft_openapi_json(const ft_openapi_t *doc, size_t *len)
{
    *len = doc->len;
    return doc->json;
}

static void release_nothing(void *arg)
{
    (void)arg; /* the document lives as long as the process serves */
}

static int not_modified(ft_req_t *r, const char *etag)
{
    const char *inm = ft_req_header(r, "if-none-match");
    ft_req_add_header(r, "etag", etag);
    ft_req_add_header(r, "cache-control", "no-cache");
    if (inm == NULL || strstr(inm, etag) == NULL)
        return 0;
    ft_respond_empty(r, 304);
    return 1;
}

static void get_document(ft_req_t *r)
{
    const ft_openapi_t *doc = r->app->openapi;
    if (!not_modified(r, doc->etag))
        ft_respond_borrowed(r, 200, "application/json", doc->json, doc->len, release_nothing, NULL);
}

static void get_reference(ft_req_t *r)
{
    static const char page[] = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                               "<link rel=\"icon\" href=\"data:,\">"
                               "<title>Farutech Orchestrator API</title></head><body>"
                               "<redoc spec-url=\"/api/v1/openapi.json\"></redoc>"
                               "<script src=\"/api/v1/docs/" RENDERER_FILE "\"></script></body></html>\n";
    if (r->app->openapi->renderer == NULL) {
        ft_respond_problem(
            r, 503, "docs-not-installed", "Reference renderer not installed", NULL,
            "The API reference's renderer is not in FT_DOCS_DIR (%s); the document itself is at /api/v1/openapi.json.",
            r->app->config.docs_dir);
        return;
    }
    /* Redoc styles its page with inline <style> elements and runs its search in a blob: worker;
     * nothing may come from elsewhere (its bundle names a CDN logo and web fonts: blocked) */
    ft_req_add_header(r, "content-security-policy",
                      "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                      "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; form-action 'none'; base-uri 'none'; "
                      "frame-ancestors 'none'");
    ft_req_add_header(r, "x-content-type-options", "nosniff");
    ft_req_add_header(r, "referrer-policy", "no-referrer");
    ft_respond_raw(r, 200, "text/html; charset=utf-8", page, sizeof(page) - 1);
}

static void get_renderer(ft_req_t *r)
{
    const ft_openapi_t *doc = r->app->openapi;
    if (doc->renderer == NULL) {
        ft_respond_problem(r, 404, "not-found", "Not Found", NULL, "The reference renderer is not installed.");
        return;
    }
    ft_req_add_header(r, "cache-control", "public, max-age=86400");
    ft_req_add_header(r, "x-content-type-options", "nosniff");
    ft_respond_borrowed(r, 200, "text/javascript; charset=utf-8", doc->renderer, doc->renderer_len, release_nothing, NULL);
}

static const ft_route_doc_t doc_document = {
    .tag = "Reference",
    .summary = "This API's OpenAPI 3.1 document (public)",
    .responses =
        (const ft_route_response_t[]){
            {200,
             "{\"type\":\"object\",\"description\":\"open: an OpenAPI 3.1 document, its structure the "
             "specification's\",\"required\":[\"openapi\",\"info\",\"paths\",\"components\"],"
             "\"properties\":{\"openapi\":{\"const\":\"3.1.0\"},\"info\":{\"type\":\"object\",\"description\":"
             "\"the Info Object: open\"},\"paths\":{\"type\":\"object\",\"description\":\"the Paths "
             "Object: open\"},\"components\":{\"type\":\"object\",\"description\":\"the Components "
             "Object: open\"}}}",
             NULL, "The OpenAPI 3.1 document"},
            {304, NULL, NULL, "The document is the one named by If-None-Match."},
            {0}},
};
static const ft_route_doc_t doc_reference = {
    .tag = "Reference",
    .summary = "The human-readable API reference (public)",
    .responses = (const ft_route_response_t[]){{200, "{\"type\":\"string\"}", "text/html", "An HTML page"},
                                               {503, "Problem", NULL, "The renderer is not installed"},
                                               {0}},
};
static const ft_route_doc_t doc_renderer = {
    .tag = "Reference",
    .summary = "The reference page's renderer script (Redoc)",
    .responses = (const ft_route_response_t[]){{200, "{\"type\":\"string\"}", "text/javascript", "JavaScript"},
                                               {404, "Problem", NULL, "The renderer is not installed"},
                                               {0}},
};

void ft_routes_openapi(ft_router_t *router)
{
    static const ft_route_t routes[] = {
        {.method = "GET", .pattern = "/api/v1/openapi.json", .handler = get_document, .doc = &doc_document},
        {.method = "GET", .pattern = "/api/v1/docs", .handler = get_reference, .doc = &doc_reference},
        {.method = "GET", .pattern = "/api/v1/docs/redoc.standalone.js", .handler = get_renderer, .doc = &doc_renderer},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        ft_router_add(router, &routes[i]);
}
