/*
 * Who is calling. Access tokens (JWT, signed with the keys in ft_signing_keys, verified in
 * memory on the loop thread) and API keys (looked up once, then cached in memory until they
 * change or a minute passes, and read again in the background before that minute ends while a
 * client uses them). A LISTEN connection keeps every host's keyring and key cache in step with
 * the database: a rotation or a revocation anywhere reaches all hosts.
 */
#ifndef FT_IDENTITY_H
#define FT_IDENTITY_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdint.h>

#include "auth/jwt.h"
#include "core/error.h"
#include "store/credential_store.h"

typedef struct ft_identity_config {
    const char *database_url;
    ft_jwt_alg_t alg;
    const char *issuer, *audience;
    unsigned access_ttl_s;
    unsigned leeway_s;
} ft_identity_config_t;

typedef struct ft_identity ft_identity_t;

/* What a verified credential says. */
typedef struct ft_credential {
    char subject[48];     /* "user:<uuid>" or "key:<uuid>" */
    unsigned roles;       /* ft_role_t bits */
    char customer_id[37]; /* "" when not bound to a customer */
    char instance_id[37]; /* "" when not bound to an instance */
} ft_credential_t;

/* Loads the signing keys of cfg->alg, generating the first one if there is none (serialised
 * across hosts), and starts listening for changes. Blocking: at start only. NULL + err. */
ft_identity_t *ft_identity_start(const ft_identity_config_t *cfg, PGconn *conn, ft_error_t *err);
void ft_identity_stop(ft_identity_t *id);

/* Reloads the keyring from the database (after a rotation here; NOTIFY does it elsewhere). */
int ft_identity_reload_keys(ft_identity_t *id, PGconn *conn, ft_error_t *err);
/* Generates a new signing key and stores it; the caller commits and then reloads. */
int ft_identity_rotate(ft_identity_t *id, PGconn *conn, char kid_out[40], ft_error_t *err);
ft_jwt_alg_t ft_identity_alg(const ft_identity_t *id);

/* The public keys as a JWKS document (caller json_decref). */
json_t *ft_identity_jwks(ft_identity_t *id);

/* Signs an access token for a user; *token (caller free) and its lifetime in seconds. */
int ft_identity_issue(ft_identity_t *id, const char *user_id, const char *email, const char *customer_id, json_t *roles,
                      char **token, unsigned *expires_in, ft_error_t *err);

/* Verifies an access token (JWT). FT_EAUTH with err->message a reason fit for the client, or
 * FT_EEXPIRED for an authentic token past its exp (the client should refresh). */
int ft_identity_verify_token(ft_identity_t *id, const char *token, size_t len, ft_credential_t *cred, ft_error_t *err);

/* Voids the user's access tokens issued before not_before (unix seconds), on this host: the
 * NOTIFY from ft_user_revocations does it on every host; a change made here calls it after its
 * commit so that this host does not wait for the NOTIFY. */
void ft_identity_user_revoked(ft_identity_t *id, const char *user_id, int64_t not_before);

/* API keys: "ftk_<prefix>_<secret>". */
#define FT_API_KEY_PREFIX_LEN 12
#define FT_API_KEY_SECRET_LEN 43
/* Splits the len bytes of a presented key into its prefix and secret (both NUL-terminated);
 * -1 when they do not have the shape of one. */
int ft_api_key_split(const char *key, size_t len, char prefix[FT_API_KEY_PREFIX_LEN + 1], char secret[FT_API_KEY_SECRET_LEN + 1]);
/* Makes a new key: *full (caller free) is shown once; prefix and hash are what is stored. */
int ft_api_key_make(char **full, char prefix[FT_API_KEY_PREFIX_LEN + 1], unsigned char hash[32], ft_error_t *err);

typedef enum { FT_KEY_VALID, FT_KEY_INVALID, FT_KEY_UNKNOWN_HERE } ft_key_check_t;
/* Checks a key against the cache: FT_KEY_UNKNOWN_HERE when the database must be asked
 * (ft_identity_key_epoch, ft_api_key_lookup, then ft_identity_key_learn). On FT_KEY_INVALID
 * err says why. *refresh is 1 when this caller is the one to read the key's row again in the
 * background, the same way, while the cached row keeps answering (see auth/key_cache.h). */
ft_key_check_t ft_identity_check_key(ft_identity_t *id, const char *prefix, const char *secret, uint64_t now_ns, ft_credential_t *cred,
                                     int *refresh, ft_error_t *err);
/* Checks a key against a row just looked up (row NULL: no key has this prefix). */
ft_key_check_t ft_identity_check_row(const ft_api_key_row_t *row, const char *secret, ft_credential_t *cred, ft_error_t *err);
/* Taken before a lookup; a forget since then keeps the looked-up row out of the cache. */
uint64_t ft_identity_key_epoch(ft_identity_t *id);
/* Caches a key's row read at now_ns (row NULL: no key has this prefix) unless a key was
 * forgotten since epoch; 1 when cached. */
int ft_identity_key_learn(ft_identity_t *id, const char *prefix, const ft_api_key_row_t *row, uint64_t now_ns, uint64_t epoch);
/* Drops a key from this host's cache (after revoking it here). */
void ft_identity_key_forget(ft_identity_t *id, const char *prefix);

/* Keys due for a refresh are read in batches, one batch out at a time per host: the caller told
 * to refresh pushes the prefix (dropped when the queue is full: the cache hands the refresh out
 * again after FT_KEY_CACHE_REFRESH_RETRY_NS), then tries to take a batch; 0 when none is queued
 * or a batch is out. A caller that took some reads them (ft_api_key_refresh), learns each row
 * with the epoch taken before the read, and calls ft_identity_key_refresh_end. */
void ft_identity_key_refresh_push(ft_identity_t *id, const char *prefix);
size_t ft_identity_key_refresh_take(ft_identity_t *id, char (*out)[FT_API_KEY_PREFIX_LEN + 1], size_t max);
void ft_identity_key_refresh_end(ft_identity_t *id);

/* Parses a JSON array of role names into bits; 0 when it names an unknown role. */
unsigned ft_roles_from_json(json_t *roles);

#endif
