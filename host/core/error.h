/*
 * Status codes shared by every host layer: 0 is success, failures are negative and stable.
 * Functions that need to explain a failure also fill a caller-owned ft_error_t.
 */
#ifndef FT_ERROR_H
#define FT_ERROR_H

#include <stddef.h>

enum {
    FT_OK = 0,
    FT_EINVAL = -1,       /* a value is malformed or out of range */
    FT_ENOTFOUND = -2,    /* the thing asked for does not exist */
    FT_ECONFLICT = -3,    /* the change collides with existing state */
    FT_EUNAVAILABLE = -4, /* a dependency (database, NATS) cannot be reached */
    FT_EIO = -5,          /* reading or writing a file or socket failed */
    FT_EDB = -6,          /* the database refused a statement */
    FT_ENATS = -7,        /* NATS or JetStream refused a request */
    FT_ETIMEOUT = -8,     /* a bounded wait ran out */
    FT_ESTATE = -9,       /* the operation is not allowed in the current state */
    FT_EAUTH = -10,       /* a credential is missing, malformed, expired or does not verify */
    FT_EEXPIRED = -11,    /* an authentic access token whose lifetime ended (refresh it) */
};

/* A failure's explanation; the owner keeps it on its stack. */
typedef struct ft_error {
    int code;
    char message[512];
} ft_error_t;

const char *ft_strerror(int code);
/* Fills err (if not NULL) and returns code, so callers can `return ft_error_set(...)`. */
int ft_error_set(ft_error_t *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
