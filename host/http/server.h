/*
 * The HTTP server: N threads, each with its own libuv loop and h2o context, each accepting on
 * its own SO_REUSEPORT socket bound to the one listen address, which no other process may
 * share (infra/port_guard.h). Drain on request: stop accepting, let in-flight requests and
 * their deferred work finish, then stop.
 */
#ifndef FT_SERVER_H
#define FT_SERVER_H

#include <h2o.h>
#include <pthread.h>
#include <uv.h>

#include "app.h"
#include "http/sse.h"
#include "infra/metrics.h"
#include "plugins/registry.h"

typedef struct ft_http_server ft_http_server_t;

struct ft_http_thread {
    h2o_context_t ctx; /* first: h2o hands handlers the context, and the thread is found from it */
    uv_loop_t loop;
    h2o_accept_ctx_t accept_ctx;
    uv_tcp_t listener;
    int listen_fd;
    uv_async_t wake;
    uv_async_t catalog_wake; /* a new catalog was published */
    uv_timer_t tick;
    ft_sse_thread_t sse; /* the event streams served here */
    ft_db_lane_port_t lane_port; /* cold entitlement reads come back here */
    ft_catalog_reader_t catalog_reader;
    pthread_t tid;
    ft_metrics_shard_t *metrics;
    ft_app_t *app;
    ft_http_server_t *server;
    unsigned index;
    unsigned inflight;   /* requests begun and not yet disposed by h2o */
    unsigned pending_db; /* deferred units of work not yet completed */
    int draining;
    uint64_t drain_deadline_ns;
    uint64_t id_seed, id_counter; /* request id generation */
    /* the last peer address written as text: keep-alive connections, and every connection
     * through a load balancer, come from the same few addresses */
    struct ft_peer_memo {
        int family;
        unsigned char addr[16];
        char text[48];
    } last_peer;
};

/* Before anything else starts: FT_OK if the listen address is free, FT_ECONFLICT if another
 * process holds it (err names it), FT_EIO or FT_EINVAL if it cannot be bound at all. */
int ft_http_server_probe(const ft_app_t *app, ft_error_t *err);
/* Binds the listen sockets and prepares the threads; NULL with err filled if the address cannot
 * be bound, or FT_ECONFLICT in err if another process listens on it too (see open_listeners). */
ft_http_server_t *ft_http_server_create(ft_app_t *app, ft_error_t *err);
/* The event streams' hub, for what publishes changes to them. */
ft_sse_hub_t *ft_http_server_sse(ft_http_server_t *s);
/* The port actually bound (useful with port 0). */
unsigned ft_http_server_port(const ft_http_server_t *s);
void ft_http_server_start(ft_http_server_t *s);
/* Asks every thread to drain; returns at once. */
void ft_http_server_shutdown(ft_http_server_t *s);
/* Waits until every thread has stopped serving; returns 0 if all drained, -1 if a drain timed out. */
int ft_http_server_join(ft_http_server_t *s);

#endif
