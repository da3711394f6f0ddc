/*
 * Request contexts and responses. The context is tied to h2o's request by a guard object in
 * the request's pool: when h2o disposes the request the guard records the access log line and
 * metrics, and detaches the context, which deferred work may still hold.
 */
#include "http/request.h"

#include "core/mem.h"
#include "http/middleware.h"
#include "http/server.h"
#include "infra/log.h"

#include <ctype.h>
#include <stdarg.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define PROBLEM_BASE "https://farutech.dev/problems/"

uint64_t ft_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

const char *ft_http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    }
    return "Unknown";
}

/* X-Request-Id values we pass on: 1..128 characters that need no escaping anywhere. */
static int valid_request_id(const char *s, size_t len)
{
    if (len == 0 || len > FT_REQUEST_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || c == '-' || c == '_' || c == '.' || c == ':' || c == '+' || c == '=' || c == '/'))
            return 0;
    }
    return 1;
}

void ft_request_id_generate(ft_http_thread_t *t, char out[33])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t a = t->id_seed, b = ++t->id_counter;
    for (int i = 15; i >= 0; i--, a >>= 4)
        out[i] = hex[a & 15];
    for (int i = 31; i >= 16; i--, b >>= 4)
        out[i] = hex[b & 15];
    out[32] = '\0';
}

static const char *safe_method(const h2o_iovec_t m)
{
    static const char *known[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (h2o_memis(m.base, m.len, known[i], strlen(known[i])))
            return known[i];
    return "OTHER";
}

static void on_request_disposed(void *p)
{
    ft_req_t *r = *(ft_req_t **)p;
    ft_http_thread_t *t = r->thread;
    int status = r->status != 0 ? r->status : (r->req->res.status != 0 ? r->req->res.status : 499);
    uint64_t dur = ft_now_ns() - r->started_ns;
    const char *route = r->route != NULL ? r->route->pattern : "unmatched";
    ft_log_access(r->request_id, r->trace.trace_id, r->method, route, status, dur);
    ft_metrics_observe(t->metrics, r->route != NULL ? r->route->id : FT_METRICS_ROUTE_UNMATCHED, status, dur);
    r->req = NULL;
    t->inflight--;
    ft_req_release(r);
}

ft_req_t *ft_req_start(ft_http_thread_t *t, h2o_req_t *req)
{
    ft_req_t *r = ft_mem_calloc(1, sizeof(*r));
    r->req = req;
    r->thread = t;
    r->app = t->app;
    r->refs = 1; /* the guard's */
    r->started_ns = ft_now_ns();
    r->method = safe_method(req->method);

    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), -1);
    if (i != -1 && valid_request_id(req->headers.entries[i].value.base, req->headers.entries[i].value.len)) {
        memcpy(r->request_id, req->headers.entries[i].value.base, req->headers.entries[i].value.len);
        r->request_id[req->headers.entries[i].value.len] = '\0';
    } else {
        ft_request_id_generate(t, r->request_id);
    }
    /* one traceparent or none; a repeated one is as good as an invalid one: a new trace */
    i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("traceparent"), -1);
    if (i != -1 && h2o_find_header_by_str(&req->headers, H2O_STRLIT("traceparent"), i) == -1)
        ft_trace_begin(&r->trace, req->headers.entries[i].value.base, req->headers.entries[i].value.len);
    else
        ft_trace_begin(&r->trace, NULL, 0);

    ft_req_t **guard = h2o_mem_alloc_shared(&req->pool, sizeof(*guard), on_request_disposed);
    *guard = r;
    t->inflight++;
    return r;
}

const char *ft_req_client_ip(ft_req_t *r)
{
    if (r->client_ip[0] != '\0' || r->req == NULL)
        return r->client_ip;
    struct sockaddr_storage ss;
    socklen_t len = r->req->conn->callbacks->get_peername(r->req->conn, (struct sockaddr *)&ss);
    const void *addr = NULL;
    size_t alen = 0;
    if (len != 0 && ss.ss_family == AF_INET)
        addr = &((struct sockaddr_in *)&ss)->sin_addr, alen = 4;
    else if (len != 0 && ss.ss_family == AF_INET6)
        addr = &((struct sockaddr_in6 *)&ss)->sin6_addr, alen = 16;
    if (addr == NULL)
        return r->client_ip;
    /* inet_ntop is a sprintf: written once per address in a row, not once per request */
    struct ft_peer_memo *last = &r->thread->last_peer;
    _Static_assert(sizeof(last->text) == sizeof(r->client_ip), "the texts have one size");
    if (last->family == ss.ss_family && memcmp(last->addr, addr, alen) == 0) {
        memcpy(r->client_ip, last->text, sizeof(r->client_ip));
    } else if (inet_ntop(ss.ss_family, addr, r->client_ip, sizeof(r->client_ip)) != NULL) {
        last->family = ss.ss_family;
        memcpy(last->addr, addr, alen);
        memcpy(last->text, r->client_ip, sizeof(last->text));
    } else {
        r->client_ip[0] = '\0';
    }
    return r->client_ip;
}

void ft_req_hold(ft_req_t *r)
{
    r->refs++;
}

void ft_req_release(ft_req_t *r)
{
    if (--r->refs != 0)
        return;
    if (r->body != NULL)
        json_decref(r->body);
    if (r->catalog != NULL)
        ft_catalog_unpin(&r->thread->catalog_reader, r->catalog);
    free(r);
}

ft_catalog_t *ft_req_catalog(ft_req_t *r)
{
    if (r->catalog == NULL)
        r->catalog = ft_catalog_pin(&r->thread->catalog_reader);
    return r->catalog;
}

int ft_req_alive(const ft_req_t *r)
{
    return r->req != NULL;
}

const char *ft_req_param(ft_req_t *r, const char *name)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i < r->params.count; i++) {
        const char *n = r->params.names[i]; /* "{name}" */
        if (strlen(n) == nlen + 2 && memcmp(n + 1, name, nlen) == 0)
            return h2o_strdup(&r->req->pool, r->params.values[i], r->params.lens[i]).base;
    }
    return NULL;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes (and '+' to space) src into pool memory. */
static char *query_decode(h2o_mem_pool_t *pool, const char *src, size_t len)
{
    char *out = h2o_mem_alloc_pool(pool, len + 1), *o = out;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '%' && i + 2 < len && hexval(src[i + 1]) >= 0 && hexval(src[i + 2]) >= 0) {
            *o++ = (char)(hexval(src[i + 1]) * 16 + hexval(src[i + 2]));
            i += 2;
        } else if (src[i] == '+') {
            *o++ = ' ';
        } else {
            *o++ = src[i];
        }
    }
    *o = '\0';
    return out;
}

const char *ft_req_query(ft_req_t *r, const char *name)
{
    h2o_req_t *req = r->req;
    if (req->query_at == SIZE_MAX)
        return NULL;
    const char *q = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    size_t nlen = strlen(name);
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pair_end = amp != NULL ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(pair_end - q));
        const char *key_end = eq != NULL ? eq : pair_end;
        if ((size_t)(key_end - q) == nlen && memcmp(q, name, nlen) == 0)
            return eq != NULL ? query_decode(&req->pool, eq + 1, (size_t)(pair_end - eq - 1)) : "";
        q = pair_end + 1;
    }
    return NULL;
}

const char *ft_req_header(ft_req_t *r, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&r->req->headers, name, strlen(name), -1);
    if (i == -1)
        return NULL;
    h2o_iovec_t v = r->req->headers.entries[i].value;
    return h2o_strdup(&r->req->pool, v.base, v.len).base;
}

void ft_req_add_header(ft_req_t *r, const char *name, const char *value)
{
    if (r->req == NULL)
        return;
    h2o_add_header_by_str(&r->req->pool, &r->req->res.headers, name, strlen(name), 1, NULL,
                          h2o_strdup(&r->req->pool, value, SIZE_MAX).base, strlen(value));
}

/* Sends a complete response whose body already lives in the request pool. */
static void send_pooled(ft_req_t *r, int status, const char *content_type, char *body, size_t len)
{
    static h2o_generator_t generator = {NULL, NULL};
    h2o_req_t *req = r->req;
    if (req == NULL)
        return; /* the client left; nothing to answer */
    if (r->status != 0) {
        ft_log_traced(FT_LOG_ERROR, r->request_id, r->trace.trace_id, "second response (%d) for one request (%d) ignored", status,
                      r->status);
        return;
    }
    r->status = status;
    ft_middleware_on_response(r);
    req->res.status = status;
    req->res.reason = ft_http_reason(status);
    if (content_type != NULL)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL, r->request_id,
                          strlen(r->request_id));
    req->res.content_length = len;
    h2o_start_response(req, &generator);
    if (len == 0 || h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))) {
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
    } else {
        h2o_iovec_t buf = h2o_iovec_init(body, len);
        h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
    }
}

static void send_json(ft_req_t *r, int status, const char *content_type, json_t *body)
{
    if (r->req == NULL) {
        json_decref(body);
        return;
    }
    size_t len = json_dumpb(body, NULL, 0, JSON_COMPACT | JSON_REAL_PRECISION(10));
    char *buf = h2o_mem_alloc_pool(&r->req->pool, len + 1);
    json_dumpb(body, buf, len, JSON_COMPACT | JSON_REAL_PRECISION(10));
    buf[len] = '\0';
    json_decref(body);
    send_pooled(r, status, content_type, buf, len);
}

void ft_respond_json(ft_req_t *r, int status, json_t *body)
{
    send_json(r, status, "application/json", body);
}

void ft_respond_raw(ft_req_t *r, int status, const char *content_type, const char *body, size_t len)
{
    if (r->req == NULL)
        return;
    char *copy = h2o_mem_alloc_pool(&r->req->pool, len + 1);
    memcpy(copy, body, len);
    copy[len] = '\0';
    send_pooled(r, status, content_type, copy, len);
}

typedef struct borrowed {
    void (*release)(void *);
    void *arg;
} borrowed_t;

static void borrowed_done(void *p)
{
    borrowed_t *b = p;
    b->release(b->arg);
}

void ft_respond_borrowed(ft_req_t *r, int status, const char *content_type, const char *body, size_t len, void (*release)(void *),
                         void *arg)
{
    if (r->req == NULL) {
        release(arg);
        return;
    }
    /* the pool outlives the write of the response: the body is released with it */
    borrowed_t *b = h2o_mem_alloc_shared(&r->req->pool, sizeof(*b), borrowed_done);
    b->release = release;
    b->arg = arg;
    send_pooled(r, status, content_type, (char *)body, len);
}

void ft_respond_empty(ft_req_t *r, int status)
{
    send_pooled(r, status, NULL, NULL, 0);
}

void ft_respond_problem(ft_req_t *r, int status, const char *slug, const char *title, json_t *ext, const char *detail_fmt, ...)
{
    if (r->req == NULL) {
        json_decref(ext);
        return;
    }
    char detail[1024];
    va_list ap;
    va_start(ap, detail_fmt);
    vsnprintf(detail, sizeof(detail), detail_fmt, ap);
    va_end(ap);
    char type[128];
    snprintf(type, sizeof(type), PROBLEM_BASE "%s", slug);
    json_t *p = json_pack("{s:s, s:s, s:i}", "type", type, "title", title, "status", status);
    json_t *d = json_string(detail);
    json_object_set_new(p, "detail", d != NULL ? d : json_string("(detail not representable as UTF-8)"));
    json_t *inst = json_stringn(r->req->path_normalized.base, r->req->path_normalized.len);
    if (inst != NULL)
        json_object_set_new(p, "instance", inst);
    json_object_set_new(p, "request_id", json_string(r->request_id));
    if (ext != NULL) {
        json_object_update_missing(p, ext); /* extensions never replace the standard members */
        json_decref(ext);
    }
    send_json(r, status, "application/problem+json", p);
}

void ft_respond_internal(ft_req_t *r, int status, const ft_error_t *err)
{
    if (err->code == FT_EUNAVAILABLE || err->code == FT_ETIMEOUT) {
        ft_log_traced(FT_LOG_WARN, r->request_id, r->trace.trace_id, "%s", err->message);
        ft_req_add_header(r, "retry-after", "1");
        ft_respond_problem(r, 503, "unavailable", "Service Unavailable", NULL,
                           "A dependency of the control plane is unavailable; retry shortly.");
        return;
    }
    ft_log_traced(FT_LOG_ERROR, r->request_id, r->trace.trace_id, "%s", err->message);
    ft_respond_problem(r, status >= 500 ? status : 500, "internal", "Internal Server Error", NULL,
                       "The request failed on the server; quote request id %s when reporting it.", r->request_id);
}

typedef struct defer {
    ft_req_t *r;
    ft_db_work_fn work;
    ft_req_db_done_fn done;
    void *arg;
} defer_t;

static int defer_work(PGconn *conn, void *p, ft_error_t *err)
{
    defer_t *d = p;
    return d->work(conn, d->arg, err);
}

static void defer_done(void *p, int status, const ft_error_t *err)
{
    defer_t *d = p;
    d->r->thread->pending_db--;
    d->done(d->r, d->arg, status, err);
    ft_req_release(d->r);
    free(d);
}

typedef struct blocking {
    uv_work_t work_req;
    ft_req_t *r;
    ft_blocking_fn work;
    ft_req_db_done_fn done;
    void *arg;
    int status;
    ft_error_t err;
} blocking_t;

static void blocking_work(uv_work_t *w)
{
    blocking_t *b = w->data;
    b->status = b->work(b->arg, &b->err);
}

static void blocking_done(uv_work_t *w, int uv_status)
{
    blocking_t *b = w->data;
    b->r->thread->pending_db--;
    if (uv_status == UV_ECANCELED)
        b->status = ft_error_set(&b->err, FT_ESTATE, "cancelled");
    b->done(b->r, b->arg, b->status, &b->err);
    ft_req_release(b->r);
    free(b);
}

void ft_req_defer(ft_req_t *r, ft_blocking_fn work, ft_req_db_done_fn done, void *arg)
{
    blocking_t *b = ft_mem_calloc(1, sizeof(*b));
    b->work_req.data = b;
    b->r = r;
    b->work = work;
    b->done = done;
    b->arg = arg;
    ft_req_hold(r);
    r->thread->pending_db++;
    uv_queue_work(&r->thread->loop, &b->work_req, blocking_work, blocking_done);
}

static defer_t *defer_begin(ft_req_t *r, ft_db_work_fn work, ft_req_db_done_fn done, void *arg)
{
    defer_t *d = ft_mem_alloc(sizeof(*d));
    d->r = r;
    d->work = work;
    d->done = done;
    d->arg = arg;
    ft_req_hold(r);
    r->thread->pending_db++;
    return d;
}

void ft_req_defer_db(ft_req_t *r, ft_db_work_fn work, ft_req_db_done_fn done, void *arg)
{
    ft_db_run(&r->thread->loop, r->app->db, defer_work, defer_done, defer_begin(r, work, done, arg));
}

void ft_req_defer_lane(ft_req_t *r, ft_db_lane_t *lane, ft_db_work_fn work, ft_req_db_done_fn done, void *arg)
{
    ft_db_lane_run(lane, &r->thread->lane_port, defer_work, defer_done, defer_begin(r, work, done, arg));
}
