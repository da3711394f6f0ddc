/*
 * Idempotency keys. A write that carries Idempotency-Key claims (owner, key) inside its own
 * transaction; the response is stored in that same transaction, so a key is either unknown, or
 * bound to one committed change and its answer. Failed requests change nothing and leave no
 * row, so repeating them runs them again.
 */
#ifndef FT_IDEMPOTENCY_STORE_H
#define FT_IDEMPOTENCY_STORE_H

#include <jansson.h>
#include <libpq-fe.h>

#include "core/error.h"

typedef enum {
    FT_IDEM_NEW,      /* claimed: run the request, then ft_idem_store */
    FT_IDEM_REPLAY,   /* the same request ran before: answer what it answered */
    FT_IDEM_MISMATCH, /* the key was used with another request */
} ft_idem_verdict_t;

typedef struct ft_idem_replay {
    int status;
    json_t *body; /* caller json_decref()s; NULL for an empty answer */
    char location[256];
} ft_idem_replay_t;

/* Inside the caller's transaction. Blocks while a concurrent transaction holds the same key,
 * then judges against what it committed. Expired rows count as absent. */
int ft_idem_claim(PGconn *c, const char *owner, const char *key, const char *method, const char *route, const char *request_hash,
                  unsigned ttl_s, ft_idem_verdict_t *verdict, ft_idem_replay_t *replay, ft_error_t *err);
int ft_idem_store(PGconn *c, const char *owner, const char *key, int status, json_t *body, const char *location, ft_error_t *err);
/* Deletes expired rows; *n receives how many. */
int ft_idem_sweep(PGconn *c, long *n, ft_error_t *err);

#endif
