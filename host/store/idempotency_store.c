/*
 * Idempotency rows.
 */
#include "store/idempotency_store.h"

#include "store/sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ft_idem_claim(PGconn *c, const char *owner, const char *key, const char *method, const char *route, const char *request_hash,
                  unsigned ttl_s, ft_idem_verdict_t *verdict, ft_idem_replay_t *replay, ft_error_t *err)
{
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%u", ttl_s);
    const char *params[] = {owner, key, method, route, request_hash, ttl};
    PGresult *res = NULL;
    memset(replay, 0, sizeof(*replay));
    int rc = ft_sql(c, "dropping an expired idempotency key", "DELETE FROM ft_idempotency WHERE owner = $1 AND key = $2 AND expires_at <= now()",
                    2, params, NULL, err);
    if (rc == FT_OK)
        rc = ft_sql(c, "claiming an idempotency key",
                    "INSERT INTO ft_idempotency (owner, key, method, route, request_hash, expires_at)"
                    " VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6::int)) ON CONFLICT DO NOTHING RETURNING 1",
                    6, params, &res, err);
    if (rc != FT_OK)
        return rc;
    int claimed = PQntuples(res) == 1;
    PQclear(res);
    if (claimed) {
        *verdict = FT_IDEM_NEW;
        return FT_OK;
    }
    rc = ft_sql_row(c, "reading an idempotency key",
                    "SELECT request_hash, coalesce(status, 0), response::text, coalesce(location, '') FROM ft_idempotency"
                    " WHERE owner = $1 AND key = $2",
                    2, params, &res, err);
    if (rc != FT_OK)
        return rc;
    if (strcmp(PQgetvalue(res, 0, 0), request_hash) != 0) {
        *verdict = FT_IDEM_MISMATCH;
    } else {
        *verdict = FT_IDEM_REPLAY;
        replay->status = atoi(PQgetvalue(res, 0, 1));
        if (!PQgetisnull(res, 0, 2))
            replay->body = json_loads(PQgetvalue(res, 0, 2), 0, NULL);
        snprintf(replay->location, sizeof(replay->location), "%s", PQgetvalue(res, 0, 3));
    }
    PQclear(res);
    return FT_OK;
}

int ft_idem_store(PGconn *c, const char *owner, const char *key, int status, json_t *body, const char *location, ft_error_t *err)
{
    char st[16];
    snprintf(st, sizeof(st), "%d", status);
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    const char *params[] = {owner, key, st, text, location != NULL && *location ? location : NULL};
    int rc = ft_sql(c, "storing an idempotent response",
                    "UPDATE ft_idempotency SET status = $3::int, response = $4::jsonb, location = $5 WHERE owner = $1 AND key = $2", 5,
                    params, NULL, err);
    free(text);
    return rc;
}

int ft_idem_sweep(PGconn *c, long *n, ft_error_t *err)
{
    PGresult *res = NULL;
    int rc = ft_sql(c, "sweeping idempotency keys", "DELETE FROM ft_idempotency WHERE expires_at <= now()", 0, NULL, &res, err);
    *n = rc == FT_OK ? atol(PQcmdTuples(res)) : 0;
    PQclear(res);
    return rc;
}
