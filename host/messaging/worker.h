/*
 * Workers (role worker): pull jobs from the FT_JOBS work queue (durable consumer ft-workers)
 * and run the product plugin's steps for each. A failed attempt is retried after an exponential
 * backoff with jitter; after the last attempt (or at once for an error that retrying cannot
 * fix) the job goes to the FT_DLQ stream with its error history, is marked failed, and
 * job.failed.v1 tells the core. Progress is stored per step, so a restarted job resumes after
 * its last completed step; the inbox makes a redelivered message have one effect.
 */
#ifndef FT_WORKER_H
#define FT_WORKER_H

#include "core/error.h"
#include "infra/nats.h"
#include "infra/tenant_db.h"
#include "plugins/registry.h"

#define FT_WORKER_CONSUMER "ft-workers" /* the workers' durable pull consumer on FT_JOBS */

typedef struct ft_worker_config {
    const char *database_url;
    ft_nats_t *nats;
    ft_registry_t *registry;
    ft_tenant_db_config_t tenant;
    unsigned threads;
    unsigned batch;    /* messages one thread fetches at once, at most */
    unsigned flush_ms; /* how long quick jobs' outcomes are gathered before they are recorded together */
    unsigned max_attempts;
    unsigned backoff_ms, backoff_max_ms;
    unsigned ack_wait_ms;
    unsigned sweep_ms; /* subscription period roll-over and archive retention */
} ft_worker_config_t;

typedef struct ft_workers ft_workers_t;

ft_workers_t *ft_workers_start(const ft_worker_config_t *cfg, ft_error_t *err);
void ft_workers_stop(ft_workers_t *w);

/* The delay before attempt `attempt` + 1: base * 2^(attempt-1), capped, with equal jitter
 * (a uniform draw in [d/2, d]). r is a uniform draw in [0, 1). */
unsigned ft_backoff_ms(unsigned attempt, unsigned base, unsigned cap, double r);

#endif
