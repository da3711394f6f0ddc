/*
 * The readiness monitor thread. It holds its own database connection so that a busy request
 * pool never makes the host look unready, and it is the only place that (re)creates streams.
 */
#include "infra/readiness.h"

#include "core/clock.h"
#include "core/mem.h"
#include "infra/db_pool.h"
#include "infra/log.h"
#include "infra/metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

FT_GAUGE(ready_gauge, "ft_ready", "1 while this host is ready (what /ready answers 200 for), else 0.", FT_NO_LABELS);

struct ft_readiness {
    char *url;
    const ft_migration_set_t *migrations;
    ft_nats_t *nats;
    int nats_required;
    unsigned interval_ms;
    pthread_t thread;
    pthread_mutex_t mutex; /* guards report and stop */
    pthread_cond_t cond;
    int stop;
    ft_readiness_report_t report;
};

static void set_line(char *dst, size_t len, int ok, const ft_error_t *err)
{
    snprintf(dst, len, "%s", ok ? "ok" : err->message);
}

static void probe(ft_readiness_t *r, PGconn **conn)
{
    ft_readiness_report_t rep;
    memset(&rep, 0, sizeof(rep));
    ft_error_t err = {0};

    if (*conn != NULL && PQstatus(*conn) != CONNECTION_OK) {
        PQfinish(*conn);
        *conn = NULL;
    }
    if (*conn == NULL)
        *conn = ft_db_connect(r->url, "farutech-host-readiness", &err);
    if (*conn != NULL) {
        PGresult *res = PQexec(*conn, "SELECT 1");
        rep.database_ok = PQresultStatus(res) == PGRES_TUPLES_OK;
        if (!rep.database_ok)
            ft_db_error(*conn, res, &err, "database probe");
        PQclear(res);
    }
    set_line(rep.database, sizeof(rep.database), rep.database_ok, &err);

    if (rep.database_ok) {
        rep.migrations_ok = ft_migrations_check(*conn, r->migrations, &err) == FT_OK;
        set_line(rep.migrations, sizeof(rep.migrations), rep.migrations_ok, &err);
    } else {
        snprintf(rep.migrations, sizeof(rep.migrations), "unknown: the database is not reachable");
    }

    if (r->nats != NULL) {
        rep.nats_ok = ft_nats_connected(r->nats);
        snprintf(rep.nats, sizeof(rep.nats), "%s", rep.nats_ok ? "ok" : "not connected to nats-server (reconnecting)");
        pthread_mutex_lock(&r->mutex);
        rep.streams_ok = r->report.streams_ok;
        memcpy(rep.streams, r->report.streams, sizeof(rep.streams));
        pthread_mutex_unlock(&r->mutex);
        if (ft_nats_take_reconnected(r->nats) || (rep.nats_ok && !rep.streams_ok)) {
            rep.streams_ok = ft_nats_ensure_streams(r->nats, &err) == FT_OK;
            set_line(rep.streams, sizeof(rep.streams), rep.streams_ok, &err);
            if (!rep.streams_ok)
                ft_log(FT_LOG_WARN, NULL, "jetstream: %s", err.message);
        }
        if (!rep.nats_ok) {
            rep.streams_ok = 0;
            snprintf(rep.streams, sizeof(rep.streams), "unknown: nats is not connected");
        }
    } else {
        rep.nats_ok = rep.streams_ok = 1;
        snprintf(rep.nats, sizeof(rep.nats), "not used by this process");
        snprintf(rep.streams, sizeof(rep.streams), "not used by this process");
    }

    pthread_mutex_lock(&r->mutex);
    r->report = rep;
    pthread_mutex_unlock(&r->mutex);
}

static void *monitor_main(void *arg)
{
    ft_readiness_t *r = arg;
    PGconn *conn = NULL;
    pthread_mutex_lock(&r->mutex);
    while (!r->stop) {
        pthread_mutex_unlock(&r->mutex);
        probe(r, &conn);
        pthread_mutex_lock(&r->mutex);
        struct timespec deadline = ft_mono_deadline(r->interval_ms);
        while (!r->stop && pthread_cond_timedwait(&r->cond, &r->mutex, &deadline) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&r->mutex);
    if (conn != NULL)
        PQfinish(conn);
    return NULL;
}

static double read_ready(void *arg)
{
    ft_readiness_report_t rep;
    return ft_readiness_get(arg, &rep) ? 1 : 0;
}

ft_readiness_t *ft_readiness_start(const char *database_url, const ft_migration_set_t *migrations, ft_nats_t *nats,
                                   int nats_required, unsigned interval_ms)
{
    ft_readiness_t *r = ft_mem_calloc(1, sizeof(*r));
    r->url = ft_mem_strdup(database_url);
    r->migrations = migrations;
    r->nats = nats;
    r->nats_required = nats != NULL && nats_required;
    r->interval_ms = interval_ms;
    snprintf(r->report.database, sizeof(r->report.database), "not probed yet");
    snprintf(r->report.migrations, sizeof(r->report.migrations), "not probed yet");
    snprintf(r->report.nats, sizeof(r->report.nats), "not probed yet");
    snprintf(r->report.streams, sizeof(r->report.streams), "not created yet");
    pthread_mutex_init(&r->mutex, NULL);
    ft_cond_init_mono(&r->cond);
    /* The first verdict is taken before returning, so /ready is right from the first request. */
    PGconn *conn = NULL;
    probe(r, &conn);
    if (conn != NULL)
        PQfinish(conn);
    pthread_create(&r->thread, NULL, monitor_main, r);
    ft_gauge_bind(&ready_gauge, read_ready, r);
    return r;
}

void ft_readiness_stop(ft_readiness_t *r)
{
    if (r == NULL)
        return;
    ft_gauge_bind(&ready_gauge, NULL, NULL);
    pthread_mutex_lock(&r->mutex);
    r->stop = 1;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->mutex);
    pthread_join(r->thread, NULL);
    pthread_mutex_destroy(&r->mutex);
    pthread_cond_destroy(&r->cond);
    free(r->url);
    free(r);
}

int ft_readiness_get(ft_readiness_t *r, ft_readiness_report_t *out)
{
    pthread_mutex_lock(&r->mutex);
    *out = r->report;
    pthread_mutex_unlock(&r->mutex);
    /* NATS state is live: the callbacks keep it current between probes. */
    if (r->nats != NULL && !ft_nats_connected(r->nats)) {
        out->nats_ok = 0;
        snprintf(out->nats, sizeof(out->nats), "not connected to nats-server (reconnecting)");
    }
    out->nats_required = r->nats_required;
    return out->database_ok && out->migrations_ok && (!out->nats_required || (out->nats_ok && out->streams_ok));
}

const char *ft_readiness_failing(const ft_readiness_report_t *rep, char *buf, size_t len)
{
    const struct {
        int ok;
        const char *name;
    } parts[] = {{rep->database_ok, "database"},
                 {rep->migrations_ok, "migrations"},
                 {rep->nats_ok || !rep->nats_required, "nats"},
                 {rep->streams_ok || !rep->nats_required, "jetstream"}};
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]) && used < len; i++) {
        if (!parts[i].ok) {
            int n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "", parts[i].name);
            if (n < 0)
                break;
            used += (size_t)n;
        }
    }
    return buf;
}
