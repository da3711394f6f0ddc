/*
 * Readiness: a monitor thread probes the database (and that every migration is applied) and
 * keeps the JetStream streams in place after each NATS (re)connect. HTTP threads read the
 * last verdict; they never wait on a probe.
 */
#ifndef FT_READINESS_H
#define FT_READINESS_H

#include "infra/migrate.h"
#include "infra/nats.h"

typedef struct ft_readiness ft_readiness_t;

typedef struct ft_readiness_report {
    int database_ok, migrations_ok, nats_ok, streams_ok;
    int nats_required;                                            /* 0: nats and streams are reported but do not decide readiness */
    char database[512], migrations[512], nats[512], streams[512]; /* "ok" or why not */
} ft_readiness_report_t;

/* Starts the monitor; `migrations` and `nats` must outlive it. nats may be NULL (no checks).
 * nats_required: whether this process needs NATS to do its work (a relay or a worker does; an API
 * host only writes the outbox, so a NATS or JetStream outage must not take it out of a load
 * balancer's rotation). */
ft_readiness_t *ft_readiness_start(const char *database_url, const ft_migration_set_t *migrations, ft_nats_t *nats,
                                   int nats_required, unsigned interval_ms);
void ft_readiness_stop(ft_readiness_t *r);
/* Copies the latest verdict; cheap, safe on any thread. Returns 1 when everything is ready. */
int ft_readiness_get(ft_readiness_t *r, ft_readiness_report_t *out);
/* Writes the names of the checks that are not ok ("database, nats") into buf; returns buf. */
const char *ft_readiness_failing(const ft_readiness_report_t *rep, char *buf, size_t len);

#endif
