/*
 * The LISTEN thread: poll(2) on the connection's socket and on an eventfd used to stop it,
 * PQconsumeInput, drain PQnotifies. A lost connection is retried every second.
 */
#include "infra/pg_listen.h"

#include "core/mem.h"
#include "infra/db_pool.h"
#include "infra/log.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct ft_listener {
    char *url;
    char **channels;
    ft_listen_fn fn;
    void *arg;
    int stop_fd;
    atomic_int stopping, connected;
    pthread_t thread;
};

/* Sleeps up to ms, waking early when asked to stop. Returns 1 when stopping. */
static int wait_stop(ft_listener_t *l, int ms)
{
    struct pollfd p = {.fd = l->stop_fd, .events = POLLIN};
    poll(&p, 1, ms);
    return atomic_load(&l->stopping);
}

static PGconn *open_listening(ft_listener_t *l)
{
    ft_error_t err = {0};
    PGconn *conn = ft_db_connect(l->url, "farutech-host-listen", &err);
    if (conn == NULL)
        return NULL;
    for (char **ch = l->channels; *ch != NULL; ch++) {
        char sql[128];
        snprintf(sql, sizeof(sql), "LISTEN %s", *ch);
        PGresult *r = PQexec(conn, sql);
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok) {
            PQfinish(conn);
            return NULL;
        }
    }
    return conn;
}

static void *listen_main(void *arg)
{
    ft_listener_t *l = arg;
    int logged_down = 0;
    while (!atomic_load(&l->stopping)) {
        PGconn *conn = open_listening(l);
        if (conn == NULL) {
            if (!logged_down++)
                ft_log(FT_LOG_WARN, NULL, "listen: cannot connect to the database; retrying every second");
            if (wait_stop(l, 1000))
                break;
            continue;
        }
        logged_down = 0;
        l->fn(l->arg, NULL, NULL); /* whatever happened while we were away is unknown */
        atomic_store(&l->connected, 1);
        while (!atomic_load(&l->stopping)) {
            struct pollfd p[2] = {{.fd = PQsocket(conn), .events = POLLIN}, {.fd = l->stop_fd, .events = POLLIN}};
            if (poll(p, 2, 5000) < 0 && errno != EINTR)
                break;
            if (p[1].revents != 0)
                break;
            if (PQconsumeInput(conn) == 0)
                break; /* connection lost */
            PGnotify *n;
            while ((n = PQnotifies(conn)) != NULL) {
                l->fn(l->arg, n->relname, n->extra);
                PQfreemem(n);
            }
            if (p[0].revents == 0) {
                /* quiet for a while: make sure the server is still there */
                PGresult *r = PQexec(conn, "SELECT 1");
                int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
                PQclear(r);
                if (!ok)
                    break;
            }
        }
        atomic_store(&l->connected, 0);
        PQfinish(conn);
        if (!atomic_load(&l->stopping))
            ft_log(FT_LOG_WARN, NULL, "listen: connection lost; reconnecting");
    }
    return NULL;
}

ft_listener_t *ft_listener_start(const char *database_url, const char *const *channels, ft_listen_fn fn, void *arg)
{
    ft_listener_t *l = ft_mem_calloc(1, sizeof(*l));
    l->url = ft_mem_strdup(database_url);
    size_t n = 0;
    while (channels[n] != NULL)
        n++;
    l->channels = ft_mem_calloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        l->channels[i] = ft_mem_strdup(channels[i]);
    l->fn = fn;
    l->arg = arg;
    l->stop_fd = eventfd(0, EFD_CLOEXEC);
    pthread_create(&l->thread, NULL, listen_main, l);
    return l;
}

void ft_listener_stop(ft_listener_t *l)
{
    if (l == NULL)
        return;
    atomic_store(&l->stopping, 1);
    uint64_t one = 1;
    if (write(l->stop_fd, &one, sizeof(one)) < 0) {
        /* the thread also polls with a timeout */
    }
    pthread_join(l->thread, NULL);
    close(l->stop_fd);
    for (char **ch = l->channels; *ch != NULL; ch++)
        free(*ch);
    free(l->channels);
    free(l->url);
    free(l);
}

int ft_listener_connected(const ft_listener_t *l)
{
    return atomic_load(&((ft_listener_t *)l)->connected);
}
