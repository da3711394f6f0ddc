/*
 * A fixed-size libpq connection pool and the uv_queue_work bridge. Work that needs SQL runs on
 * libuv's worker threads (sized at start to the pool, see main.c), each borrowing a connection
 * for the duration of one unit of work, so statements never run on a loop thread.
 */
#include "infra/db_pool.h"

#include "core/clock.h"
#include "core/mem.h"
#include "infra/log.h"
#include "infra/metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ACQUIRE_TIMEOUT_SEC 10

static const double wait_bounds[] = {0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
FT_GAUGE(in_use, "ft_db_pool_connections_in_use", "Pooled control-plane connections lent out now.", FT_NO_LABELS);
FT_GAUGE(pool_size, "ft_db_pool_connections_max", "Size of the control-plane connection pool.", FT_NO_LABELS);
FT_GAUGE(waiting, "ft_db_pool_waiting", "Units of work waiting for a pooled connection now.", FT_NO_LABELS);
FT_HISTOGRAM(wait_seconds, "ft_db_pool_wait_seconds", "Time spent waiting for a pooled connection.", wait_bounds,
             FT_NO_LABELS);
FT_COUNTER(acquire_timeouts, "ft_db_pool_acquire_timeouts_total", "Waits for a pooled connection that gave up.", FT_NO_LABELS);

struct ft_db_pool {
    char *url;
    unsigned size;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    PGconn **idle; /* stack of connections (possibly NULL = not yet opened) */
    unsigned nidle;
};

/* Server notices ("relation already exists, skipping") go to the log, not to stderr. */
static void on_notice(void *arg, const char *message)
{
    size_t n = strlen(message);
    while (n > 0 && message[n - 1] == '\n')
        n--;
    ft_log(FT_LOG_DEBUG, NULL, "postgresql: %.*s", (int)n, message);
}

PGconn *ft_db_connect(const char *url, const char *application_name, ft_error_t *err)
{
    /* Defaults come first so that anything the URL itself says wins (expand_dbname). */
    const char *keys[] = {"connect_timeout", "application_name", "keepalives_idle", "keepalives_interval", "keepalives_count",
                          "dbname", NULL};
    const char *vals[] = {"5", application_name, "10", "5", "3", url, NULL};
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (conn == NULL) {
        ft_error_set(err, FT_EUNAVAILABLE, "out of memory opening a database connection");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        char *msg = PQerrorMessage(conn);
        size_t n = strlen(msg);
        while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
            n--;
        ft_error_set(err, FT_EUNAVAILABLE, "cannot connect to the database: %.*s", (int)n, msg);
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn, on_notice, NULL);
    return conn;
}

PGconn *ft_db_connect_to(const char *url, const char *dbname, const char *application_name, ft_error_t *err)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &perr);
    if (opts == NULL) {
        ft_error_set(err, FT_EINVAL, "not a database URL: %s", perr != NULL ? perr : "out of memory");
        PQfreemem(perr);
        return NULL;
    }
    const char *keys[40], *vals[40];
    int n = 0;
    keys[n] = "connect_timeout", vals[n++] = "5";
    keys[n] = "application_name", vals[n++] = application_name;
    for (PQconninfoOption *o = opts; o->keyword != NULL && n < 38; o++) {
        if (o->val == NULL || strcmp(o->keyword, "dbname") == 0)
            continue;
        keys[n] = o->keyword, vals[n++] = o->val;
    }
    keys[n] = "dbname", vals[n++] = dbname;
    keys[n] = NULL, vals[n] = NULL;
    PGconn *conn = PQconnectdbParams(keys, vals, 0);
    PQconninfoFree(opts);
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        ft_error_set(err, FT_EUNAVAILABLE, "cannot connect to database %s: %s", dbname,
                     conn != NULL ? PQerrorMessage(conn) : "out of memory");
        size_t l = strlen(err->message);
        while (l > 0 && (err->message[l - 1] == '\n' || err->message[l - 1] == ' '))
            err->message[--l] = '\0';
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn, on_notice, NULL);
    return conn;
}

ft_db_pool_t *ft_db_pool_create(const char *url, unsigned size)
{
    ft_db_pool_t *p = ft_mem_calloc(1, sizeof(*p));
    p->url = ft_mem_strdup(url);
    p->size = size;
    pthread_mutex_init(&p->mutex, NULL);
    ft_cond_init_mono(&p->cond);
    p->idle = ft_mem_calloc(size, sizeof(PGconn *));
    p->nidle = size; /* all slots idle, none opened yet */
    ft_gauge_add(ft_metric_series(&pool_size), size);
    return p;
}

void ft_db_pool_destroy(ft_db_pool_t *p)
{
    if (p == NULL)
        return;
    ft_gauge_add(ft_metric_series(&pool_size), -(double)p->size);
    for (unsigned i = 0; i < p->nidle; i++)
        if (p->idle[i] != NULL)
            PQfinish(p->idle[i]);
    free(p->idle);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->mutex);
    free(p->url);
    free(p);
}

unsigned ft_db_pool_size(const ft_db_pool_t *p)
{
    return p->size;
}

PGconn *ft_db_acquire(ft_db_pool_t *p, ft_error_t *err)
{
    uint64_t start_ns = ft_mono_ns();
    struct timespec deadline = ft_mono_deadline(ACQUIRE_TIMEOUT_SEC * 1000);

    ft_series_t *waiters = ft_metric_series(&waiting);
    ft_gauge_add(waiters, 1);
    pthread_mutex_lock(&p->mutex);
    while (p->nidle == 0) {
        if (pthread_cond_timedwait(&p->cond, &p->mutex, &deadline) == ETIMEDOUT && p->nidle == 0) {
            pthread_mutex_unlock(&p->mutex);
            ft_gauge_add(waiters, -1);
            ft_counter_inc(ft_metric_series(&acquire_timeouts));
            ft_error_set(err, FT_ETIMEOUT, "no database connection became free within %d s", ACQUIRE_TIMEOUT_SEC);
            return NULL;
        }
    }
    PGconn *conn = p->idle[--p->nidle];
    pthread_mutex_unlock(&p->mutex);
    ft_gauge_add(waiters, -1);
    ft_gauge_add(ft_metric_series(&in_use), 1);
    ft_histogram_observe(ft_metric_series(&wait_seconds), (double)(ft_mono_ns() - start_ns) / 1e9);

    /* Open, or reopen a connection the server dropped; outside the mutex since it blocks. */
    if (conn != NULL && PQstatus(conn) != CONNECTION_OK) {
        PQfinish(conn);
        conn = NULL;
    }
    if (conn == NULL) {
        conn = ft_db_connect(p->url, "farutech-host", err);
        if (conn == NULL) {
            ft_db_release(p, NULL); /* give the slot back */
            return NULL;
        }
    }
    return conn;
}

void ft_db_release(ft_db_pool_t *p, PGconn *conn)
{
    /* A connection left inside a transaction (a failed unit of work) is rolled back first. */
    if (conn != NULL && PQtransactionStatus(conn) != PQTRANS_IDLE) {
        PGresult *r = PQexec(conn, "ROLLBACK");
        PQclear(r);
        if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
            PQfinish(conn);
            conn = NULL;
        }
    }
    pthread_mutex_lock(&p->mutex);
    p->idle[p->nidle++] = conn;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->mutex);
    ft_gauge_add(ft_metric_series(&in_use), -1);
}

typedef struct db_job {
    uv_work_t work_req;
    ft_db_pool_t *pool;
    ft_db_work_fn work;
    ft_db_done_fn done;
    void *arg;
    int status;
    ft_error_t err;
} db_job_t;

static void job_work(uv_work_t *w)
{
    db_job_t *job = w->data;
    PGconn *conn = ft_db_acquire(job->pool, &job->err);
    if (conn == NULL) {
        job->status = job->err.code;
        return;
    }
    job->status = job->work(conn, job->arg, &job->err);
    ft_db_release(job->pool, conn);
}

static void job_done(uv_work_t *w, int uv_status)
{
    db_job_t *job = w->data;
    if (uv_status == UV_ECANCELED)
        job->status = ft_error_set(&job->err, FT_ESTATE, "cancelled");
    job->done(job->arg, job->status, &job->err);
    free(job);
}

void ft_db_run(uv_loop_t *loop, ft_db_pool_t *pool, ft_db_work_fn work, ft_db_done_fn done, void *arg)
{
    db_job_t *job = ft_mem_calloc(1, sizeof(*job));
    job->work_req.data = job;
    job->pool = pool;
    job->work = work;
    job->done = done;
    job->arg = arg;
    int r = uv_queue_work(loop, &job->work_req, job_work, job_done);
    if (r != 0) { /* only fails for invalid arguments */
        job->status = ft_error_set(&job->err, FT_ESTATE, "cannot queue database work: %s", uv_strerror(r));
        job->done(job->arg, job->status, &job->err);
        free(job);
    }
}

int ft_db_error(PGconn *conn, const PGresult *res, ft_error_t *err, const char *what)
{
    if (PQstatus(conn) != CONNECTION_OK) {
        return ft_error_set(err, FT_EUNAVAILABLE, "%s: the database connection was lost", what);
    }
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (msg == NULL) {
        msg = PQerrorMessage(conn);
    }
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        n--;
    return ft_error_set(err, FT_EDB, "%s: %.*s%s%s%s", what, (int)n, msg, state ? " (SQLSTATE " : "", state ? state : "",
                        state ? ")" : "");
}
