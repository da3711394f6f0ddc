/*
 * The audit log: who did what to which entity of which tenant, with what result, from where.
 * Rows are appended in the transaction of the change they record (append-only in the
 * database too: a trigger refuses UPDATE and DELETE).
 */
#ifndef FT_AUDIT_STORE_H
#define FT_AUDIT_STORE_H

#include <jansson.h>
#include <libpq-fe.h>

#include "core/error.h"
#include "core/problem.h"
#include "store/scope.h"

typedef struct ft_audit_entry {
    const char *actor;       /* "user:<id>", "key:<id>", "anonymous" */
    const char *action;      /* "customer.create", "auth.login", ... */
    const char *entity_type; /* "customer", "instance", "user", ... or NULL */
    const char *entity_id;
    const char *customer_id; /* the tenant; NULL: found from the instance, or platform-wide */
    const char *instance_id; /* NULL: found from a DLQ entry when entity_type is "dlq" */
    const char *result;      /* "success", "failure", "denied" */
    const char *reason;      /* why it failed or was denied; NULL on success */
    const char *request_id;
    const char *client_ip;
    json_t *details; /* borrowed; may be NULL */
} ft_audit_entry_t;

int ft_audit_write(PGconn *c, const ft_audit_entry_t *e, ft_error_t *err);

typedef struct ft_audit_filter {
    const char *customer_id, *instance_id, *actor, *action, *entity_type, *entity_id, *result, *since, *until;
    const char *cursor; /* the id of the last row of the previous page (rows come newest first) */
    int limit;
} ft_audit_filter_t;

/* {"items": [...], "next_cursor": ...}; a scoped call sees its own customer's rows only. */
int ft_audit_list(PGconn *c, const ft_call_t *call, const ft_audit_filter_t *f, json_t **out, ft_problem_t *problem, ft_error_t *err);

#endif
