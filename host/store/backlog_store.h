/*
 * The control plane's backlogs as numbers: outbox rows not yet published and dead letters
 * still open, read by the backlog sampler for the metrics.
 */
#ifndef FT_BACKLOG_STORE_H
#define FT_BACKLOG_STORE_H

#include <libpq-fe.h>

#include "core/error.h"

typedef struct ft_backlog {
    long long outbox_unpublished;
    double outbox_oldest_age_s; /* of the first unpublished row in seq order; 0 when there is none */
    long long dlq_open;         /* dead letters neither replayed nor discarded */
} ft_backlog_t;

/* One round trip, on the two partial indexes. */
int ft_backlog_read(PGconn *c, ft_backlog_t *out, ft_error_t *err);

#endif
