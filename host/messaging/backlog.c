/*
 * The backlog sampler thread: a query on its own connection and two JetStream info requests
 * per round, turned into gauges.
 */
#include "messaging/backlog.h"

#include "core/clock.h"
#include "core/mem.h"
#include "infra/db_pool.h"
#include "infra/log.h"
#include "infra/metrics.h"
#include "messaging/worker.h"
#include "store/backlog_store.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

FT_GAUGE(outbox_unpublished, "ft_outbox_unpublished", "Outbox rows not yet published to JetStream.", FT_NO_LABELS);
FT_GAUGE(outbox_oldest_age, "ft_outbox_oldest_unpublished_age_seconds",
         "Age of the oldest outbox row not yet published (0 when none waits).", FT_NO_LABELS);
FT_GAUGE(dlq_depth, "ft_dlq_depth", "Dead letters neither replayed nor discarded.", FT_NO_LABELS);
FT_GAUGE(dlq_messages, "ft_jetstream_dlq_messages", "Messages held by the FT_DLQ stream.", FT_NO_LABELS);
FT_GAUGE(consumer_pending, "ft_jetstream_consumer_pending", "Jobs in FT_JOBS not yet delivered to a worker.", FT_NO_LABELS);
FT_GAUGE(consumer_ack_pending, "ft_jetstream_consumer_ack_pending",
         "Jobs delivered to a worker and not yet acknowledged (running or waiting for a retry).", FT_NO_LABELS);
FT_COUNTER(sample_failures, "ft_backlog_sample_failures_total",
           "Backlog samples that could not be read, by source (database, jetstream); the gauges keep their last value.",
           FT_LABELS("source"));

struct ft_backlog_sampler {
    char *url;
    ft_nats_t *nats;
    jsCtx *js;
    unsigned interval_ms;
    pthread_t thread;
    pthread_mutex_t mutex; /* guards stop */
    pthread_cond_t cond;
    int stop;
};

static void sample_database(ft_backlog_sampler_t *b, PGconn **conn)
{
    ft_error_t err = {0};
    ft_backlog_t v;
    if (*conn != NULL && PQstatus(*conn) != CONNECTION_OK) {
        PQfinish(*conn);
        *conn = NULL;
    }
    if (*conn == NULL)
        *conn = ft_db_connect(b->url, "farutech-backlog", &err);
    if (*conn == NULL || ft_backlog_read(*conn, &v, &err) != FT_OK) {
        ft_counter_inc(ft_metric_series(&sample_failures, "database"));
        ft_log(FT_LOG_DEBUG, NULL, "backlog: %s", err.message);
        return;
    }
    ft_gauge_set(ft_metric_series(&outbox_unpublished), (double)v.outbox_unpublished);
    ft_gauge_set(ft_metric_series(&outbox_oldest_age), v.outbox_oldest_age_s);
    ft_gauge_set(ft_metric_series(&dlq_depth), (double)v.dlq_open);
}

static void sample_jetstream(ft_backlog_sampler_t *b)
{
    if (!ft_nats_connected(b->nats)) {
        ft_counter_inc(ft_metric_series(&sample_failures, "jetstream"));
        return;
    }
    jsConsumerInfo *ci = NULL;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetConsumerInfo(&ci, b->js, FT_STREAM_JOBS, FT_WORKER_CONSUMER, NULL, &jerr);
    if (s == NATS_OK) {
        ft_gauge_set(ft_metric_series(&consumer_pending), (double)ci->NumPending);
        ft_gauge_set(ft_metric_series(&consumer_ack_pending), (double)ci->NumAckPending);
        s = js_GetStreamInfo(&si, b->js, FT_STREAM_DLQ, NULL, &jerr);
    }
    if (s == NATS_OK)
        ft_gauge_set(ft_metric_series(&dlq_messages), (double)si->State.Msgs);
    else
        ft_counter_inc(ft_metric_series(&sample_failures, "jetstream"));
    jsConsumerInfo_Destroy(ci);
    jsStreamInfo_Destroy(si);
}

static void *sampler_main(void *arg)
{
    ft_backlog_sampler_t *b = arg;
    PGconn *conn = NULL;
    pthread_mutex_lock(&b->mutex);
    while (!b->stop) {
        pthread_mutex_unlock(&b->mutex);
        sample_database(b, &conn);
        sample_jetstream(b);
        pthread_mutex_lock(&b->mutex);
        struct timespec deadline = ft_mono_deadline(b->interval_ms);
        while (!b->stop && pthread_cond_timedwait(&b->cond, &b->mutex, &deadline) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&b->mutex);
    PQfinish(conn);
    return NULL;
}

ft_backlog_sampler_t *ft_backlog_sampler_start(const char *database_url, ft_nats_t *nats, unsigned interval_ms)
{
    ft_backlog_sampler_t *b = ft_mem_calloc(1, sizeof(*b));
    /* both sources show from the start, so a rate over them works before the first failure */
    ft_metric_series(&sample_failures, "database");
    ft_metric_series(&sample_failures, "jetstream");
    b->url = ft_mem_strdup(database_url);
    b->nats = nats;
    b->interval_ms = interval_ms;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 2000; /* an info request on a lost stream leader must not hold the round long */
    natsConnection_JetStream(&b->js, ft_nats_connection(nats), &jo);
    pthread_mutex_init(&b->mutex, NULL);
    ft_cond_init_mono(&b->cond);
    pthread_create(&b->thread, NULL, sampler_main, b);
    return b;
}

void ft_backlog_sampler_stop(ft_backlog_sampler_t *b)
{
    if (b == NULL)
        return;
    pthread_mutex_lock(&b->mutex);
    b->stop = 1;
    pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->mutex);
    pthread_join(b->thread, NULL);
    jsCtx_Destroy(b->js);
    pthread_cond_destroy(&b->cond);
    pthread_mutex_destroy(&b->mutex);
    free(b->url);
    free(b);
}
