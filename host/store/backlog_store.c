/*
 * Backlog counts for the metrics sampler.
 */
#include "store/backlog_store.h"

#include "store/sql.h"

#include <stdlib.h>

int ft_backlog_read(PGconn *c, ft_backlog_t *out, ft_error_t *err)
{
    PGresult *res = NULL;
    int rc = ft_sql_row(c, "reading the backlogs",
                        "SELECT (SELECT count(*) FROM ft_outbox_pending),"
                        " COALESCE((SELECT EXTRACT(EPOCH FROM now() - created_at) FROM ft_outbox"
                        "   WHERE seq = (SELECT min(seq) FROM ft_outbox_pending)), 0),"
                        " (SELECT count(*) FROM ft_dlq WHERE replayed_at IS NULL AND discarded_at IS NULL)",
                        0, NULL, &res, err);
    if (rc == FT_OK) {
        out->outbox_unpublished = atoll(PQgetvalue(res, 0, 0));
        out->outbox_oldest_age_s = strtod(PQgetvalue(res, 0, 1), NULL);
        out->dlq_open = atoll(PQgetvalue(res, 0, 2));
    }
    PQclear(res);
    return rc;
}
