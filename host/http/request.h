/*
 * One HTTP request as the host's handlers see it, and the ways to answer it. An ft_req_t
 * may outlive h2o's request (the client can leave while deferred work runs): it is
 * reference counted on its loop thread, and ft_req_alive() tells whether h2o still has it.
 */
#ifndef FT_REQUEST_H
#define FT_REQUEST_H

#include <h2o.h>
#include <jansson.h>
#include <stdint.h>

#include "app.h"
#include "domain/trace.h"
#include "http/router.h"
#include "infra/db_lane.h"
#include "infra/db_pool.h"

#define FT_REQUEST_ID_MAX 128

typedef struct ft_http_thread ft_http_thread_t;

typedef struct ft_principal {
    int authenticated; /* 0: anonymous */
    char subject[128];    /* "user:<id>", "key:<id>", "anonymous" */
    unsigned roles;       /* ft_role_t bits */
    char customer_id[40]; /* set: the credential is bound to this customer's data */
    char instance_id[40]; /* set: the credential is bound to one instance (a child app) */
} ft_principal_t;

struct ft_req {
    h2o_req_t *req; /* NULL once h2o is done with the request */
    ft_http_thread_t *thread;
    ft_app_t *app;
    const ft_route_t *route;
    ft_route_params_t params;
    const char *method; /* a safe token for logs and labels */
    char request_id[FT_REQUEST_ID_MAX + 1];
    ft_trace_t trace; /* this request's span: in the trace of its traceparent header, or a new one */
    uint64_t started_ns;
    int status; /* what was answered; 0 until then */
    json_t *body; /* decoded JSON body for FT_ROUTE_JSON_BODY routes */
    ft_principal_t principal;
    unsigned stage; /* next middleware stage */
    unsigned refs;
    ft_catalog_t *catalog; /* pinned on first use, unpinned when the context is freed */
    char client_ip[48];    /* the peer address, found on first use */
    char idem_key[256];    /* Idempotency-Key of a write, or "" */
    char idem_hash[65];    /* the request's fingerprint for it */
    int audited;           /* an audit row for this request is written or on its way */
};

/* Creates the request context for h2o's req on thread; its lifetime ends with the request. */
ft_req_t *ft_req_start(ft_http_thread_t *thread, h2o_req_t *req);

void ft_req_hold(ft_req_t *r);
void ft_req_release(ft_req_t *r);
int ft_req_alive(const ft_req_t *r);

/* The {name} parameter of the matched route, copied into the request pool (NUL-terminated). */
const char *ft_req_param(ft_req_t *r, const char *name);
/* A query-string parameter (decoded), or NULL. Pool memory. */
const char *ft_req_query(ft_req_t *r, const char *name);
/* A request header value (NUL-terminated, pool memory), or NULL. */
const char *ft_req_header(ft_req_t *r, const char *name);

void ft_req_add_header(ft_req_t *r, const char *name, const char *value);
/* The client's address as text ("127.0.0.1", "::1"), found on first use; "" if unknown. */
const char *ft_req_client_ip(ft_req_t *r);

/* Answers with `body` serialised as JSON (reference stolen). */
void ft_respond_json(ft_req_t *r, int status, json_t *body);
/* Answers with a copy of `body`. */
void ft_respond_raw(ft_req_t *r, int status, const char *content_type, const char *body, size_t len);
/* Answers with `body` itself, not a copy: `release(arg)` runs once the response is done with it
 * (also when the client left); until then body must stay as it is. */
void ft_respond_borrowed(ft_req_t *r, int status, const char *content_type, const char *body, size_t len, void (*release)(void *),
                         void *arg);
/* Answers with no body (204, 304). */
void ft_respond_empty(ft_req_t *r, int status);
/*
 * RFC 9457 problem+json. `slug` names the stable type (https://farutech.dev/problems/<slug>);
 * `ext` (stolen, may be NULL) adds members such as "errors". detail is printf-style.
 */
void ft_respond_problem(ft_req_t *r, int status, const char *slug, const char *title, json_t *ext, const char *detail_fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Runs `work` with a pooled connection off the loop; `done` comes back on this request's thread.
 * The request is held across the wait; `done` must check ft_req_alive() before answering. */
typedef void (*ft_req_db_done_fn)(ft_req_t *r, void *arg, int status, const ft_error_t *err);
void ft_req_defer_db(ft_req_t *r, ft_db_work_fn work, ft_req_db_done_fn done, void *arg);
/* The same on a lane of its own (infra/db_lane.h): its threads and connections, not the pool's;
 * a full lane answers `done` at once with FT_EUNAVAILABLE. */
void ft_req_defer_lane(ft_req_t *r, ft_db_lane_t *lane, ft_db_work_fn work, ft_req_db_done_fn done, void *arg);

/* The catalog this request works with: the one current at its first call, for the whole request. */
ft_catalog_t *ft_req_catalog(ft_req_t *r);

/* Runs `work` on a worker thread (blocking allowed, no connection given); `done` on this
 * request's thread. The request is held across the wait. */
typedef int (*ft_blocking_fn)(void *arg, ft_error_t *err);
void ft_req_defer(ft_req_t *r, ft_blocking_fn work, ft_req_db_done_fn done, void *arg);

/* Answers 503/500 problem for a failed deferred unit of work, logging internal errors once. */
void ft_respond_internal(ft_req_t *r, int status, const ft_error_t *err);

const char *ft_http_reason(int status);
/* A fresh 32-hex-digit request id: the thread's random seed, then its request counter. */
void ft_request_id_generate(ft_http_thread_t *t, char out[33]);
uint64_t ft_now_ns(void);

#endif
