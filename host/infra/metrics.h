/*
 * Prometheus metrics. Each HTTP loop thread owns a shard it alone writes (no locked
 * instructions on the request path); a scrape sums the shards. Routes are registered at
 * start, before any shard exists.
 */
#ifndef FT_METRICS_H
#define FT_METRICS_H

#include <stdint.h>
#include <stdio.h>

#define FT_METRICS_MAX_ROUTES 128
#define FT_METRICS_ROUTE_UNMATCHED 0 /* requests no route matched, and errors h2o answers itself */

typedef struct ft_metrics_shard ft_metrics_shard_t;

void ft_metrics_init(const char *version, const char *commit);
/* Registers a (method, route) label pair and returns its index; call before ft_metrics_shard_create. */
unsigned ft_metrics_route(const char *method, const char *route);
/* A shard for one thread; lives until process exit (scrapes may read it at any time). */
ft_metrics_shard_t *ft_metrics_shard_create(void);
void ft_metrics_observe(ft_metrics_shard_t *shard, unsigned route, int status, uint64_t duration_ns);

/* Extra metric families (jobs, outbox, plugins...) render through collectors registered at start. */
typedef void (*ft_metrics_collector_fn)(FILE *out, void *data);
void ft_metrics_add_collector(ft_metrics_collector_fn fn, void *data);

/* The whole exposition text; the caller frees *text. */
void ft_metrics_render(char **text, size_t *len);

#endif
