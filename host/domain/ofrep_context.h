/*
 * The OFREP evaluation request body, {"context": {"targetingKey": "...", ...}}: parsed and
 * checked without HTTP, so that the handlers and the fuzzer run the same code. Failures carry
 * the protocol's errorCode and errorDetails.
 */
#ifndef FT_OFREP_CONTEXT_H
#define FT_OFREP_CONTEXT_H

#include <stddef.h>

/* A longer targetingKey is kept cut to this size minus one; no instance id is that long. */
#define FT_OFREP_TARGETING_KEY_MAX 256

typedef struct ft_ofrep_context {
    const char *error_code; /* on failure: "PARSE_ERROR", "INVALID_CONTEXT" or "TARGETING_KEY_MISSING" (static) */
    char detail[300];       /* on failure: the errorDetails text */
    char targeting_key[FT_OFREP_TARGETING_KEY_MAX]; /* context.targetingKey; "" when absent, null or empty */
} ft_ofrep_context_t;

/*
 * Parses an evaluation request body of len bytes (body may be NULL when len is 0). An empty
 * body, {}, and a null or absent context are all an empty context. Returns FT_OK with
 * out->targeting_key filled, or FT_EINVAL with out->error_code and out->detail: PARSE_ERROR when
 * the body is not a JSON object, INVALID_CONTEXT when context is not an object or targetingKey
 * is neither a string nor null.
 */
int ft_ofrep_context_parse(const char *body, size_t len, ft_ofrep_context_t *out);

/*
 * The tenant instance a parsed context names, for a credential not bound to one: FT_OK when
 * ctx->targeting_key is an instance id (a UUID), else FT_EINVAL with ctx->error_code and
 * ctx->detail set (TARGETING_KEY_MISSING when it is empty, INVALID_CONTEXT otherwise).
 */
int ft_ofrep_context_instance(ft_ofrep_context_t *ctx);

#endif
