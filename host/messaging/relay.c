/*
 * The relay thread. One batch is one transaction: claim rows, publish them all asynchronously,
 * wait for JetStream's acknowledgements, mark the acknowledged ones, commit. A crash between
 * publishing and committing republishes the same ids, which JetStream's duplicate window (and
 * the consumers' inbox) absorbs.
 */
#include "messaging/relay.h"

#include "core/mem.h"
#include "infra/db_pool.h"
#include "infra/log.h"
#include "infra/metrics.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* How long a batch waits for JetStream's acknowledgements. A stream whose leader died drops what
 * it is sent until its replicas elect another (about 4 s measured), so unacknowledged rows are
 * sent again every PUBLISH_WAIT_MS + RETRY_MS until one round gets through. */
#define PUBLISH_WAIT_MS 2000
#define RETRY_MS 250

FT_COUNTER(published_total, "ft_relay_published_total", "Outbox events published to JetStream and acknowledged.", FT_NO_LABELS);
FT_COUNTER(publish_errors_total, "ft_relay_publish_errors_total",
           "Outbox events JetStream did not acknowledge in their round (they are sent again).", FT_NO_LABELS);
FT_COUNTER(batch_failures_total, "ft_relay_batch_failures_total", "Relay batches the database failed (claim or marking).",
           FT_NO_LABELS);

typedef struct batch_row {
    char id[37];
    int acked;
} batch_row_t;

struct ft_relay {
    ft_relay_config_t cfg;
    char *url;
    jsCtx *js;
    pthread_t thread;
    int stop_fd;
    atomic_int stopping;
    atomic_ullong published;
    pthread_mutex_t mutex; /* guards rows, which the ack handler (a cnats thread) marks */
    batch_row_t *rows;
    size_t nrows;
    size_t ack_hint;       /* acks come back in publish order: search from after the last match */
};

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    ft_relay_t *r = closure;
    const char *id = NULL;
    if (pa != NULL && natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) == NATS_OK && id != NULL) {
        pthread_mutex_lock(&r->mutex);
        for (size_t k = 0; k < r->nrows; k++) {
            size_t i = (r->ack_hint + k) % r->nrows;
            if (strcmp(r->rows[i].id, id) == 0) {
                r->rows[i].acked = 1;
                r->ack_hint = i + 1;
                break;
            }
        }
        pthread_mutex_unlock(&r->mutex);
    }
    natsMsg_Destroy(msg);
}

static int wait_stop(ft_relay_t *r, PGconn *listen_conn, int ms)
{
    /* notifications that arrived while the last batch's statements ran are already buffered */
    if (listen_conn != NULL) {
        PQconsumeInput(listen_conn);
        PGnotify *n = PQnotifies(listen_conn);
        if (n != NULL) {
            do
                PQfreemem(n);
            while ((n = PQnotifies(listen_conn)) != NULL);
            return atomic_load(&r->stopping);
        }
    }
    struct pollfd p[2] = {{.fd = r->stop_fd, .events = POLLIN}, {.fd = listen_conn ? PQsocket(listen_conn) : -1, .events = POLLIN}};
    poll(p, listen_conn ? 2 : 1, ms);
    if (listen_conn != NULL) {
        PQconsumeInput(listen_conn);
        PGnotify *n;
        while ((n = PQnotifies(listen_conn)) != NULL)
            PQfreemem(n);
    }
    return atomic_load(&r->stopping);
}

/* One batch. Returns the number of rows published (of *claimed), or -1 when the database failed. */
static int publish_batch(ft_relay_t *r, PGconn *c, int *claimed)
{
    char limit[16];
    snprintf(limit, sizeof(limit), "%u", r->cfg.batch);
    const char *params[] = {limit};
    PGresult *res = PQexec(c, "BEGIN");
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok)
        return -1;
    res = PQexecParams(c,
                       "SELECT id, subject, event::text FROM ft_outbox"
                       " WHERE published_at IS NULL"
                       " AND pg_try_advisory_xact_lock(hashtext(aggregate_type || ':' || aggregate_id))"
                       " ORDER BY seq LIMIT $1::int FOR UPDATE SKIP LOCKED",
                       1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        ft_log(FT_LOG_WARN, NULL, "relay: claiming outbox rows: %s", PQresultErrorMessage(res));
        PQclear(res);
        PQclear(PQexec(c, "ROLLBACK"));
        return -1;
    }
    int n = PQntuples(res);
    *claimed = n;
    if (n == 0) {
        PQclear(res);
        PQclear(PQexec(c, "COMMIT"));
        return 0;
    }
    pthread_mutex_lock(&r->mutex);
    r->rows = ft_mem_realloc(r->rows, (size_t)n * sizeof(*r->rows));
    r->nrows = (size_t)n;
    r->ack_hint = 0;
    for (int i = 0; i < n; i++) {
        snprintf(r->rows[i].id, sizeof(r->rows[i].id), "%s", PQgetvalue(res, i, 0));
        r->rows[i].acked = 0;
    }
    pthread_mutex_unlock(&r->mutex);

    for (int i = 0; i < n; i++) {
        natsMsg *msg = NULL;
        const char *data = PQgetvalue(res, i, 2);
        natsStatus s = natsMsg_Create(&msg, PQgetvalue(res, i, 1), NULL, data, PQgetlength(res, i, 2));
        if (s == NATS_OK)
            s = natsMsgHeader_Set(msg, "Nats-Msg-Id", PQgetvalue(res, i, 0));
        if (s == NATS_OK)
            s = js_PublishMsgAsync(r->js, &msg, NULL);
        natsMsg_Destroy(msg); /* no effect when the library took it */
        if (s != NATS_OK)
            break; /* nats is down: the rest waits for the next round */
    }
    PQclear(res);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = PUBLISH_WAIT_MS;
    js_PublishAsyncComplete(r->js, &po);
    /* anything still unacknowledged is dropped here and sent again next round, same id */
    natsMsgList pending;
    if (js_PublishAsyncGetPendingList(&pending, r->js) == NATS_OK)
        natsMsgList_Destroy(&pending);

    if (r->cfg.crash_after_publish) {
        ft_log(FT_LOG_ERROR, NULL, "relay: crashing after publishing, as FT_RELAY_CRASH_AFTER_PUBLISH asks");
        ft_log_flush();
        _exit(137);
    }

    /* mark the acknowledged ones: a PostgreSQL array literal of their ids */
    pthread_mutex_lock(&r->mutex);
    char *ids = ft_mem_alloc(r->nrows * 38 + 3);
    size_t used = 0, acked = 0;
    ids[used++] = '{';
    for (size_t i = 0; i < r->nrows; i++) {
        if (!r->rows[i].acked)
            continue;
        if (acked++ > 0)
            ids[used++] = ',';
        memcpy(ids + used, r->rows[i].id, 36);
        used += 36;
    }
    ids[used++] = '}';
    ids[used] = '\0';
    r->nrows = 0;
    pthread_mutex_unlock(&r->mutex);
    const char *mp[] = {ids};
    res = PQexecParams(c, "UPDATE ft_outbox SET published_at = now() WHERE id = ANY($1::uuid[])", 1, NULL, mp, NULL, NULL, 0);
    ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    free(ids);
    res = PQexec(c, ok ? "COMMIT" : "ROLLBACK");
    ok = ok && PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (n > (int)acked)
        ft_counter_add(ft_metric_series(&publish_errors_total), (uint64_t)n - acked);
    if (!ok)
        return -1;
    atomic_fetch_add(&r->published, acked);
    ft_counter_add(ft_metric_series(&published_total), acked);
    return (int)acked;
}

static void *relay_main(void *arg)
{
    ft_relay_t *r = arg;
    PGconn *c = NULL;
    int logged = 0;
    while (!atomic_load(&r->stopping)) {
        if (c == NULL || PQstatus(c) != CONNECTION_OK) {
            if (c != NULL)
                PQfinish(c);
            ft_error_t err = {0};
            c = ft_db_connect(r->url, "farutech-relay", &err);
            /*
             * The outbox fills in bursts faster than autovacuum's statistics follow. With stale
             * statistics the planner reads every unpublished row through a bitmap, taking each
             * row's aggregate lock, and sorts them (30 ms for 500 of 50,000 rows measured)
             * instead of walking the partial index in seq order and stopping at the limit
             * (1.8 ms). This connection runs nothing but the claim and the marking.
             */
            PGresult *res = c != NULL ? PQexec(c, "SET enable_bitmapscan = off; LISTEN ft_outbox") : NULL;
            if (res != NULL)
                PQclear(res);
            if (c == NULL) {
                if (!logged++)
                    ft_log(FT_LOG_WARN, NULL, "relay: %s; retrying", err.message);
                if (wait_stop(r, NULL, 1000))
                    break;
                continue;
            }
            logged = 0;
        }
        if (!ft_nats_connected(r->cfg.nats)) {
            /* rows wait in the outbox until nats-server is back */
            if (wait_stop(r, NULL, 200))
                break;
            continue;
        }
        int claimed = 0;
        int n = publish_batch(r, c, &claimed);
        if (n < 0) {
            ft_counter_inc(ft_metric_series(&batch_failures_total));
            if (wait_stop(r, NULL, 500))
                break;
            continue;
        }
        if (n < claimed) {
            /* rows JetStream did not take wait in the outbox: send them again soon, not at the next
             * notification or poll, which may be minutes away when nothing new is written */
            if (wait_stop(r, NULL, RETRY_MS))
                break;
            continue;
        }
        if ((unsigned)n < r->cfg.batch && wait_stop(r, c, (int)r->cfg.poll_ms))
            break;
    }
    if (c != NULL)
        PQfinish(c);
    return NULL;
}

ft_relay_t *ft_relay_start(const ft_relay_config_t *cfg)
{
    ft_relay_t *r = ft_mem_calloc(1, sizeof(*r));
    r->cfg = *cfg;
    r->url = ft_mem_strdup(cfg->database_url);
    pthread_mutex_init(&r->mutex, NULL);
    r->stop_fd = eventfd(0, EFD_CLOEXEC);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = 4096;
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.AckHandlerClosure = r;
    natsConnection_JetStream(&r->js, ft_nats_connection(cfg->nats), &jo);
    pthread_create(&r->thread, NULL, relay_main, r);
    return r;
}

void ft_relay_stop(ft_relay_t *r)
{
    if (r == NULL)
        return;
    atomic_store(&r->stopping, 1);
    uint64_t one = 1;
    if (write(r->stop_fd, &one, sizeof(one)) < 0) {
        /* the thread polls with a timeout as well */
    }
    pthread_join(r->thread, NULL);
    jsCtx_Destroy(r->js);
    close(r->stop_fd);
    pthread_mutex_destroy(&r->mutex);
    free(r->rows);
    free(r->url);
    free(r);
}

uint64_t ft_relay_published(const ft_relay_t *r)
{
    return atomic_load(&((ft_relay_t *)r)->published);
}
