/*
 * Pooled tenant database persistence and placement. TENANT_DATABASE_JSON is the one definition of
 * a pooled database's representation: its address without credentials, its capacity and its load.
 */
#include "store/tenant_database_store.h"

#include "core/mem.h"
#include "store/sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TENANT_DATABASE_JSON                                                                                                    \
    "json_build_object('id', d.id, 'name', d.name, 'url', d.display_url, 'capacity', d.capacity, 'status', d.status,"         \
    " 'instances', d.placed, 'load', round(d.placed::numeric / d.capacity, 4), 'created_at', d.created_at,"                   \
    " 'updated_at', d.updated_at)"

static int not_found(ft_problem_t *p, const char *id)
{
    return ft_problem(p, FT_ENOTFOUND, 404, "tenant-database-not-found", "Tenant database not found",
                      json_pack("{s:s}", "tenant_database_id", id), "No pooled tenant database %s.", id);
}

static int load(PGconn *c, const char *id, json_t **out, ft_error_t *err)
{
    const char *p[] = {id};
    return ft_sql_json(c, "reading a tenant database", "SELECT " TENANT_DATABASE_JSON "::text FROM ft_tenant_databases d WHERE d.id = $1",
                       1, p, out, err);
}

int ft_tenant_database_register_default(PGconn *c, const char *url, const char *display_url, unsigned capacity, unsigned long long *placed,
                                        ft_error_t *err)
{
    *placed = 0;
    char cap[16];
    snprintf(cap, sizeof(cap), "%u", capacity);
    const char *p[] = {FT_TENANT_DATABASE_DEFAULT, url, display_url, cap};
    PGresult *res = NULL;
    int rc = ft_sql_row(c, "looking for the tenant databases table", "SELECT to_regclass('ft_tenant_databases') IS NOT NULL", 0, NULL,
                        &res, err);
    if (rc != FT_OK)
        return rc;
    int have = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (!have) /* a schema from another migrations directory: nothing to register */
        return FT_OK;
    if ((rc = ft_sql_begin(c, err)) != FT_OK)
        return rc;
    rc = ft_sql(c, "registering the default tenant database",
                "INSERT INTO ft_tenant_databases (name, url, display_url, capacity) VALUES ($1, $2, $3, $4::int)"
                " ON CONFLICT (name) DO UPDATE SET url = EXCLUDED.url, display_url = EXCLUDED.display_url,"
                " capacity = EXCLUDED.capacity, updated_at = now()"
                " WHERE (ft_tenant_databases.url, ft_tenant_databases.capacity) IS DISTINCT FROM (EXCLUDED.url, EXCLUDED.capacity)",
                4, p, NULL, err);
    if (rc == FT_OK)
        rc = ft_sql(c, "placing earlier Standard instances on the default tenant database",
                    "UPDATE ft_instances SET tenant_database_id = (SELECT id FROM ft_tenant_databases WHERE name = $1)"
                    " WHERE tier = 'standard' AND tenant_database_id IS NULL AND status <> 'deleted'",
                    1, p, &res, err);
    if (rc == FT_OK) {
        *placed = strtoull(PQcmdTuples(res), NULL, 10);
        PQclear(res);
        return ft_sql_commit(c, err);
    }
    ft_sql_rollback(c);
    return rc;
}

int ft_tenant_database_list(PGconn *c, const char *policy, json_t **out, ft_error_t *err)
{
    const char *p[] = {policy};
    return ft_sql_json(c, "listing tenant databases",
                       "SELECT json_build_object('tenant_databases', coalesce((SELECT json_agg(" TENANT_DATABASE_JSON
                       " ORDER BY d.name) FROM ft_tenant_databases d), '[]'), 'policy', $1::text)::text",
                       1, p, out, err);
}

int ft_tenant_database_get(PGconn *c, const char *id, json_t **out, ft_problem_t *problem, ft_error_t *err)
{
    int rc = load(c, id, out, err);
    return rc == FT_ENOTFOUND ? not_found(problem, id) : rc;
}

int ft_tenant_database_create(PGconn *c, const char *name, const char *url, const char *display_url, long long capacity,
                              json_t **out, ft_problem_t *problem, ft_error_t *err)
{
    char cap[24], id[37];
    snprintf(cap, sizeof(cap), "%lld", capacity);
    const char *p[] = {name, url, display_url, cap};
    PGresult *res = NULL;
    int rc = ft_sql_begin(c, err);
    if (rc != FT_OK)
        return rc;
    rc = ft_sql_row(c, "registering a tenant database",
                    "INSERT INTO ft_tenant_databases (name, url, display_url, capacity) VALUES ($1, $2, $3, $4::int) RETURNING id", 4,
                    p, &res, err);
    if (rc == FT_ECONFLICT) {
        ft_sql_rollback(c);
        return ft_problem(problem, FT_ECONFLICT, 409, "tenant-database-name-taken", "Tenant database name already used",
                          json_pack("{s:[{s:s, s:s}]}", "errors", "pointer", "#/name", "detail", "already used by another database"),
                          "A pooled tenant database named %s is already registered.", name);
    }
    if (rc != FT_OK)
        goto fail;
    snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    if ((rc = load(c, id, out, err)) == FT_OK && (rc = ft_sql_commit(c, err)) == FT_OK)
        return FT_OK;
fail:
    ft_sql_rollback(c);
    json_decref(*out);
    *out = NULL;
    return rc;
}

/* Begins a transaction, locks the row and reads its name and live placements; FT_ENOTFOUND with
 * the problem filled. The caller ends the transaction, also on failure. */
static int lock(PGconn *c, const char *id, char name[64], long long *placed, ft_problem_t *problem, ft_error_t *err)
{
    const char *p[] = {id};
    PGresult *res = NULL;
    int rc = ft_sql_begin(c, err);
    if (rc != FT_OK)
        return rc;
    rc = ft_sql_row(c, "locking a tenant database", "SELECT name, placed FROM ft_tenant_databases WHERE id = $1 FOR UPDATE", 1, p,
                    &res, err);
    if (rc == FT_ENOTFOUND)
        return not_found(problem, id);
    if (rc != FT_OK)
        return rc;
    snprintf(name, 64, "%s", PQgetvalue(res, 0, 0));
    *placed = atoll(PQgetvalue(res, 0, 1));
    PQclear(res);
    return FT_OK;
}

static int managed_by_configuration(ft_problem_t *problem, const char *what, const char *pointer)
{
    return ft_problem(problem, FT_ESTATE, 409, "tenant-database-managed-by-configuration", "Set by the configuration",
                      pointer != NULL ? json_pack("{s:[{s:s, s:s}]}", "errors", "pointer", pointer, "detail", "set by the configuration")
                                      : NULL,
                      "The default pooled database's %s comes from the configuration (FT_TENANT_DATABASE_URL and"
                      " FT_TENANT_DATABASE_CAPACITY) and is written again at each start; change it there.",
                      what);
}

int ft_tenant_database_update(PGconn *c, const char *id, long long capacity, const char *status, json_t **out,
                              ft_problem_t *problem, ft_error_t *err)
{
    char name[64], cap[24];
    long long placed = 0;
    *out = NULL;
    int rc = lock(c, id, name, &placed, problem, err);
    if (rc != FT_OK)
        goto fail;
    if (capacity >= 0 && strcmp(name, FT_TENANT_DATABASE_DEFAULT) == 0) {
        rc = managed_by_configuration(problem, "capacity", "#/capacity");
        goto fail;
    }
    if (capacity >= 0 && capacity < placed) {
        rc = ft_problem(problem, FT_ECONFLICT, 409, "capacity-below-placements", "Capacity below the instances placed",
                        json_pack("{s:I, s:[{s:s, s:s}]}", "instances", (json_int_t)placed, "errors", "pointer", "#/capacity",
                                  "detail", "lower than the instances placed there"),
                        "Pooled database %s holds %lld instance(s); its capacity cannot be %lld. Close it (status closed) to"
                        " stop new placements instead.",
                        name, placed, capacity);
        goto fail;
    }
    snprintf(cap, sizeof(cap), "%lld", capacity);
    const char *p[] = {id, capacity >= 0 ? cap : NULL, status};
    rc = ft_sql(c, "updating a tenant database",
                "UPDATE ft_tenant_databases SET capacity = coalesce($2::int, capacity), status = coalesce($3, status),"
                " updated_at = now() WHERE id = $1",
                3, p, NULL, err);
    if (rc == FT_OK && (rc = load(c, id, out, err)) == FT_OK && (rc = ft_sql_commit(c, err)) == FT_OK)
        return FT_OK;
fail:
    ft_sql_rollback(c);
    json_decref(*out);
    *out = NULL;
    return rc;
}

int ft_tenant_database_delete(PGconn *c, const char *id, ft_problem_t *problem, ft_error_t *err)
{
    char name[64];
    long long placed = 0;
    int rc = lock(c, id, name, &placed, problem, err);
    if (rc != FT_OK)
        goto fail;
    if (strcmp(name, FT_TENANT_DATABASE_DEFAULT) == 0) {
        rc = managed_by_configuration(problem, "registration", NULL);
        goto fail;
    }
    if (placed > 0) {
        rc = ft_problem(problem, FT_ESTATE, 409, "tenant-database-in-use", "Tenant database in use",
                        json_pack("{s:I}", "instances", (json_int_t)placed),
                        "Pooled database %s still holds %lld instance(s); remove them first, or close it to stop new placements.",
                        name, placed);
        goto fail;
    }
    const char *p[] = {id};
    if ((rc = ft_sql(c, "removing a tenant database", "DELETE FROM ft_tenant_databases WHERE id = $1", 1, p, NULL, err)) == FT_OK)
        return ft_sql_commit(c, err);
fail:
    ft_sql_rollback(c);
    return rc;
}

int ft_tenant_database_place(PGconn *c, const char *instance_id, ft_placement_policy_t policy, json_t **placement,
                             ft_problem_t *problem, ft_error_t *err)
{
    PGresult *res = NULL;
    *placement = NULL;
    /* FOR UPDATE reads each row as the last placement committed it, after waiting for it */
    int rc = ft_sql(c, "locking the open tenant databases",
                    "SELECT id, name, capacity, placed FROM ft_tenant_databases WHERE status = 'open' ORDER BY name FOR UPDATE", 0, NULL,
                    &res, err);
    if (rc != FT_OK)
        return rc;
    int n = PQntuples(res);
    ft_placement_candidate_t *cand = ft_mem_calloc((size_t)n + 1, sizeof(*cand));
    for (int i = 0; i < n; i++)
        cand[i] = (ft_placement_candidate_t){.name = PQgetvalue(res, i, 1),
                                             .capacity = atoll(PQgetvalue(res, i, 2)),
                                             .placed = atoll(PQgetvalue(res, i, 3)),
                                             .open = 1};
    long k = ft_placement_pick(policy, cand, (size_t)n);
    if (k >= 0) {
        const char *p[] = {instance_id, PQgetvalue(res, (int)k, 0)};
        rc = ft_sql(c, "recording the placement", "UPDATE ft_instances SET tenant_database_id = $2 WHERE id = $1", 2, p, NULL, err);
        if (rc == FT_OK)
            *placement = json_pack("{s:s, s:s}", "database_id", p[1], "database_name", cand[k].name);
    } else {
        json_t *loads = json_array();
        for (int i = 0; i < n; i++)
            json_array_append_new(loads, json_pack("{s:s, s:s, s:I, s:I}", "id", PQgetvalue(res, i, 0), "name", cand[i].name,
                                                   "instances", (json_int_t)cand[i].placed, "capacity", (json_int_t)cand[i].capacity));
        rc = ft_problem(problem, FT_ECONFLICT, 409, "pooled-capacity-exhausted", "Pooled capacity exhausted",
                        json_pack("{s:o}", "tenant_databases", loads),
                        n > 0 ? "Every open pooled tenant database is full (%d open); register another database or raise a capacity."
                              : "No pooled tenant database is open (%d); register one or open one for new Standard instances.",
                        n);
    }
    free(cand);
    PQclear(res);
    return rc;
}

int ft_tenant_database_url_of(PGconn *c, const char *instance_id, char **url, ft_error_t *err)
{
    const char *p[] = {instance_id};
    PGresult *res = NULL;
    *url = NULL;
    int rc = ft_sql(c, "reading an instance's tenant database",
                    "SELECT d.url FROM ft_instances i JOIN ft_tenant_databases d ON d.id = i.tenant_database_id WHERE i.id = $1", 1, p,
                    &res, err);
    if (rc != FT_OK)
        return rc;
    if (PQntuples(res) > 0)
        *url = ft_mem_strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return FT_OK;
}
