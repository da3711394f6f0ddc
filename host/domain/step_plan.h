/*
 * A job's steps brought in line with the product generation about to run them. Steps recorded
 * done stay done; steps still to do that the generation no longer has are skipped; steps it has
 * that the job never recorded are added, in the generation's order among the recorded ones.
 */
#ifndef FT_STEP_PLAN_H
#define FT_STEP_PLAN_H

#include <stddef.h>

#include "domain/job_kinds.h"

typedef struct ft_step_plan_item {
    long recorded;      /* index into the recorded steps, or -1: a step to add */
    long current;       /* index into the generation's steps, or -1: the generation has none of that name */
    const char *status; /* the recorded step's new status ("skipped", "pending"), or NULL: unchanged */
} ft_step_plan_item_t;

/* recorded: the job's steps in their order (names and statuses: "pending", "running", "failed",
 * "succeeded", "skipped"); current: the generation's steps for the job's kind, in its order.
 * Returns the steps in their new order (*n of them); the caller frees the array. A skipped step
 * the generation has again is pending again. */
ft_step_plan_item_t *ft_step_plan(const char *const *recorded_names, const char *const *recorded_status, size_t nrecorded,
                                  const ft_job_step_spec_t *current, size_t ncurrent, size_t *n);

#endif
