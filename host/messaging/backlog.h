/*
 * The backlog sampler: one background thread that reads, every interval, what a scrape must
 * not wait for (a query, a blocking cnats call) and sets gauges: jobs waiting in JetStream for
 * the workers, messages in the DLQ stream, open dead letters, unpublished outbox rows and the
 * age of the oldest.
 */
#ifndef FT_BACKLOG_H
#define FT_BACKLOG_H

#include "infra/nats.h"

typedef struct ft_backlog_sampler ft_backlog_sampler_t;

/* Starts sampling at once and then every interval_ms; the thread keeps its own connection. */
ft_backlog_sampler_t *ft_backlog_sampler_start(const char *database_url, ft_nats_t *nats, unsigned interval_ms);
/* Stops and joins the thread (NULL is fine). */
void ft_backlog_sampler_stop(ft_backlog_sampler_t *b);

#endif
