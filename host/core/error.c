/*
 * Names for the host's status codes, and the helper that fills an ft_error_t.
 */
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>

const char *ft_strerror(int code)
{
    switch (code) {
    case FT_OK:
        return "ok";
    case FT_EINVAL:
        return "invalid value";
    case FT_ENOTFOUND:
        return "not found";
    case FT_ECONFLICT:
        return "conflict";
    case FT_EUNAVAILABLE:
        return "dependency unavailable";
    case FT_EIO:
        return "i/o error";
    case FT_EDB:
        return "database error";
    case FT_ENATS:
        return "nats error";
    case FT_ETIMEOUT:
        return "timed out";
    case FT_ESTATE:
        return "not allowed in the current state";
    case FT_EAUTH:
        return "not authenticated";
    case FT_EEXPIRED:
        return "credential expired";
    }
    return "unknown error";
}

int ft_error_set(ft_error_t *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
    }
    return code;
}
