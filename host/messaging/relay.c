/*
 * The relay's lanes (FT_RELAY_LANES threads). One batch is one transaction on the lane's own
 * connection: lock the lane's outbox partitions (those no other relay's transaction holds), claim
 * their oldest pending rows, publish them all asynchronously on the lane's own JetStream context,
 * wait once for all their acknowledgements, take the acknowledged ones off the pending list in one
 * statement, commit. While one lane waits for JetStream, another claims or marks: the lanes overlap
 * the database's time with NATS's. Each aggregate's order holds because all its rows are in one
 * partition and a partition is published by one transaction at a time, in seq order. A crash
 * between publishing and committing republishes the same ids, which JetStream's duplicate window
 * (and the consumers' inbox) absorbs; so does a lost commit, which is why the relay's session
 * commits without waiting for the WAL flush (synchronous_commit = off).
 */
#include "messaging/relay.h"

#include "core/mem.h"
#include "infra/db_pool.h"
#include "infra/log.h"
#include "infra/metrics.h"
#include "store/outbox_store.h"
#include "store/sql.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
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
    const char *seq; /* both point into the batch's claim result */
    const char *id;
    int acked;
} batch_row_t;

/* One lane: a thread with its own database connection (its own transaction) and its own JetStream
 * context (its own acknowledgements to wait for). */
typedef struct lane {
    ft_relay_t *r;
    jsCtx *js;
    pthread_t thread;
    pthread_mutex_t mutex; /* guards rows, which the ack handler (a cnats thread) marks */
    batch_row_t *rows;
    size_t nrows, cap;
    size_t ack_hint;       /* acks come back in publish order: search from after the last match */
    char *partitions;      /* the outbox partitions this lane publishes, an int array literal */
} lane_t;

struct ft_relay {
    ft_relay_config_t cfg;
    char *url;
    int stop_fd;
    atomic_int stopping;
    atomic_ullong published;
    unsigned nlanes;
    lane_t *lanes;
};

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    lane_t *r = closure;
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

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* One batch. Returns the number of rows published (of *claimed), or -1 when the database failed. */
static int publish_batch(lane_t *r, PGconn *c, int *claimed)
{
    ft_error_t err = {0};
    PGresult *res = NULL;
    double t0 = mono_ms();
    PGresult *locked = NULL;
    int rc = ft_outbox_begin_batch(c, r->partitions, &locked, &err);
    if (rc == FT_OK) {
        rc = ft_outbox_claim(c, PQgetvalue(locked, 0, 0), r->r->cfg.batch, &res, &err);
        PQclear(locked);
    }
    if (rc != FT_OK) {
        ft_log(FT_LOG_WARN, NULL, "relay: %s", err.message);
        ft_sql_rollback(c);
        return -1;
    }
    int n = PQntuples(res);
    *claimed = n;
    if (n == 0) {
        PQclear(res);
        return ft_sql_commit(c, &err) == FT_OK ? 0 : -1;
    }
    double t1 = mono_ms();
    pthread_mutex_lock(&r->mutex);
    if ((size_t)n > r->cap) {
        r->rows = ft_mem_realloc(r->rows, (size_t)n * sizeof(*r->rows));
        r->cap = (size_t)n;
    }
    r->nrows = (size_t)n;
    r->ack_hint = 0;
    for (int i = 0; i < n; i++) {
        r->rows[i].seq = PQgetvalue(res, i, 0);
        r->rows[i].id = PQgetvalue(res, i, 1);
        r->rows[i].acked = 0;
    }
    pthread_mutex_unlock(&r->mutex);

    for (int i = 0; i < n; i++) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MsgId = PQgetvalue(res, i, 1);
        natsStatus s = js_PublishAsync(r->js, PQgetvalue(res, i, 2), PQgetvalue(res, i, 3), PQgetlength(res, i, 3), &po);
        if (s != NATS_OK)
            break; /* nats is down: the rest waits for the next round */
    }
    double t2 = mono_ms();
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = PUBLISH_WAIT_MS;
    js_PublishAsyncComplete(r->js, &po);
    /* anything still unacknowledged is dropped here and sent again next round, same id */
    natsMsgList pending;
    if (js_PublishAsyncGetPendingList(&pending, r->js) == NATS_OK)
        natsMsgList_Destroy(&pending);
    double t3 = mono_ms();

    if (r->r->cfg.crash_after_publish) {
        ft_log(FT_LOG_ERROR, NULL, "relay: crashing after publishing, as FT_RELAY_CRASH_AFTER_PUBLISH asks");
        ft_log_flush();
        _exit(137);
    }

    /* mark the acknowledged ones, by seq, in one statement */
    pthread_mutex_lock(&r->mutex);
    char *seqs = ft_mem_alloc(r->nrows * 21 + 3);
    size_t used = 0, acked = 0;
    seqs[used++] = '{';
    for (size_t i = 0; i < r->nrows; i++) {
        if (!r->rows[i].acked)
            continue;
        if (acked++ > 0)
            seqs[used++] = ',';
        size_t len = strlen(r->rows[i].seq);
        memcpy(seqs + used, r->rows[i].seq, len);
        used += len;
    }
    seqs[used++] = '}';
    seqs[used] = '\0';
    r->nrows = 0;
    pthread_mutex_unlock(&r->mutex);
    int ok = ft_outbox_end_batch(c, seqs, &err) == FT_OK;
    if (!ok) {
        ft_log(FT_LOG_WARN, NULL, "relay: %s", err.message);
        ft_sql_rollback(c);
    }
    free(seqs);
    PQclear(res);
    double t4 = mono_ms();
    /* where a batch's time goes (FT_LOG_LEVEL=debug), the figures the README's relay section cites */
    if (ft_log_enabled(FT_LOG_DEBUG))
        ft_log(FT_LOG_DEBUG, NULL, "relay: batch of %d: lock and claim %.2f, publish %.2f, acknowledgements %.2f, marking and commit %.2f ms",
               n, t1 - t0, t2 - t1, t3 - t2, t4 - t3);
    if (n > (int)acked)
        ft_counter_add(ft_metric_series(&publish_errors_total), (uint64_t)n - acked);
    if (!ok)
        return -1;
    atomic_fetch_add(&r->r->published, acked);
    ft_counter_add(ft_metric_series(&published_total), acked);
    return (int)acked;
}

static void *relay_main(void *arg)
{
    lane_t *lane = arg;
    ft_relay_t *r = lane->r;
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
             * statistics the planner may read every pending row through a bitmap and sort them
             * instead of walking the pending list in seq order and stopping at the limit. Nor may
             * it scan the whole outbox (every event ever written) testing each row against the
             * claimed seqs: the claim finds its events by key. This connection runs nothing but
             * the relay's statements.
             */
            PGresult *res = c != NULL ? PQexec(c, "SET enable_bitmapscan = off; SET enable_seqscan = off;"
                                                  " SET synchronous_commit = off; LISTEN ft_outbox")
                                      : NULL;
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
        int n = publish_batch(lane, c, &claimed);
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

/* Lane i of n publishes the partitions p with p % n == i: every partition has one lane in every
 * relay, and the lanes of one relay never wait for each other's locks. Returns "{i,i+n,...}", the
 * caller frees. */
static char *lane_partitions(unsigned i, unsigned n)
{
    char *text = ft_mem_alloc(FT_OUTBOX_PARTITIONS * 4 + 3);
    size_t used = 0;
    text[used++] = '{';
    for (unsigned p = i; p < FT_OUTBOX_PARTITIONS; p += n)
        used += (size_t)sprintf(text + used, "%s%u", p == i ? "" : ",", p);
    text[used++] = '}';
    text[used] = '\0';
    return text;
}

ft_relay_t *ft_relay_start(const ft_relay_config_t *cfg)
{
    ft_relay_t *r = ft_mem_calloc(1, sizeof(*r));
    r->cfg = *cfg;
    r->url = ft_mem_strdup(cfg->database_url);
    r->stop_fd = eventfd(0, EFD_CLOEXEC);
    r->nlanes = cfg->lanes > 0 ? (cfg->lanes < FT_OUTBOX_PARTITIONS ? cfg->lanes : FT_OUTBOX_PARTITIONS) : 1;
    r->lanes = ft_mem_calloc(r->nlanes, sizeof(*r->lanes));
    for (unsigned i = 0; i < r->nlanes; i++) {
        lane_t *l = &r->lanes[i];
        l->r = r;
        l->partitions = lane_partitions(i, r->nlanes);
        pthread_mutex_init(&l->mutex, NULL);
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.PublishAsync.MaxPending = cfg->batch > 4096 ? cfg->batch : 4096;
        jo.PublishAsync.AckHandler = on_ack;
        jo.PublishAsync.AckHandlerClosure = l;
        natsConnection_JetStream(&l->js, ft_nats_connection(cfg->nats), &jo);
        pthread_create(&l->thread, NULL, relay_main, l);
    }
    return r;
}

void ft_relay_stop(ft_relay_t *r)
{
    if (r == NULL)
        return;
    atomic_store(&r->stopping, 1);
    /* an eventfd counter: every lane's poll sees it readable until it is read, which nobody does */
    uint64_t one = 1;
    if (write(r->stop_fd, &one, sizeof(one)) < 0) {
        /* the threads poll with a timeout as well */
    }
    for (unsigned i = 0; i < r->nlanes; i++) {
        lane_t *l = &r->lanes[i];
        pthread_join(l->thread, NULL);
        jsCtx_Destroy(l->js);
        pthread_mutex_destroy(&l->mutex);
        free(l->rows);
        free(l->partitions);
    }
    close(r->stop_fd);
    free(r->lanes);
    free(r->url);
    free(r);
}

uint64_t ft_relay_published(const ft_relay_t *r)
{
    return atomic_load(&((ft_relay_t *)r)->published);
}
