/*
 * The kinds of job, in one table: what each runs (a lifecycle's steps, or an action), the
 * events that ask for it and announce it done, and what it does to its instance. Adding a job
 * kind is one row here (and the kind in ft_jobs' CHECK constraint).
 */
#ifndef FT_JOB_KINDS_H
#define FT_JOB_KINDS_H

#include <stddef.h>
#include <stdint.h>

#include "plugins/product.h"

/* What a job does with the instance's tenant database before its steps run. */
typedef enum {
    FT_TENANT_DB_USE,    /* open it; a Standard tenant's schema is made if missing, an Enterprise database never */
    FT_TENANT_DB_CREATE, /* open it, creating an Enterprise instance's own database if missing */
    FT_TENANT_DB_REMOVE, /* archive and remove what provisioning made; a missing database leaves nothing to do */
} ft_tenant_db_use_t;

typedef struct ft_job_kind {
    const char *name;      /* ft_jobs.kind; subjects ft.jobs.<name> and ft.dlq.<name> */
    uint32_t lifecycle;    /* FTP_LIFECYCLE_*: the steps it runs; 0: an action job (one step, the action) */
    const char *requested; /* the event that asks the workers for it, "instance.provisioning_requested.v1" */
    const char *done;      /* the event after it succeeded, or NULL (an action's own events say what it did) */
    /* The instance's status (NULL: left as it is). While it runs: `running`, when the instance is
     * in one of `running_from` (a PostgreSQL array literal). On success: `succeeded`, when the
     * instance is `succeeded_from` (NULL: whatever it is). Failed for good: `failed`; a kind
     * without one keeps the status and notes "last <reason>" instead. Replayed from the DLQ: a
     * failed instance goes back to `replayed`. */
    const char *running, *running_from;
    const char *succeeded, *succeeded_from;
    const char *failed;
    const char *replayed;
    ft_tenant_db_use_t tenant_db;
    int records_location; /* success records where the tenant's data lives (data_location) */
} ft_job_kind_t;

enum {
    FT_JOB_PROVISION,
    FT_JOB_DEPROVISION,
    FT_JOB_SUSPEND,
    FT_JOB_RESUME,
    FT_JOB_FEATURES_CHANGED,
    FT_JOB_ACTION,
    FT_JOB_KIND_COUNT
};

/* Indexed by the enum above; static, never freed. */
extern const ft_job_kind_t ft_job_kinds[FT_JOB_KIND_COUNT];

/* The kind of that name, or NULL. */
const ft_job_kind_t *ft_job_kind_find(const char *name);

/* A step as a job records it. */
typedef struct ft_job_step_spec {
    const char *name;
    unsigned version;
} ft_job_step_spec_t;

/* The (name, version) of the product's steps a job of this kind runs, in the product's order;
 * none for an action job. Pointers into the product, which the caller keeps alive. The caller
 * frees the array. */
ft_job_step_spec_t *ft_job_kind_steps(const ft_job_kind_t *kind, const ft_product_t *p, size_t *n);

#endif
