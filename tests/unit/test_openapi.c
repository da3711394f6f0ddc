/*
 * The OpenAPI document built from a route table: what a route declares and what its doc adds,
 * the generic responses its flags imply, and the refusals (no doc, unknown component or tag).
 */
#include "ft_test.h"
#include "http/openapi.h"

#include <jansson.h>
#include <string.h>

static void nop(ft_req_t *r)
{
    (void)r;
}

static const ft_route_doc_t doc_list = {
    .tag = "Customers",
    .summary = "List customers",
    .flags = FT_DOC_PAGE,
    .query = (const ft_route_query_t[]){{"status", "{\"enum\":[\"active\",\"closed\"]}", "which ones"}, {0}},
    .responses = (const ft_route_response_t[]){{200, "Customer", NULL, NULL}, {0}},
};
static const ft_route_doc_t doc_create = {
    .tag = "Customers",
    .summary = "Create a customer",
    .responses = (const ft_route_response_t[]){{201, "Customer", NULL, NULL}, {409, "Problem", NULL, "already there"}, {0}},
};
static const ft_route_doc_t doc_health = {
    .tag = "Operations",
    .summary = "Liveness",
    .responses = (const ft_route_response_t[]){{200, "Health", NULL, NULL}, {0}},
};

/* The document for routes[0..n) as JSON, or NULL with err filled. */
static json_t *build(const ft_route_t *routes, size_t n, ft_error_t *err)
{
    ft_router_t *rt = ft_router_create();
    for (size_t i = 0; i < n; i++)
        ft_router_add(rt, &routes[i]);
    ft_openapi_t *doc = ft_openapi_create(rt, NULL, "1.2.3", err);
    json_t *out = NULL;
    if (doc != NULL) {
        size_t len;
        const char *text = ft_openapi_json(doc, &len);
        out = json_loadb(text, len, 0, NULL);
    }
    ft_openapi_free(doc);
    ft_router_destroy(rt);
    return out;
}

static json_t *at(json_t *doc, const char *path, const char *method)
{
    return json_object_get(json_object_get(json_object_get(doc, "paths"), path), method);
}

TEST(a_route_gives_path_method_permission_security_and_request_schema)
{
    static const ft_route_t routes[] = {
        {.method = "POST",
         .pattern = "/api/v1/customers/{id}/things",
         .permission = "customers:create",
         .action = "customer.create",
         .flags = FT_ROUTE_CHAIN | FT_ROUTE_JSON_BODY | FT_ROUTE_WRITE,
         .body_schema = "{\"type\":\"object\",\"required\":[\"a\"]}",
         .handler = nop,
         .doc = &doc_create},
    };
    ft_error_t err = {0};
    json_t *doc = build(routes, 1, &err);
    CHECK(doc != NULL);
    CHECK_STR("3.1.0", json_string_value(json_object_get(doc, "openapi")));
    CHECK_STR("1.2.3", json_string_value(json_object_get(json_object_get(doc, "info"), "version")));
    json_t *op = at(doc, "/api/v1/customers/{id}/things", "post");
    CHECK(op != NULL);
    CHECK_STR("customers:create", json_string_value(json_object_get(op, "x-permission")));
    CHECK_STR("post_customers_id_things", json_string_value(json_object_get(op, "operationId")));
    CHECK_INT(2, (long long)json_array_size(json_object_get(op, "security"))); /* bearer JWT and API key; no child-app key */
    json_t *body = json_object_get(
        json_object_get(json_object_get(json_object_get(op, "requestBody"), "content"), "application/json"), "schema");
    CHECK_STR("a", json_string_value(json_array_get(json_object_get(body, "required"), 0)));
    json_t *params = json_object_get(op, "parameters");
    CHECK_STR("id", json_string_value(json_object_get(json_array_get(params, 0), "name")));
    CHECK_STR("#/components/parameters/IdempotencyKey", json_string_value(json_object_get(json_array_get(params, 1), "$ref")));
    json_t *resp = json_object_get(op, "responses");
    CHECK_STR("#/components/schemas/Customer",
              json_string_value(json_object_get(
                  json_object_get(json_object_get(json_object_get(json_object_get(resp, "201"), "content"), "application/json"),
                                  "schema"),
                  "$ref")));
    /* the route's own 409 wins over the generic one; the generic ones follow from the flags */
    CHECK_STR("already there", json_string_value(json_object_get(json_object_get(resp, "409"), "description")));
    static const char *const generic[] = {"400", "401", "403", "404", "413", "415", "422", "429", "500", "503"};
    for (size_t i = 0; i < sizeof(generic) / sizeof(generic[0]); i++) {
        json_t *g = json_object_get(json_object_get(json_object_get(resp, generic[i]), "content"), "application/problem+json");
        CHECK(g != NULL);
    }
    json_decref(doc);
}

TEST(a_list_has_limit_cursor_and_the_page_envelope_and_a_public_route_no_security)
{
    static const ft_route_t routes[] = {
        {.method = "GET",
         .pattern = "/api/v1/customers",
         .permission = "customers:read",
         .flags = FT_ROUTE_CHAIN,
         .handler = nop,
         .doc = &doc_list},
        {.method = "GET", .pattern = "/health", .handler = nop, .doc = &doc_health},
    };
    ft_error_t err = {0};
    json_t *doc = build(routes, 2, &err);
    CHECK(doc != NULL);
    json_t *op = at(doc, "/api/v1/customers", "get");
    json_t *params = json_object_get(op, "parameters");
    CHECK_INT(3, (long long)json_array_size(params));
    CHECK_STR("#/components/parameters/Limit", json_string_value(json_object_get(json_array_get(params, 0), "$ref")));
    CHECK_STR("status", json_string_value(json_object_get(json_array_get(params, 2), "name")));
    json_t *schema = json_object_get(
        json_object_get(json_object_get(json_object_get(json_object_get(op, "responses"), "200"), "content"), "application/json"),
        "schema");
    json_t *items = json_object_get(json_object_get(schema, "properties"), "items");
    CHECK_STR("#/components/schemas/Customer", json_string_value(json_object_get(json_object_get(items, "items"), "$ref")));
    CHECK(json_object_get(json_object_get(schema, "properties"), "next_cursor") != NULL);
    json_t *health = at(doc, "/health", "get");
    CHECK_INT(0, (long long)json_array_size(json_object_get(health, "security")));
    CHECK(json_object_get(json_object_get(health, "responses"), "401") == NULL);
    CHECK(json_object_get(json_object_get(health, "responses"), "500") != NULL);
    json_decref(doc);
}

TEST(a_route_without_a_doc_is_refused)
{
    static const ft_route_t routes[] = {
        {.method = "GET", .pattern = "/health", .handler = nop, .doc = &doc_health},
        {.method = "GET",
         .pattern = "/api/v1/undocumented",
         .permission = "customers:read",
         .flags = FT_ROUTE_CHAIN,
         .handler = nop},
    };
    ft_error_t err = {0};
    CHECK(build(routes, 2, &err) == NULL);
    CHECK_CONTAINS(err.message, "GET /api/v1/undocumented has no API documentation");
}

static const ft_route_doc_t unknown_schema = {
    .tag = "Customers", .summary = "x", .responses = (const ft_route_response_t[]){{200, "Nonesuch", NULL, NULL}, {0}}};
static const ft_route_doc_t unknown_tag = {
    .tag = "Nonesuch", .summary = "x", .responses = (const ft_route_response_t[]){{200, "Health", NULL, NULL}, {0}}};
static const ft_route_doc_t bad_json = {
    .tag = "Customers", .summary = "x", .responses = (const ft_route_response_t[]){{200, "{\"type\":", NULL, NULL}, {0}}};

TEST(an_unknown_component_or_tag_or_a_schema_that_is_not_json_is_refused)
{
    static const ft_route_t a[] = {{.method = "GET", .pattern = "/a", .handler = nop, .doc = &unknown_schema}};
    static const ft_route_t b[] = {{.method = "GET", .pattern = "/b", .handler = nop, .doc = &unknown_tag}};
    static const ft_route_t c[] = {{.method = "GET", .pattern = "/c", .handler = nop, .doc = &bad_json}};
    ft_error_t err = {0};
    CHECK(build(a, 1, &err) == NULL);
    CHECK_CONTAINS(err.message, "no component schema named Nonesuch");
    CHECK(build(b, 1, &err) == NULL);
    CHECK_CONTAINS(err.message, "tag Nonesuch");
    CHECK(build(c, 1, &err) == NULL);
    CHECK_CONTAINS(err.message, "not JSON");
}

static const ft_route_doc_t reads_its_body = {.tag = "Customers",
                                              .summary = "Evaluate",
                                              .request = "OfrepEvaluationRequest",
                                              .responses = (const ft_route_response_t[]){{200, "Customer", NULL, NULL}, {0}}};
static const ft_route_doc_t reads_an_unknown_body = {.tag = "Customers",
                                                     .summary = "Evaluate",
                                                     .request = "Nonesuch",
                                                     .responses =
                                                         (const ft_route_response_t[]){{200, "Customer", NULL, NULL}, {0}}};

/* A body the handler reads itself (OFREP's, not validated by the router): documented as optional,
 * and refused at start-up like a response schema when it names no component. */
TEST(a_body_the_handler_reads_itself_is_documented_from_the_doc)
{
    static const ft_route_t a[] = {{.method = "POST", .pattern = "/a", .handler = nop, .doc = &reads_its_body}};
    static const ft_route_t b[] = {{.method = "POST", .pattern = "/b", .handler = nop, .doc = &reads_an_unknown_body}};
    ft_error_t err = {0};
    json_t *doc = build(a, 1, &err);
    CHECK(doc != NULL);
    json_t *body = json_object_get(at(doc, "/a", "post"), "requestBody");
    CHECK(json_is_false(json_object_get(body, "required")));
    CHECK_STR("#/components/schemas/OfrepEvaluationRequest",
              json_string_value(json_object_get(
                  json_object_get(json_object_get(json_object_get(body, "content"), "application/json"), "schema"), "$ref")));
    json_decref(doc);
    CHECK(build(b, 1, &err) == NULL);
    CHECK_CONTAINS(err.message, "no component schema named Nonesuch");
}

RUN_TESTS(TEST_ENTRY(a_route_gives_path_method_permission_security_and_request_schema),
          TEST_ENTRY(a_body_the_handler_reads_itself_is_documented_from_the_doc),
          TEST_ENTRY(a_list_has_limit_cursor_and_the_page_envelope_and_a_public_route_no_security),
          TEST_ENTRY(a_route_without_a_doc_is_refused),
          TEST_ENTRY(an_unknown_component_or_tag_or_a_schema_that_is_not_json_is_refused))
