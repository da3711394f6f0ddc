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
 * The relay's side, one batch as one transaction on the relay's own connection. A row waits for
 * the relay while its seq is in ft_outbox_pending (the insert trigger adds it there). The outbox
 * is split into FT_OUTBOX_PARTITIONS partitions by a hash of (aggregate_type, aggregate_id), so
 * all of an aggregate's rows are in one partition; a partition is published by one transaction
 * at a time.
 * ft_outbox_begin_batch: begins the transaction and takes the transaction-scoped lock of each
 * partition that `partitions` (an int array literal, "{0,2}") lists and no other transaction
 * holds, in one round trip; *res has one row, one column: the array literal of those taken.
 * ft_outbox_claim: up to `limit` pending rows of the listed partitions in seq order, as (seq, id,
 * subject, event) in *res; prepared once per connection (ft_sql_prepared: a connection of the
 * calling thread's own). Call it after ft_outbox_begin_batch: a later statement sees every row
 * the partitions' last holders marked.
 * ft_outbox_end_batch: takes the rows whose seqs `seqs` lists (a bigint array literal, "{1,2}";
 * "{}" for none) off the pending list, records them in ft_outbox_published with the time of the
 * marking, and commits, in one round trip. On failure the caller rolls back.
 * The array literals are the relay's own (FT_EINVAL for anything but digits, commas and braces).
 */
#define FT_OUTBOX_PARTITIONS 64 /* as migrations/0016_outbox_pending.sql computes them */
int ft_outbox_begin_batch(PGconn *c, const char *partitions, PGresult **res, ft_error_t *err);
int ft_outbox_claim(PGconn *c, const char *partitions, unsigned limit, PGresult **res, ft_error_t *err);
int ft_outbox_end_batch(PGconn *c, const char *seqs, ft_error_t *err);
#endif
