/*
 * The step plan: a merge of the recorded steps with the generation's, keeping both orders.
 */
#include "domain/step_plan.h"

#include "core/mem.h"

#include <string.h>

static long index_of(const ft_job_step_spec_t *steps, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(steps[i].name, name) == 0)
            return (long)i;
    return -1;
}

static int was_recorded(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

ft_step_plan_item_t *ft_step_plan(const char *const *recorded_names, const char *const *recorded_status, size_t nrecorded,
                                  const ft_job_step_spec_t *current, size_t ncurrent, size_t *n)
{
    ft_step_plan_item_t *out = ft_mem_calloc(nrecorded + ncurrent + 1, sizeof(*out));
    size_t next = 0; /* the generation's steps before `next` are placed */
    *n = 0;
    for (size_t r = 0; r < nrecorded; r++) {
        long k = index_of(current, ncurrent, recorded_names[r]);
        /* the generation's new steps that come before this recorded one go first */
        for (; k >= 0 && next < (size_t)k; next++)
            if (!was_recorded(recorded_names, nrecorded, current[next].name))
                out[(*n)++] = (ft_step_plan_item_t){.recorded = -1, .current = (long)next};
        if (k >= 0 && (size_t)k >= next)
            next = (size_t)k + 1;
        const char *status = recorded_status[r], *to = NULL;
        if (strcmp(status, "succeeded") != 0) {
            if (k < 0 && strcmp(status, "skipped") != 0)
                to = "skipped";
            else if (k >= 0 && strcmp(status, "skipped") == 0)
                to = "pending";
        }
        out[(*n)++] = (ft_step_plan_item_t){.recorded = (long)r, .current = k, .status = to};
    }
    for (; next < ncurrent; next++)
        if (!was_recorded(recorded_names, nrecorded, current[next].name))
            out[(*n)++] = (ft_step_plan_item_t){.recorded = -1, .current = (long)next};
    return out;
}
