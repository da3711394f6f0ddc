/*
 * Prometheus metrics. Two kinds live here:
 *
 * - HTTP request counters and latency histograms: each HTTP loop thread owns a shard it alone
 *   writes (no locked instruction on the request path); a scrape sums the shards. Routes are
 *   registered at start, before any shard exists.
 * - Declared families: every other counter, gauge or histogram is declared once, at file scope
 *   next to the code it measures (FT_COUNTER, FT_GAUGE, FT_HISTOGRAM below), registers itself
 *   before main runs, and every scrape renders it. Debian packages no C Prometheus client
 *   library, so this is a small one in the same spirit: atomics only, usable from any thread
 *   (relay, workers, cnats callbacks, HTTP loops), label sets small and bounded.
 */
#ifndef FT_METRICS_H
#define FT_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
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

/* The whole exposition text (version 0.0.4); the caller frees *text. Never blocks on I/O:
 * gauges that need a query or a cnats call are sampled by a background thread and set. */
void ft_metrics_render(char **text, size_t *len);

/* ---------------------------------------------------------------- declared families */

#define FT_METRIC_MAX_LABELS 3
/* Series per family. Label values come from bounded sets (job kinds, products, steps, scopes);
 * past this bound, new label combinations are counted nowhere rather than grow memory. */
#define FT_METRIC_MAX_SERIES 256

typedef enum { FT_METRIC_COUNTER, FT_METRIC_GAUGE, FT_METRIC_HISTOGRAM } ft_metric_type_t;

typedef struct ft_series ft_series_t;
/* A callback gauge's reader, called by the scrape (an HTTP loop thread): quick, no I/O. */
typedef double (*ft_gauge_read_fn)(void *arg);

/* One family. Declare it with the macros below; the fields after `nbuckets` are the registry's. */
typedef struct ft_metric {
    const char *name, *help;
    ft_metric_type_t type;
    const double *buckets; /* histograms: upper bounds, ascending (+Inf is implied) */
    size_t nbuckets;
    const char *labels[FT_METRIC_MAX_LABELS + 1]; /* label names, NULL-terminated */
    unsigned nlabels;
    struct ft_metric *next;
    ft_series_t *_Atomic series[FT_METRIC_MAX_SERIES];
    atomic_uint nseries;
    ft_series_t *overflow; /* takes updates past FT_METRIC_MAX_SERIES; never rendered */
    ft_gauge_read_fn read; /* a callback gauge's reader, or NULL (guarded by the registry's bind lock) */
    void *read_arg;
} ft_metric_t;

/* clang-format off */
#define FT_LABELS(...) {__VA_ARGS__, NULL}
#define FT_NO_LABELS {NULL}
/* clang-format on */

#define FT_METRIC_DECLARE_(var, type_, name_, help_, buckets_, nbuckets_, ...)                                                     \
    static ft_metric_t var = {                                                                                                     \
        .name = name_, .help = help_, .type = type_, .buckets = buckets_, .nbuckets = nbuckets_, .labels = __VA_ARGS__};           \
    __attribute__((constructor)) static void var##_register_(void)                                                                 \
    {                                                                                                                              \
        ft_metric_register(&var);                                                                                                  \
    }

/* FT_COUNTER(jobs, "ft_jobs_total", "Jobs that ended, by kind and outcome.", FT_LABELS("kind", "outcome"));
 * declares `static ft_metric_t jobs` and registers it. Names follow Prometheus conventions:
 * ft_ prefix, base units, counters end in _total. */
#define FT_COUNTER(var, name, help, labels) FT_METRIC_DECLARE_(var, FT_METRIC_COUNTER, name, help, NULL, 0, labels)
#define FT_GAUGE(var, name, help, labels) FT_METRIC_DECLARE_(var, FT_METRIC_GAUGE, name, help, NULL, 0, labels)
/* bounds: a static const double array (its size is taken with sizeof). */
#define FT_HISTOGRAM(var, name, help, bounds, labels)                                                                              \
    FT_METRIC_DECLARE_(var, FT_METRIC_HISTOGRAM, name, help, bounds, sizeof(bounds) / sizeof((bounds)[0]), labels)

/* Adds a family to the exposition; the declaring macros call it before main. Asserts that the
 * name and labels are well formed and the name is not taken. */
void ft_metric_register(ft_metric_t *m);

/* The series of m for its label values, given in the order the labels were declared, as many
 * as m has (none for an unlabelled family). Created on first use, then found without a lock.
 * Values are copied. Never NULL. */
ft_series_t *ft_metric_series(ft_metric_t *m, ...);

void ft_counter_add(ft_series_t *s, uint64_t n);
static inline void ft_counter_inc(ft_series_t *s)
{
    ft_counter_add(s, 1);
}
void ft_gauge_set(ft_series_t *s, double v);
void ft_gauge_add(ft_series_t *s, double delta);
void ft_histogram_observe(ft_series_t *s, double v);

/* Makes the unlabelled gauge m read fn(arg) at every scrape instead of a set value; fn NULL
 * unbinds. Once this returns, no scrape is still calling the previous reader, so its arg may
 * be freed. */
void ft_gauge_bind(ft_metric_t *m, ft_gauge_read_fn fn, void *arg);

/* A series' current value: a counter's count, a gauge's value, a histogram's observation count
 * (for tests and for code that reports what it measured). */
double ft_series_value(ft_series_t *s);

#endif
