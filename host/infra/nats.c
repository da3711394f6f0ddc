/*
 * NATS connection management and JetStream stream set-up for the host.
 */
#include "infra/nats.h"

#include "core/mem.h"
#include "infra/log.h"
#include "infra/metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS_PER_SEC 1000000000LL

FT_GAUGE(connected_gauge, "ft_nats_connected", "1 while connected to nats-server, else 0.", FT_NO_LABELS);
FT_COUNTER(reconnects_total, "ft_nats_reconnects_total", "Reconnections to nats-server after a lost connection.", FT_NO_LABELS);
#define SUB_DESTROY_FLUSH_MS 2000

struct ft_nats {
    natsConnection *conn;
    jsCtx *js;
    unsigned replicas;
    atomic_int connected;
    atomic_int reconnected;
    atomic_int closing;
    pthread_mutex_t mutex; /* guards closed: cnats calls on_closed on its own thread after Close */
    pthread_cond_t cond;
    int closed;
};

typedef struct stream_def {
    const char *name;
    const char *subject;
    const char *description;
    jsRetentionPolicy retention;
    int64_t max_age_ns;
    int64_t duplicates_ns;
} stream_def_t;

static const stream_def_t streams[] = {
    {FT_STREAM_EVENTS, "ft.events.>", "control-plane events (CloudEvents 1.0)", js_LimitsPolicy, 7 * 24 * 3600 * NS_PER_SEC,
     2 * 60 * NS_PER_SEC},
    {FT_STREAM_JOBS, "ft.jobs.>", "provisioning jobs for workers", js_WorkQueuePolicy, 0, 2 * 60 * NS_PER_SEC},
    {FT_STREAM_DLQ, "ft.dlq.>", "jobs that failed every attempt", js_LimitsPolicy, 30 * 24 * 3600 * NS_PER_SEC,
     2 * 60 * NS_PER_SEC},
};

static void on_connected(natsConnection *nc, void *closure)
{
    ft_nats_t *n = closure;
    atomic_store(&n->connected, 1);
    ft_gauge_set(ft_metric_series(&connected_gauge), 1);
    atomic_store(&n->reconnected, 1);
    ft_log(FT_LOG_INFO, NULL, "nats: connected");
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    ft_counter_inc(ft_metric_series(&reconnects_total));
    on_connected(nc, closure);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    ft_nats_t *n = closure;
    ft_gauge_set(ft_metric_series(&connected_gauge), 0);
    if (atomic_exchange(&n->connected, 0) && !atomic_load(&n->closing))
        ft_log(FT_LOG_WARN, NULL, "nats: disconnected, reconnecting");
}

static void on_closed(natsConnection *nc, void *closure)
{
    ft_nats_t *n = closure;
    atomic_store(&n->connected, 0);
    ft_gauge_set(ft_metric_series(&connected_gauge), 0);
    pthread_mutex_lock(&n->mutex);
    n->closed = 1;
    pthread_cond_signal(&n->cond);
    pthread_mutex_unlock(&n->mutex);
}

static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus s, void *closure)
{
    ft_log(FT_LOG_WARN, NULL, "nats: asynchronous error: %s", natsStatus_GetText(s));
}

/* urls is one URL or a comma separated list (a cluster's nodes). natsOptions_SetURL takes exactly
 * one URL (a list there is parsed as one malformed URL and never connects), so every entry goes
 * to natsOptions_SetServers, which copies them. */
static natsStatus set_servers(natsOptions *opts, const char *urls)
{
    char *copy = ft_mem_strdup(urls), *save = NULL;
    const char **list = ft_mem_calloc(strlen(urls) / 2 + 1, sizeof(*list));
    int n = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save))
        list[n++] = tok;
    natsStatus s = natsOptions_SetServers(opts, list, n);
    free(list);
    free(copy);
    return s;
}

int ft_nats_open(ft_nats_t **out, const char *url, unsigned replicas, ft_error_t *err)
{
    ft_nats_t *n = ft_mem_calloc(1, sizeof(*n));
    n->replicas = replicas;
    pthread_mutex_init(&n->mutex, NULL);
    pthread_cond_init(&n->cond, NULL);
    natsOptions *opts = NULL;
    natsStatus s = natsOptions_Create(&opts);
    if (s == NATS_OK)
        s = set_servers(opts, url);
    if (s == NATS_OK)
        s = natsOptions_SetName(opts, "farutech-host");
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(opts, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(opts, 250);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectJitter(opts, 100, 1000);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(opts, 2000);
    if (s == NATS_OK)
        s = natsOptions_SetRetryOnFailedConnect(opts, true, on_connected, n);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(opts, on_reconnected, n);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(opts, on_disconnected, n);
    if (s == NATS_OK)
        s = natsOptions_SetClosedCB(opts, on_closed, n);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(opts, on_async_error, n);
    if (s == NATS_OK) {
        s = natsConnection_Connect(&n->conn, opts);
        if (s == NATS_OK) {
            on_connected(n->conn, n);
        } else if (s == NATS_NOT_YET_CONNECTED) {
            ft_log(FT_LOG_WARN, NULL, "nats: server not reachable yet, retrying in the background");
            s = NATS_OK;
        }
    }
    if (s == NATS_OK)
        s = natsConnection_JetStream(&n->js, n->conn, NULL);
    natsOptions_Destroy(opts);
    if (s != NATS_OK) {
        ft_error_set(err, FT_ENATS, "nats: %s (%s)", natsStatus_GetText(s), nats_GetLastError(NULL));
        ft_nats_close(n);
        return FT_ENATS;
    }
    *out = n;
    return FT_OK;
}

void ft_nats_close(ft_nats_t *n)
{
    if (n == NULL)
        return;
    if (n->js != NULL)
        jsCtx_Destroy(n->js);
    if (n->conn != NULL) {
        atomic_store(&n->closing, 1);
        natsConnection_Close(n->conn);
        /* wait (bounded) for on_closed, which still refers to n */
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 5;
        pthread_mutex_lock(&n->mutex);
        while (!n->closed && pthread_cond_timedwait(&n->cond, &n->mutex, &deadline) != ETIMEDOUT)
            ;
        pthread_mutex_unlock(&n->mutex);
        natsConnection_Destroy(n->conn);
    }
    pthread_cond_destroy(&n->cond);
    pthread_mutex_destroy(&n->mutex);
    free(n);
}

void ft_nats_sub_destroy(ft_nats_t *n, natsSubscription *sub)
{
    if (sub == NULL)
        return;
    natsSubscription_Unsubscribe(sub);
    if (natsConnection_Status(n->conn) == NATS_CONN_STATUS_CONNECTED)
        natsConnection_FlushTimeout(n->conn, SUB_DESTROY_FLUSH_MS);
    natsSubscription_Destroy(sub);
}

int ft_nats_connected(const ft_nats_t *n)
{
    return atomic_load(&n->connected);
}

int ft_nats_take_reconnected(ft_nats_t *n)
{
    return atomic_exchange(&n->reconnected, 0);
}

natsConnection *ft_nats_connection(ft_nats_t *n)
{
    return n->conn;
}

jsCtx *ft_nats_jetstream(ft_nats_t *n)
{
    return n->js;
}

static int ensure_one(ft_nats_t *n, const stream_def_t *d, ft_error_t *err)
{
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    const char *subjects[] = {d->subject};
    cfg.Name = d->name;
    cfg.Description = d->description;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Retention = d->retention;
    cfg.Storage = js_FileStorage;
    cfg.Replicas = n->replicas;
    cfg.MaxAge = d->max_age_ns;
    cfg.Duplicates = d->duplicates_ns;

    jsErrCode jerr = 0;
    jsStreamInfo *si = NULL;
    natsStatus s = js_AddStream(&si, n->js, &cfg, NULL, &jerr);
    if (s != NATS_OK && jerr == JSStreamNameExistErr) {
        jerr = 0;
        s = js_UpdateStream(&si, n->js, &cfg, NULL, &jerr);
    }
    if (si != NULL)
        jsStreamInfo_Destroy(si);
    if (s != NATS_OK)
        return ft_error_set(err, FT_ENATS, "stream %s: %s (JetStream error %d: %s)", d->name, natsStatus_GetText(s), (int)jerr,
                            nats_GetLastError(NULL));
    return FT_OK;
}

int ft_nats_ensure_streams(ft_nats_t *n, ft_error_t *err)
{
    if (!ft_nats_connected(n))
        return ft_error_set(err, FT_EUNAVAILABLE, "nats is not connected");
    for (size_t i = 0; i < sizeof(streams) / sizeof(streams[0]); i++) {
        int rc = ensure_one(n, &streams[i], err);
        if (rc != FT_OK)
            return rc;
    }
    return FT_OK;
}
