/*
 * The common shape of a handler that works in the database: copy what it needs out of the
 * request, run one unit of work on a worker thread, then answer from the result — JSON with
 * the success status, or the problem the work described, or a logged internal error.
 */
#ifndef FT_OP_H
#define FT_OP_H

#include <jansson.h>

#include "core/problem.h"
#include "http/request.h"
#include "store/job_store.h"
#include "store/scope.h"

typedef struct ft_op ft_op_t;
typedef int (*ft_op_fn)(PGconn *c, ft_op_t *op, ft_error_t *err);

struct ft_op {
    ft_app_t *app;
    ft_call_t call;
    const ft_catalog_t *catalog; /* the request's; valid while the request is held */
    json_t *body;                /* the decoded body (a reference), or NULL */
    char id[64], id2[96];        /* path parameters */
    char actor[160], correlation_id[FT_REQUEST_ID_MAX + 1], scope_customer[40], scope_instance[40];
    ft_trace_t trace;            /* the request's span */
    void *arg;                   /* handler-specific input, freed with arg_free, else free() */
    void (*arg_free)(void *arg);
    ft_op_fn fn;
    /* results */
    int status;
    json_t *out;
    ft_problem_t problem;
    char location[256];
    char invalidate[40]; /* instance whose cached entitlements the change made stale */
    json_t *(*encode)(ft_op_t *op); /* the answer's body built from out (new reference), or NULL: out itself */
    /* writes: one transaction with their audit row and idempotency record */
    const ft_route_t *route; /* static; NULL for ops not started by a route */
    int write;
    char client_ip[48];
    char idem_key[256], idem_hash[65];
    unsigned idem_ttl_s;
    int replayed;               /* answered from an earlier request with the same Idempotency-Key */
    char audit_entity[64];      /* the changed entity's id when neither the path nor out.id names it */
    char audit_customer[40];    /* the tenant when neither the entity nor out names it */
    json_t *audit_details;      /* extra audit details (owned), or NULL */
    /* runs on the request's thread once the work is done (ok: it succeeded), before the answer,
     * even when the client is gone; for what must not be stored (a secret shown once) or must
     * happen here (dropping a cache entry) */
    void (*after)(ft_req_t *r, ft_op_t *op, int ok);
};

/* A new op for r: copies the caller (principal, scope, request id), the body and the catalog. */
ft_op_t *ft_op_new(ft_req_t *r);
/* Runs work, then answers with `status` and op->out. Takes ownership of op. */
void ft_op_run(ft_req_t *r, ft_op_t *op, ft_op_fn work, int status);

/* ft_op_new with op->id set from the UUID path parameter `param`; NULL (answered 400) when it
 * is not a UUID. */
ft_op_t *ft_op_with_id(ft_req_t *r, const char *param);
/* Copies an optional query parameter (*out NULL when absent); -1 (answered 400) when too long. */
int ft_query_copy(ft_req_t *r, const char *name, char *dst, size_t len, const char **out);
/* ft_query_copy for a parameter that must be a UUID when present; -1 (answered 400) otherwise. */
int ft_query_uuid(ft_req_t *r, const char *name, char *dst, size_t len, const char **out);
/* ft_query_copy for an RFC 3339 date-time (2026-01-31T12:00:00Z, fractions and offsets allowed),
 * checked for sense too (month 1-12, day within the month, ...); -1 (answered 400) otherwise. */
int ft_query_time(ft_req_t *r, const char *name, char *dst, size_t len, const char **out);
/* ?limit=1..200, default 50; -1 (answered 400) when invalid. */
int ft_query_limit(ft_req_t *r, int *limit);

/* The loaded generation of op->id's product (an instance the caller may see). In a worker.
 * FT_ENOTFOUND or FT_EUNAVAILABLE with op->problem filled when there is none. */
int ft_op_instance_product(PGconn *c, ft_op_t *op, const ft_generation_t **g, ft_error_t *err);
/* The loaded generation of `product` in the op's catalog; FT_EUNAVAILABLE (503 in op->problem)
 * when it is not loaded. */
int ft_op_product(ft_op_t *op, const char *product, const ft_generation_t **g);
/* Queues the instance op->id's deprovisioning (the DELETE routes' work). */
int ft_op_deprovision_work(PGconn *c, ft_op_t *op, ft_error_t *err);

/* Copies a path parameter into dst, answering 400 (and returning -1) unless it is a UUID. */
int ft_op_uuid_param(ft_req_t *r, const char *name, char *dst, size_t len);
/* A customer-bound caller naming another customer in body member `member`: answers 403 and
 * returns -1; 0 otherwise (also when the member is absent or the caller is staff). */
int ft_op_own_customer(ft_req_t *r, const char *member);
/* Answers a problem described by p (clears it). */
void ft_respond_problem_struct(ft_req_t *r, ft_problem_t *p);
/* 400 naming a query parameter. */
void ft_respond_bad_param(ft_req_t *r, const char *param, const char *detail);

#endif
