/*
 * Listener sockets (the loop threads' own, on an address no other process listens on), loop
 * threads and the h2o wiring. Errors h2o answers by itself (a body over the limit, say) pass
 * through a filter that rewrites them as problem+json, so every error a client sees has the
 * same shape.
 */
#include "http/server.h"

#include "core/mem.h"
#include "http/middleware.h"
#include "http/request.h"
#include "infra/log.h"
#include "infra/port_guard.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/rand.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TICK_MS 100
#define LISTEN_BACKLOG 1024

struct ft_http_server {
    ft_app_t *app;
    h2o_globalconf_t globalconf;
    ft_http_thread_t *threads;
    unsigned nthreads;
    unsigned port;
    ft_sse_hub_t *sse;
    sem_t finished; /* posted by each thread when its loop has stopped */
};

static ft_http_thread_t *thread_of(h2o_req_t *req)
{
    return (ft_http_thread_t *)req->conn->ctx; /* ctx is the first member */
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    ft_req_t *r = ft_req_start(thread_of(req), req);
    ft_pipeline_begin(r);
    return 0;
}

/* --- errors generated inside h2o (413, 400 on a broken body): rewritten as problem+json --- */

typedef struct problem_ostream {
    h2o_ostream_t super;
    h2o_iovec_t body;
    int sent;
} problem_ostream_t;

static void problem_do_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt, h2o_send_state_t state)
{
    problem_ostream_t *os = (problem_ostream_t *)self;
    if (!os->sent) {
        os->sent = 1;
        h2o_ostream_send_next(self, req, &os->body, 1, state);
    } else {
        h2o_ostream_send_next(self, req, NULL, 0, state);
    }
}

static void problem_on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    int status = req->res.status;
    if (status >= 400) {
        const char *slug = status == 413 ? "body-too-large" : status == 400 ? "bad-request" : "http-error";
        char id[40];
        ft_request_id_generate(thread_of(req), id);
        json_t *p = json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", "", "title", ft_http_reason(status), "status", status,
                              "detail", req->res.reason != NULL ? req->res.reason : "", "request_id", id);
        char type[96];
        snprintf(type, sizeof(type), "https://farutech.dev/problems/%s", slug);
        json_object_set_new(p, "type", json_string(type));
        if (status == 413) {
            char detail[160];
            snprintf(detail, sizeof(detail), "The request body is larger than the limit of %zu bytes.",
                     req->conn->ctx->globalconf->max_request_entity_size);
            json_object_set_new(p, "detail", json_string(detail));
        }
        size_t len = json_dumpb(p, NULL, 0, JSON_COMPACT);
        char *buf = h2o_mem_alloc_pool(&req->pool, len);
        json_dumpb(p, buf, len, JSON_COMPACT);
        json_decref(p);

        memset(&req->res.headers, 0, sizeof(req->res.headers));
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/problem+json"));
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL, h2o_strdup(&req->pool, id, SIZE_MAX).base,
                              strlen(id));
        req->res.content_length = len;
        problem_ostream_t *os = (problem_ostream_t *)h2o_add_ostream(req, sizeof(*os), slot);
        os->super.do_send = problem_do_send;
        os->body = h2o_iovec_init(buf, len);
        os->sent = 0;
        slot = &os->super.next;
    }
    h2o_setup_next_ostream(req, slot);
}

static void fallback_log_access(h2o_logger_t *self, h2o_req_t *req)
{
    ft_http_thread_t *t = thread_of(req);
    const char *id = "-";
    ssize_t i = h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("x-request-id"), -1);
    char idbuf[64];
    if (i != -1 && req->res.headers.entries[i].value.len < sizeof(idbuf)) {
        memcpy(idbuf, req->res.headers.entries[i].value.base, req->res.headers.entries[i].value.len);
        idbuf[req->res.headers.entries[i].value.len] = '\0';
        id = idbuf;
    }
    uint64_t dur = 0;
    if (req->timestamps.response_end_at.tv_sec != 0)
        dur = (uint64_t)((req->timestamps.response_end_at.tv_sec - req->timestamps.request_begin_at.tv_sec) * 1000000000LL +
                         (req->timestamps.response_end_at.tv_usec - req->timestamps.request_begin_at.tv_usec) * 1000LL);
    ft_log_access(id, NULL, "OTHER", "unmatched", req->res.status, dur);
    ft_metrics_observe(t->metrics, FT_METRICS_ROUTE_UNMATCHED, req->res.status, dur);
}

/* --- the loop threads --- */

static void on_accept(uv_stream_t *listener, int status)
{
    ft_http_thread_t *t = listener->data;
    if (status != 0 || t->draining)
        return;
    uv_tcp_t *conn = ft_mem_alloc(sizeof(*conn));
    uv_tcp_init(listener->loop, conn);
    if (uv_accept(listener, (uv_stream_t *)conn) != 0) {
        uv_close((uv_handle_t *)conn, (uv_close_cb)free);
        return;
    }
    uv_tcp_nodelay(conn, 1);
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)conn, (uv_close_cb)free);
    h2o_accept(&t->accept_ctx, sock);
}

static void maybe_finish_drain(ft_http_thread_t *t)
{
    if (!t->draining)
        return;
    if ((t->inflight == 0 && t->pending_db == 0) || ft_now_ns() >= t->drain_deadline_ns)
        uv_stop(&t->loop);
}

static void on_tick(uv_timer_t *timer)
{
    ft_http_thread_t *t = timer->data;
    ft_log_flush();
    ft_sse_tick(&t->sse);
    maybe_finish_drain(t);
}

static void on_wake(uv_async_t *async)
{
    ft_http_thread_t *t = async->data;
    if (t->draining)
        return;
    t->draining = 1;
    t->drain_deadline_ns = ft_now_ns() + (uint64_t)t->app->config.shutdown_timeout_ms * 1000000u;
    uv_close((uv_handle_t *)&t->listener, NULL);
    h2o_context_request_shutdown(&t->ctx);
    ft_sse_drain(&t->sse); /* an event stream would hold the drain until its deadline */
    uv_timer_start(&t->tick, on_tick, 10, 10); /* check the drain more often than the log flush */
    maybe_finish_drain(t);
}

static void on_catalog_wake(uv_async_t *async)
{
    ft_http_thread_t *t = async->data;
    ft_catalog_reader_refresh(&t->catalog_reader);
}

/* Registry callback, on the reloading thread: wake the loop so it moves to the new catalog. */
static void notify_catalog(void *arg)
{
    ft_http_thread_t *t = arg;
    uv_async_send(&t->catalog_wake);
}

static void *thread_main(void *arg)
{
    ft_http_thread_t *t = arg;
    ft_log_buffer_begin();
    uv_run(&t->loop, UV_RUN_DEFAULT);
    ft_catalog_reader_detach(&t->catalog_reader);
    if (t->inflight != 0 || t->pending_db != 0)
        ft_log(FT_LOG_WARN, NULL, "http thread %u: drain timed out with %u requests and %u database jobs in flight", t->index,
               t->inflight, t->pending_db);
    ft_log_buffer_end();
    sem_post(&t->server->finished);
    /* The thread stays parked until the process exits, as h2o's own server does: idle
     * keep-alive sockets go down with the process, and h2o's per-thread allocator caches stay
     * owned by a live thread rather than being cut loose. */
    for (;;)
        pause();
    return NULL;
}

/* The numeric listen address (config validated its shape; getaddrinfo still has the last word). */
static int listen_address(const char *host, unsigned port, struct sockaddr_storage *ss, socklen_t *len, ft_error_t *err)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%u", port);
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0)
        return ft_error_set(err, FT_EINVAL, "FT_HTTP_LISTEN host %s: %s (use a numeric address such as 127.0.0.1 or ::1)", host,
                            gai_strerror(gai));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return FT_OK;
}

static unsigned port_of(const struct sockaddr_storage *ss)
{
    return ntohs(ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_port
                                           : ((const struct sockaddr_in *)ss)->sin_port);
}

static void set_port(struct sockaddr_storage *ss, unsigned port)
{
    if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
}

/* One loop thread's socket. own: the n sockets already open on the address, which EADDRINUSE
 * does not blame. */
static int open_listener(const char *host, const struct sockaddr_storage *ss, socklen_t len, const int *own, unsigned n,
                         int *fd_out, ft_error_t *err)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 || bind(fd, (const struct sockaddr *)ss, len) != 0 ||
        listen(fd, LISTEN_BACKLOG) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        /* a socket of another user, or one without SO_REUSEPORT, bound since the probe */
        if (e == EADDRINUSE)
            return ft_port_guard_explain((const struct sockaddr *)ss, own, n, err);
        return ft_error_set(err, FT_EIO, "cannot listen on %s:%u: %s", host, port_of(ss), strerror(e));
    }
    *fd_out = fd;
    return FT_OK;
}

int ft_http_server_probe(const ft_app_t *app, ft_error_t *err)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    int rc = listen_address(app->config.http_host, app->config.http_port, &ss, &len, err);
    if (rc != FT_OK)
        return rc;
    return ft_port_guard_probe((const struct sockaddr *)&ss, len, err);
}

/* Opens the n sockets of the threads on one address; with port 0 the first socket picks a port
 * and the others join it. Then no other process may listen there: SO_REUSEPORT, which lets the
 * threads share the address, would let another host of the same user share it too, so the
 * kernel's listeners on the port are checked against ours. Two hosts starting at the same
 * instant may both pass ft_http_server_probe; each then sees the other here and both refuse. */
static int open_listeners(ft_http_server_t *s, const ft_config_t *cfg, ft_error_t *err)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    int *fds = ft_mem_calloc(s->nthreads, sizeof(*fds));
    unsigned opened = 0;
    int rc = listen_address(cfg->http_host, cfg->http_port, &ss, &len, err);
    for (; rc == FT_OK && opened < s->nthreads; opened++) {
        rc = open_listener(cfg->http_host, &ss, len, fds, opened, &fds[opened], err);
        if (rc != FT_OK)
            break;
        if (opened == 0) {
            struct sockaddr_storage got;
            socklen_t gl = sizeof(got);
            getsockname(fds[0], (struct sockaddr *)&got, &gl);
            s->port = port_of(&got);
            set_port(&ss, s->port);
        }
    }
    if (rc == FT_OK) {
        rc = ft_port_guard_verify(fds, opened, err);
        if (rc == FT_EIO) {
            /* the probe passed; only a start race would go unseen */
            ft_log(FT_LOG_WARN, NULL, "listen address not verified as this process's alone: %s", err->message);
            rc = FT_OK;
        }
    }
    for (unsigned i = 0; i < opened; i++) {
        if (rc == FT_OK)
            s->threads[i].listen_fd = fds[i];
        else
            close(fds[i]);
    }
    free(fds);
    return rc;
}

ft_http_server_t *ft_http_server_create(ft_app_t *app, ft_error_t *err)
{
    ft_http_server_t *s = ft_mem_calloc(1, sizeof(*s));
    s->app = app;
    sem_init(&s->finished, 0, 0);
    s->nthreads = app->config.threads;
    s->threads = ft_mem_calloc(s->nthreads, sizeof(ft_http_thread_t));
    if (open_listeners(s, &app->config, err) != FT_OK) {
        sem_destroy(&s->finished);
        free(s->threads);
        free(s);
        return NULL;
    }

    s->sse = ft_sse_hub_create(&app->config);
    h2o_config_init(&s->globalconf);
    s->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("farutech"));
    s->globalconf.max_request_entity_size = app->config.max_body_bytes;
    h2o_hostconf_t *host = h2o_config_register_host(&s->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *root = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(root, sizeof(*handler));
    handler->on_req = on_req;
    h2o_filter_t *filter = h2o_create_filter(&host->fallback_path, sizeof(*filter));
    filter->on_setup_ostream = problem_on_setup_ostream;
    h2o_logger_t *logger = h2o_create_logger(&host->fallback_path, sizeof(*logger));
    logger->log_access = fallback_log_access;

    for (unsigned i = 0; i < s->nthreads; i++) {
        ft_http_thread_t *t = &s->threads[i];
        t->index = i;
        t->app = app;
        t->server = s;
        t->metrics = ft_metrics_shard_create();
        if (RAND_bytes((unsigned char *)&t->id_seed, sizeof(t->id_seed)) != 1)
            t->id_seed = (uint64_t)ft_now_ns() ^ ((uint64_t)i << 56);
        uv_loop_init(&t->loop);
        h2o_context_init(&t->ctx, &t->loop, &s->globalconf);
        t->accept_ctx.ctx = &t->ctx;
        t->accept_ctx.hosts = s->globalconf.hosts;
        uv_tcp_init(&t->loop, &t->listener);
        t->listener.data = t;
        uv_tcp_open(&t->listener, t->listen_fd);
        uv_async_init(&t->loop, &t->wake, on_wake);
        t->wake.data = t;
        ft_sse_thread_init(s->sse, &t->sse, &t->loop);
        ft_db_lane_port_init(&t->lane_port, &t->loop);
        uv_async_init(&t->loop, &t->catalog_wake, on_catalog_wake);
        t->catalog_wake.data = t;
        ft_catalog_reader_attach(app->registry, &t->catalog_reader, i);
        ft_registry_on_swap(app->registry, notify_catalog, t);
        uv_timer_init(&t->loop, &t->tick);
        t->tick.data = t;
    }
    return s;
}

ft_sse_hub_t *ft_http_server_sse(ft_http_server_t *s)
{
    return s->sse;
}

unsigned ft_http_server_port(const ft_http_server_t *s)
{
    return s->port;
}

void ft_http_server_start(ft_http_server_t *s)
{
    for (unsigned i = 0; i < s->nthreads; i++) {
        ft_http_thread_t *t = &s->threads[i];
        uv_listen((uv_stream_t *)&t->listener, LISTEN_BACKLOG, on_accept);
        uv_timer_start(&t->tick, on_tick, TICK_MS, TICK_MS);
        pthread_create(&t->tid, NULL, thread_main, t);
    }
}

void ft_http_server_shutdown(ft_http_server_t *s)
{
    for (unsigned i = 0; i < s->nthreads; i++)
        uv_async_send(&s->threads[i].wake);
}

int ft_http_server_join(ft_http_server_t *s)
{
    int rc = 0;
    for (unsigned i = 0; i < s->nthreads; i++) {
        while (sem_wait(&s->finished) != 0)
            ;
    }
    for (unsigned i = 0; i < s->nthreads; i++)
        if (s->threads[i].inflight != 0 || s->threads[i].pending_db != 0)
            rc = -1;
    return rc;
}
