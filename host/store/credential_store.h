/*
 * API keys and JWT signing keys. SQL only here. An API key's secret is never stored: only its
 * SHA-256, found through the key's public prefix.
 */
#ifndef FT_CREDENTIAL_STORE_H
#define FT_CREDENTIAL_STORE_H

#include <jansson.h>
#include <libpq-fe.h>

#include "core/error.h"
#include "core/problem.h"
#include "store/scope.h"

/* in: {name, customer_id?, instance_id?, roles[], expires_at?} (validated by the handler); the
 * prefix and the secret's hash are made by the caller. A scoped call keeps to its customer: an
 * instance of another customer is "not found". *out: the key's representation (no secret). */
int ft_api_key_create(PGconn *c, const ft_call_t *call, json_t *in, const char *prefix, const unsigned char secret_hash[32],
                      json_t **out, ft_problem_t *problem, ft_error_t *err);
int ft_api_key_get(PGconn *c, const ft_call_t *call, const char *id, json_t **out, ft_problem_t *problem, ft_error_t *err);
/* {"items": [...], "next_cursor": ...}; revoked keys only when include_revoked. */
int ft_api_key_list(PGconn *c, const ft_call_t *call, const char *customer_id, int include_revoked, const char *cursor, int limit,
                    json_t **out, ft_problem_t *problem, ft_error_t *err);
/* Revokes (idempotent: revoking a revoked key answers it again). *prefix_out (may be NULL)
 * receives the key's prefix, for the caller's cache. */
int ft_api_key_revoke(PGconn *c, const ft_call_t *call, const char *id, json_t **out, char prefix_out[40], ft_problem_t *problem,
                      ft_error_t *err);

/* What authentication needs of a key. */
typedef struct ft_api_key_row {
    char id[37];
    unsigned char secret_hash[32];
    char customer_id[37]; /* "" when unscoped */
    char instance_id[37]; /* "" when not bound to an instance */
    char roles[256];      /* JSON array text */
    long long expires_at; /* unix seconds, 0 = never */
    int revoked;
} ft_api_key_row_t;

/* FT_ENOTFOUND when no key has this prefix. */
int ft_api_key_lookup(PGconn *c, const char *prefix, ft_api_key_row_t *row, ft_error_t *err);
/* The rows of n key prefixes at once (each [a-z0-9], at most FT_API_KEY_PREFIX_MAX long):
 * rows[i] and found[i] = 1 for prefixes[i] when a key has it, found[i] = 0 when none has; and
 * last_used_at stamped on the keys found (at most once a minute per key) in the same statement. */
#define FT_API_KEY_PREFIX_MAX 12
int ft_api_key_refresh(PGconn *c, const char *const *prefixes, size_t n, ft_api_key_row_t *rows, int *found, ft_error_t *err);
/* Stamps last_used_at (at most once a minute per key, by the caller's choice). */
int ft_api_key_touch(PGconn *c, const char *id, ft_error_t *err);

/* Signing keys of `alg` that still verify, newest first: [{kid, pem, created_at}] (*out, caller
 * json_decref). The first signs. */
int ft_signing_keys_load(PGconn *c, const char *alg, json_t **out, ft_error_t *err);
int ft_signing_key_insert(PGconn *c, const char *kid, const char *alg, const char *private_pem, ft_error_t *err);
/* Takes the transaction-scoped lock that serialises key generation across hosts. */
int ft_signing_keys_lock(PGconn *c, ft_error_t *err);
/* [{kid, alg, created_at, retired_at, signing}] without private material. */
int ft_signing_keys_list(PGconn *c, json_t **out, ft_error_t *err);
/* Retires a key: tokens it signed stop verifying. The signing key cannot be retired (409). */
int ft_signing_key_retire(PGconn *c, const char *kid, const char *alg, json_t **out, ft_problem_t *problem, ft_error_t *err);

#endif
