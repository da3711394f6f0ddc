/*
 * Server-Sent Events: a request kept open on its loop thread, written as `id:`/`event:`/`data:`
 * records while what it watches changes. Changes are published from any thread (a LISTEN
 * thread, say) and reach each loop thread through a queue and uv_async_send; there the streams
 * watching the topic re-read their state (off the loop) and send what is new. Heartbeat comment
 * lines keep idle streams open; streams are bounded per credential and in all.
 */
#ifndef FT_SSE_H
#define FT_SSE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "app.h"

typedef enum { FT_SSE_JOB, FT_SSE_ENTITLEMENTS } ft_sse_topic_t;

typedef struct ft_sse_stream ft_sse_stream_t;
typedef struct ft_sse_hub ft_sse_hub_t;
typedef struct ft_req ft_req_t;

/* A change one loop thread has yet to hand to its streams. */
typedef struct ft_sse_change {
    ft_sse_topic_t topic;
    char key[40]; /* "" for every key of the topic */
} ft_sse_change_t;

/* One loop thread's streams and its inbox of changes. Streams are touched on the thread only. */
typedef struct ft_sse_thread {
    ft_sse_hub_t *hub;
    uv_async_t wake;
    pthread_mutex_t mutex; /* guards the inbox */
    ft_sse_change_t *inbox;
    size_t ninbox, capinbox;
    int inbox_overflow; /* too many changes queued: every stream re-reads */
    ft_sse_stream_t *streams;
} ft_sse_thread_t;

/* Re-reads what the stream watches and sends what changed (ft_sse_send), on the loop thread; it
 * calls ft_sse_refreshed when done, possibly later (after work off the loop). */
typedef void (*ft_sse_refresh_fn)(ft_sse_stream_t *s, void *arg);

/* The process-wide part: the limits and every loop thread, for publishing. */
ft_sse_hub_t *ft_sse_hub_create(const ft_config_t *config);
void ft_sse_thread_init(ft_sse_hub_t *hub, ft_sse_thread_t *t, uv_loop_t *loop);
/* The watchers of topic/key (key NULL: every key) on every thread look again. Any thread. */
void ft_sse_publish(ft_sse_hub_t *hub, ft_sse_topic_t topic, const char *key);
/* Starts what publishes job and entitlement changes (the LISTEN on ft_job_changed and the
 * entitlement service's changes); stop before the service goes away. */
void ft_sse_feeds_start(ft_sse_hub_t *hub, ft_app_t *app);
void ft_sse_feeds_stop(ft_sse_hub_t *hub);

/* 1 when the request asks for an event stream (Accept names text/event-stream). */
int ft_sse_wanted(ft_req_t *r);
/* The Last-Event-ID header (a copy in the request pool), or NULL. */
const char *ft_sse_last_event_id(ft_req_t *r);
/* Opens a stream on r watching topic/key: answers 429 and returns NULL when the caller's
 * credential or the host has too many open. Otherwise refresh runs at once and after every
 * change; arg (malloc'd) is freed with free() when the stream goes. No response is started until
 * the first ft_sse_send: until then the refresh may answer r with a problem and ft_sse_end. */
ft_sse_stream_t *ft_sse_open(ft_req_t *r, ft_sse_topic_t topic, const char *key, ft_sse_refresh_fn refresh, void *arg);
/* Sends one event (data must be one line). Starts the 200 text/event-stream response first. */
void ft_sse_send(ft_sse_stream_t *s, const char *id, const char *event, const char *data, size_t len);
/* Starts the 200 text/event-stream response if it is not yet (with a comment line, so the client
 * has its headers): for a first read that has nothing new for the client (Last-Event-ID). */
void ft_sse_begin(ft_sse_stream_t *s);
/* Ends the stream once what was sent is written; 204 when nothing was ever sent or answered. */
void ft_sse_end(ft_sse_stream_t *s);
/* The refresh is done; runs it again when a change came in meanwhile. */
void ft_sse_refreshed(ft_sse_stream_t *s);
ft_req_t *ft_sse_req(ft_sse_stream_t *s);

/* On the loop thread: heartbeats due (every tick), and ending every stream (drain). */
void ft_sse_tick(ft_sse_thread_t *t);
void ft_sse_drain(ft_sse_thread_t *t);
/* Streams open in this process. */
unsigned ft_sse_open_count(ft_sse_hub_t *hub);

#endif
