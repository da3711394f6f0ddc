/*
 * Outbox rows. The relay reads them in seq order, one partition (a set of aggregates) at a time
 * under the partition's transaction-scoped advisory lock.
 */
#include "store/outbox_store.h"

#include "core/mem.h"
#include "store/sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

int ft_outbox_append(PGconn *c, const char *aggregate_type, const char *aggregate_id, const char *subject, json_t *event,
                     ft_error_t *err)
{
    char *text = json_dumps(event, JSON_COMPACT);
    const char *params[] = {json_string_value(json_object_get(event, "id")), aggregate_type, aggregate_id, subject,
                            json_string_value(json_object_get(event, "type")), text};
    int rc = ft_sql(c, "appending to the outbox",
                    "INSERT INTO ft_outbox (id, aggregate_type, aggregate_id, subject, type, event)"
                    " VALUES ($1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT (id) DO NOTHING",
                    6, params, NULL, err);
    free(text);
    return rc;
}

/* ft_outbox_emit with the event's id given (NULL: a fresh one). */
static int emit_as(PGconn *c, const char *id, const char *aggregate_type, const char *aggregate_id, const char *name,
                   const ft_event_meta_t *meta, json_t *data, ft_error_t *err)
{
    char subject[160], path[160];
    snprintf(subject, sizeof(subject), "ft.events.%s", name);
    snprintf(path, sizeof(path), "%ss/%s", aggregate_type, aggregate_id);
    json_t *ev = id != NULL ? ft_event_new_with_id(id, name, path, meta, data) : ft_event_new(name, path, meta, data, NULL);
    int rc = ft_outbox_append(c, aggregate_type, aggregate_id, subject, ev, err);
    json_decref(ev);
    return rc;
}

int ft_outbox_emit(PGconn *c, const char *aggregate_type, const char *aggregate_id, const char *name, const ft_event_meta_t *meta,
                   json_t *data, ft_error_t *err)
{
    return emit_as(c, NULL, aggregate_type, aggregate_id, name, meta, data, err);
}

/* The id of the n-th event a job's step emitted: a name-based UUID, the same every time the step runs. */
static void step_event_id(const char *job_id, int position, size_t n, char out[37])
{
    static const uuid_t ns = {0x6f, 0x1c, 0x2b, 0x90, 0x54, 0x1d, 0x4c, 0x5e, 0x9a, 0x4b, 0x7e, 0x33, 0x21, 0x0d, 0x8f, 0x62};
    char name[96];
    int len = snprintf(name, sizeof(name), "%s/%d/%zu", job_id, position, n);
    uuid_t u;
    uuid_generate_sha1(u, ns, name, (size_t)len);
    uuid_unparse_lower(u, out);
}

int ft_outbox_emit_plugin_events(PGconn *c, const char *instance_id, const ft_event_meta_t *meta, const char *job_id, int position,
                                 json_t *events, ft_error_t *err)
{
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev)
    {
        char id[37];
        if (job_id != NULL)
            step_event_id(job_id, position, i, id);
        int rc = emit_as(c, job_id != NULL ? id : NULL, "instance", instance_id, json_string_value(json_object_get(ev, "type")), meta,
                         json_incref(json_object_get(ev, "data")), err);
        if (rc != FT_OK)
            return rc;
    }
    return FT_OK;
}

void ft_outbox_rows_emit(ft_outbox_rows_t *rows, const char *aggregate_type, const char *aggregate_id, const char *name,
                         const ft_event_meta_t *meta, json_t *data)
{
    char subject[160], path[160];
    snprintf(subject, sizeof(subject), "ft.events.%s", name);
    snprintf(path, sizeof(path), "%ss/%s", aggregate_type, aggregate_id);
    json_t *ev = ft_event_new(name, path, meta, data, NULL);
    if (rows->rows == NULL)
        rows->rows = json_array();
    json_array_append_new(rows->rows, json_pack("{s:O, s:s, s:s, s:s, s:O, s:o}", "id", json_object_get(ev, "id"),
                                                "aggregate_type", aggregate_type, "aggregate_id", aggregate_id, "subject",
                                                subject, "type", json_object_get(ev, "type"), "event", ev));
}

int ft_outbox_rows_write(PGconn *c, ft_outbox_rows_t *rows, ft_error_t *err)
{
    if (json_array_size(rows->rows) == 0)
        return FT_OK;
    char *text = json_dumps(rows->rows, JSON_COMPACT);
    const char *params[] = {text};
    int rc = ft_sql_prepared(c, "appending to the outbox",
                             "INSERT INTO ft_outbox (id, aggregate_type, aggregate_id, subject, type, event)"
                             " SELECT x.id, x.aggregate_type, x.aggregate_id, x.subject, x.type, x.event"
                             " FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (id uuid, aggregate_type text,"
                             "  aggregate_id text, subject text, type text, event jsonb))"
                             " WITH ORDINALITY AS x(id, aggregate_type, aggregate_id, subject, type, event, n)"
                             " ORDER BY x.n ON CONFLICT (id) DO NOTHING",
                             1, params, NULL, err);
    free(text);
    json_array_clear(rows->rows);
    return rc;
}

void ft_outbox_rows_free(ft_outbox_rows_t *rows)
{
    json_decref(rows->rows);
    rows->rows = NULL;
}

int ft_outbox_finish(PGconn *c, const ft_call_t *call, const char *aggregate, const char *what, const char *id, json_t *entity, int rc,
                     ft_error_t *err)
{
    if (rc == FT_OK) {
        char name[96], id_member[64];
        snprintf(name, sizeof(name), "%s.%s.v1", aggregate, what);
        snprintf(id_member, sizeof(id_member), "%s_id", aggregate);
        ft_event_meta_t meta = {.correlation_id = call->correlation_id, .traceparent = call->traceparent};
        json_t *data = entity != NULL ? json_pack("{s:O, s:s}", aggregate, entity, "actor", call->actor)
                                      : json_pack("{s:s, s:s}", id_member, id, "actor", call->actor);
        rc = ft_outbox_emit(c, aggregate, id, name, &meta, data, err);
    }
    if (rc == FT_OK)
        rc = ft_sql_commit(c, err);
    else
        ft_sql_rollback(c);
    return rc;
}


/* Runs the script `before` <array> `after` in one round trip, the array being an int array literal
 * the relay built: digits, commas and braces only, so it can be written into the script. */
static int run_with_array(PGconn *c, const char *what, const char *before, const char *array, const char *after, PGresult **res,
                          ft_error_t *err)
{
    if (array[0] != '{' || strspn(array, "{},0123456789") != strlen(array))
        return ft_error_set(err, FT_EINVAL, "%s: %.40s is not an int array", what, array);
    size_t lb = strlen(before), la = strlen(array), lc = strlen(after);
    char *sql = ft_mem_alloc(lb + la + lc + 1);
    memcpy(sql, before, lb);
    memcpy(sql + lb, array, la);
    memcpy(sql + lb + la, after, lc + 1);
    int rc = ft_sql_script(c, what, sql, res, err);
    free(sql);
    return rc;
}

int ft_outbox_begin_batch(PGconn *c, const char *partitions, PGresult **res, ft_error_t *err)
{
    return run_with_array(c, "locking outbox partitions", "BEGIN; SELECT coalesce(array_agg(p), '{}')::text FROM unnest('", partitions,
                          "'::int[]) p WHERE pg_try_advisory_xact_lock(hashtext('ft_outbox partition'), p)", res, err);
}

/* The pending list walked in seq order, the other lanes' partitions filtered out, then each event
 * looked up by its seq: no row lock and no advisory lock per row (a statement that starts after
 * the partitions' locks were taken sees every entry their last holder deleted). Written as a
 * lookup by array rather than a join, which the planner may run as a merge join that reads the
 * outbox from its first row, every published one included (116 ms against 3 ms measured with
 * 40,000 published rows before 10,000 pending ones). */
int ft_outbox_claim(PGconn *c, const char *partitions, unsigned limit, PGresult **res, ft_error_t *err)
{
    char text[16];
    snprintf(text, sizeof(text), "%u", limit);
    const char *params[] = {partitions, text};
    return ft_sql_prepared(c, "claiming outbox rows",
                           "SELECT seq, id, subject, event::text FROM ft_outbox WHERE seq = ANY(ARRAY("
                           "SELECT seq FROM ft_outbox_pending WHERE partition = ANY($1::int[]) ORDER BY seq LIMIT $2::int))"
                           " ORDER BY seq",
                           2, params, res, err);
}

int ft_outbox_end_batch(PGconn *c, const char *seqs, ft_error_t *err)
{
    /* clock_timestamp: the moment the acknowledgements were in, not the batch's start (now()) */
    return run_with_array(c, "marking outbox rows published", "WITH done AS (DELETE FROM ft_outbox_pending WHERE seq = ANY('", seqs,
                          "'::bigint[]) RETURNING seq) INSERT INTO ft_outbox_published (seq, published_at)"
                          " SELECT seq, clock_timestamp() FROM done; COMMIT",
                          NULL, err);
}
