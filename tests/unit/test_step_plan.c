/*
 * A job's steps against the generation that runs them: done steps stay, vanished steps are
 * skipped, new steps are placed in the generation's order, and nothing changes when nothing did.
 */
#include "domain/step_plan.h"
#include "ft_test.h"

#include <stdlib.h>

/* The plan rendered as "name:status" (status "-" unchanged, "+" added), comma-separated. */
static const char *render(const char *const *names, const char *const *status, size_t n, const ft_job_step_spec_t *cur, size_t ncur)
{
    static char out[512];
    size_t m = 0, len = 0;
    ft_step_plan_item_t *plan = ft_step_plan(names, status, n, cur, ncur, &m);
    out[0] = '\0';
    for (size_t i = 0; i < m; i++) {
        const ft_step_plan_item_t *it = &plan[i];
        const char *name = it->recorded >= 0 ? names[it->recorded] : cur[it->current].name;
        const char *s = it->recorded < 0 ? "+" : it->status != NULL ? it->status : "-";
        len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s:%s", i ? "," : "", name, s);
    }
    free(plan);
    return out;
}

static const ft_job_step_spec_t gen1[] = {{"schema", 1}, {"touch", 1}, {"flaky", 1}, {"doomed", 1}};
static const ft_job_step_spec_t gen2[] = {{"schema", 1}, {"touch", 1}, {"steady", 1}, {"doomed", 2}};

TEST(the_same_generation_changes_nothing)
{
    const char *names[] = {"schema", "touch", "flaky", "doomed"};
    const char *status[] = {"succeeded", "succeeded", "failed", "pending"};
    CHECK_STR("schema:-,touch:-,flaky:-,doomed:-", render(names, status, 4, gen1, 4));
}

TEST(a_removed_step_still_to_do_is_skipped_and_a_new_one_runs_in_its_place)
{
    const char *names[] = {"schema", "touch", "flaky", "doomed"};
    const char *status[] = {"succeeded", "succeeded", "failed", "pending"};
    CHECK_STR("schema:-,touch:-,flaky:skipped,steady:+,doomed:-", render(names, status, 4, gen2, 4));
}

TEST(a_removed_step_that_is_done_stays_done)
{
    const char *names[] = {"schema", "touch", "flaky", "doomed"};
    const char *status[] = {"succeeded", "succeeded", "succeeded", "failed"};
    CHECK_STR("schema:-,touch:-,flaky:-,steady:+,doomed:-", render(names, status, 4, gen2, 4));
}

TEST(a_skipped_step_the_generation_has_again_is_pending_again)
{
    const char *names[] = {"schema", "touch", "flaky", "steady", "doomed"};
    const char *status[] = {"succeeded", "succeeded", "skipped", "failed", "pending"};
    CHECK_STR("schema:-,touch:-,flaky:pending,steady:skipped,doomed:-", render(names, status, 5, gen1, 4));
}

TEST(new_steps_at_the_start_and_the_end_keep_the_generations_order)
{
    static const ft_job_step_spec_t gen[] = {{"first", 1}, {"schema", 1}, {"touch", 1}, {"last", 1}, {"later", 1}};
    const char *names[] = {"schema", "touch"};
    const char *status[] = {"succeeded", "pending"};
    CHECK_STR("first:+,schema:-,touch:-,last:+,later:+", render(names, status, 2, gen, 5));
}

TEST(a_job_recorded_without_steps_gets_the_generations_steps)
{
    CHECK_STR("schema:+,touch:+,flaky:+,doomed:+", render(NULL, NULL, 0, gen1, 4));
}

TEST(a_generation_without_steps_skips_every_step_still_to_do)
{
    const char *names[] = {"schema", "touch"};
    const char *status[] = {"succeeded", "running"};
    CHECK_STR("schema:-,touch:skipped", render(names, status, 2, NULL, 0));
}

TEST(recorded_steps_the_generation_reordered_stay_where_they_are)
{
    static const ft_job_step_spec_t gen[] = {{"touch", 1}, {"schema", 1}, {"new", 1}};
    const char *names[] = {"schema", "touch"};
    const char *status[] = {"pending", "pending"};
    CHECK_STR("schema:-,touch:-,new:+", render(names, status, 2, gen, 3));
}

RUN_TESTS(TEST_ENTRY(the_same_generation_changes_nothing),
          TEST_ENTRY(a_removed_step_still_to_do_is_skipped_and_a_new_one_runs_in_its_place),
          TEST_ENTRY(a_removed_step_that_is_done_stays_done), TEST_ENTRY(a_skipped_step_the_generation_has_again_is_pending_again),
          TEST_ENTRY(new_steps_at_the_start_and_the_end_keep_the_generations_order),
          TEST_ENTRY(a_job_recorded_without_steps_gets_the_generations_steps),
          TEST_ENTRY(a_generation_without_steps_skips_every_step_still_to_do),
          TEST_ENTRY(recorded_steps_the_generation_reordered_stay_where_they_are))
