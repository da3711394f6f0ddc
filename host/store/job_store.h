/*
 * Jobs: queuing one run of a product's lifecycle steps for an instance, with its steps and the
 * outbox message that hands it to the workers, inside the caller's transaction.
 */
#ifndef FT_JOB_STORE_H
#define FT_JOB_STORE_H

#include <jansson.h>
#include <libpq-fe.h>

#include "core/error.h"
#include "domain/events.h"
#include "domain/job_kinds.h"

typedef struct ft_job_spec {
    const char *instance_id, *customer_id, *product;
    const ft_job_kind_t *kind;
    json_t *payload; /* borrowed; may be NULL */
    const ft_job_step_spec_t *steps;
    size_t nsteps;
    const char *correlation_id;
    const char *traceparent; /* the span that asks for the job (its attempts are children of it), or NULL */
} ft_job_spec_t;

/* Inserts the job, its steps and the kind's requested event (subject ft.jobs.<kind>); job_id
 * receives the new id. The transaction must be open. */
int ft_job_enqueue(PGconn *c, const ft_job_spec_t *spec, char job_id[37], ft_error_t *err);

#endif
