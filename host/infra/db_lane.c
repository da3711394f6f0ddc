/*
 * The lane's threads take work from one queue under a mutex and hand results back to the
 * submitting loop's port: appended under the port's mutex, then uv_async_send, which coalesces
 * wake-ups, so the loop runs every finished unit it finds at each wake-up.
 */
#include "infra/db_lane.h"

#include "core/mem.h"
#include "infra/log.h"
#include "infra/metrics.h"

#include <stdlib.h>
#include <string.h>

FT_COUNTER(lane_jobs, "ft_db_lane_jobs_total", "Units of work run on the entitlement readers' lane (cold entitlement reads).",
           FT_NO_LABELS);
FT_COUNTER(lane_rejected, "ft_db_lane_rejected_total", "Units of work refused because the entitlement readers' queue was full.",
           FT_NO_LABELS);
FT_GAUGE(lane_queued, "ft_db_lane_queued", "Units of work waiting for an entitlement reader now.", FT_NO_LABELS);
FT_GAUGE(lane_connected, "ft_db_lane_connections", "Connections the entitlement readers hold open now.", FT_NO_LABELS);

struct ft_db_lane_job {
    ft_db_lane_job_t *next;
    ft_db_lane_port_t *port;
    ft_db_work_fn work;
    ft_db_done_fn done;
    void *arg;
    int status;
    ft_error_t err;
};

struct ft_db_lane {
    char *url;
    unsigned nthreads, queue_max, queued;
    pthread_t *threads;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    ft_db_lane_job_t *head, *tail;
    int stopping;
};

static void push(ft_db_lane_job_t **head, ft_db_lane_job_t **tail, ft_db_lane_job_t *job)
{
    job->next = NULL;
    if (*tail != NULL)
        (*tail)->next = job;
    else
        *head = job;
    *tail = job;
}

/* The lane's connection for the next unit: the one it has if still good, else a new one. */
static PGconn *connection(ft_db_lane_t *lane, PGconn *conn, ft_error_t *err)
{
    if (conn != NULL && PQstatus(conn) == CONNECTION_OK)
        return conn;
    if (conn != NULL) {
        PQfinish(conn);
        ft_gauge_add(ft_metric_series(&lane_connected), -1);
    }
    conn = ft_db_connect(lane->url, "farutech-host", err);
    if (conn != NULL)
        ft_gauge_add(ft_metric_series(&lane_connected), 1);
    return conn;
}

static void *reader_main(void *arg)
{
    ft_db_lane_t *lane = arg;
    PGconn *conn = NULL;
    for (;;) {
        pthread_mutex_lock(&lane->mutex);
        while (lane->head == NULL && !lane->stopping)
            pthread_cond_wait(&lane->cond, &lane->mutex);
        ft_db_lane_job_t *job = lane->head;
        if (job == NULL) { /* stopping, and nothing left */
            pthread_mutex_unlock(&lane->mutex);
            break;
        }
        lane->head = job->next;
        if (lane->head == NULL)
            lane->tail = NULL;
        lane->queued--;
        ft_gauge_add(ft_metric_series(&lane_queued), -1);
        pthread_mutex_unlock(&lane->mutex);

        conn = connection(lane, conn, &job->err);
        if (conn == NULL) {
            job->status = job->err.code;
        } else {
            job->status = job->work(conn, job->arg, &job->err);
            ft_counter_inc(ft_metric_series(&lane_jobs));
            /* a unit left inside a transaction is rolled back, as the request pool does */
            if (PQtransactionStatus(conn) != PQTRANS_IDLE)
                PQclear(PQexec(conn, "ROLLBACK"));
        }
        ft_db_lane_port_t *port = job->port;
        pthread_mutex_lock(&port->mutex);
        push(&port->head, &port->tail, job);
        pthread_mutex_unlock(&port->mutex);
        uv_async_send(&port->async);
    }
    if (conn != NULL) {
        PQfinish(conn);
        ft_gauge_add(ft_metric_series(&lane_connected), -1);
    }
    return NULL;
}

ft_db_lane_t *ft_db_lane_start(const char *url, unsigned threads, unsigned queue_max)
{
    ft_db_lane_t *lane = ft_mem_calloc(1, sizeof(*lane));
    lane->url = ft_mem_strdup(url);
    lane->queue_max = queue_max;
    pthread_mutex_init(&lane->mutex, NULL);
    pthread_cond_init(&lane->cond, NULL);
    lane->threads = ft_mem_calloc(threads, sizeof(pthread_t));
    for (unsigned i = 0; i < threads; i++) {
        if (pthread_create(&lane->threads[i], NULL, reader_main, lane) != 0) {
            ft_log(FT_LOG_WARN, NULL, "entitlement readers: %u of %u threads started", i, threads);
            break;
        }
        lane->nthreads++;
    }
    return lane;
}

void ft_db_lane_stop(ft_db_lane_t *lane)
{
    if (lane == NULL)
        return;
    pthread_mutex_lock(&lane->mutex);
    lane->stopping = 1;
    pthread_cond_broadcast(&lane->cond);
    pthread_mutex_unlock(&lane->mutex);
    for (unsigned i = 0; i < lane->nthreads; i++)
        pthread_join(lane->threads[i], NULL);
    pthread_cond_destroy(&lane->cond);
    pthread_mutex_destroy(&lane->mutex);
    free(lane->threads);
    free(lane->url);
    free(lane);
}

static void on_port(uv_async_t *async)
{
    ft_db_lane_port_t *port = async->data;
    pthread_mutex_lock(&port->mutex);
    ft_db_lane_job_t *job = port->head;
    port->head = port->tail = NULL;
    pthread_mutex_unlock(&port->mutex);
    while (job != NULL) {
        ft_db_lane_job_t *next = job->next;
        job->done(job->arg, job->status, &job->err);
        free(job);
        job = next;
    }
}

void ft_db_lane_port_init(ft_db_lane_port_t *port, uv_loop_t *loop)
{
    memset(port, 0, sizeof(*port));
    pthread_mutex_init(&port->mutex, NULL);
    uv_async_init(loop, &port->async, on_port);
    port->async.data = port;
}

void ft_db_lane_run(ft_db_lane_t *lane, ft_db_lane_port_t *port, ft_db_work_fn work, ft_db_done_fn done, void *arg)
{
    ft_db_lane_job_t *job = ft_mem_calloc(1, sizeof(*job));
    job->port = port;
    job->work = work;
    job->done = done;
    job->arg = arg;
    pthread_mutex_lock(&lane->mutex);
    int full = lane->queued >= lane->queue_max || lane->nthreads == 0;
    if (!full) {
        push(&lane->head, &lane->tail, job);
        lane->queued++;
        ft_gauge_add(ft_metric_series(&lane_queued), 1);
        pthread_cond_signal(&lane->cond);
    }
    pthread_mutex_unlock(&lane->mutex);
    if (!full)
        return;
    ft_counter_inc(ft_metric_series(&lane_rejected));
    job->status = ft_error_set(&job->err, FT_EUNAVAILABLE, "the entitlement readers' queue is full (%u waiting)", lane->queue_max);
    done(arg, job->status, &job->err);
    free(job);
}
