/*
 * Credentials: the JWT keyring and the API key cache, and the listener that keeps both fresh.
 *
 * The keyring is swapped by one atomic pointer. Readers do not take references: a replaced
 * keyring is kept for RETIRE_GRACE_NS before it is freed, far longer than the microseconds a
 * verification holds it.
 */
#include "auth/identity.h"

#include "auth/crypto.h"
#include "auth/key_cache.h"
#include "auth/rbac.h"
#include "core/mem.h"
#include "core/uuid.h"
#include "infra/db_pool.h"
#include "infra/log.h"
#include "infra/pg_listen.h"
#include "store/sql.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETIRE_GRACE_NS (30ull * 1000000000ull)
#define REFRESH_QUEUE_MAX 4096

/* "Access tokens of this user issued before not_before (unix seconds) are void": users whose
 * access changed within an access token's lifetime (ft_user_revocations, told by NOTIFY). */
#define REVOKED_BUCKETS 256
typedef struct revoked {
    struct revoked *next;
    char user_id[37];
    int64_t not_before;
} revoked_t;

typedef struct retired {
    struct retired *next;
    ft_jwt_keyring_t *ring;
    uint64_t at_ns;
} retired_t;

struct ft_identity {
    ft_identity_config_t cfg;
    char *url, *issuer, *audience;
    _Atomic(ft_jwt_keyring_t *) ring;
    pthread_mutex_t swap_mutex;
    retired_t *retired;
    ft_key_cache_t *keys;
    pthread_mutex_t refresh_mutex; /* the queue of keys due for a refresh */
    char (*refresh_queue)[FT_API_KEY_PREFIX_LEN + 1];
    size_t refresh_queued;
    int refresh_out; /* a batch is being read */
    pthread_mutex_t revoked_mutex;
    revoked_t *revoked[REVOKED_BUCKETS];
    ft_listener_t *listener;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

unsigned ft_roles_from_json(json_t *roles)
{
    unsigned bits = 0;
    size_t i;
    json_t *v;
    if (!json_is_array(roles) || json_array_size(roles) == 0)
        return 0;
    json_array_foreach(roles, i, v)
    {
        unsigned r = json_is_string(v) ? ft_role_parse(json_string_value(v)) : 0;
        if (r == 0)
            return 0;
        bits |= r;
    }
    return bits;
}

/* ---- keyring */

static void swap_ring(ft_identity_t *id, ft_jwt_keyring_t *ring)
{
    pthread_mutex_lock(&id->swap_mutex);
    ft_jwt_keyring_t *old = atomic_exchange(&id->ring, ring);
    uint64_t now = now_ns();
    /* free what retired long enough ago; keep the one just replaced */
    retired_t **pp = &id->retired;
    while (*pp != NULL) {
        if (now - (*pp)->at_ns > RETIRE_GRACE_NS) {
            retired_t *dead = *pp;
            *pp = dead->next;
            ft_jwt_keyring_free(dead->ring);
            free(dead);
        } else {
            pp = &(*pp)->next;
        }
    }
    if (old != NULL) {
        retired_t *r = ft_mem_alloc(sizeof(*r));
        r->ring = old;
        r->at_ns = now;
        r->next = id->retired;
        id->retired = r;
    }
    pthread_mutex_unlock(&id->swap_mutex);
}

static int generate_key(ft_identity_t *id, PGconn *conn, char kid_out[40], ft_error_t *err)
{
    unsigned char raw[12];
    char kid[24], *pem = NULL;
    if (ft_random_bytes(raw, sizeof(raw)) != FT_OK)
        return ft_error_set(err, FT_EIO, "no randomness for a key id");
    ft_base64url_encode(raw, sizeof(raw), kid, sizeof(kid));
    int rc = ft_jwt_key_generate(id->cfg.alg, &pem, err);
    if (rc == FT_OK)
        rc = ft_signing_key_insert(conn, kid, ft_jwt_alg_name(id->cfg.alg), pem, err);
    if (pem != NULL) {
        memset(pem, 0, strlen(pem));
        free(pem);
    }
    if (rc == FT_OK && kid_out != NULL)
        snprintf(kid_out, 40, "%s", kid);
    return rc;
}

/* Builds a keyring from the stored keys; the newest signs. */
static int load_ring(ft_identity_t *id, PGconn *conn, ft_jwt_keyring_t **out, ft_error_t *err)
{
    json_t *rows = NULL;
    int rc = ft_signing_keys_load(conn, ft_jwt_alg_name(id->cfg.alg), &rows, err);
    if (rc != FT_OK)
        return rc;
    ft_jwt_keyring_t *ring = ft_jwt_keyring_new(id->cfg.alg);
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const char *kid = json_string_value(json_object_get(row, "kid"));
        ft_jwt_key_t *k = ft_jwt_key_load(id->cfg.alg, kid, json_string_value(json_object_get(row, "pem")), err);
        if (k == NULL) {
            /* one unusable row must not lock everyone out: skip it, loudly */
            ft_log(FT_LOG_ERROR, NULL, "signing key %s cannot be loaded: %s", kid, err->message);
            continue;
        }
        if (ft_jwt_keyring_add(ring, k, i == 0, err) != FT_OK)
            ft_log(FT_LOG_ERROR, NULL, "signing key %s: %s", kid, err->message);
    }
    json_decref(rows);
    *out = ring;
    return FT_OK;
}

int ft_identity_reload_keys(ft_identity_t *id, PGconn *conn, ft_error_t *err)
{
    ft_jwt_keyring_t *ring = NULL;
    int rc = load_ring(id, conn, &ring, err);
    if (rc == FT_OK)
        swap_ring(id, ring);
    return rc;
}

int ft_identity_rotate(ft_identity_t *id, PGconn *conn, char kid_out[40], ft_error_t *err)
{
    int rc = ft_signing_keys_lock(conn, err);
    return rc == FT_OK ? generate_key(id, conn, kid_out, err) : rc;
}

ft_jwt_alg_t ft_identity_alg(const ft_identity_t *id)
{
    return id->cfg.alg;
}

/* Makes sure a signing key of the configured algorithm exists. */
static int ensure_key(ft_identity_t *id, PGconn *conn, ft_error_t *err)
{
    json_t *rows = NULL;
    int rc = ft_sql_begin(conn, err);
    if (rc == FT_OK)
        rc = ft_signing_keys_lock(conn, err);
    if (rc == FT_OK)
        rc = ft_signing_keys_load(conn, ft_jwt_alg_name(id->cfg.alg), &rows, err);
    if (rc == FT_OK && json_array_size(rows) == 0) {
        char kid[40];
        rc = generate_key(id, conn, kid, err);
        if (rc == FT_OK)
            ft_log(FT_LOG_INFO, NULL, "generated the first %s signing key, kid %s", ft_jwt_alg_name(id->cfg.alg), kid);
    }
    json_decref(rows);
    if (rc == FT_OK)
        rc = ft_sql_commit(conn, err);
    else
        ft_sql_rollback(conn);
    return rc;
}

/* ---- API key cache */

/* What a key's row grants, worked out once when the row is learned. */
static void grants_from_row(const ft_api_key_row_t *row, ft_credential_t *cred)
{
    memset(cred, 0, sizeof(*cred));
    snprintf(cred->subject, sizeof(cred->subject), "key:%s", row->id);
    json_t *roles = json_loads(row->roles, 0, NULL);
    cred->roles = ft_roles_from_json(roles);
    json_decref(roles);
    snprintf(cred->customer_id, sizeof(cred->customer_id), "%s", row->customer_id);
    snprintf(cred->instance_id, sizeof(cred->instance_id), "%s", row->instance_id);
}

ft_key_check_t ft_identity_check_key(ft_identity_t *id, const char *prefix, const char *secret, uint64_t now, ft_credential_t *cred,
                                     int *refresh, ft_error_t *err)
{
    unsigned char digest[32];
    ft_sha256(secret, strlen(secret), digest);
    return ft_key_cache_check(id->keys, prefix, digest, now, cred, refresh, err);
}

ft_key_check_t ft_identity_check_row(const ft_api_key_row_t *row, const char *secret, ft_credential_t *cred, ft_error_t *err)
{
    unsigned char digest[32];
    ft_credential_t grants;
    memset(&grants, 0, sizeof(grants));
    if (row != NULL)
        grants_from_row(row, &grants);
    ft_sha256(secret, strlen(secret), digest);
    return ft_key_judge(row, &grants, digest, cred, err);
}

uint64_t ft_identity_key_epoch(ft_identity_t *id)
{
    return ft_key_cache_epoch(id->keys);
}

int ft_identity_key_learn(ft_identity_t *id, const char *prefix, const ft_api_key_row_t *row, uint64_t now, uint64_t epoch)
{
    ft_credential_t grants;
    memset(&grants, 0, sizeof(grants));
    if (row != NULL)
        grants_from_row(row, &grants);
    return ft_key_cache_learn(id->keys, prefix, row, &grants, now, epoch);
}

void ft_identity_key_forget(ft_identity_t *id, const char *prefix)
{
    ft_key_cache_forget(id->keys, prefix);
}

void ft_identity_key_refresh_push(ft_identity_t *id, const char *prefix)
{
    pthread_mutex_lock(&id->refresh_mutex);
    if (id->refresh_queued < REFRESH_QUEUE_MAX)
        memcpy(id->refresh_queue[id->refresh_queued++], prefix, FT_API_KEY_PREFIX_LEN + 1);
    pthread_mutex_unlock(&id->refresh_mutex);
}

size_t ft_identity_key_refresh_take(ft_identity_t *id, char (*out)[FT_API_KEY_PREFIX_LEN + 1], size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&id->refresh_mutex);
    if (!id->refresh_out) {
        n = id->refresh_queued < max ? id->refresh_queued : max;
        id->refresh_queued -= n;
        memcpy(out, id->refresh_queue[id->refresh_queued], n * sizeof(*out));
        id->refresh_out = n > 0;
    }
    pthread_mutex_unlock(&id->refresh_mutex);
    return n;
}

void ft_identity_key_refresh_end(ft_identity_t *id)
{
    pthread_mutex_lock(&id->refresh_mutex);
    id->refresh_out = 0;
    pthread_mutex_unlock(&id->refresh_mutex);
}

int ft_api_key_split(const char *key, size_t len, char prefix[FT_API_KEY_PREFIX_LEN + 1], char secret[FT_API_KEY_SECRET_LEN + 1])
{
    if (len != 4 + FT_API_KEY_PREFIX_LEN + 1 + FT_API_KEY_SECRET_LEN || memcmp(key, "ftk_", 4) != 0 ||
        key[4 + FT_API_KEY_PREFIX_LEN] != '_')
        return -1;
    for (size_t i = 4; i < len; i++) {
        char ch = key[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                 (i > 4 + FT_API_KEY_PREFIX_LEN && ((ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '_'));
        if (!ok && i != 4 + FT_API_KEY_PREFIX_LEN)
            return -1;
    }
    memcpy(prefix, key + 4, FT_API_KEY_PREFIX_LEN);
    prefix[FT_API_KEY_PREFIX_LEN] = '\0';
    /* copied, not pointed at: key need not end where len does (a header's trailing spaces) */
    memcpy(secret, key + 4 + FT_API_KEY_PREFIX_LEN + 1, FT_API_KEY_SECRET_LEN);
    secret[FT_API_KEY_SECRET_LEN] = '\0';
    return 0;
}

int ft_api_key_make(char **full, char prefix[FT_API_KEY_PREFIX_LEN + 1], unsigned char hash[32], ft_error_t *err)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char raw[FT_API_KEY_PREFIX_LEN], secret_raw[32];
    char secret[FT_API_KEY_SECRET_LEN + 1];
    if (ft_random_bytes(raw, sizeof(raw)) != FT_OK || ft_random_bytes(secret_raw, sizeof(secret_raw)) != FT_OK)
        return ft_error_set(err, FT_EIO, "no randomness for an API key");
    for (size_t i = 0; i < FT_API_KEY_PREFIX_LEN; i++)
        prefix[i] = alphabet[raw[i] % 36]; /* 36^12 prefixes: a public identifier, not a secret */
    prefix[FT_API_KEY_PREFIX_LEN] = '\0';
    ft_base64url_encode(secret_raw, sizeof(secret_raw), secret, sizeof(secret));
    ft_sha256(secret, strlen(secret), hash);
    *full = ft_mem_asprintf("ftk_%s_%s", prefix, secret);
    memset(secret, 0, sizeof(secret));
    memset(secret_raw, 0, sizeof(secret_raw));
    return FT_OK;
}

/* ---- users whose access changed */

/* user_id is a valid UUID (checked before it gets here): its last byte is random in every version */
static unsigned revoked_bucket(const char *user_id)
{
    uint8_t b[16];
    ft_uuid_parse(user_id, b);
    return b[15] % REVOKED_BUCKETS;
}

/* A revocation stops mattering once every token it voids has expired anyway. */
static int revocation_stale(const ft_identity_t *id, int64_t not_before, int64_t now)
{
    return not_before + (int64_t)id->cfg.access_ttl_s + (int64_t)id->cfg.leeway_s < now;
}

void ft_identity_user_revoked(ft_identity_t *id, const char *user_id, int64_t not_before)
{
    if (!ft_uuid_valid(user_id))
        return;
    int64_t now = (int64_t)time(NULL);
    pthread_mutex_lock(&id->revoked_mutex);
    revoked_t **pp = &id->revoked[revoked_bucket(user_id)], *found = NULL;
    while (*pp != NULL) {
        revoked_t *e = *pp;
        if (strcmp(e->user_id, user_id) == 0) {
            found = e;
            pp = &e->next;
        } else if (revocation_stale(id, e->not_before, now)) {
            *pp = e->next; /* pruned on the way */
            free(e);
        } else {
            pp = &e->next;
        }
    }
    if (found == NULL && !revocation_stale(id, not_before, now)) {
        found = ft_mem_calloc(1, sizeof(*found));
        snprintf(found->user_id, sizeof(found->user_id), "%s", user_id);
        found->next = id->revoked[revoked_bucket(user_id)];
        id->revoked[revoked_bucket(user_id)] = found;
    }
    if (found != NULL && not_before > found->not_before)
        found->not_before = not_before;
    pthread_mutex_unlock(&id->revoked_mutex);
}

/* 1 when an access token of user_id issued at iat is void. */
static int token_revoked(ft_identity_t *id, const char *user_id, int64_t iat)
{
    int revoked = 0;
    pthread_mutex_lock(&id->revoked_mutex);
    for (revoked_t *e = id->revoked[revoked_bucket(user_id)]; e != NULL; e = e->next) {
        if (strcmp(e->user_id, user_id) == 0) {
            /* whole seconds: a token issued in the same second as the change stays valid, or a
             * sign-in just after a password change would get a token that never works */
            revoked = iat < e->not_before;
            break;
        }
    }
    pthread_mutex_unlock(&id->revoked_mutex);
    return revoked;
}

static void revoked_clear(ft_identity_t *id)
{
    for (size_t b = 0; b < REVOKED_BUCKETS; b++) {
        while (id->revoked[b] != NULL) {
            revoked_t *e = id->revoked[b];
            id->revoked[b] = e->next;
            free(e);
        }
    }
}

/* Every revocation that still matters, from the database (at start and after a reconnect). */
static int load_revocations(ft_identity_t *id, PGconn *conn, ft_error_t *err)
{
    char window[24];
    snprintf(window, sizeof(window), "%u", id->cfg.access_ttl_s + id->cfg.leeway_s + 1);
    const char *params[] = {window};
    PGresult *res = NULL;
    int rc = ft_sql(conn, "loading token revocations",
                    "SELECT user_id::text, floor(extract(epoch FROM not_before))::bigint FROM ft_user_revocations "
                    "WHERE not_before > now() - make_interval(secs => $1::int)",
                    1, params, &res, err);
    if (rc != FT_OK)
        return rc;
    for (int i = 0; i < PQntuples(res); i++)
        ft_identity_user_revoked(id, PQgetvalue(res, i, 0), strtoll(PQgetvalue(res, i, 1), NULL, 10));
    PQclear(res);
    return FT_OK;
}

/* ---- tokens */

json_t *ft_identity_jwks(ft_identity_t *id)
{
    return ft_jwt_keyring_jwks(atomic_load(&id->ring));
}

int ft_identity_issue(ft_identity_t *id, const char *user_id, const char *email, const char *customer_id, json_t *roles,
                      char **token, unsigned *expires_in, ft_error_t *err)
{
    unsigned char raw[16];
    char jti[32];
    if (ft_random_bytes(raw, sizeof(raw)) != FT_OK)
        return ft_error_set(err, FT_EIO, "no randomness for a token id");
    ft_base64url_encode(raw, sizeof(raw), jti, sizeof(jti));
    json_int_t now = (json_int_t)time(NULL);
    json_t *claims = json_pack("{s:s, s:s, s:s, s:s, s:O, s:I, s:I, s:s}", "iss", id->issuer, "aud", id->audience, "sub", user_id,
                               "email", email, "roles", roles, "iat", now, "exp", now + (json_int_t)id->cfg.access_ttl_s, "jti", jti);
    if (customer_id != NULL && *customer_id != '\0')
        json_object_set_new(claims, "customer_id", json_string(customer_id));
    int rc = ft_jwt_sign(atomic_load(&id->ring), claims, token, err);
    json_decref(claims);
    *expires_in = id->cfg.access_ttl_s;
    return rc;
}

int ft_identity_verify_token(ft_identity_t *id, const char *token, size_t len, ft_credential_t *cred, ft_error_t *err)
{
    ft_jwt_verify_opts_t o = {.issuer = id->issuer,
                              .audience = id->audience,
                              .now = (int64_t)time(NULL),
                              .leeway_s = id->cfg.leeway_s,
                              .max_len = 8192};
    json_t *claims = NULL;
    int rc = ft_jwt_verify(atomic_load(&id->ring), token, len, &o, &claims, err);
    if (rc != FT_OK)
        return rc;
    const char *sub = json_string_value(json_object_get(claims, "sub"));
    json_t *cid = json_object_get(claims, "customer_id");
    unsigned roles = ft_roles_from_json(json_object_get(claims, "roles"));
    rc = FT_EAUTH;
    if (sub == NULL || !ft_uuid_valid(sub))
        ft_error_set(err, FT_EAUTH, "the token's subject is not a user id");
    else if (roles == 0)
        ft_error_set(err, FT_EAUTH, "the token names no known role");
    else if (cid != NULL && (!json_is_string(cid) || !ft_uuid_valid(json_string_value(cid))))
        ft_error_set(err, FT_EAUTH, "the token's customer_id is not a customer id");
    else if ((roles & FT_ROLES_CUSTOMER) ? cid == NULL : ((roles & FT_ROLES_STAFF) == 0 || cid != NULL))
        ft_error_set(err, FT_EAUTH, "the token's roles do not fit its scope");
    else
        rc = FT_OK;
    if (rc == FT_OK && token_revoked(id, sub, (int64_t)json_integer_value(json_object_get(claims, "iat")))) {
        ft_error_set(err, FT_EAUTH, "the access token was revoked: the user's access changed after it was issued; sign in again");
        rc = FT_EAUTH;
    }
    if (rc == FT_OK) {
        snprintf(cred->subject, sizeof(cred->subject), "user:%s", sub);
        cred->roles = roles;
        snprintf(cred->customer_id, sizeof(cred->customer_id), "%s", cid != NULL ? json_string_value(cid) : "");
        cred->instance_id[0] = '\0';
    }
    json_decref(claims);
    return rc;
}

/* ---- lifecycle */

static void on_notify(void *arg, const char *channel, const char *payload)
{
    ft_identity_t *id = arg;
    if (channel == NULL || strcmp(channel, "ft_signing_keys") == 0) {
        ft_error_t err = {0};
        PGconn *c = ft_db_connect(id->url, "farutech-keys", &err);
        if (c == NULL || ft_identity_reload_keys(id, c, &err) != FT_OK)
            ft_log(FT_LOG_WARN, NULL, "signing keys: reload failed: %s", err.message);
        else if (channel == NULL && load_revocations(id, c, &err) != FT_OK)
            ft_log(FT_LOG_WARN, NULL, "token revocations: reload failed: %s", err.message);
        PQfinish(c);
    }
    if (channel == NULL) {
        ft_key_cache_forget_all(id->keys); /* changes may have been missed while disconnected */
    } else if (strcmp(channel, "ft_credentials") == 0 && payload != NULL && strncmp(payload, "key:", 4) == 0) {
        ft_identity_key_forget(id, payload + 4);
    } else if (strcmp(channel, "ft_credentials") == 0 && payload != NULL && strncmp(payload, "user:", 5) == 0) {
        /* "user:<uuid>:<unix seconds>" */
        char user[37];
        const char *colon = strchr(payload + 5, ':');
        if (colon != NULL && colon - (payload + 5) == 36) {
            memcpy(user, payload + 5, 36);
            user[36] = '\0';
            ft_identity_user_revoked(id, user, strtoll(colon + 1, NULL, 10));
        }
    }
}

ft_identity_t *ft_identity_start(const ft_identity_config_t *cfg, PGconn *conn, ft_error_t *err)
{
    ft_identity_t *id = ft_mem_calloc(1, sizeof(*id));
    id->cfg = *cfg;
    id->url = ft_mem_strdup(cfg->database_url);
    id->issuer = ft_mem_strdup(cfg->issuer);
    id->audience = ft_mem_strdup(cfg->audience);
    pthread_mutex_init(&id->swap_mutex, NULL);
    id->keys = ft_key_cache_new();
    pthread_mutex_init(&id->refresh_mutex, NULL);
    id->refresh_queue = ft_mem_calloc(REFRESH_QUEUE_MAX, sizeof(*id->refresh_queue));
    pthread_mutex_init(&id->revoked_mutex, NULL);
    if (ensure_key(id, conn, err) != FT_OK || ft_identity_reload_keys(id, conn, err) != FT_OK ||
        load_revocations(id, conn, err) != FT_OK) {
        ft_identity_stop(id);
        return NULL;
    }
    static const char *const channels[] = {"ft_signing_keys", "ft_credentials", NULL};
    id->listener = ft_listener_start(cfg->database_url, channels, on_notify, id);
    return id;
}

void ft_identity_stop(ft_identity_t *id)
{
    if (id == NULL)
        return;
    ft_listener_stop(id->listener);
    ft_jwt_keyring_free(atomic_load(&id->ring));
    while (id->retired != NULL) {
        retired_t *r = id->retired;
        id->retired = r->next;
        ft_jwt_keyring_free(r->ring);
        free(r);
    }
    ft_key_cache_free(id->keys);
    pthread_mutex_destroy(&id->refresh_mutex);
    free(id->refresh_queue);
    revoked_clear(id);
    pthread_mutex_destroy(&id->revoked_mutex);
    pthread_mutex_destroy(&id->swap_mutex);
    free(id->url);
    free(id->issuer);
    free(id->audience);
    free(id);
}
