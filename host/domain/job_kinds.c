/*
 * The job kinds table.
 */
#include "domain/job_kinds.h"

#include "core/mem.h"

#include <string.h>

const ft_job_kind_t ft_job_kinds[FT_JOB_KIND_COUNT] = {
    [FT_JOB_PROVISION] = {.name = "provision",
                          .lifecycle = FTP_LIFECYCLE_PROVISION,
                          .requested = "instance.provisioning_requested.v1",
                          .done = "instance.provisioned.v1",
                          .running = "provisioning",
                          .running_from = "{pending,failed}",
                          .succeeded = "active",
                          .succeeded_from = "provisioning",
                          .failed = "failed",
                          .replayed = "pending",
                          .tenant_db = FT_TENANT_DB_CREATE,
                          .records_location = 1},
    [FT_JOB_DEPROVISION] = {.name = "deprovision",
                            .lifecycle = FTP_LIFECYCLE_DEPROVISION,
                            .requested = "instance.deprovisioning_requested.v1",
                            .done = "instance.deprovisioned.v1",
                            .succeeded = "deleted",
                            .failed = "failed",
                            .replayed = "deprovisioning",
                            .tenant_db = FT_TENANT_DB_REMOVE},
    [FT_JOB_SUSPEND] = {.name = "suspend",
                        .lifecycle = FTP_LIFECYCLE_SUSPEND,
                        .requested = "instance.suspension_requested.v1",
                        .done = "instance.suspended.v1"},
    [FT_JOB_RESUME] = {.name = "resume",
                       .lifecycle = FTP_LIFECYCLE_RESUME,
                       .requested = "instance.resumption_requested.v1",
                       .done = "instance.resumed.v1"},
    [FT_JOB_FEATURES_CHANGED] = {.name = "features_changed",
                                 .lifecycle = FTP_LIFECYCLE_FEATURES_CHANGED,
                                 .requested = "instance.features_change_requested.v1",
                                 .done = "instance.features_changed.v1"},
    [FT_JOB_ACTION] = {.name = "action", .requested = "instance.action_requested.v1"},
};

const ft_job_kind_t *ft_job_kind_find(const char *name)
{
    for (size_t i = 0; name != NULL && i < FT_JOB_KIND_COUNT; i++)
        if (strcmp(ft_job_kinds[i].name, name) == 0)
            return &ft_job_kinds[i];
    return NULL;
}

ft_job_step_spec_t *ft_job_kind_steps(const ft_job_kind_t *kind, const ft_product_t *p, size_t *n)
{
    ft_job_step_spec_t *steps = ft_mem_calloc(p->nsteps + 1, sizeof(*steps));
    *n = 0;
    for (size_t i = 0; i < p->nsteps && kind->lifecycle != 0; i++)
        if (p->steps[i].lifecycle == kind->lifecycle)
            steps[(*n)++] = (ft_job_step_spec_t){p->steps[i].name, p->steps[i].version};
    return steps;
}
