/*
 * The transactional outbox: events are written with the change they describe, inside the
 * caller's transaction, and published later by the relay.
 */
#ifndef FT_OUTBOX_STORE_H
#define FT_OUTBOX_STORE_H

#include <jansson.h>
#include <libpq-fe.h>

#include "core/error.h"
#include "domain/events.h"
#include "store/scope.h"

/* Appends `event` (a CloudEvents envelope) for publication on `subject`. The caller's
 * transaction must be open; ordering is kept per (aggregate_type, aggregate_id). An event whose
 * id is already in the outbox is not written again. */
int ft_outbox_append(PGconn *c, const char *aggregate_type, const char *aggregate_id, const char *subject, json_t *event,
                     ft_error_t *err);

/* Builds the CloudEvent `name` (e.g. "customer.created.v1", data stolen) about
 * <aggregate_type>s/<aggregate_id> and appends it for subject ft.events.<name>. */
int ft_outbox_emit(PGconn *c, const char *aggregate_type, const char *aggregate_id, const char *name, const ft_event_meta_t *meta,
                   json_t *data, ft_error_t *err);

/* Appends the events a plugin call emitted about an instance ([{"type", "data"}], borrowed), in
 * order, inside the caller's open transaction. With job_id, each id derives from (job, step
 * position, order), so a step that runs again writes the same ids and the first write stands;
 * without, the ids are fresh. */
int ft_outbox_emit_plugin_events(PGconn *c, const char *instance_id, const ft_event_meta_t *meta, const char *job_id, int position,
                                 json_t *events, ft_error_t *err);

/* Events collected in memory (a JSON array of rows, NULL when empty) and written by
 * ft_outbox_rows_write in one statement, in the order they were added, inside the caller's open
 * transaction: a worker records the outcomes of a whole batch of jobs at once. */
typedef struct ft_outbox_rows {
    json_t *rows;
} ft_outbox_rows_t;
/* As ft_outbox_emit (data stolen), into rows. */
void ft_outbox_rows_emit(ft_outbox_rows_t *rows, const char *aggregate_type, const char *aggregate_id, const char *name,
                         const ft_event_meta_t *meta, json_t *data);
/* Writes the rows (nothing when there are none) and empties them. */
int ft_outbox_rows_write(PGconn *c, ft_outbox_rows_t *rows, ft_error_t *err);
void ft_outbox_rows_free(ft_outbox_rows_t *rows);

/* Ends a store's change of one entity: when rc is FT_OK, emits "<aggregate>.<what>.v1" with data
 * {"<aggregate>": entity, "actor"} (or {"<aggregate>_id": id, "actor"} when entity is NULL;
 * entity is borrowed) and commits; otherwise rolls back. Returns the outcome. */
int ft_outbox_finish(PGconn *c, const ft_call_t *call, const char *aggregate, const char *what, const char *id, json_t *entity, int rc,
                     ft_error_t *err);

/*
 * The relay's side, on its own connection inside its batch's transaction.
 * ft_outbox_claim: up to `limit` unpublished rows in seq order, locked FOR UPDATE SKIP LOCKED
 * under their aggregate's transaction-scoped advisory lock, as (seq, id, subject, event) in *res.
 * ft_outbox_mark_published: stamps the rows whose seqs `seqs` lists (a PostgreSQL bigint array
 * literal, "{1,2}") with the time of the marking, in one statement.
 */
int ft_outbox_claim(PGconn *c, unsigned limit, PGresult **res, ft_error_t *err);
int ft_outbox_mark_published(PGconn *c, const char *seqs, ft_error_t *err);
#endif
