/*
 * Subscriptions and their feature overrides: plan changes (upgrades now, downgrades at the end
 * of the period), trials, suspension, resumption, cancellation. Each change commits with its
 * event and, where the instance's environment must follow, the job that makes it.
 */
#ifndef FT_SUBSCRIPTION_STORE_H
#define FT_SUBSCRIPTION_STORE_H

#include <jansson.h>
#include <libpq-fe.h>

#include "core/error.h"
#include "core/problem.h"
#include "store/instance_store.h"
#include "store/job_store.h"
#include "store/scope.h"

typedef struct ft_plan_change {
    const char *plan;
    unsigned version;
    int immediate; /* else at the end of the current period */
    const ft_job_step_spec_t *steps; /* features_changed steps, queued when immediate */
    size_t nsteps;
} ft_plan_change_t;

int ft_subscription_get(PGconn *c, const ft_call_t *call, const char *instance_id, json_t **out, ft_problem_t *problem,
                        ft_error_t *err);
int ft_subscription_change_plan(PGconn *c, const ft_call_t *call, const char *instance_id, const ft_plan_change_t *change,
                                json_t **out, ft_problem_t *problem, ft_error_t *err);
/* Suspends (suspend != 0) or resumes the subscription and its instance, queuing that job with
 * its steps. */
int ft_subscription_set_state(PGconn *c, const ft_call_t *call, const char *instance_id, int suspend,
                              const ft_job_step_spec_t *steps, size_t nsteps, json_t **out, ft_problem_t *problem, ft_error_t *err);
int ft_subscription_cancel(PGconn *c, const ft_call_t *call, const char *instance_id, int at_period_end, json_t **out,
                           ft_problem_t *problem, ft_error_t *err);
int ft_subscription_set_trial(PGconn *c, const ft_call_t *call, const char *instance_id, const char *ends_at, json_t **out,
                              ft_problem_t *problem, ft_error_t *err);

int ft_override_list(PGconn *c, const ft_call_t *call, const char *instance_id, json_t **out, ft_problem_t *problem,
                     ft_error_t *err);
/* Upserts (or with spec NULL, deletes `feature`'s override) and queues features_changed. */
int ft_override_put(PGconn *c, const ft_call_t *call, const char *instance_id, const char *feature, const ft_override_spec_t *spec,
                    const ft_job_step_spec_t *steps, size_t nsteps, json_t **out, ft_problem_t *problem, ft_error_t *err);
/* Replaces every override of the instance with `specs` and queues features_changed; *job_id
 * receives the job. */
int ft_override_replace_all(PGconn *c, const ft_call_t *call, const char *instance_id, const ft_override_spec_t *specs, size_t n,
                            const ft_job_step_spec_t *steps, size_t nsteps, char job_id[37], ft_problem_t *problem,
                            ft_error_t *err);

/* Every override of one feature, across customers (within the caller's scope). */
int ft_override_list_by_feature(PGconn *c, const ft_call_t *call, const char *product, const char *feature, int include_expired,
                                json_t **out, ft_error_t *err);

#endif
