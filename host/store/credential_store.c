/*
 * API keys and JWT signing keys.
 */
#include "store/credential_store.h"

#include "core/mem.h"

#include "store/customer_store.h"
#include "store/outbox_store.h"
#include "store/sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_JSON                                                                                                               \
    "json_build_object('id', k.id, 'name', k.name, 'prefix', 'ftk_' || k.prefix, 'customer_id', k.customer_id,"              \
    " 'instance_id', k.instance_id, 'roles', to_json(k.roles), 'created_by', k.created_by, 'created_at', k.created_at,"     \
    " 'expires_at', k.expires_at, 'revoked_at', k.revoked_at, 'last_used_at', k.last_used_at)::text"

static int not_found(ft_problem_t *p, const char *id)
{
    return ft_problem(p, FT_ENOTFOUND, 404, "api-key-not-found", "API key not found", json_pack("{s:s}", "api_key_id", id),
                      "No API key %s.", id);
}

static int one_json(PGresult *res, json_t **out, ft_error_t *err)
{
    return ft_sql_take_json(res, "API key", out, err);
}

static int finish(PGconn *c, const ft_call_t *call, const char *what, const char *id, json_t *entity, int rc, ft_error_t *err)
{
    return ft_outbox_finish(c, call, "api_key", what, id, entity, rc, err);
}


int ft_api_key_create(PGconn *c, const ft_call_t *call, json_t *in, const char *prefix, const unsigned char secret_hash[32],
                      json_t **out, ft_problem_t *problem, ft_error_t *err)
{
    char h[FT_SQL_BYTEA_PARAM(32)];
    ft_sql_bytea_param(secret_hash, 32, h);
    const char *customer = call->customer_id != NULL ? call->customer_id : ft_json_str(in, "customer_id");
    const char *instance = ft_json_str(in, "instance_id");
    /* roles: the handler checked they are known [a-z-] names */
    json_t *roles = json_object_get(in, "roles");
    char *roles_json = json_dumps(roles, JSON_COMPACT);
    PGresult *res = NULL;
    *out = NULL;
    int rc = ft_sql_begin(c, err);
    if (rc == FT_OK && instance != NULL) {
        /* An instance-bound key inherits the instance's customer; a scoped caller sees only its
         * own. A deleted instance takes no new key (it could never be used, and it would hold
         * the customer's deletion back). The customer is share-locked, as for every row that
         * refers to it, so a deletion under way finishes first and the key is refused. */
        const char *ip[] = {instance, call->customer_id, customer};
        rc = ft_sql_row(
            c, "checking the key's instance",
            "SELECT i.customer_id FROM ft_instances i JOIN ft_customers cu ON cu.id = i.customer_id WHERE i.id = $1"
            " AND i.status <> 'deleted' AND ($2::uuid IS NULL OR i.customer_id = $2) AND ($3::uuid IS NULL OR i.customer_id = $3)"
            " FOR SHARE OF cu",
            3, ip, &res, err);
        if (rc == FT_ENOTFOUND)
            rc = ft_problem(problem, FT_EINVAL, 422, "instance-not-found", "Instance not found",
                            json_pack("{s:[{s:s, s:s}]}", "errors", "pointer", "#/instance_id", "detail", "no such instance"),
                            "No instance %s to bind the key to.", instance);
        PQclear(res); /* a key without customer_id takes the instance's, in the INSERT below */
        res = NULL;
    } else if (rc == FT_OK && customer != NULL) {
        const char *cp[] = {customer};
        rc = ft_sql_row(c, "checking the key's customer",
                        "SELECT 1 FROM ft_customers WHERE id = $1 AND status <> 'closed' FOR SHARE", 1, cp, &res, err);
        PQclear(res);
        res = NULL;
        if (rc == FT_ENOTFOUND)
            rc = ft_problem(problem, FT_EINVAL, 422, "customer-not-found", "Customer not found",
                            json_pack("{s:[{s:s, s:s}]}", "errors", "pointer", "#/customer_id", "detail", "no such open customer"),
                            "No open customer %s to scope the key to.", customer);
    }
    if (rc == FT_OK) {
        const char *params[] = {prefix, h, ft_json_str(in, "name"), customer, instance, roles_json, call->actor, ft_json_str(in, "expires_at")};
        rc = ft_sql_row(c, "inserting an API key",
                        "WITH k AS (INSERT INTO ft_api_keys (prefix, secret_hash, name, customer_id, instance_id, roles, created_by,"
                        " expires_at) SELECT $1, $2::bytea, $3,"
                        " coalesce($4::uuid, (SELECT customer_id FROM ft_instances WHERE id = $5::uuid)), $5::uuid,"
                        " ARRAY(SELECT json_array_elements_text($6::json)), $7, $8::timestamptz RETURNING *)"
                        " SELECT " KEY_JSON " FROM k",
                        8, params, &res, err);
        if (rc == FT_EDB && strcmp(ft_sql_constraint(err), "ft_api_keys_scope") == 0)
            rc = ft_problem(problem, FT_EINVAL, 422, "invalid-key-scope", "Roles do not fit the key's scope",
                            json_pack("{s:[{s:s, s:s}]}", "errors", "pointer", "#/roles", "detail", "do not fit the scope"),
                            "Staff roles need an unscoped key, customer roles a customer key, child-app an instance key.");
    }
    free(roles_json);
    if (rc == FT_OK)
        rc = one_json(res, out, err);
    return finish(c, call, "created", rc == FT_OK ? ft_json_str(*out, "id") : NULL, *out, rc, err);
}

int ft_api_key_get(PGconn *c, const ft_call_t *call, const char *id, json_t **out, ft_problem_t *problem, ft_error_t *err)
{
    const char *params[] = {id, call->customer_id};
    PGresult *res = NULL;
    int rc = ft_sql_row(c, "reading an API key",
                        "SELECT " KEY_JSON " FROM ft_api_keys k WHERE k.id = $1 AND ($2::uuid IS NULL OR k.customer_id = $2)", 2, params,
                        &res, err);
    if (rc == FT_ENOTFOUND)
        return not_found(problem, id);
    return rc == FT_OK ? one_json(res, out, err) : rc;
}

int ft_api_key_list(PGconn *c, const ft_call_t *call, const char *customer_id, int include_revoked, const char *cursor, int limit,
                    json_t **out, ft_problem_t *problem, ft_error_t *err)
{
    char micros[24] = "", cid[40] = "", lim[16];
    if (cursor != NULL && ft_cursor_parse(cursor, micros, sizeof(micros), cid, sizeof(cid), problem) != FT_OK)
        return FT_EINVAL;
    snprintf(lim, sizeof(lim), "%d", limit + 1);
    const char *params[] = {call->customer_id, customer_id, include_revoked ? "t" : "f", micros[0] ? micros : NULL,
                            cid[0] ? cid : NULL, lim};
    PGresult *res = NULL;
    int rc = ft_sql(c, "listing API keys",
                    "SELECT " KEY_JSON ", (extract(epoch FROM k.created_at) * 1000000)::bigint || '.' || k.id FROM ft_api_keys k"
                    " WHERE ($1::uuid IS NULL OR k.customer_id = $1) AND ($2::uuid IS NULL OR k.customer_id = $2)"
                    " AND ($3::boolean OR k.revoked_at IS NULL)"
                    " AND ($4::bigint IS NULL OR (k.created_at, k.id) > (to_timestamp($4::bigint / 1000000.0), $5::uuid))"
                    " ORDER BY k.created_at, k.id LIMIT $6::int",
                    6, params, &res, err);
    if (rc != FT_OK)
        return rc;
    *out = ft_sql_page(res, limit);
    return FT_OK;
}

int ft_api_key_revoke(PGconn *c, const ft_call_t *call, const char *id, json_t **out, char prefix_out[40], ft_problem_t *problem,
                      ft_error_t *err)
{
    const char *params[] = {id, call->customer_id};
    PGresult *res = NULL;
    *out = NULL;
    int rc = ft_sql_begin(c, err);
    if (rc == FT_OK)
        rc = ft_sql_row(c, "revoking an API key",
                        "WITH k AS (UPDATE ft_api_keys SET revoked_at = coalesce(revoked_at, now())"
                        " WHERE id = $1 AND ($2::uuid IS NULL OR customer_id = $2) RETURNING *) SELECT " KEY_JSON ", k.prefix FROM k",
                        2, params, &res, err);
    if (rc == FT_ENOTFOUND)
        rc = not_found(problem, id);
    if (rc == FT_OK && prefix_out != NULL)
        snprintf(prefix_out, 40, "%s", PQgetvalue(res, 0, 1));
    if (rc == FT_OK)
        rc = one_json(res, out, err);
    return finish(c, call, "revoked", id, *out, rc, err);
}

static int hex_nibble(char ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

#define KEY_ROW_COLUMNS                                                                                                        \
    "k.id, encode(k.secret_hash, 'hex'), coalesce(k.customer_id::text, ''), coalesce(k.instance_id::text, ''),"               \
    " to_json(k.roles)::text, coalesce(extract(epoch FROM k.expires_at)::bigint, 0), k.revoked_at IS NOT NULL"

/* The KEY_ROW_COLUMNS of result row i, from column `at` on. */
static void key_row_take(const PGresult *res, int i, int at, ft_api_key_row_t *row)
{
    memset(row, 0, sizeof(*row));
    snprintf(row->id, sizeof(row->id), "%s", PQgetvalue(res, i, at));
    const char *hex = PQgetvalue(res, i, at + 1);
    for (int b = 0; b < 32 && hex[2 * b] && hex[2 * b + 1]; b++)
        row->secret_hash[b] = (unsigned char)(hex_nibble(hex[2 * b]) << 4 | hex_nibble(hex[2 * b + 1]));
    snprintf(row->customer_id, sizeof(row->customer_id), "%s", PQgetvalue(res, i, at + 2));
    snprintf(row->instance_id, sizeof(row->instance_id), "%s", PQgetvalue(res, i, at + 3));
    snprintf(row->roles, sizeof(row->roles), "%s", PQgetvalue(res, i, at + 4));
    row->expires_at = atoll(PQgetvalue(res, i, at + 5));
    row->revoked = PQgetvalue(res, i, at + 6)[0] == 't';
}

int ft_api_key_lookup(PGconn *c, const char *prefix, ft_api_key_row_t *row, ft_error_t *err)
{
    const char *params[] = {prefix};
    PGresult *res = NULL;
    int rc = ft_sql_row(c, "looking up an API key", "SELECT " KEY_ROW_COLUMNS " FROM ft_api_keys k WHERE k.prefix = $1", 1, params,
                        &res, err);
    if (rc != FT_OK)
        return rc;
    key_row_take(res, 0, 0, row);
    PQclear(res);
    return FT_OK;
}

int ft_api_key_refresh(PGconn *c, const char *const *prefixes, size_t n, ft_api_key_row_t *rows, int *found, ft_error_t *err)
{
    PGresult *res = NULL;
    /* prefixes are [a-z0-9] (checked by the caller's split): an array literal needs no quoting */
    char *list = ft_mem_alloc(n * (FT_API_KEY_PREFIX_MAX + 1) + 3), *o = list;
    *o++ = '{';
    for (size_t i = 0; i < n; i++) {
        size_t len = strnlen(prefixes[i], FT_API_KEY_PREFIX_MAX);
        if (i > 0)
            *o++ = ',';
        memcpy(o, prefixes[i], len);
        o += len;
    }
    *o++ = '}';
    *o = '\0';
    /* the keys' rows, and last_used_at stamped (at most once a minute per key) in the same statement */
    const char *params[] = {list};
    int rc = ft_sql(c, "refreshing API keys",
                    "WITH k AS (SELECT * FROM ft_api_keys WHERE prefix = ANY($1::text[])),"
                    " t AS (UPDATE ft_api_keys u SET last_used_at = now() FROM k WHERE u.id = k.id"
                    " AND (u.last_used_at IS NULL OR u.last_used_at < now() - interval '1 minute'))"
                    " SELECT k.prefix, " KEY_ROW_COLUMNS " FROM k",
                    1, params, &res, err);
    free(list);
    if (rc != FT_OK)
        return rc;
    memset(found, 0, n * sizeof(*found));
    for (int r = 0; r < PQntuples(res); r++) {
        const char *prefix = PQgetvalue(res, r, 0);
        for (size_t i = 0; i < n; i++) { /* a prefix asked for twice gets its row twice */
            if (strcmp(prefixes[i], prefix) == 0) {
                key_row_take(res, r, 1, &rows[i]);
                found[i] = 1;
            }
        }
    }
    PQclear(res);
    return FT_OK;
}

int ft_api_key_touch(PGconn *c, const char *id, ft_error_t *err)
{
    const char *params[] = {id};
    return ft_sql(c, "stamping an API key's use",
                  "UPDATE ft_api_keys SET last_used_at = now() WHERE id = $1"
                  " AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
                  1, params, NULL, err);
}

int ft_signing_keys_load(PGconn *c, const char *alg, json_t **out, ft_error_t *err)
{
    const char *params[] = {alg};
    return ft_sql_json(c, "loading signing keys",
                       "SELECT coalesce(json_agg(json_build_object('kid', kid, 'pem', private_pem, 'created_at', created_at)"
                       " ORDER BY created_at DESC, kid DESC), '[]')::text FROM ft_signing_keys WHERE alg = $1 AND retired_at IS NULL",
                       1, params, out, err);
}

int ft_signing_keys_lock(PGconn *c, ft_error_t *err)
{
    return ft_sql(c, "locking signing keys", "SELECT pg_advisory_xact_lock(hashtext('ft_signing_keys'))", 0, NULL, NULL, err);
}

int ft_signing_key_insert(PGconn *c, const char *kid, const char *alg, const char *private_pem, ft_error_t *err)
{
    const char *params[] = {kid, alg, private_pem};
    return ft_sql(c, "storing a signing key", "INSERT INTO ft_signing_keys (kid, alg, private_pem) VALUES ($1, $2, $3)", 3, params,
                  NULL, err);
}

#define SIGNING_KEYS_JSON                                                                                                     \
    "SELECT coalesce(json_agg(json_build_object('kid', k.kid, 'alg', k.alg, 'created_at', k.created_at, 'retired_at',"         \
    " k.retired_at, 'signing', k.kid = s.kid) ORDER BY k.created_at DESC, k.kid DESC), '[]')::text FROM ft_signing_keys k"        \
    " LEFT JOIN LATERAL (SELECT kid FROM ft_signing_keys WHERE alg = k.alg AND retired_at IS NULL"                             \
    " ORDER BY created_at DESC, kid DESC LIMIT 1) s ON true"

int ft_signing_keys_list(PGconn *c, json_t **out, ft_error_t *err)
{
    return ft_sql_json(c, "listing signing keys", SIGNING_KEYS_JSON, 0, NULL, out, err);
}

int ft_signing_key_retire(PGconn *c, const char *kid, const char *alg, json_t **out, ft_problem_t *problem, ft_error_t *err)
{
    const char *params[] = {kid, alg};
    PGresult *res = NULL;
    int rc = ft_sql_row(c, "finding a signing key",
                        "SELECT k.retired_at IS NOT NULL, k.kid = (SELECT kid FROM ft_signing_keys WHERE alg = $2 AND retired_at IS NULL"
                        " ORDER BY created_at DESC, kid DESC LIMIT 1) FROM ft_signing_keys k WHERE k.kid = $1",
                        2, params, &res, err);
    if (rc == FT_ENOTFOUND)
        return ft_problem(problem, FT_ENOTFOUND, 404, "signing-key-not-found", "Signing key not found", json_pack("{s:s}", "kid", kid),
                          "No signing key %s.", kid);
    if (rc != FT_OK)
        return rc;
    int signing = PQgetvalue(res, 0, 1)[0] == 't';
    PQclear(res);
    if (signing)
        return ft_problem(problem, FT_ECONFLICT, 409, "signing-key-in-use", "Signing key in use", json_pack("{s:s}", "kid", kid),
                          "Key %s signs new tokens; rotate first (POST /api/v1/auth/signing-keys), then retire it.", kid);
    rc = ft_sql(c, "retiring a signing key", "UPDATE ft_signing_keys SET retired_at = coalesce(retired_at, now()) WHERE kid = $1", 1,
                params, NULL, err);
    if (rc == FT_OK)
        rc = ft_signing_keys_list(c, out, err);
    return rc;
}
