/*
 * Fleet persistence. Lists come back as JSON built by PostgreSQL; a host is live while its
 * heartbeat is younger than three of its own intervals and it has not stopped.
 */
#include "store/fleet_store.h"

#include "core/mem.h"
#include "infra/db_pool.h"
#include "store/sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOST_STATUS                                                                                                                \
    "CASE WHEN h.stopped_at IS NOT NULL THEN 'stopped'"                                                                            \
    " WHEN h.heartbeat_at > now() - 3 * h.heartbeat_ms * interval '1 millisecond' THEN 'live' ELSE 'stale' END"
#define ISO(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define HOST_PLUGINS                                                                                                               \
    "(SELECT coalesce(json_agg(json_build_object('product', p.product, 'generation', p.generation, 'version',"                     \
    " p.version, 'sha256', p.sha256, 'loaded_at', " ISO(                                                                           \
        "p.loaded_at") ", 'last_error', p.last_error,"                                                                             \
                       " 'last_error_at', " ISO("p.last_error_at") ") ORDER BY p.product), '[]') FROM ft_host_plugins p"           \
                                                                   " WHERE p.host_id = h.id)"

/* Runs sql and copies the first column of its one row (a uuid) into id. */
static int row_id(PGconn *conn, const char *what, const char *sql, int nparams, const char *const *params, char id[37],
                  ft_error_t *err)
{
    PGresult *res = NULL;
    int rc = ft_sql_row(conn, what, sql, nparams, params, &res, err);
    if (rc == FT_OK) {
        snprintf(id, 37, "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    return rc;
}

int ft_fleet_store_register(PGconn *conn, const ft_host_record_t *h, char id[37], ft_error_t *err)
{
    json_t *roles = json_array();
    for (const char *const *r = h->roles; *r != NULL; r++)
        json_array_append_new(roles, json_string(*r));
    char *roles_text = json_dumps(roles, JSON_COMPACT);
    json_decref(roles);
    char pid[16], hb[16];
    snprintf(pid, sizeof(pid), "%d", h->pid);
    snprintf(hb, sizeof(hb), "%u", h->heartbeat_ms);
    const char *params[] = {h->hostname, pid, roles_text, h->version, h->commit, h->address, hb};
    int rc = row_id(conn, "registering the host",
                    "INSERT INTO ft_hosts (hostname, pid, roles, version, commit, address, heartbeat_ms)"
                    " VALUES ($1, $2, ARRAY(SELECT jsonb_array_elements_text($3::jsonb)), $4, $5, $6, $7) RETURNING id",
                    7, params, id, err);
    free(roles_text);
    return rc;
}

int ft_fleet_store_heartbeat(PGconn *conn, const char *host_id, const char *address, ft_error_t *err)
{
    const char *params[] = {host_id, address};
    return ft_sql(conn, "recording the heartbeat",
                  "UPDATE ft_hosts SET heartbeat_at = now(), address = coalesce($2, address) WHERE id = $1", 2, params, NULL, err);
}

int ft_fleet_store_stopped(PGconn *conn, const char *host_id, ft_error_t *err)
{
    const char *params[] = {host_id};
    return ft_sql(conn, "recording the host's stop", "UPDATE ft_hosts SET stopped_at = now(), heartbeat_at = now() WHERE id = $1",
                  1, params, NULL, err);
}

int ft_fleet_store_set_plugins(PGconn *conn, const char *host_id, json_t *plugins, ft_error_t *err)
{
    char *doc = json_dumps(plugins, JSON_COMPACT);
    const char *params[] = {host_id, doc};
    int rc = ft_sql_begin(conn, err);
    if (rc == FT_OK)
        rc = ft_sql(conn, "replacing the host's plugins", "DELETE FROM ft_host_plugins WHERE host_id = $1", 1, params, NULL, err);
    if (rc == FT_OK)
        rc = ft_sql(conn, "replacing the host's plugins",
                    "INSERT INTO ft_host_plugins (host_id, product, generation, version, sha256, loaded_at, last_error,"
                    " last_error_at) SELECT $1, x.product, x.generation, x.version, x.sha256, x.loaded_at, x.last_error,"
                    " x.last_error_at FROM jsonb_to_recordset($2::jsonb) AS x(product text, generation bigint, version text,"
                    " sha256 text, loaded_at timestamptz, last_error text, last_error_at timestamptz)",
                    2, params, NULL, err);
    if (rc == FT_OK)
        rc = ft_sql_commit(conn, err);
    else
        ft_sql_rollback(conn);
    free(doc);
    return rc;
}

int ft_fleet_store_releases(PGconn *conn, json_t **out, ft_error_t *err)
{
    return ft_sql_json(
        conn, "reading the plugin releases",
        "SELECT coalesce(json_agg(json_build_object('release_id', r.id, 'product', r.product, 'sha256', r.sha256,"
        " 'version', r.version, 'released_by', r.released_by, 'released_at', " ISO(
            "r.released_at") ") ORDER BY r.product), '[]') FROM (SELECT DISTINCT ON (product) id, product, sha256, version,"
                             " released_by, released_at FROM ft_plugin_releases ORDER BY product, id DESC) r",
        0, NULL, out, err);
}

int ft_fleet_store_release_history(PGconn *conn, json_t **out, ft_error_t *err)
{
    return ft_sql_json(conn, "reading the release history",
                       "SELECT coalesce(json_agg(json_build_object('product', product, 'release_id', id, 'sha256', sha256,"
                       " 'released_epoch', extract(epoch FROM released_at))"
                       " ORDER BY product, id DESC), '[]') FROM ft_plugin_releases",
                       0, NULL, out, err);
}

int ft_fleet_store_release_file(PGconn *conn, long long release_id, unsigned char **bytes, size_t *len, ft_error_t *err)
{
    char id[24];
    snprintf(id, sizeof(id), "%lld", release_id);
    const char *params[] = {id};
    PGresult *res = PQexecParams(conn, "SELECT file FROM ft_plugin_releases WHERE id = $1", 1, NULL, params, NULL, NULL, 1);
    int rc = FT_OK;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = ft_db_error(conn, res, err, "reading a plugin release");
        goto out;
    }
    if (PQntuples(res) != 1) {
        rc = ft_error_set(err, FT_ENOTFOUND, "plugin release %s not found", id);
        goto out;
    }
    *len = (size_t)PQgetlength(res, 0, 0);
    *bytes = ft_mem_alloc(*len + 1);
    memcpy(*bytes, PQgetvalue(res, 0, 0), *len);
out:
    PQclear(res);
    return rc;
}

int ft_fleet_store_release(PGconn *conn, const ft_release_t *rel, int if_absent, long long *release_id, char current_sha256[65],
                           ft_error_t *err)
{
    const char *lock[] = {rel->product};
    PGresult *res = NULL;
    int rc = ft_sql(conn, "locking the product's releases",
                    "SELECT pg_advisory_xact_lock(hashtext('ft_plugin_releases'), hashtext($1))", 1, lock, NULL, err);
    if (rc != FT_OK)
        return rc;
    rc = ft_sql(conn, "reading the current release",
                "SELECT id, sha256 FROM ft_plugin_releases WHERE product = $1 ORDER BY id DESC LIMIT 1", 1, lock, &res, err);
    if (rc != FT_OK)
        return rc;
    if (PQntuples(res) == 1 && (if_absent || strcmp(PQgetvalue(res, 0, 1), rel->sha256) == 0)) {
        *release_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        snprintf(current_sha256, 65, "%s", PQgetvalue(res, 0, 1));
        PQclear(res);
        return FT_OK;
    }
    PQclear(res);
    char *hex = ft_mem_alloc(FT_SQL_BYTEA_PARAM(rel->len));
    ft_sql_bytea_param(rel->file, rel->len, hex);
    const char *params[] = {rel->product, rel->sha256, rel->version, hex, rel->released_by, rel->host_id, rel->rollout_id};
    rc = ft_sql_row(conn, "recording the release",
                    "INSERT INTO ft_plugin_releases (product, sha256, version, file, released_by, host_id, rollout_id)"
                    " VALUES ($1, $2, $3, $4::bytea, $5, $6, $7) RETURNING id",
                    7, params, &res, err);
    free(hex);
    if (rc != FT_OK)
        return rc;
    *release_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    snprintf(current_sha256, 65, "%s", rel->sha256);
    PQclear(res);
    return FT_OK;
}

int ft_fleet_store_new_id(PGconn *conn, char id[37], ft_error_t *err)
{
    return row_id(conn, "making a rollout id", "SELECT gen_random_uuid()", 0, NULL, id, err);
}

int ft_fleet_store_live_hosts(PGconn *conn, const char *except, json_t **ids, ft_error_t *err)
{
    const char *params[] = {except};
    return ft_sql_json(conn, "listing the live hosts",
                       "SELECT coalesce(json_agg(h.id ORDER BY h.started_at), '[]') FROM ft_hosts h"
                       " WHERE h.id <> $1 AND " HOST_STATUS " = 'live'",
                       1, params, ids, err);
}

int ft_fleet_store_rollout_insert(PGconn *conn, const ft_rollout_row_t *r, ft_error_t *err)
{
    char *items = json_dumps(r->items, JSON_COMPACT), *hosts = json_dumps(r->hosts, JSON_COMPACT);
    const char *params[] = {r->id, r->coordinator, r->actor, r->mode, r->product, r->force ? "true" : "false",
                            items, hosts,          r->state};
    int rc = ft_sql(conn, "recording the rollout",
                    "INSERT INTO ft_plugin_rollouts (id, coordinator, actor, mode, product, force, items, hosts, state,"
                    " finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb,"
                    " ARRAY(SELECT jsonb_array_elements_text($8::jsonb))::uuid[], $9,"
                    " CASE WHEN $9 = 'rolling' THEN NULL ELSE clock_timestamp() END)",
                    9, params, NULL, err);
    free(items);
    free(hosts);
    return rc;
}

int ft_fleet_store_rollout_finish(PGconn *conn, const char *id, const char *state, char *started_at, char *finished_at,
                                  ft_error_t *err)
{
    const char *params[] = {id, state};
    PGresult *res = NULL;
    int rc = ft_sql_row(conn, "finishing the rollout",
                        "UPDATE ft_plugin_rollouts SET state = CASE WHEN state = 'rolling' THEN $2 ELSE state END,"
                        " finished_at = coalesce(finished_at, clock_timestamp()) WHERE id = $1"
                        " RETURNING " ISO("started_at") ", " ISO("finished_at"),
                        2, params, &res, err);
    if (rc != FT_OK)
        return rc;
    if (started_at != NULL)
        snprintf(started_at, 40, "%s", PQgetvalue(res, 0, 0));
    if (finished_at != NULL)
        snprintf(finished_at, 40, "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    return FT_OK;
}

int ft_fleet_store_results_insert(PGconn *conn, const char *rollout_id, const char *host_id, json_t *results, ft_error_t *err)
{
    char *doc = json_dumps(results, JSON_COMPACT);
    const char *params[] = {rollout_id, host_id, doc};
    int rc = ft_sql(conn, "recording the rollout results",
                    "INSERT INTO ft_plugin_rollout_results (rollout_id, host_id, product, result, generation,"
                    " serving_generation, version, sha256, reason, load_ms) SELECT $1, $2, x.product, x.result, x.generation,"
                    " x.serving_generation, x.version, x.sha256, x.reason, x.load_ms FROM jsonb_to_recordset($3::jsonb) AS"
                    " x(product text, result text, generation bigint, serving_generation bigint, version text, sha256 text,"
                    " reason text, load_ms double precision) ON CONFLICT DO NOTHING",
                    3, params, NULL, err);
    free(doc);
    return rc;
}

int ft_fleet_store_notify(PGconn *conn, const char *channel, const char *payload, ft_error_t *err)
{
    const char *params[] = {channel, payload};
    return ft_sql(conn, "notifying the fleet", "SELECT pg_notify($1, $2)", 2, params, NULL, err);
}

int ft_fleet_store_pending(PGconn *conn, const char *host_id, json_t **out, ft_error_t *err)
{
    const char *params[] = {host_id};
    return ft_sql_json(conn, "reading the pending rollouts",
                       "SELECT coalesce(json_agg(json_build_object('id', r.id, 'force', r.force, 'items', r.items)"
                       " ORDER BY r.started_at), '[]') FROM ft_plugin_rollouts r WHERE r.state = 'rolling'"
                       " AND $1::uuid = ANY (r.hosts) AND NOT EXISTS (SELECT 1 FROM ft_plugin_rollout_results x"
                       " WHERE x.rollout_id = r.id AND x.host_id = $1)",
                       1, params, out, err);
}

int ft_fleet_store_rollout_hosts(PGconn *conn, const char *rollout_id, json_t **out, ft_error_t *err)
{
    const char *params[] = {rollout_id};
    return ft_sql_json(
        conn, "reading the rollout's results",
        "SELECT coalesce(json_agg(json_build_object('host_id', h.id, 'hostname', h.hostname, 'status', " HOST_STATUS
        ", 'coordinator', h.id = r.coordinator, 'results', (SELECT coalesce(json_agg(json_strip_nulls(json_build_object("
        "'product', x.product, 'result', x.result, 'generation', x.generation, 'serving_generation', x.serving_generation,"
        " 'version', x.version, 'sha256', x.sha256, 'reason', x.reason, 'load_ms', x.load_ms)) ORDER BY x.product), '[]')"
        " FROM ft_plugin_rollout_results x WHERE x.rollout_id = r.id AND x.host_id = h.id), 'plugins', " HOST_PLUGINS
        ") ORDER BY h.id <> r.coordinator, h.hostname, h.started_at), '[]')"
        " FROM ft_plugin_rollouts r JOIN ft_hosts h ON h.id = r.coordinator OR h.id = ANY (r.hosts) WHERE r.id = $1",
        1, params, out, err);
}

int ft_fleet_store_hosts(PGconn *conn, int all, json_t **out, ft_error_t *err)
{
    const char *params[] = {all ? "true" : "false"};
    return ft_sql_json(
        conn, "listing the hosts",
        "SELECT coalesce(json_agg(json_build_object('id', h.id, 'hostname', h.hostname, 'pid', h.pid, 'roles', h.roles,"
        " 'version', h.version, 'commit', h.commit, 'address', h.address, 'started_at', " ISO(
            "h.started_at") ", 'heartbeat_at', " ISO("h.heartbeat_at") ", 'status', h.status, 'plugins', h.plugins)"
                                                                       " ORDER BY h.started_at DESC, h.id), '[]') FROM (SELECT "
                                                                       "h.*, " HOST_STATUS " AS status, " HOST_PLUGINS
                                                                       " AS plugins FROM ft_hosts h) h WHERE h.status = 'live' OR "
                                                                       "($1::boolean AND h.heartbeat_at > now() - interval '1 "
                                                                       "hour')",
        1, params, out, err);
}
