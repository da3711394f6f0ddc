/*
 * Customer persistence. Representations are built by PostgreSQL (json_build_object), so the
 * wire shape is defined in one place: CUSTOMER_JSON.
 */
#include "store/customer_store.h"

#include "store/outbox_store.h"
#include "store/sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CUSTOMER_JSON                                                                                                          \
    "json_build_object('id', c.id, 'legal_name', c.legal_name, 'tax_id', c.tax_id, 'country', c.country,"                    \
    " 'contact', json_build_object('name', c.contact_name, 'email', c.contact_email, 'phone', c.contact_phone),"            \
    " 'status', c.status, 'created_at', c.created_at, 'updated_at', c.updated_at)::text"

static const char *contact(json_t *in, const char *key)
{
    return ft_json_str(json_object_get(in, "contact"), key);
}

static int one_json(PGresult *res, json_t **out, ft_error_t *err)
{
    return ft_sql_take_json(res, "customer", out, err);
}

static int not_found(ft_problem_t *p, const char *id)
{
    return ft_problem(p, FT_ENOTFOUND, 404, "customer-not-found", "Customer not found", json_pack("{s:s}", "customer_id", id),
                      "No customer %s.", id);
}

static int tax_id_taken(ft_problem_t *p, json_t *in)
{
    return ft_problem(p, FT_ECONFLICT, 409, "tax-id-taken", "Tax id already registered",
                      json_pack("{s:[{s:s, s:s}]}", "errors", "pointer", "#/tax_id", "detail", "already registered in this country"),
                      "A customer with tax id %s in %s already exists.", ft_json_str(in, "tax_id"), ft_json_str(in, "country"));
}

/* Commits the change with its customer.<what>.v1 event, or rolls back. */
static int finish(PGconn *c, const ft_call_t *call, const char *what, const char *id, json_t *body, int rc, ft_error_t *err)
{
    return ft_outbox_finish(c, call, "customer", what, id, body, rc, err);
}

int ft_customer_create(PGconn *c, const ft_call_t *call, json_t *in, json_t **out, ft_problem_t *problem, ft_error_t *err)
{
    const char *params[] = {ft_json_str(in, "legal_name"), ft_json_str(in, "tax_id"), ft_json_str(in, "country"),   contact(in, "name"),
                            contact(in, "email"),   contact(in, "phone"), ft_json_str(in, "status") ? ft_json_str(in, "status") : "active"};
    PGresult *res = NULL;
    *out = NULL;
    int rc = ft_sql_begin(c, err);
    if (rc != FT_OK)
        return rc;
    rc = ft_sql_row(c, "inserting a customer",
                    "WITH c AS (INSERT INTO ft_customers (legal_name, tax_id, country, contact_name, contact_email,"
                    " contact_phone, status) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *) SELECT " CUSTOMER_JSON " FROM c",
                    7, params, &res, err);
    if (rc == FT_ECONFLICT) {
        ft_sql_rollback(c);
        return tax_id_taken(problem, in);
    }
    if (rc == FT_OK)
        rc = one_json(res, out, err);
    rc = finish(c, call, "created", rc == FT_OK ? json_string_value(json_object_get(*out, "id")) : NULL, rc == FT_OK ? *out : NULL,
                rc, err);
    if (rc != FT_OK && *out != NULL) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

int ft_customer_get(PGconn *c, const ft_call_t *call, const char *id, json_t **out, ft_problem_t *problem, ft_error_t *err)
{
    const char *params[] = {id, call->customer_id};
    PGresult *res = NULL;
    int rc = ft_sql_row(c, "reading a customer",
                        "SELECT " CUSTOMER_JSON " FROM ft_customers c WHERE c.id = $1 AND ($2::uuid IS NULL OR c.id = $2)", 2,
                        params, &res, err);
    if (rc == FT_ENOTFOUND)
        return not_found(problem, id);
    return rc == FT_OK ? one_json(res, out, err) : rc;
}

int ft_customer_update(PGconn *c, const ft_call_t *call, const char *id, json_t *in, json_t **out, ft_problem_t *problem,
                       ft_error_t *err)
{
    json_t *ct = json_object_get(in, "contact");
    /* a member absent keeps its value; contact members present replace theirs (null clears) */
    const char *params[] = {id,
                            call->customer_id,
                            ft_json_str(in, "legal_name"),
                            ft_json_str(in, "tax_id"),
                            ft_json_str(in, "country"),
                            ft_json_str(in, "status"),
                            ct != NULL ? "t" : "f",
                            json_object_get(ct, "name") != NULL ? "t" : "f",
                            contact(in, "name"),
                            json_object_get(ct, "email") != NULL ? "t" : "f",
                            contact(in, "email"),
                            json_object_get(ct, "phone") != NULL ? "t" : "f",
                            contact(in, "phone")};
    PGresult *res = NULL;
    *out = NULL;
    int rc = ft_sql_begin(c, err);
    if (rc != FT_OK)
        return rc;
    rc = ft_sql_row(c, "updating a customer",
                        "WITH c AS (UPDATE ft_customers SET"
                        " legal_name = coalesce($3, legal_name), tax_id = coalesce($4, tax_id),"
                        " country = coalesce($5, country), status = coalesce($6, status),"
                        " contact_name = CASE WHEN $7::bool AND $8::bool THEN $9 ELSE contact_name END,"
                        " contact_email = CASE WHEN $7::bool AND $10::bool THEN $11 ELSE contact_email END,"
                        " contact_phone = CASE WHEN $7::bool AND $12::bool THEN $13 ELSE contact_phone END,"
                        " updated_at = now()"
                        " WHERE id = $1 AND ($2::uuid IS NULL OR id = $2) RETURNING *) SELECT " CUSTOMER_JSON " FROM c",
                        13, params, &res, err);
    if (rc == FT_ENOTFOUND || rc == FT_ECONFLICT) {
        ft_sql_rollback(c);
        return rc == FT_ENOTFOUND ? not_found(problem, id) : tax_id_taken(problem, in);
    }
    if (rc == FT_OK)
        rc = one_json(res, out, err);
    rc = finish(c, call, "updated", id, rc == FT_OK ? *out : NULL, rc, err);
    if (rc != FT_OK && *out != NULL) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

/* What holds a customer back from deletion: one query per rule, each answering (count, JSON list
 * of the blocking things, their names for the detail). Every rule is something the caller can
 * act on, so each is a 409 naming what to act on, never a foreign-key failure (500) later. */
typedef struct blocker {
    const char *what, *sql;
    const char *slug, *title, *member;
    const char *count_member;  /* also answer the count under this name, or NULL */
    const char *noun, *remedy; /* for the detail: "... still has <count> <noun>: <names>; <remedy>." */
} blocker_t;

static const blocker_t instance_blockers[] = {
    /* the tenant's data lives there: removing it is a job (DELETE /api/v1/instances/{id}) */
    {"listing live instances",
     "SELECT count(*), coalesce(json_agg(json_build_object('id', id, 'code', code, 'status', status) ORDER BY code), '[]'),"
     " string_agg(code, ', ' ORDER BY code) FROM ft_instances WHERE customer_id = $1 AND status <> 'deleted'",
     "customer-has-instances", "Customer has live instances", "instances", "live_instances", "live instance(s)",
     "deprovision them first"},
    /* a job still queued or running on a deleted instance (a dead letter replayed, say): its
     * rows must not disappear under the worker running it */
    {"listing jobs in flight",
     "SELECT count(*), coalesce(json_agg(json_build_object('id', j.id, 'kind', j.kind, 'status', j.status, 'instance_id',"
     " j.instance_id) ORDER BY j.created_at), '[]'), string_agg(j.kind || ' job ' || j.id, ', ' ORDER BY j.created_at)"
     " FROM ft_jobs j JOIN ft_instances i ON i.id = j.instance_id WHERE i.customer_id = $1 AND j.status IN ('queued', 'running')",
     "customer-has-jobs-in-flight", "Customer has jobs in flight", "jobs", NULL, "job(s) queued or running",
     "wait for them to finish"},
};

static const blocker_t credential_blockers[] = {
    /* a key that still opens the API is revoked on purpose (DELETE /api/v1/api-keys/{id}, which
     * every host hears at once and the audit log records), never dropped as a side effect */
    {"listing live API keys",
     "SELECT count(*), coalesce(json_agg(json_build_object('id', k.id, 'prefix', 'ftk_' || k.prefix, 'name', k.name,"
     " 'instance_id', k.instance_id) ORDER BY k.created_at, k.id), '[]'),"
     " string_agg('ftk_' || k.prefix || ' (' || k.name || ')', ', ' ORDER BY k.created_at, k.id) FROM ft_api_keys k"
     " WHERE (k.customer_id = $1 OR k.instance_id IN (SELECT id FROM ft_instances WHERE customer_id = $1))"
     " AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())",
     "customer-has-live-api-keys", "Customer has live API keys", "api_keys", NULL, "live API key(s)", "revoke them first"},
    /* the same for people: an active user is disabled or deleted on purpose */
    {"listing active users",
     "SELECT count(*), coalesce(json_agg(json_build_object('id', id, 'email', email) ORDER BY email), '[]'),"
     " string_agg(email, ', ' ORDER BY email) FROM ft_users WHERE customer_id = $1 AND status = 'active'",
     "customer-has-active-users", "Customer has active users", "users", NULL, "active user(s)", "disable or delete them first"},
};

/* FT_OK when no rule of `rules` holds the customer back; FT_ESTATE with problem filled (409)
 * naming the first such rule's blocking things otherwise. */
static int check_blockers(PGconn *c, const char *id, const blocker_t *rules, size_t n, ft_problem_t *problem, ft_error_t *err)
{
    const char *params[] = {id};
    for (size_t i = 0; i < n; i++) {
        PGresult *res = NULL;
        int rc = ft_sql(c, rules[i].what, rules[i].sql, 1, params, &res, err);
        if (rc != FT_OK)
            return rc;
        long count = atol(PQgetvalue(res, 0, 0));
        if (count > 0) {
            json_t *ext = json_object();
            json_object_set_new(ext, rules[i].member, json_loads(PQgetvalue(res, 0, 1), 0, NULL));
            if (rules[i].count_member != NULL)
                json_object_set_new(ext, rules[i].count_member, json_integer(count));
            ft_problem(problem, FT_ESTATE, 409, rules[i].slug, rules[i].title, ext, "Customer %s still has %ld %s: %s; %s.", id,
                       count, rules[i].noun, PQgetvalue(res, 0, 2), rules[i].remedy);
            PQclear(res);
            return FT_ESTATE;
        }
        PQclear(res);
    }
    return FT_OK;
}

int ft_customer_delete(PGconn *c, const ft_call_t *call, const char *id, ft_problem_t *problem, ft_error_t *err)
{
    const char *params[] = {id, call->customer_id};
    PGresult *res = NULL;
    int rc = ft_sql_begin(c, err);
    if (rc != FT_OK)
        return rc;
    /* Lock the customer: adding an instance, a user or an API key to it takes a share lock on
     * it first, so nothing new refers to it between the checks and the delete. */
    rc = ft_sql_row(c, "locking a customer",
                    "SELECT id FROM ft_customers WHERE id = $1 AND ($2::uuid IS NULL OR id = $2) FOR UPDATE", 2, params, &res, err);
    if (rc == FT_ENOTFOUND) {
        ft_sql_rollback(c);
        return not_found(problem, id);
    }
    PQclear(res);
    if (rc == FT_OK)
        rc = check_blockers(c, id, instance_blockers, sizeof(instance_blockers) / sizeof(instance_blockers[0]), problem, err);
    /* Dead credentials go with the customer: revoked or expired API keys (nothing can bring one
     * back, and the scope rule gives a customer's key no customer-less form to detach into) and
     * disabled users (their refresh tokens cascade; the deletion voids their access tokens). A
     * row that came alive meanwhile (a user enabled again) is skipped here and refuses below. */
    static const char *const dead[] = {
        "DELETE FROM ft_api_keys WHERE (customer_id = $1 OR instance_id IN (SELECT id FROM ft_instances WHERE customer_id = $1))"
        " AND (revoked_at IS NOT NULL OR expires_at <= now())",
        "DELETE FROM ft_users WHERE customer_id = $1 AND status = 'disabled'",
    };
    for (size_t i = 0; i < sizeof(dead) / sizeof(dead[0]) && rc == FT_OK; i++)
        rc = ft_sql(c, "deleting a customer's dead credentials", dead[i], 1, params, NULL, err);
    if (rc == FT_OK)
        rc = check_blockers(c, id, credential_blockers, sizeof(credential_blockers) / sizeof(credential_blockers[0]), problem, err);
    /* Only deleted instances remain. Their operational records (subscription and overrides,
     * jobs with their steps, attempts and dead letters) describe tenant environments that no
     * longer exist and hold foreign keys to them, so they go with the customer, children first.
     * The history survives elsewhere: ft_audit (no foreign keys, append-only) keeps every change
     * and refusal with the ids as values, and the outbox keeps the events, customer.deleted.v1
     * among them. */
    static const char *const deletes[] = {
        "DELETE FROM ft_subscriptions WHERE customer_id = $1",                                           /* overrides cascade */
        "DELETE FROM ft_jobs WHERE instance_id IN (SELECT id FROM ft_instances WHERE customer_id = $1)", /* steps, attempts, DLQ
                                                                                                            cascade */
        "DELETE FROM ft_instances WHERE customer_id = $1",
        "DELETE FROM ft_customers WHERE id = $1",
    };
    for (size_t i = 0; i < sizeof(deletes) / sizeof(deletes[0]) && rc == FT_OK; i++)
        rc = ft_sql(c, "deleting a customer", deletes[i], 1, params, NULL, err);
    return finish(c, call, "deleted", id, NULL, rc, err); /* rolls back unless rc is FT_OK */
}

static int bad_cursor(ft_problem_t *problem)
{
    return ft_problem(problem, FT_EINVAL, 400, "invalid-parameter", "Invalid parameter",
                      json_pack("{s:[{s:s, s:s}]}", "errors", "parameter", "cursor", "detail", "not a cursor this API issued"),
                      "The cursor is not one this API issued.");
}

int ft_cursor_parse(const char *cursor, char *micros, size_t mlen, char *id, size_t idlen, ft_problem_t *problem)
{
    const char *dot = strchr(cursor, '.');
    if (dot == NULL || (size_t)(dot - cursor) >= mlen || dot == cursor || strlen(dot + 1) >= idlen)
        return bad_cursor(problem);
    for (const char *p = cursor; p < dot; p++)
        if (*p < '0' || *p > '9')
            return bad_cursor(problem);
    memcpy(micros, cursor, (size_t)(dot - cursor));
    micros[dot - cursor] = '\0';
    strcpy(id, dot + 1);
    return ft_uuid_valid(id) ? FT_OK : bad_cursor(problem);
}

int ft_customer_list(PGconn *c, const ft_call_t *call, const ft_customer_filter_t *f, json_t **out, ft_problem_t *problem,
                     ft_error_t *err)
{
    char micros[24] = "", cid[40] = "", limit[16];
    if (f->cursor != NULL && ft_cursor_parse(f->cursor, micros, sizeof(micros), cid, sizeof(cid), problem) != FT_OK)
        return FT_EINVAL;
    snprintf(limit, sizeof(limit), "%d", f->limit + 1);
    const char *params[] = {call->customer_id, f->status, f->country, f->q, f->tax_id,
                            micros[0] ? micros : NULL, cid[0] ? cid : NULL, limit};
    PGresult *res = NULL;
    int rc = ft_sql(c, "listing customers",
                    "SELECT " CUSTOMER_JSON ", (extract(epoch FROM c.created_at) * 1000000)::bigint || '.' || c.id"
                    " FROM ft_customers c"
                    " WHERE ($1::uuid IS NULL OR c.id = $1) AND ($2::text IS NULL OR c.status = $2)"
                    " AND ($3::text IS NULL OR c.country = $3)"
                    " AND ($4::text IS NULL OR c.legal_name ILIKE '%' || replace(replace($4, '%', '\\%'), '_', '\\_') || '%')"
                    " AND ($5::text IS NULL OR c.tax_id = $5)"
                    " AND ($6::bigint IS NULL OR (c.created_at, c.id) > (to_timestamp($6::bigint / 1000000.0), $7::uuid))"
                    " ORDER BY c.created_at, c.id LIMIT $8::int",
                    8, params, &res, err);
    if (rc != FT_OK)
        return rc;
    *out = ft_sql_page(res, f->limit);
    return FT_OK;
}
