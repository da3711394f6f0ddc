/*
 * Users, sign-in attempts and refresh tokens.
 */
#include "store/user_store.h"

#include "store/customer_store.h"
#include "store/outbox_store.h"
#include "store/sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USER_JSON                                                                                                              \
    "json_build_object('id', u.id, 'email', u.email, 'display_name', u.display_name, 'customer_id', u.customer_id,"          \
    " 'roles', to_json(u.roles), 'status', u.status, 'last_login_at', u.last_login_at,"                                       \
    " 'password_changed_at', u.password_changed_at, 'created_at', u.created_at, 'updated_at', u.updated_at)::text"

/* The roles member as a PostgreSQL array literal ({"a","b"}); roles are [a-z-] words, checked
 * by the route's schema. NULL when absent. The caller frees. */
static char *roles_literal(json_t *in)
{
    json_t *roles = json_object_get(in, "roles");
    if (!json_is_array(roles))
        return NULL;
    size_t cap = 3, i;
    json_t *v;
    json_array_foreach(roles, i, v) cap += (json_is_string(v) ? strlen(json_string_value(v)) : 0) + 3;
    char *out = malloc(cap), *p = out;
    *p++ = '{';
    json_array_foreach(roles, i, v)
    {
        if (!json_is_string(v))
            continue;
        p += sprintf(p, "%s\"%s\"", p == out + 1 ? "" : ",", json_string_value(v));
    }
    *p++ = '}';
    *p = '\0';
    return out;
}

static int not_found(ft_problem_t *p, const char *id)
{
    return ft_problem(p, FT_ENOTFOUND, 404, "user-not-found", "User not found", json_pack("{s:s}", "user_id", id), "No user %s.", id);
}

static int email_taken(ft_problem_t *p, const char *email)
{
    return ft_problem(p, FT_ECONFLICT, 409, "email-taken", "E-mail already registered",
                      json_pack("{s:[{s:s, s:s}]}", "errors", "pointer", "#/email", "detail", "already registered"),
                      "A user with e-mail %s already exists.", email);
}

static int one_json(PGresult *res, json_t **out, ft_error_t *err)
{
    return ft_sql_take_json(res, "user", out, err);
}

/* Commits the change with its user.<what>.v1 event (never the password hash), or rolls back. */
static int finish(PGconn *c, const ft_call_t *call, const char *what, const char *id, json_t *entity, int rc, ft_error_t *err)
{
    return ft_outbox_finish(c, call, "user", what, id, entity, rc, err);
}

int ft_user_create(PGconn *c, const ft_call_t *call, json_t *in, const char *password_hash, json_t **out, ft_problem_t *problem,
                   ft_error_t *err)
{
    char *roles = roles_literal(in);
    /* a scoped caller creates users of its own customer, whatever the body says */
    const char *customer = call->customer_id != NULL ? call->customer_id : ft_json_str(in, "customer_id");
    const char *params[] = {ft_json_str(in, "email"), ft_json_str(in, "display_name"), password_hash, customer, roles};
    PGresult *res = NULL;
    *out = NULL;
    int rc = ft_sql_begin(c, err);
    if (rc == FT_OK && customer != NULL) {
        /* share-locked so a deletion of the customer under way finishes first (and this is
         * refused) or waits for this user (and names it) */
        const char *cp[] = {customer};
        rc = ft_sql_row(c, "checking the user's customer",
                        "SELECT 1 FROM ft_customers WHERE id = $1 AND status <> 'closed' FOR SHARE", 1, cp, &res, err);
        PQclear(res);
        res = NULL;
        if (rc == FT_ENOTFOUND)
            rc = ft_problem(problem, FT_EINVAL, 422, "customer-not-found", "Customer not found",
                            json_pack("{s:[{s:s, s:s}]}", "errors", "pointer", "#/customer_id", "detail", "no such open customer"),
                            "No open customer %s to add the user to.", customer);
    }
    if (rc == FT_OK)
        rc = ft_sql_row(c, "inserting a user",
                        "WITH u AS (INSERT INTO ft_users (email, display_name, password_hash, customer_id, roles)"
                        " VALUES ($1, $2, $3, $4, $5::text[]) RETURNING *) SELECT " USER_JSON " FROM u",
                        5, params, &res, err);
    free(roles);
    if (rc == FT_ECONFLICT && problem->status == 0)
        rc = email_taken(problem, ft_json_str(in, "email"));
    if (rc == FT_OK)
        rc = one_json(res, out, err);
    return finish(c, call, "created", rc == FT_OK ? ft_json_str(*out, "id") : NULL, *out, rc, err);
}

int ft_user_get(PGconn *c, const ft_call_t *call, const char *id, json_t **out, ft_problem_t *problem, ft_error_t *err)
{
    const char *params[] = {id, call->customer_id};
    PGresult *res = NULL;
    int rc = ft_sql_row(c, "reading a user",
                        "SELECT " USER_JSON " FROM ft_users u WHERE u.id = $1 AND ($2::uuid IS NULL OR u.customer_id = $2)", 2,
                        params, &res, err);
    if (rc == FT_ENOTFOUND)
        return not_found(problem, id);
    return rc == FT_OK ? one_json(res, out, err) : rc;
}

int ft_user_list(PGconn *c, const ft_call_t *call, const char *customer_id, const char *cursor, int limit, json_t **out,
                 ft_problem_t *problem, ft_error_t *err)
{
    char micros[24] = "", cid[40] = "", lim[16];
    if (cursor != NULL && ft_cursor_parse(cursor, micros, sizeof(micros), cid, sizeof(cid), problem) != FT_OK)
        return FT_EINVAL;
    snprintf(lim, sizeof(lim), "%d", limit + 1);
    const char *params[] = {call->customer_id, customer_id, micros[0] ? micros : NULL, cid[0] ? cid : NULL, lim};
    PGresult *res = NULL;
    int rc = ft_sql(c, "listing users",
                    "SELECT " USER_JSON ", (extract(epoch FROM u.created_at) * 1000000)::bigint || '.' || u.id FROM ft_users u"
                    " WHERE ($1::uuid IS NULL OR u.customer_id = $1) AND ($2::uuid IS NULL OR u.customer_id = $2)"
                    " AND ($3::bigint IS NULL OR (u.created_at, u.id) > (to_timestamp($3::bigint / 1000000.0), $4::uuid))"
                    " ORDER BY u.created_at, u.id LIMIT $5::int",
                    5, params, &res, err);
    if (rc != FT_OK)
        return rc;
    *out = ft_sql_page(res, limit);
    return FT_OK;
}

int ft_user_update(PGconn *c, const ft_call_t *call, const char *id, json_t *in, const char *password_hash, json_t **out,
                   ft_problem_t *problem, ft_error_t *err)
{
    char *roles = roles_literal(in);
    json_t *dn = json_object_get(in, "display_name");
    const char *params[] = {id,  call->customer_id, dn != NULL ? "t" : "f", ft_json_str(in, "display_name"), roles, ft_json_str(in, "status"),
                            password_hash};
    PGresult *res = NULL;
    *out = NULL;
    int rc = ft_sql_begin(c, err);
    if (rc == FT_OK)
        rc = ft_sql_row(c, "updating a user",
                        "WITH u AS (UPDATE ft_users SET"
                        " display_name = CASE WHEN $3 THEN $4 ELSE display_name END,"
                        " roles = coalesce($5::text[], roles), status = coalesce($6, status),"
                        " password_hash = coalesce($7, password_hash),"
                        " password_changed_at = CASE WHEN $7 IS NULL THEN password_changed_at ELSE now() END,"
                        " updated_at = now()"
                        " WHERE id = $1 AND ($2::uuid IS NULL OR customer_id = $2) RETURNING *) SELECT " USER_JSON " FROM u",
                        7, params, &res, err);
    free(roles);
    if (rc == FT_ENOTFOUND)
        rc = not_found(problem, id);
    if (rc == FT_OK)
        rc = one_json(res, out, err);
    if (rc == FT_OK && (password_hash != NULL || (ft_json_str(in, "status") && strcmp(ft_json_str(in, "status"), "disabled") == 0))) {
        const char *rp[] = {id, password_hash != NULL ? "password changed" : "user disabled"};
        rc = ft_sql(c, "revoking the user's refresh tokens",
                    "UPDATE ft_refresh_tokens SET revoked_at = now(), revoked_reason = $2 WHERE user_id = $1 AND revoked_at IS NULL", 2,
                    rp, NULL, err);
    }
    return finish(c, call, "updated", id, *out, rc, err);
}

int ft_user_delete(PGconn *c, const ft_call_t *call, const char *id, ft_problem_t *problem, ft_error_t *err)
{
    const char *params[] = {id, call->customer_id};
    PGresult *res = NULL;
    int rc = ft_sql_begin(c, err);
    if (rc == FT_OK)
        rc = ft_sql_row(c, "deleting a user", "DELETE FROM ft_users WHERE id = $1 AND ($2::uuid IS NULL OR customer_id = $2) RETURNING id",
                        2, params, &res, err);
    PQclear(res);
    if (rc == FT_ENOTFOUND)
        rc = not_found(problem, id);
    return finish(c, call, "deleted", id, NULL, rc, err);
}

static void fill_auth(PGresult *res, ft_user_auth_t *u)
{
    snprintf(u->id, sizeof(u->id), "%s", PQgetvalue(res, 0, 0));
    snprintf(u->email, sizeof(u->email), "%s", PQgetvalue(res, 0, 1));
    snprintf(u->customer_id, sizeof(u->customer_id), "%s", PQgetvalue(res, 0, 2));
    snprintf(u->password_hash, sizeof(u->password_hash), "%s", PQgetvalue(res, 0, 3));
    snprintf(u->roles, sizeof(u->roles), "%s", PQgetvalue(res, 0, 4));
    u->active = strcmp(PQgetvalue(res, 0, 5), "active") == 0;
}

#define USER_AUTH_COLUMNS "u.id, u.email, coalesce(u.customer_id::text, ''), u.password_hash, to_json(u.roles)::text, u.status"

int ft_user_auth_by_email(PGconn *c, const char *email, ft_user_auth_t *u, ft_error_t *err)
{
    const char *params[] = {email};
    PGresult *res = NULL;
    int rc = ft_sql_row(c, "looking up a user", "SELECT " USER_AUTH_COLUMNS " FROM ft_users u WHERE lower(u.email) = lower($1)", 1,
                        params, &res, err);
    if (rc == FT_OK) {
        fill_auth(res, u);
        PQclear(res);
    }
    return rc;
}

int ft_user_auth_by_id(PGconn *c, const ft_call_t *call, const char *id, ft_user_auth_t *u, ft_error_t *err)
{
    const char *params[] = {id, call != NULL ? call->customer_id : NULL};
    PGresult *res = NULL;
    int rc = ft_sql_row(c, "looking up a user",
                        "SELECT " USER_AUTH_COLUMNS " FROM ft_users u WHERE u.id = $1 AND ($2::uuid IS NULL OR u.customer_id = $2)", 2,
                        params, &res, err);
    if (rc == FT_OK) {
        fill_auth(res, u);
        PQclear(res);
    }
    return rc;
}

int ft_login_locked_for(PGconn *c, const char *email, unsigned max_failures, unsigned window_s, long *seconds, ft_error_t *err)
{
    char maxs[16], win[16];
    snprintf(maxs, sizeof(maxs), "%u", max_failures);
    snprintf(win, sizeof(win), "%u", window_s);
    const char *params[] = {email, maxs, win};
    PGresult *res = NULL;
    /* the last N attempts of this address; locked while all N failed and the newest is recent */
    int rc = ft_sql(c, "checking sign-in lockout",
                    "SELECT CASE WHEN count(*) = $2::int AND bool_and(NOT success)"
                    " THEN greatest(0, ceil(extract(epoch FROM max(at) + make_interval(secs => $3::int) - clock_timestamp())))::bigint"
                    " ELSE 0 END FROM (SELECT success, at FROM ft_login_attempts WHERE lower(email) = lower($1)"
                    " AND at > clock_timestamp() - make_interval(secs => $3::int) ORDER BY id DESC LIMIT $2::int) a",
                    3, params, &res, err);
    if (rc == FT_OK) {
        *seconds = atol(PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    return rc;
}

int ft_login_serialize(PGconn *c, const char *email, ft_error_t *err)
{
    const char *params[] = {email};
    return ft_sql(c, "serialising sign-in attempts", "SELECT pg_advisory_xact_lock(hashtext('ft_login:' || lower($1)))", 1, params,
                  NULL, err);
}

int ft_login_record(PGconn *c, const char *email, const char *user_id, int success, const char *reason, const char *client_ip,
                    ft_error_t *err)
{
    const char *params[] = {email, user_id, success ? "t" : "f", reason, client_ip};
    int rc = ft_sql(c, "recording a sign-in attempt",
                    "INSERT INTO ft_login_attempts (email, user_id, success, reason, client_ip) VALUES (left($1, 254), $2, $3, $4, $5)", 5,
                    params, NULL, err);
    if (rc == FT_OK && success && user_id != NULL)
        rc = ft_sql(c, "stamping the sign-in", "UPDATE ft_users SET last_login_at = now() WHERE id = $1", 1, params + 1, NULL, err);
    return rc;
}

/* The hash as a bytea hex literal parameter. */

int ft_refresh_insert(PGconn *c, const char *user_id, const char *family, const char *parent, const unsigned char hash[32],
                      unsigned ttl_s, const char *client_ip, char family_out[37], char id_out[37], ft_error_t *err)
{
    char h[FT_SQL_BYTEA_PARAM(32)], ttl[16];
    ft_sql_bytea_param(hash, 32, h);
    snprintf(ttl, sizeof(ttl), "%u", ttl_s);
    const char *params[] = {user_id, family, parent, h, ttl, client_ip};
    PGresult *res = NULL;
    int rc = ft_sql_row(c, "storing a refresh token",
                        "WITH n AS (SELECT gen_random_uuid() AS id)"
                        " INSERT INTO ft_refresh_tokens (id, family_id, parent_id, user_id, token_hash, expires_at, client_ip)"
                        " SELECT n.id, coalesce($2::uuid, n.id), $3, $1, $4::bytea, now() + make_interval(secs => $5::int), $6 FROM n"
                        " RETURNING family_id, id",
                        6, params, &res, err);
    if (rc == FT_OK) {
        snprintf(family_out, 37, "%s", PQgetvalue(res, 0, 0));
        snprintf(id_out, 37, "%s", PQgetvalue(res, 0, 1));
        PQclear(res);
    }
    return rc;
}

int ft_refresh_use(PGconn *c, const unsigned char hash[32], ft_refresh_verdict_t *verdict, ft_user_auth_t *u, char family_out[37],
                   char id_out[37], ft_error_t *err)
{
    char h[FT_SQL_BYTEA_PARAM(32)];
    ft_sql_bytea_param(hash, 32, h);
    const char *params[] = {h};
    PGresult *res = NULL;
    /* one statement: the row is locked while it is judged and marked used */
    int rc = ft_sql(c, "using a refresh token",
                    "WITH t AS (SELECT * FROM ft_refresh_tokens WHERE token_hash = $1::bytea FOR UPDATE),"
                    " used AS (UPDATE ft_refresh_tokens r SET used_at = now() FROM t"
                    "  WHERE r.id = t.id AND t.used_at IS NULL AND t.revoked_at IS NULL AND t.expires_at > now() RETURNING r.id)"
                    " SELECT CASE WHEN t.revoked_at IS NOT NULL THEN 'revoked' WHEN t.used_at IS NOT NULL THEN 'reused'"
                    "  WHEN t.expires_at <= now() THEN 'expired' WHEN u.status <> 'active' THEN 'inactive' ELSE 'ok' END,"
                    " t.family_id, t.id, " USER_AUTH_COLUMNS
                    " FROM t JOIN ft_users u ON u.id = t.user_id",
                    1, params, &res, err);
    if (rc != FT_OK)
        return rc;
    if (PQntuples(res) == 0) {
        PQclear(res);
        *verdict = FT_REFRESH_UNKNOWN;
        return FT_OK;
    }
    const char *v = PQgetvalue(res, 0, 0);
    snprintf(family_out, 37, "%s", PQgetvalue(res, 0, 1));
    snprintf(id_out, 37, "%s", PQgetvalue(res, 0, 2));
    snprintf(u->id, sizeof(u->id), "%s", PQgetvalue(res, 0, 3));
    snprintf(u->email, sizeof(u->email), "%s", PQgetvalue(res, 0, 4));
    snprintf(u->customer_id, sizeof(u->customer_id), "%s", PQgetvalue(res, 0, 5));
    u->password_hash[0] = '\0';
    snprintf(u->roles, sizeof(u->roles), "%s", PQgetvalue(res, 0, 7));
    u->active = strcmp(PQgetvalue(res, 0, 8), "active") == 0;
    *verdict = strcmp(v, "ok") == 0        ? FT_REFRESH_OK
               : strcmp(v, "revoked") == 0 ? FT_REFRESH_REVOKED
               : strcmp(v, "reused") == 0  ? FT_REFRESH_REUSED
               : strcmp(v, "expired") == 0 ? FT_REFRESH_EXPIRED
                                           : FT_REFRESH_INACTIVE;
    PQclear(res);
    if (*verdict == FT_REFRESH_REUSED || *verdict == FT_REFRESH_INACTIVE) {
        const char *fp[] = {family_out, *verdict == FT_REFRESH_REUSED ? "reuse of a rotated token" : "user disabled"};
        rc = ft_sql(c, "revoking a refresh token family",
                    "UPDATE ft_refresh_tokens SET revoked_at = now(), revoked_reason = $2 WHERE family_id = $1 AND revoked_at IS NULL", 2,
                    fp, NULL, err);
    }
    return rc;
}

int ft_refresh_revoke_family(PGconn *c, const unsigned char hash[32], const char *reason, char user_id[37], ft_error_t *err)
{
    char h[FT_SQL_BYTEA_PARAM(32)];
    ft_sql_bytea_param(hash, 32, h);
    const char *params[] = {h, reason};
    PGresult *res = NULL;
    user_id[0] = '\0';
    int rc = ft_sql(c, "revoking a refresh token family",
                    "WITH t AS (SELECT family_id, user_id FROM ft_refresh_tokens WHERE token_hash = $1::bytea),"
                    " r AS (UPDATE ft_refresh_tokens f SET revoked_at = now(), revoked_reason = $2 FROM t"
                    "  WHERE f.family_id = t.family_id AND f.revoked_at IS NULL RETURNING f.id)"
                    " SELECT t.user_id FROM t",
                    2, params, &res, err);
    if (rc == FT_OK) {
        if (PQntuples(res) > 0)
            snprintf(user_id, 37, "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    return rc;
}
