/*
 * OFREP evaluation contexts: the request body's JSON down to the targetingKey, with the
 * protocol's error codes. See ofrep_context.h.
 */
#include "domain/ofrep_context.h"

#include "core/error.h"
#include "store/sql.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static int fail(ft_ofrep_context_t *out, const char *code, const char *detail)
{
    out->error_code = code;
    snprintf(out->detail, sizeof(out->detail), "%s", detail);
    return FT_EINVAL;
}

/* The bodies OpenFeature providers send when the context carries nothing, {"context":{}} and {}
 * (spaces aside), read without building a document: a child app's provider sends one with every
 * evaluation. */
static int is_empty_context(const char *body, size_t len)
{
    static const char *const forms[] = {"{\"context\":{}}", "{}"};
    char packed[16];
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = body[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        if (n == sizeof(packed))
            return 0;
        packed[n++] = c;
    }
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
        if (n == strlen(forms[i]) && memcmp(packed, forms[i], n) == 0)
            return 1;
    return 0;
}

int ft_ofrep_context_parse(const char *body, size_t len, ft_ofrep_context_t *out)
{
    int rc = FT_OK;
    json_t *doc = NULL;
    out->error_code = NULL;
    out->detail[0] = '\0';
    out->targeting_key[0] = '\0';
    if (body == NULL || len == 0 || is_empty_context(body, len))
        goto out;
    json_error_t jerr;
    doc = json_loadb(body, len, 0, &jerr);
    if (doc == NULL) {
        out->error_code = "PARSE_ERROR";
        snprintf(out->detail, sizeof(out->detail), "the request body is not valid JSON: %s at line %d, column %d", jerr.text,
                 jerr.line, jerr.column);
        rc = FT_EINVAL;
        goto out;
    }
    if (!json_is_object(doc)) {
        rc = fail(out, "PARSE_ERROR", "the request body must be a JSON object such as {\"context\":{}}");
        goto out;
    }
    json_t *ctx = json_object_get(doc, "context");
    if (ctx == NULL || json_is_null(ctx))
        goto out;
    if (!json_is_object(ctx)) {
        rc = fail(out, "INVALID_CONTEXT", "context must be a JSON object");
        goto out;
    }
    json_t *tk = json_object_get(ctx, "targetingKey");
    if (tk != NULL && !json_is_string(tk) && !json_is_null(tk)) {
        rc = fail(out, "INVALID_CONTEXT", "context.targetingKey must be a string");
        goto out;
    }
    if (json_is_string(tk))
        snprintf(out->targeting_key, sizeof(out->targeting_key), "%s", json_string_value(tk));
out:
    json_decref(doc);
    return rc;
}

int ft_ofrep_context_instance(ft_ofrep_context_t *ctx)
{
    if (ctx->targeting_key[0] == '\0')
        return fail(ctx, "TARGETING_KEY_MISSING",
                    "context.targetingKey must name the tenant instance (its id) when the credential is not bound to one");
    if (!ft_uuid_valid(ctx->targeting_key))
        return fail(ctx, "INVALID_CONTEXT", "context.targetingKey must be a tenant instance id (a UUID)");
    return FT_OK;
}
