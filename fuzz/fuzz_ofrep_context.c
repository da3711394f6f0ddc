/*
 * Fuzzes the OFREP evaluation request body parser (domain/ofrep_context.c): the whole input is
 * the body. Checks that every failure carries one of the protocol's error codes and a detail,
 * and that an accepted instance id is a UUID.
 */
#include "core/error.h"
#include "domain/ofrep_context.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int known_code(const char *code)
{
    return code != NULL &&
           (strcmp(code, "PARSE_ERROR") == 0 || strcmp(code, "INVALID_CONTEXT") == 0 || strcmp(code, "TARGETING_KEY_MISSING") == 0);
}

static void check_failure(const ft_ofrep_context_t *ctx)
{
    if (!known_code(ctx->error_code) || ctx->detail[0] == '\0' || strnlen(ctx->detail, sizeof(ctx->detail)) == sizeof(ctx->detail))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ft_ofrep_context_t ctx;
    /* a copy of exactly `size` bytes, so that ASan sees any read past the body */
    char *body = size > 0 ? malloc(size) : NULL;
    if (size > 0 && body == NULL)
        abort();
    if (size > 0)
        memcpy(body, data, size);
    int rc = ft_ofrep_context_parse(body, size, &ctx);
    free(body);
    if (rc != FT_OK) {
        if (rc != FT_EINVAL || strcmp(ctx.error_code, "TARGETING_KEY_MISSING") == 0)
            abort();
        check_failure(&ctx);
        return 0;
    }
    if (ctx.error_code != NULL || strnlen(ctx.targeting_key, sizeof(ctx.targeting_key)) == sizeof(ctx.targeting_key))
        abort();
    rc = ft_ofrep_context_instance(&ctx);
    if (rc == FT_OK) {
        if (strlen(ctx.targeting_key) != 36)
            abort();
    } else {
        if (rc != FT_EINVAL || strcmp(ctx.error_code, "PARSE_ERROR") == 0)
            abort();
        check_failure(&ctx);
    }
    return 0;
}
