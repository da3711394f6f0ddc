/*
 * Event streams on the loop threads. A stream lives exactly as long as h2o's request: a guard in
 * the request pool unlinks and frees it, so work that comes back later checks ft_req_alive()
 * before touching it. h2o takes one write at a time: what is sent while a write is in flight
 * waits in `pending` until h2o's proceed callback.
 */
#include "http/sse.h"

#include "core/mem.h"
#include "domain/entitlement_service.h"
#include "http/request.h"
#include "http/server.h"
#include "infra/log.h"
#include "infra/pg_listen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define INBOX_MAX 4096

typedef struct buf {
    char *data;
    size_t len, cap;
} buf_t;

struct ft_sse_stream {
    h2o_generator_t gen; /* first: h2o hands it back to proceed */
    ft_req_t *r;
    ft_sse_thread_t *thread;
    ft_sse_stream_t *next, **prev;
    ft_sse_topic_t topic;
    char key[40];
    char subject[128]; /* the credential counted against the bound */
    ft_sse_refresh_fn refresh;
    void *arg;
    buf_t pending, writing;
    int started, writing_now, ending, ended;
    int refreshing, dirty;
    uint64_t last_write_ns;
};

typedef struct credential_count {
    char subject[128];
    unsigned open;
} credential_count_t;

struct ft_sse_hub {
    unsigned max_per_credential, max_total, heartbeat_ms;
    atomic_uint open;
    pthread_mutex_t mutex; /* guards the threads list and the counts */
    ft_sse_thread_t **threads;
    size_t nthreads;
    credential_count_t *counts;
    size_t ncounts;
    ft_listener_t *jobs_listener;
};

/* --- process-wide --- */

ft_sse_hub_t *ft_sse_hub_create(const ft_config_t *config)
{
    ft_sse_hub_t *h = ft_mem_calloc(1, sizeof(*h));
    h->max_per_credential = config->sse_max_per_credential;
    h->max_total = config->sse_max_streams;
    h->heartbeat_ms = config->sse_heartbeat_ms;
    pthread_mutex_init(&h->mutex, NULL);
    return h;
}

unsigned ft_sse_open_count(ft_sse_hub_t *hub)
{
    return atomic_load(&hub->open);
}

/* Counts one more stream for subject; 0 when a bound says no. */
static int take_slot(ft_sse_hub_t *h, const char *subject)
{
    int ok = 0;
    pthread_mutex_lock(&h->mutex);
    credential_count_t *c = NULL;
    for (size_t i = 0; i < h->ncounts && c == NULL; i++)
        if (strcmp(h->counts[i].subject, subject) == 0)
            c = &h->counts[i];
    if (atomic_load(&h->open) < h->max_total && (c == NULL || c->open < h->max_per_credential)) {
        if (c == NULL) {
            h->counts = ft_mem_realloc(h->counts, (h->ncounts + 1) * sizeof(*h->counts));
            c = &h->counts[h->ncounts++];
            snprintf(c->subject, sizeof(c->subject), "%s", subject);
            c->open = 0;
        }
        c->open++;
        atomic_fetch_add(&h->open, 1);
        ok = 1;
    }
    pthread_mutex_unlock(&h->mutex);
    return ok;
}

static void give_slot(ft_sse_hub_t *h, const char *subject)
{
    pthread_mutex_lock(&h->mutex);
    for (size_t i = 0; i < h->ncounts; i++) {
        if (strcmp(h->counts[i].subject, subject) != 0)
            continue;
        if (--h->counts[i].open == 0)
            h->counts[i] = h->counts[--h->ncounts];
        break;
    }
    atomic_fetch_sub(&h->open, 1);
    pthread_mutex_unlock(&h->mutex);
}

void ft_sse_publish(ft_sse_hub_t *hub, ft_sse_topic_t topic, const char *key)
{
    if (atomic_load(&hub->open) == 0)
        return; /* nobody watches: the common case costs one load */
    pthread_mutex_lock(&hub->mutex);
    for (size_t i = 0; i < hub->nthreads; i++) {
        ft_sse_thread_t *t = hub->threads[i];
        pthread_mutex_lock(&t->mutex);
        if (t->ninbox == INBOX_MAX) {
            t->inbox_overflow = 1;
        } else {
            if (t->ninbox == t->capinbox) {
                t->capinbox = t->capinbox ? t->capinbox * 2 : 16;
                t->inbox = ft_mem_realloc(t->inbox, t->capinbox * sizeof(*t->inbox));
            }
            ft_sse_change_t *c = &t->inbox[t->ninbox++];
            c->topic = topic;
            snprintf(c->key, sizeof(c->key), "%s", key != NULL ? key : "");
        }
        pthread_mutex_unlock(&t->mutex);
        uv_async_send(&t->wake);
    }
    pthread_mutex_unlock(&hub->mutex);
}

/* --- the feeds: what tells the hub that something changed --- */

static void on_job_changed(void *arg, const char *channel, const char *payload)
{
    /* channel NULL: (re)connected, changes may have been missed */
    if (channel == NULL || payload == NULL) {
        ft_sse_publish(arg, FT_SSE_JOB, NULL);
        return;
    }
    /* one notification names every job a statement changed, comma-separated (migration 0015) */
    char id[40];
    for (const char *p = payload; *p != '\0';) {
        size_t n = strcspn(p, ",");
        if (n > 0 && n < sizeof(id)) {
            memcpy(id, p, n);
            id[n] = '\0';
            ft_sse_publish(arg, FT_SSE_JOB, id);
        }
        p += n;
        if (*p == ',')
            p++;
    }
}

static void on_entitlements_changed(void *arg, const char *instance_id)
{
    ft_sse_publish(arg, FT_SSE_ENTITLEMENTS, instance_id);
}

void ft_sse_feeds_start(ft_sse_hub_t *hub, ft_app_t *app)
{
    static const char *const channels[] = {"ft_job_changed", NULL};
    hub->jobs_listener = ft_listener_start(app->config.database_url, channels, on_job_changed, hub);
    if (app->entitlements != NULL)
        ft_ent_service_on_change(app->entitlements, on_entitlements_changed, hub);
}

void ft_sse_feeds_stop(ft_sse_hub_t *hub)
{
    ft_listener_stop(hub->jobs_listener);
    hub->jobs_listener = NULL;
}

/* --- a loop thread's streams --- */

static void poke(ft_sse_stream_t *s)
{
    if (s->ending)
        return;
    if (s->refreshing) {
        s->dirty = 1; /* read again once the read under way is back */
        return;
    }
    s->refreshing = 1;
    s->refresh(s, s->arg);
}

static void on_wake(uv_async_t *async)
{
    ft_sse_thread_t *t = async->data;
    pthread_mutex_lock(&t->mutex);
    ft_sse_change_t *changes = t->inbox;
    size_t n = t->ninbox;
    int all = t->inbox_overflow;
    t->inbox = NULL;
    t->ninbox = t->capinbox = 0;
    t->inbox_overflow = 0;
    pthread_mutex_unlock(&t->mutex);
    for (ft_sse_stream_t *s = t->streams, *next; s != NULL; s = next) {
        next = s->next;
        int hit = all;
        for (size_t i = 0; i < n && !hit; i++)
            hit = changes[i].topic == s->topic && (changes[i].key[0] == '\0' || strcasecmp(changes[i].key, s->key) == 0);
        if (hit)
            poke(s);
    }
    free(changes);
}

void ft_sse_thread_init(ft_sse_hub_t *hub, ft_sse_thread_t *t, uv_loop_t *loop)
{
    memset(t, 0, sizeof(*t));
    t->hub = hub;
    pthread_mutex_init(&t->mutex, NULL);
    uv_async_init(loop, &t->wake, on_wake);
    t->wake.data = t;
    pthread_mutex_lock(&hub->mutex);
    hub->threads = ft_mem_realloc(hub->threads, (hub->nthreads + 1) * sizeof(*hub->threads));
    hub->threads[hub->nthreads++] = t;
    pthread_mutex_unlock(&hub->mutex);
}

static void buf_append(buf_t *b, const char *s, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->data = ft_mem_realloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

/* Hands h2o what is pending when no write is in flight; the final write once ending. */
static void flush(ft_sse_stream_t *s)
{
    h2o_req_t *req = s->r->req;
    if (req == NULL || !s->started || s->writing_now || s->ended)
        return;
    if (s->pending.len == 0 && !s->ending)
        return;
    buf_t t = s->writing;
    s->writing = s->pending;
    s->pending = t;
    s->pending.len = 0;
    s->writing_now = 1;
    s->ended = s->ending;
    s->last_write_ns = ft_now_ns();
    h2o_iovec_t iov = h2o_iovec_init(s->writing.data, s->writing.len);
    h2o_send(req, &iov, s->writing.len != 0 ? 1 : 0, s->ending ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void on_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    ft_sse_stream_t *s = (ft_sse_stream_t *)gen;
    s->writing_now = 0;
    flush(s);
}

static void on_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    ft_sse_stream_t *s = (ft_sse_stream_t *)gen;
    s->ended = 1; /* the connection is going: write nothing more */
}

/* h2o disposes the request: the stream goes with it. */
static void on_disposed(void *p)
{
    ft_sse_stream_t *s = *(ft_sse_stream_t **)p;
    *s->prev = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    give_slot(s->thread->hub, s->subject);
    free(s->pending.data);
    free(s->writing.data);
    free(s->arg);
    free(s);
}

int ft_sse_wanted(ft_req_t *r)
{
    const char *accept = ft_req_header(r, "accept");
    return accept != NULL && strcasestr(accept, "text/event-stream") != NULL;
}

const char *ft_sse_last_event_id(ft_req_t *r)
{
    return ft_req_header(r, "last-event-id");
}

ft_req_t *ft_sse_req(ft_sse_stream_t *s)
{
    return s->r;
}

ft_sse_stream_t *ft_sse_open(ft_req_t *r, ft_sse_topic_t topic, const char *key, ft_sse_refresh_fn refresh, void *arg)
{
    ft_sse_thread_t *t = &r->thread->sse;
    if (!take_slot(t->hub, r->principal.subject)) {
        free(arg);
        ft_req_add_header(r, "retry-after", "5");
        ft_respond_problem(r, 429, "too-many-streams", "Too many event streams",
                           json_pack("{s:I, s:I}", "max_per_credential", (json_int_t)t->hub->max_per_credential, "max_streams",
                                     (json_int_t)t->hub->max_total),
                           "This credential (or the host) has as many event streams open as it may; close one first.");
        return NULL;
    }
    ft_sse_stream_t *s = ft_mem_calloc(1, sizeof(*s));
    s->gen.proceed = on_proceed;
    s->gen.stop = on_stop;
    s->r = r;
    s->thread = t;
    s->topic = topic;
    snprintf(s->key, sizeof(s->key), "%s", key);
    snprintf(s->subject, sizeof(s->subject), "%s", r->principal.subject);
    s->refresh = refresh;
    s->arg = arg;
    s->next = t->streams;
    if (s->next != NULL)
        s->next->prev = &s->next;
    s->prev = &t->streams;
    t->streams = s;
    ft_sse_stream_t **guard = h2o_mem_alloc_shared(&r->req->pool, sizeof(*guard), on_disposed);
    *guard = s;
    poke(s);
    return s;
}

static void start(ft_sse_stream_t *s)
{
    h2o_req_t *req = s->r->req;
    s->started = 1;
    s->r->status = 200;
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/event-stream"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-accel-buffering"), 0, NULL, H2O_STRLIT("no"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL, s->r->request_id,
                          strlen(s->r->request_id));
    h2o_start_response(req, &s->gen);
}

void ft_sse_begin(ft_sse_stream_t *s)
{
    if (s->r->req == NULL || s->ending || s->started)
        return;
    start(s);
    buf_append(&s->pending, ": keepalive\n\n", 13);
    flush(s);
}

void ft_sse_send(ft_sse_stream_t *s, const char *id, const char *event, const char *data, size_t len)
{
    if (s->r->req == NULL || s->ending)
        return;
    if (!s->started)
        start(s);
    buf_append(&s->pending, "id: ", 4);
    buf_append(&s->pending, id, strlen(id));
    buf_append(&s->pending, "\nevent: ", 8);
    buf_append(&s->pending, event, strlen(event));
    buf_append(&s->pending, "\ndata: ", 7);
    buf_append(&s->pending, data, len);
    buf_append(&s->pending, "\n\n", 2);
    flush(s);
}

void ft_sse_end(ft_sse_stream_t *s)
{
    if (s->r->req == NULL || s->ending)
        return;
    s->ending = 1;
    if (!s->started) {
        if (s->r->status == 0)
            ft_respond_empty(s->r, 204);
        return;
    }
    flush(s);
}

void ft_sse_refreshed(ft_sse_stream_t *s)
{
    s->refreshing = 0;
    if (s->dirty) {
        s->dirty = 0;
        poke(s);
    }
}

void ft_sse_tick(ft_sse_thread_t *t)
{
    uint64_t now = ft_now_ns(), period = (uint64_t)t->hub->heartbeat_ms * 1000000u;
    for (ft_sse_stream_t *s = t->streams; s != NULL; s = s->next) {
        if (!s->started || s->ending || s->writing_now || now - s->last_write_ns < period)
            continue;
        buf_append(&s->pending, ": keepalive\n\n", 13);
        flush(s);
    }
}

void ft_sse_drain(ft_sse_thread_t *t)
{
    for (ft_sse_stream_t *s = t->streams, *next; s != NULL; s = next) {
        next = s->next;
        ft_sse_end(s);
    }
}
