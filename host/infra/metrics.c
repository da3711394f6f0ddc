/*
 * Request counters and latency histograms by route and status, build info and uptime,
 * in the Prometheus text exposition format (version 0.0.4).
 */
#include "infra/metrics.h"

#include "core/mem.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Statuses get their own series; anything else is counted under its class ("2xx" ...). */
static const int tracked_status[] = {200, 201, 202, 204, 206, 301, 302, 304, 400, 401, 403, 404, 405, 406, 409,
                                     410, 412, 413, 415, 422, 428, 429, 500, 501, 502, 503, 504};
#define NTRACKED (sizeof(tracked_status) / sizeof(tracked_status[0]))
#define NSTATUS (NTRACKED + 5) /* + 1xx..5xx classes */

static const double bucket_le[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                   0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,     10};
#define NBUCKETS (sizeof(bucket_le) / sizeof(bucket_le[0]))
static uint64_t bucket_ns[NBUCKETS];

typedef struct cell {
    _Atomic uint64_t count;
    _Atomic uint64_t sum_ns;
    _Atomic uint64_t buckets[NBUCKETS]; /* non-cumulative; made cumulative at render */
} cell_t;

struct ft_metrics_shard {
    cell_t cells[FT_METRICS_MAX_ROUTES][NSTATUS];
    ft_metrics_shard_t *next;
};

typedef struct collector {
    ft_metrics_collector_fn fn;
    void *data;
} collector_t;

static struct {
    char *labels[FT_METRICS_MAX_ROUTES][2]; /* method, route */
    unsigned nroutes;
    ft_metrics_shard_t *_Atomic shards;
    collector_t collectors[16];
    unsigned ncollectors;
    struct timespec start_mono;
    double start_unix;
    char *version, *commit;
} m;

void ft_metrics_init(const char *version, const char *commit)
{
    m.version = ft_mem_strdup(version);
    m.commit = ft_mem_strdup(commit);
    clock_gettime(CLOCK_MONOTONIC, &m.start_mono);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    m.start_unix = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
    for (size_t i = 0; i < NBUCKETS; i++)
        bucket_ns[i] = (uint64_t)(bucket_le[i] * 1e9 + 0.5);
    m.labels[0][0] = ft_mem_strdup("");
    m.labels[0][1] = ft_mem_strdup("unmatched");
    m.nroutes = 1;
}

unsigned ft_metrics_route(const char *method, const char *route)
{
    for (unsigned i = 1; i < m.nroutes; i++)
        if (strcmp(m.labels[i][0], method) == 0 && strcmp(m.labels[i][1], route) == 0)
            return i;
    if (m.nroutes == FT_METRICS_MAX_ROUTES)
        return FT_METRICS_ROUTE_UNMATCHED;
    m.labels[m.nroutes][0] = ft_mem_strdup(method);
    m.labels[m.nroutes][1] = ft_mem_strdup(route);
    return m.nroutes++;
}

ft_metrics_shard_t *ft_metrics_shard_create(void)
{
    ft_metrics_shard_t *s = ft_mem_calloc(1, sizeof(*s));
    ft_metrics_shard_t *head = atomic_load(&m.shards);
    do {
        s->next = head;
    } while (!atomic_compare_exchange_weak(&m.shards, &head, s));
    return s;
}

static unsigned status_slot(int status)
{
    for (unsigned i = 0; i < NTRACKED; i++)
        if (tracked_status[i] == status)
            return i;
    int cls = status / 100;
    if (cls < 1 || cls > 5)
        cls = 5;
    return (unsigned)(NTRACKED + (unsigned)cls - 1);
}

/* Single writer per shard: a relaxed load and store, no read-modify-write instruction. */
static inline void bump(_Atomic uint64_t *c, uint64_t by)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by, memory_order_relaxed);
}

void ft_metrics_observe(ft_metrics_shard_t *shard, unsigned route, int status, uint64_t duration_ns)
{
    if (route >= m.nroutes)
        route = FT_METRICS_ROUTE_UNMATCHED;
    cell_t *c = &shard->cells[route][status_slot(status)];
    bump(&c->count, 1);
    bump(&c->sum_ns, duration_ns);
    for (size_t i = 0; i < NBUCKETS; i++) {
        if (duration_ns <= bucket_ns[i]) {
            bump(&c->buckets[i], 1);
            break;
        }
    }
}

void ft_metrics_add_collector(ft_metrics_collector_fn fn, void *data)
{
    if (m.ncollectors < sizeof(m.collectors) / sizeof(m.collectors[0]))
        m.collectors[m.ncollectors++] = (collector_t){fn, data};
}

static void status_label(unsigned slot, char *buf, size_t len)
{
    if (slot < NTRACKED)
        snprintf(buf, len, "%d", tracked_status[slot]);
    else
        snprintf(buf, len, "%uxx", slot - (unsigned)NTRACKED + 1);
}

void ft_metrics_render(char **text, size_t *len)
{
    FILE *out = open_memstream(text, len);
    if (out == NULL)
        abort(); /* allocation failure */

    fputs("# HELP ft_http_requests_total HTTP requests answered, by method, route and status.\n"
          "# TYPE ft_http_requests_total counter\n",
          out);
    struct {
        uint64_t count, sum_ns, buckets[NBUCKETS];
    } sum;
    char st[8];
    /* two passes over the cells: counters first, then histograms, as the format wants families together */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            fputs("# HELP ft_http_request_duration_seconds Time from request arrival to the end of its response.\n"
                  "# TYPE ft_http_request_duration_seconds histogram\n",
                  out);
        for (unsigned r = 0; r < m.nroutes; r++) {
            for (unsigned s = 0; s < NSTATUS; s++) {
                memset(&sum, 0, sizeof(sum));
                for (ft_metrics_shard_t *sh = atomic_load(&m.shards); sh != NULL; sh = sh->next) {
                    cell_t *c = &sh->cells[r][s];
                    sum.count += atomic_load_explicit(&c->count, memory_order_relaxed);
                    sum.sum_ns += atomic_load_explicit(&c->sum_ns, memory_order_relaxed);
                    for (size_t b = 0; b < NBUCKETS; b++)
                        sum.buckets[b] += atomic_load_explicit(&c->buckets[b], memory_order_relaxed);
                }
                if (sum.count == 0)
                    continue;
                status_label(s, st, sizeof(st));
                const char *meth = m.labels[r][0], *route = m.labels[r][1];
                if (pass == 0) {
                    fprintf(out, "ft_http_requests_total{method=\"%s\",route=\"%s\",status=\"%s\"} %llu\n", meth, route, st,
                            (unsigned long long)sum.count);
                    continue;
                }
                uint64_t cum = 0;
                for (size_t b = 0; b < NBUCKETS; b++) {
                    cum += sum.buckets[b];
                    fprintf(out, "ft_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",status=\"%s\",le=\"%g\"} %llu\n",
                            meth, route, st, bucket_le[b], (unsigned long long)cum);
                }
                fprintf(out, "ft_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",status=\"%s\",le=\"+Inf\"} %llu\n",
                        meth, route, st, (unsigned long long)sum.count);
                fprintf(out, "ft_http_request_duration_seconds_sum{method=\"%s\",route=\"%s\",status=\"%s\"} %.9f\n", meth, route,
                        st, (double)sum.sum_ns / 1e9);
                fprintf(out, "ft_http_request_duration_seconds_count{method=\"%s\",route=\"%s\",status=\"%s\"} %llu\n", meth,
                        route, st, (unsigned long long)sum.count);
            }
        }
    }

    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double up = (double)(now.tv_sec - m.start_mono.tv_sec) + (double)(now.tv_nsec - m.start_mono.tv_nsec) / 1e9;
    fprintf(out,
            "# HELP ft_build_info Build of this farutech-host.\n# TYPE ft_build_info gauge\n"
            "ft_build_info{version=\"%s\",commit=\"%s\"} 1\n"
            "# HELP ft_uptime_seconds Seconds since this process started.\n# TYPE ft_uptime_seconds gauge\n"
            "ft_uptime_seconds %.3f\n"
            "# HELP process_start_time_seconds Start time of the process since the Unix epoch.\n"
            "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.3f\n",
            m.version, m.commit, up, m.start_unix);
    for (unsigned i = 0; i < m.ncollectors; i++)
        m.collectors[i].fn(out, m.collectors[i].data);
    fclose(out);
}
