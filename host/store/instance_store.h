/*
 * Tenant instances and their subscriptions. Creating an instance creates its subscription and
 * queues its provisioning job in the same transaction; removing one queues its deprovisioning.
 */
#ifndef FT_INSTANCE_STORE_H
#define FT_INSTANCE_STORE_H

#include <jansson.h>
#include <libpq-fe.h>

#include "core/error.h"
#include "core/problem.h"
#include "domain/placement.h"
#include "store/job_store.h"
#include "store/scope.h"

typedef struct ft_override_spec {
    const char *feature;
    int enabled;
    int has_limit;
    long long limit;
    const char *expires_at; /* RFC 3339 or NULL */
    const char *reason;     /* may be NULL */
} ft_override_spec_t;

typedef struct ft_instance_spec {
    const char *customer_id, *code, *product, *tier, *environment;
    json_t *settings; /* validated, defaults filled; borrowed */
    const char *plan;
    unsigned plan_version;
    const char *trial_ends_at; /* RFC 3339, or NULL: no trial */
    const ft_job_step_spec_t *steps;
    size_t nsteps;
    const ft_override_spec_t *overrides; /* created with the subscription; may be NULL */
    size_t noverrides;
    ft_placement_policy_t placement; /* picks a Standard instance's pooled database */
} ft_instance_spec_t;

/* Each returns FT_OK with *out (json_decref) or a negative code with `problem` filled for what
 * the caller caused, or `err` for internal failures. Creating a Standard instance places it on a
 * pooled tenant database in the same transaction (ft_tenant_database_place; 409
 * pooled-capacity-exhausted when none has room, and nothing is written). */
int ft_instance_create(PGconn *c, const ft_call_t *call, const ft_instance_spec_t *spec, json_t **out, ft_problem_t *problem,
                       ft_error_t *err);
int ft_instance_get(PGconn *c, const ft_call_t *call, const char *id, json_t **out, ft_problem_t *problem, ft_error_t *err);

typedef struct ft_instance_filter {
    const char *customer_id, *product, *status, *environment, *code;
    const char *cursor;
    int limit;
} ft_instance_filter_t;
int ft_instance_list(PGconn *c, const ft_call_t *call, const ft_instance_filter_t *f, json_t **out, ft_problem_t *problem,
                     ft_error_t *err);

/* Marks the instance deprovisioning and queues the job (steps given by the caller). Asking
 * again while it deprovisions answers the same job. */
int ft_instance_deprovision(PGconn *c, const ft_call_t *call, const char *id, const ft_job_step_spec_t *steps, size_t nsteps,
                            json_t **out, ft_problem_t *problem, ft_error_t *err);

/* The product code of an instance the caller may see (for handlers that need its catalog). */
int ft_instance_product(PGconn *c, const ft_call_t *call, const char *id, char product[64], char status[24], ft_problem_t *problem,
                        ft_error_t *err);

int ft_instance_not_found(ft_problem_t *p, const char *id);
/*
 * A deleted instance keeps its row, so GET /api/v1/instances/{id} and its jobs still answer (200,
 * status "deleted"), as the list does with status=deleted. What only a live instance has (its
 * subscription, overrides, entitlements, actions, another removal) answers 410 Gone with type
 * instance-deleted instead of 404, so a caller can tell "removed" from "never existed". The record
 * stays readable (rather than 410 for it too) because the list already shows it and operators
 * look up a removed instance's jobs and times.
 */
int ft_instance_gone(ft_problem_t *p, const char *id, const char *deleted_at);
/* For a live-instance query that found nothing: 410 (ft_instance_gone) when the caller may see the
 * instance and it is deleted, else 404 (ft_instance_not_found); or an SQL failure in err. */
int ft_instance_missing(PGconn *c, const ft_call_t *call, const char *id, ft_problem_t *p, ft_error_t *err);

#endif
