/*
 * Request counters and latency histograms by route and status, build info and uptime, and the
 * families declared across the host, in the Prometheus text exposition format (version 0.0.4).
 */
#include "infra/metrics.h"

#include "core/mem.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Statuses get their own series; anything else is counted under its class ("2xx" ...). */
static const int tracked_status[] = {200, 201, 202, 204, 206, 301, 302, 304, 400, 401, 403, 404, 405, 406,
                                     409, 410, 412, 413, 415, 422, 428, 429, 500, 501, 502, 503, 504};
#define NTRACKED (sizeof(tracked_status) / sizeof(tracked_status[0]))
#define NSTATUS (NTRACKED + 5) /* + 1xx..5xx classes */

static const double bucket_le[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
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

static struct {
    char *labels[FT_METRICS_MAX_ROUTES][2]; /* method, route */
    unsigned nroutes;
    ft_metrics_shard_t *_Atomic shards;
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

static void status_label(unsigned slot, char *buf, size_t len)
{
    if (slot < NTRACKED)
        snprintf(buf, len, "%d", tracked_status[slot]);
    else
        snprintf(buf, len, "%uxx", slot - (unsigned)NTRACKED + 1);
}

/* ---------------------------------------------------------------- declared families */

struct ft_series {
    const ft_metric_t *family;
    char **values;             /* one per label, escaped for the exposition */
    _Atomic uint64_t count;    /* counters; histograms: observations (the +Inf bucket) */
    _Atomic uint64_t bits;     /* gauges: the value; histograms: the sum (a double's bits) */
    _Atomic uint64_t *buckets; /* histograms: observations per bound, not cumulative */
};

static struct {
    pthread_mutex_t mutex; /* guards the family list and series creation, a few lines each */
    pthread_mutex_t bind;  /* held while a callback gauge is read or rebound */
    ft_metric_t *families;
} reg = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, NULL};

static int valid_name(const char *s, int colons)
{
    if (s == NULL || *s == '\0' || (*s >= '0' && *s <= '9'))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              (colons && *s == ':')))
            return 0;
    return 1;
}

/* Label values: backslash, double quote and line feed escaped. Freed by the caller. */
static char *escape_value(const char *v)
{
    size_t n = 0;
    for (const char *p = v; *p; p++)
        n += (*p == '\\' || *p == '"' || *p == '\n') ? 2 : 1;
    char *out = ft_mem_alloc(n + 1), *o = out;
    for (const char *p = v; *p; p++) {
        if (*p == '\\' || *p == '"' || *p == '\n') {
            *o++ = '\\';
            *o++ = *p == '\n' ? 'n' : *p;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

static ft_series_t *series_new(const ft_metric_t *fm, const char *const *values)
{
    ft_series_t *s = ft_mem_calloc(1, sizeof(*s));
    s->family = fm;
    s->values = ft_mem_calloc(fm->nlabels + 1, sizeof(*s->values));
    for (unsigned i = 0; i < fm->nlabels; i++)
        s->values[i] = escape_value(values[i] != NULL ? values[i] : "");
    if (fm->type == FT_METRIC_HISTOGRAM)
        s->buckets = ft_mem_calloc(fm->nbuckets, sizeof(*s->buckets));
    return s;
}

/* Why a declared family breaks the exposition's rules, or NULL when it is well formed. */
static const char *malformed(const ft_metric_t *fm, unsigned *nlabels)
{
    size_t len = fm->name != NULL ? strlen(fm->name) : 0;
    if (!valid_name(fm->name, 1) || fm->help == NULL)
        return "a metric name is [a-zA-Z_:][a-zA-Z0-9_:]* and has a help text";
    if (fm->type == FT_METRIC_COUNTER && (len <= 6 || strcmp(fm->name + len - 6, "_total") != 0))
        return "a counter's name ends in _total";
    unsigned n = 0;
    for (; n < FT_METRIC_MAX_LABELS && fm->labels[n] != NULL; n++) {
        if (!valid_name(fm->labels[n], 0) || strncmp(fm->labels[n], "__", 2) == 0)
            return "a label name is [a-zA-Z_][a-zA-Z0-9_]* and does not start with __";
        if (fm->type == FT_METRIC_HISTOGRAM && strcmp(fm->labels[n], "le") == 0)
            return "a histogram has no label le of its own";
    }
    if (fm->labels[n] != NULL)
        return "too many labels";
    for (size_t i = 1; i < fm->nbuckets; i++)
        if (!(fm->buckets[i - 1] < fm->buckets[i]))
            return "histogram bounds ascend";
    for (const ft_metric_t *o = reg.families; o != NULL; o = o->next)
        if (strcmp(o->name, fm->name) == 0)
            return "the name is declared twice";
    *nlabels = n;
    return NULL;
}

/* Runs before main (the declaring macros' constructors): a malformed family is a broken build. */
void ft_metric_register(ft_metric_t *fm)
{
    unsigned n = 0;
    pthread_mutex_lock(&reg.mutex);
    const char *why = malformed(fm, &n);
    if (why != NULL) {
        fprintf(stderr, "metric %s: %s\n", fm->name != NULL ? fm->name : "(no name)", why);
        abort();
    }
    fm->nlabels = n;
    const char *none[FT_METRIC_MAX_LABELS] = {0};
    fm->overflow = series_new(fm, none);
    fm->next = reg.families;
    reg.families = fm;
    pthread_mutex_unlock(&reg.mutex);
    if (n == 0) /* an unlabelled family has its one series from the start, so it shows before its first update */
        ft_metric_series(fm);
}

/* Whether the escaped label value `stored` is the escaping of `raw` (compared without allocating). */
static int escapes_to(const char *stored, const char *raw)
{
    for (; *raw; raw++) {
        if (*raw == '\\' || *raw == '"' || *raw == '\n') {
            if (stored[0] != '\\' || stored[1] != (*raw == '\n' ? 'n' : *raw))
                return 0;
            stored += 2;
        } else if (*stored++ != *raw) {
            return 0;
        }
    }
    return *stored == '\0';
}

static ft_series_t *find_series(ft_metric_t *fm, unsigned from, unsigned to, const char *const *values)
{
    for (unsigned i = from; i < to; i++) {
        ft_series_t *s = atomic_load_explicit(&fm->series[i], memory_order_relaxed);
        unsigned k = 0;
        while (k < fm->nlabels && escapes_to(s->values[k], values[k] != NULL ? values[k] : ""))
            k++;
        if (k == fm->nlabels)
            return s;
    }
    return NULL;
}

ft_series_t *ft_metric_series(ft_metric_t *fm, ...)
{
    const char *values[FT_METRIC_MAX_LABELS] = {0};
    va_list ap;
    va_start(ap, fm);
    for (unsigned i = 0; i < fm->nlabels; i++)
        values[i] = va_arg(ap, const char *);
    va_end(ap);
    /* series are only appended, each published by the release store of nseries */
    unsigned seen = atomic_load_explicit(&fm->nseries, memory_order_acquire);
    ft_series_t *found = find_series(fm, 0, seen, values);
    if (found != NULL)
        return found;
    pthread_mutex_lock(&reg.mutex);
    unsigned n = atomic_load_explicit(&fm->nseries, memory_order_relaxed);
    found = find_series(fm, seen, n, values); /* another thread may have added it meanwhile */
    if (found == NULL && n < FT_METRIC_MAX_SERIES) {
        found = series_new(fm, values);
        atomic_store_explicit(&fm->series[n], found, memory_order_relaxed);
        atomic_store_explicit(&fm->nseries, n + 1, memory_order_release);
    }
    pthread_mutex_unlock(&reg.mutex);
    return found != NULL ? found : fm->overflow;
}

static inline double from_bits(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof(d));
    return d;
}

static inline uint64_t to_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof(b));
    return b;
}

static void add_double(_Atomic uint64_t *cell, double delta)
{
    uint64_t old = atomic_load_explicit(cell, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(cell, &old, to_bits(from_bits(old) + delta), memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

void ft_counter_add(ft_series_t *s, uint64_t n)
{
    atomic_fetch_add_explicit(&s->count, n, memory_order_relaxed);
}

void ft_gauge_set(ft_series_t *s, double v)
{
    atomic_store_explicit(&s->bits, to_bits(v), memory_order_relaxed);
}

void ft_gauge_add(ft_series_t *s, double delta)
{
    add_double(&s->bits, delta);
}

/* Observations beyond the last bound count in +Inf (the count) only. */
void ft_histogram_observe(ft_series_t *s, double v)
{
    const ft_metric_t *fm = s->family;
    for (size_t i = 0; i < fm->nbuckets; i++) {
        if (v <= fm->buckets[i]) {
            atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
            break;
        }
    }
    add_double(&s->bits, v);
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
}

void ft_gauge_bind(ft_metric_t *fm, ft_gauge_read_fn fn, void *arg)
{
    assert(fm->type == FT_METRIC_GAUGE && fm->nlabels == 0);
    pthread_mutex_lock(&reg.bind);
    fm->read = fn;
    fm->read_arg = arg;
    pthread_mutex_unlock(&reg.bind);
}

double ft_series_value(ft_series_t *s)
{
    if (s->family->type == FT_METRIC_GAUGE)
        return from_bits(atomic_load_explicit(&s->bits, memory_order_relaxed));
    return (double)atomic_load_explicit(&s->count, memory_order_relaxed);
}

/* Shortest text that reads back as v; Prometheus' spellings for the special values. */
static void put_double(FILE *out, double v)
{
    if (isnan(v)) {
        fputs("NaN", out);
    } else if (isinf(v)) {
        fputs(v > 0 ? "+Inf" : "-Inf", out);
    } else {
        char buf[40];
        snprintf(buf, sizeof(buf), "%.15g", v);
        if (strtod(buf, NULL) != v)
            snprintf(buf, sizeof(buf), "%.17g", v);
        fputs(buf, out);
    }
}

/* HELP text: backslash and line feed escaped. */
static void put_help(FILE *out, const char *text)
{
    for (const char *p = text; *p; p++) {
        if (*p == '\\')
            fputs("\\\\", out);
        else if (*p == '\n')
            fputs("\\n", out);
        else
            fputc(*p, out);
    }
}

/* name{l1="v1",...[,le="bound"]} with the series' labels and an optional bucket bound. */
static void put_series_name(FILE *out, const ft_metric_t *fm, const char *suffix, const ft_series_t *s, const double *le)
{
    fputs(fm->name, out);
    fputs(suffix, out);
    if (fm->nlabels == 0 && le == NULL)
        return;
    int first = 1;
    fputc('{', out);
    for (unsigned i = 0; i < fm->nlabels; i++) {
        fprintf(out, "%s%s=\"%s\"", first ? "" : ",", fm->labels[i], s->values[i]);
        first = 0;
    }
    if (le != NULL) {
        fprintf(out, "%sle=\"", first ? "" : ",");
        put_double(out, *le);
        fputc('"', out);
    }
    fputc('}', out);
}

static void render_series(FILE *out, const ft_metric_t *fm, const ft_series_t *s)
{
    if (fm->type == FT_METRIC_COUNTER) {
        put_series_name(out, fm, "", s, NULL);
        fprintf(out, " %llu\n", (unsigned long long)atomic_load_explicit(&s->count, memory_order_relaxed));
        return;
    }
    if (fm->type == FT_METRIC_GAUGE) {
        put_series_name(out, fm, "", s, NULL);
        fputc(' ', out);
        put_double(out, from_bits(atomic_load_explicit(&s->bits, memory_order_relaxed)));
        fputc('\n', out);
        return;
    }
    /* an observation lands in its bucket before the count: a bucket read after the count may
     * hold one the count does not yet, so cumulative values are capped at the count */
    uint64_t count = atomic_load_explicit(&s->count, memory_order_relaxed), cum = 0;
    for (size_t i = 0; i < fm->nbuckets; i++) {
        cum += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
        if (cum > count)
            cum = count;
        put_series_name(out, fm, "_bucket", s, &fm->buckets[i]);
        fprintf(out, " %llu\n", (unsigned long long)cum);
    }
    double inf = INFINITY;
    put_series_name(out, fm, "_bucket", s, &inf);
    fprintf(out, " %llu\n", (unsigned long long)count);
    put_series_name(out, fm, "_sum", s, NULL);
    fputc(' ', out);
    put_double(out, from_bits(atomic_load_explicit(&s->bits, memory_order_relaxed)));
    fputc('\n', out);
    put_series_name(out, fm, "_count", s, NULL);
    fprintf(out, " %llu\n", (unsigned long long)count);
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(ft_metric_t *const *)a)->name, (*(ft_metric_t *const *)b)->name);
}

/* Families in name order, each with its HELP and TYPE once and then its series. */
static void render_families(FILE *out)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    pthread_mutex_lock(&reg.mutex);
    size_t n = 0;
    for (ft_metric_t *fm = reg.families; fm != NULL; fm = fm->next)
        n++;
    ft_metric_t **list = ft_mem_calloc(n + 1, sizeof(*list));
    n = 0;
    for (ft_metric_t *fm = reg.families; fm != NULL; fm = fm->next)
        list[n++] = fm;
    pthread_mutex_unlock(&reg.mutex);
    qsort(list, n, sizeof(*list), by_name);
    for (size_t k = 0; k < n; k++) {
        ft_metric_t *fm = list[k];
        fprintf(out, "# HELP %s ", fm->name);
        put_help(out, fm->help);
        fprintf(out, "\n# TYPE %s %s\n", fm->name, type_names[fm->type]);
        pthread_mutex_lock(&reg.bind);
        if (fm->read != NULL) {
            double v = fm->read(fm->read_arg);
            pthread_mutex_unlock(&reg.bind);
            fprintf(out, "%s ", fm->name);
            put_double(out, v);
            fputc('\n', out);
            continue;
        }
        pthread_mutex_unlock(&reg.bind);
        unsigned ns = atomic_load_explicit(&fm->nseries, memory_order_acquire);
        for (unsigned i = 0; i < ns; i++)
            render_series(out, fm, atomic_load_explicit(&fm->series[i], memory_order_relaxed));
    }
    free(list);
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
                    fprintf(out,
                            "ft_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",status=\"%s\",le=\"%g\"} %llu\n",
                            meth, route, st, bucket_le[b], (unsigned long long)cum);
                }
                fprintf(out, "ft_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",status=\"%s\",le=\"+Inf\"} %llu\n",
                        meth, route, st, (unsigned long long)sum.count);
                fprintf(out, "ft_http_request_duration_seconds_sum{method=\"%s\",route=\"%s\",status=\"%s\"} %.9f\n", meth, route,
                        st, (double)sum.sum_ns / 1e9);
                fprintf(out, "ft_http_request_duration_seconds_count{method=\"%s\",route=\"%s\",status=\"%s\"} %llu\n", meth, route,
                        st, (unsigned long long)sum.count);
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
    render_families(out);
    fclose(out);
}
