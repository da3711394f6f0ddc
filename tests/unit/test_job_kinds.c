/*
 * The job kinds table (each kind's row, the lookup, the steps a kind runs), the action check
 * both the HTTP route and the worker use, and settings validation.
 */
#include "domain/action_rules.h"
#include "domain/job_kinds.h"
#include "domain/jsonschema.h"
#include "domain/settings.h"
#include "ft_test.h"

#include <stdlib.h>

typedef struct expected_kind {
    const char *name;
    uint32_t lifecycle;
    const char *requested, *done, *running, *succeeded, *failed, *replayed;
    ft_tenant_db_use_t tenant_db;
} expected_kind_t;

TEST(each_kind_has_its_row)
{
    static const expected_kind_t want[FT_JOB_KIND_COUNT] = {
        [FT_JOB_PROVISION] = {"provision", FTP_LIFECYCLE_PROVISION, "instance.provisioning_requested.v1", "instance.provisioned.v1",
                              "provisioning", "active", "failed", "pending", FT_TENANT_DB_CREATE},
        [FT_JOB_DEPROVISION] = {"deprovision", FTP_LIFECYCLE_DEPROVISION, "instance.deprovisioning_requested.v1",
                                "instance.deprovisioned.v1", NULL, "deleted", "failed", "deprovisioning", FT_TENANT_DB_REMOVE},
        [FT_JOB_SUSPEND] = {"suspend", FTP_LIFECYCLE_SUSPEND, "instance.suspension_requested.v1", "instance.suspended.v1", NULL,
                            NULL, NULL, NULL, FT_TENANT_DB_USE},
        [FT_JOB_RESUME] = {"resume", FTP_LIFECYCLE_RESUME, "instance.resumption_requested.v1", "instance.resumed.v1", NULL, NULL,
                           NULL, NULL, FT_TENANT_DB_USE},
        [FT_JOB_FEATURES_CHANGED] = {"features_changed", FTP_LIFECYCLE_FEATURES_CHANGED, "instance.features_change_requested.v1",
                                     "instance.features_changed.v1", NULL, NULL, NULL, NULL, FT_TENANT_DB_USE},
        [FT_JOB_ACTION] = {"action", 0, "instance.action_requested.v1", NULL, NULL, NULL, NULL, NULL, FT_TENANT_DB_USE},
    };
    for (size_t i = 0; i < FT_JOB_KIND_COUNT; i++) {
        const ft_job_kind_t *k = &ft_job_kinds[i];
        CHECK_STR(want[i].name, k->name);
        CHECK_INT(want[i].lifecycle, k->lifecycle);
        CHECK_STR(want[i].requested, k->requested);
        CHECK_STR(want[i].done, k->done);
        CHECK_STR(want[i].running, k->running);
        CHECK_STR(want[i].succeeded, k->succeeded);
        CHECK_STR(want[i].failed, k->failed);
        CHECK_STR(want[i].replayed, k->replayed);
        CHECK_INT(want[i].tenant_db, k->tenant_db);
        CHECK_INT(i == FT_JOB_PROVISION, k->records_location);
    }
    CHECK_STR("{pending,failed}", ft_job_kinds[FT_JOB_PROVISION].running_from);
    CHECK_STR("provisioning", ft_job_kinds[FT_JOB_PROVISION].succeeded_from);
    CHECK(ft_job_kinds[FT_JOB_DEPROVISION].succeeded_from == NULL);
}

TEST(lookup_finds_every_kind_by_name_and_nothing_else)
{
    for (size_t i = 0; i < FT_JOB_KIND_COUNT; i++)
        CHECK(ft_job_kind_find(ft_job_kinds[i].name) == &ft_job_kinds[i]);
    CHECK(ft_job_kind_find("provisioning") == NULL);
    CHECK(ft_job_kind_find("Provision") == NULL);
    CHECK(ft_job_kind_find("") == NULL);
    CHECK(ft_job_kind_find(NULL) == NULL);
}

static ft_step_t steps[] = {
    {.lifecycle = FTP_LIFECYCLE_PROVISION, .name = "create_schema", .version = 1},
    {.lifecycle = FTP_LIFECYCLE_SUSPEND, .name = "pause", .version = 1},
    {.lifecycle = FTP_LIFECYCLE_PROVISION, .name = "seed", .version = 3},
    {.lifecycle = FTP_LIFECYCLE_DEPROVISION, .name = "drop", .version = 2},
};

TEST(a_kind_runs_its_lifecycle_steps_in_the_products_order_and_an_action_none)
{
    ft_product_t p = {.code = "demo", .steps = steps, .nsteps = 4};
    size_t n = 99;
    ft_job_step_spec_t *s = ft_job_kind_steps(&ft_job_kinds[FT_JOB_PROVISION], &p, &n);
    CHECK_INT(2, n);
    CHECK_STR("create_schema", s[0].name);
    CHECK_STR("seed", s[1].name);
    CHECK_INT(3, s[1].version);
    free(s);
    s = ft_job_kind_steps(&ft_job_kinds[FT_JOB_RESUME], &p, &n);
    CHECK_INT(0, n);
    free(s);
    s = ft_job_kind_steps(&ft_job_kinds[FT_JOB_ACTION], &p, &n);
    CHECK_INT(0, n);
    free(s);
}

/* ---------------------------------------------------------------- the action check */

static ft_action_t actions[] = {
    {.name = "count", .required_feature = NULL},
    {.name = "register", .required_feature = "records"},
};

typedef struct entitlement_answer {
    int answer, calls;
    const char *asked;
} entitlement_answer_t;

static int answer(void *arg, const char *feature)
{
    entitlement_answer_t *a = arg;
    a->calls++;
    a->asked = feature;
    return a->answer;
}

/* The check against product "demo": "count" (no input schema, no feature), "register" (needs
 * feature "records"; input {name (required, non-empty), kind (default "cat")}). */
static ft_action_verdict_t check(const char *name, const char *status, json_t *in, entitlement_answer_t *ent,
                                 ft_action_check_t *chk)
{
    ft_error_t err = {0};
    ft_product_t p = {.code = "demo", .version = "1.0.0", .actions = actions, .nactions = 2};
    ft_schema_t *schemas[2] = {NULL, ft_schema_compile("{\"type\":\"object\",\"required\":[\"name\"],\"properties\":{"
                                                       "\"name\":{\"type\":\"string\",\"minLength\":1},"
                                                       "\"kind\":{\"type\":\"string\",\"default\":\"cat\"}}}",
                                                       &err)};
    CHECK(schemas[1] != NULL);
    ft_generation_t g = {.product_code = "demo", .product = &p, .action_schemas = schemas};
    ft_action_verdict_t v = ft_action_check(&g, name, status, in, answer, ent, chk);
    ft_schema_free(schemas[1]);
    json_decref(in);
    return v;
}

TEST(an_allowed_action_is_found_and_its_input_gets_defaults)
{
    entitlement_answer_t ent = {.answer = 1};
    json_t *in = json_pack("{s:s}", "name", "Luna");
    ft_action_check_t chk;
    CHECK_INT(FT_ACTION_ALLOWED, check("register", "active", json_incref(in), &ent, &chk));
    CHECK(chk.action == &actions[1]);
    CHECK_STR("records", ent.asked);
    CHECK_STR("cat", json_string_value(json_object_get(in, "kind")));
    CHECK(chk.errors == NULL);
    json_decref(in);
}

TEST(an_action_without_a_required_feature_never_asks_for_entitlements)
{
    entitlement_answer_t ent = {.answer = -1};
    ft_action_check_t chk;
    CHECK_INT(FT_ACTION_ALLOWED, check("count", "active", json_object(), &ent, &chk));
    CHECK_INT(0, ent.calls);
}

TEST(an_unknown_action_is_refused_first)
{
    entitlement_answer_t ent = {.answer = 0};
    ft_action_check_t chk;
    CHECK_INT(FT_ACTION_UNKNOWN, check("teleport", "suspended", json_object(), &ent, &chk));
    CHECK(chk.action == NULL);
}

TEST(an_instance_that_is_not_active_is_refused_before_the_input_is_checked)
{
    entitlement_answer_t ent = {.answer = 0};
    ft_action_check_t chk;
    CHECK_INT(FT_ACTION_NOT_ACTIVE, check("register", "suspended", json_object(), &ent, &chk));
    CHECK(chk.action == &actions[1]);
    CHECK(chk.errors == NULL);
    CHECK_INT(0, ent.calls);
}

TEST(invalid_input_is_refused_with_the_violations_before_entitlements_are_asked)
{
    entitlement_answer_t ent = {.answer = 0};
    ft_action_check_t chk;
    CHECK_INT(FT_ACTION_BAD_INPUT, check("register", "active", json_pack("{s:s}", "name", ""), &ent, &chk));
    CHECK(json_array_size(chk.errors) >= 1);
    CHECK_STR("#/name", json_string_value(json_object_get(json_array_get(chk.errors, 0), "pointer")));
    CHECK_INT(0, ent.calls);
    json_decref(chk.errors);
}

TEST(a_feature_that_is_off_refuses_the_action_and_names_it)
{
    entitlement_answer_t ent = {.answer = 0};
    ft_action_check_t chk;
    CHECK_INT(FT_ACTION_NOT_ENTITLED, check("register", "active", json_pack("{s:s}", "name", "Luna"), &ent, &chk));
    CHECK_STR("records", chk.feature);
}

TEST(a_failed_entitlement_lookup_is_reported_as_such)
{
    entitlement_answer_t ent = {.answer = -1};
    ft_action_check_t chk;
    CHECK_INT(FT_ACTION_LOOKUP_FAILED, check("register", "active", json_pack("{s:s}", "name", "Luna"), &ent, &chk));
}

/* ---------------------------------------------------------------- settings */

TEST(settings_get_defaults_or_a_422_pointing_into_the_body)
{
    ft_error_t err = {0};
    ft_schema_t *s = ft_schema_compile("{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
                                       "\"email\":{\"type\":\"string\"},\"seats\":{\"type\":\"integer\",\"default\":3}}}",
                                       &err);
    CHECK(s != NULL);
    ft_generation_t g = {.product_code = "demo", .settings_schema = s};
    ft_problem_t problem = {0};
    json_t *ok = json_pack("{s:s}", "email", "a@b.test");
    CHECK_INT(FT_OK, ft_settings_check(&g, ok, &problem));
    CHECK_INT(3, json_integer_value(json_object_get(ok, "seats")));
    json_t *bad = json_pack("{s:i}", "email", 7);
    CHECK_INT(FT_EINVAL, ft_settings_check(&g, bad, &problem));
    CHECK_INT(422, problem.status);
    CHECK_STR("invalid-settings", problem.slug);
    CHECK_CONTAINS(problem.detail, "product demo");
    CHECK_STR("#/settings/email",
              json_string_value(json_object_get(json_array_get(json_object_get(problem.ext, "errors"), 0), "pointer")));
    ft_problem_clear(&problem);
    ft_generation_t none = {.product_code = "plain"};
    CHECK_INT(FT_OK, ft_settings_check(&none, bad, &problem));
    json_decref(ok);
    json_decref(bad);
    ft_schema_free(s);
}

RUN_TESTS(TEST_ENTRY(each_kind_has_its_row), TEST_ENTRY(lookup_finds_every_kind_by_name_and_nothing_else),
          TEST_ENTRY(a_kind_runs_its_lifecycle_steps_in_the_products_order_and_an_action_none),
          TEST_ENTRY(an_allowed_action_is_found_and_its_input_gets_defaults),
          TEST_ENTRY(an_action_without_a_required_feature_never_asks_for_entitlements),
          TEST_ENTRY(an_unknown_action_is_refused_first),
          TEST_ENTRY(an_instance_that_is_not_active_is_refused_before_the_input_is_checked),
          TEST_ENTRY(invalid_input_is_refused_with_the_violations_before_entitlements_are_asked),
          TEST_ENTRY(a_feature_that_is_off_refuses_the_action_and_names_it),
          TEST_ENTRY(a_failed_entitlement_lookup_is_reported_as_such),
          TEST_ENTRY(settings_get_defaults_or_a_422_pointing_into_the_body))
