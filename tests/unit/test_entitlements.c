/*
 * Entitlement resolution as pure logic: plan, overrides both ways, limits, expiry, chained
 * requirements, gates, ETags and the rendered JSON.
 */
#include "domain/entitlements.h"
#include "ft_test.h"

#include <jansson.h>
#include <stdlib.h>

/* a product: base(flag) <- booking(flag) <- reminders(flag) <- quota(limit, default 500); seats(limit) */
static ft_feature_t features[] = {
    {.code = "base", .module = "m", .name = "Base", .kind = FTP_FEATURE_FLAG, .default_value = 1},
    {.code = "booking", .module = "m", .name = "Booking", .kind = FTP_FEATURE_FLAG, .default_value = 1},
    {.code = "reminders", .module = "m", .name = "Reminders", .kind = FTP_FEATURE_FLAG, .default_value = 1},
    {.code = "quota", .module = "m", .name = "Quota", .kind = FTP_FEATURE_LIMIT, .default_value = 500},
    {.code = "seats", .module = "m", .name = "Seats", .kind = FTP_FEATURE_LIMIT, .default_value = 3},
};
static char *req_booking[] = {"base"}, *req_reminders[] = {"booking"}, *req_quota[] = {"reminders"};

static ft_product_t product(void)
{
    features[1].requires = req_booking;
    features[1].nrequires = 1;
    features[2].requires = req_reminders;
    features[2].nrequires = 1;
    features[3].requires = req_quota;
    features[3].nrequires = 1;
    ft_product_t p = {.code = "demo", .features = features, .nfeatures = 5};
    return p;
}

static const ft_ent_plan_item_t plan_items[] = {{"base", 1}, {"booking", 1}, {"seats", 10}};

static ft_ent_input_t input(const ft_ent_override_t *ov, size_t nov)
{
    ft_ent_input_t in = {.instance_id = "11111111-1111-4111-8111-111111111111",
                         .customer_id = "22222222-2222-4222-8222-222222222222",
                         .instance_status = "active",
                         .subscription_status = "active",
                         .plan = "basic",
                         .plan_version = 2,
                         .plan_items = plan_items,
                         .nplan_items = 3,
                         .overrides = ov,
                         .noverrides = nov,
                         .version = 7,
                         .now_us = 1000000000000};
    return in;
}

static const ft_ent_feature_t *get(ft_entitlements_t *e, const char *code)
{
    const ft_ent_feature_t *f = ft_entitlements_find(e, code);
    CHECK(f != NULL);
    return f;
}

TEST(plan_features_are_on_with_their_values_and_others_off)
{
    ft_product_t p = product();
    ft_ent_input_t in = input(NULL, 0);
    ft_entitlements_t *e = ft_entitlements_resolve(&p, &in);
    CHECK_INT(1, get(e, "base")->enabled);
    CHECK_INT(FT_ENT_SOURCE_PLAN, get(e, "base")->source);
    CHECK_INT(10, get(e, "seats")->value);
    CHECK_INT(0, get(e, "reminders")->enabled);
    CHECK_STR("not in plan basic v2", get(e, "reminders")->reason);
    CHECK_INT(0, get(e, "quota")->value);
    CHECK(e->valid_until_us == INT64_MAX);
    ft_entitlements_release(e);
}

TEST(override_switches_off_a_plan_feature_and_its_dependents)
{
    ft_product_t p = product();
    ft_ent_override_t ov[] = {{.feature = "base", .enabled = 0, .reason = "dispute"}};
    ft_ent_input_t in = input(ov, 1);
    ft_entitlements_t *e = ft_entitlements_resolve(&p, &in);
    CHECK_INT(0, get(e, "base")->enabled);
    CHECK_STR("off by override: dispute", get(e, "base")->reason);
    CHECK_INT(0, get(e, "booking")->enabled);
    CHECK_STR("off: requires base, which is off", get(e, "booking")->reason);
    ft_entitlements_release(e);
}

TEST(override_switches_on_a_chain_and_a_limit_gets_its_default)
{
    ft_product_t p = product();
    ft_ent_override_t ov[] = {{.feature = "reminders", .enabled = 1}, {.feature = "quota", .enabled = 1}};
    ft_ent_input_t in = input(ov, 2);
    ft_entitlements_t *e = ft_entitlements_resolve(&p, &in);
    CHECK_INT(1, get(e, "reminders")->enabled);
    CHECK_INT(FT_ENT_SOURCE_OVERRIDE, get(e, "reminders")->source);
    CHECK_INT(500, get(e, "quota")->value);
    ft_entitlements_release(e);
}

TEST(override_sets_a_limit_over_the_plan_value)
{
    ft_product_t p = product();
    ft_ent_override_t ov[] = {{.feature = "seats", .enabled = 1, .has_limit = 1, .limit = 42}};
    ft_ent_input_t in = input(ov, 1);
    ft_entitlements_t *e = ft_entitlements_resolve(&p, &in);
    CHECK_INT(42, get(e, "seats")->value);
    ft_entitlements_release(e);
}

TEST(expired_override_is_ignored_and_a_future_expiry_bounds_validity)
{
    ft_product_t p = product();
    ft_ent_input_t in = input(NULL, 0);
    ft_ent_override_t ov[] = {{.feature = "base", .enabled = 0, .expires_us = in.now_us - 1},
                              {.feature = "reminders", .enabled = 1, .expires_us = in.now_us + 5000000}};
    in.overrides = ov;
    in.noverrides = 2;
    ft_entitlements_t *e = ft_entitlements_resolve(&p, &in);
    CHECK_INT(1, get(e, "base")->enabled);
    CHECK_INT(FT_ENT_SOURCE_PLAN, get(e, "base")->source);
    CHECK_INT(1, get(e, "reminders")->enabled);
    CHECK_INT(in.now_us + 5000000, get(e, "reminders")->expires_us);
    CHECK_INT(in.now_us + 5000000, e->valid_until_us);
    ft_entitlements_release(e);
}

TEST(suspension_cancellation_and_ended_trials_switch_everything_off)
{
    ft_product_t p = product();
    const char *states[][2] = {{"active", "suspended"}, {"suspended", "active"}, {"active", "canceled"}};
    for (int i = 0; i < 3; i++) {
        ft_ent_input_t in = input(NULL, 0);
        in.instance_status = states[i][0];
        in.subscription_status = states[i][1];
        ft_entitlements_t *e = ft_entitlements_resolve(&p, &in);
        CHECK_INT(0, get(e, "base")->enabled);
        CHECK_INT(0, get(e, "seats")->value);
        ft_entitlements_release(e);
    }
    ft_ent_input_t in = input(NULL, 0);
    in.subscription_status = "trialing";
    in.trial_ends_us = in.now_us - 1;
    ft_entitlements_t *e = ft_entitlements_resolve(&p, &in);
    CHECK_STR("off: the trial has ended", get(e, "base")->reason);
    ft_entitlements_release(e);
    in.trial_ends_us = in.now_us + 10;
    e = ft_entitlements_resolve(&p, &in);
    CHECK_INT(1, get(e, "base")->enabled);
    CHECK_INT(in.now_us + 10, e->valid_until_us);
    ft_entitlements_release(e);
}

TEST(etag_follows_content_only)
{
    ft_product_t p = product();
    ft_ent_input_t in = input(NULL, 0);
    ft_entitlements_t *a = ft_entitlements_resolve(&p, &in);
    in.now_us += 1000;
    ft_entitlements_t *b = ft_entitlements_resolve(&p, &in);
    CHECK_STR(a->etag, b->etag);
    ft_ent_override_t ov[] = {{.feature = "seats", .enabled = 1, .has_limit = 1, .limit = 11}};
    in.overrides = ov;
    in.noverrides = 1;
    ft_entitlements_t *c = ft_entitlements_resolve(&p, &in);
    CHECK(strcmp(a->etag, c->etag) != 0);
    ft_entitlements_release(a);
    ft_entitlements_release(b);
    ft_entitlements_release(c);
}

TEST(json_lists_every_feature_with_typed_values)
{
    ft_product_t p = product();
    ft_ent_input_t in = input(NULL, 0);
    ft_entitlements_t *e = ft_entitlements_resolve(&p, &in);
    size_t len;
    const char *text = ft_entitlements_json(e, &len);
    CHECK_INT(strlen(text), len);
    CHECK(ft_entitlements_json(e, NULL) == text); /* rendered once */
    json_t *doc = json_loads(text, 0, NULL);
    CHECK(doc != NULL);
    json_t *f = json_object_get(doc, "features");
    CHECK_INT(5, json_object_size(f));
    CHECK(json_is_true(json_object_get(json_object_get(f, "base"), "value")));
    CHECK_INT(10, json_integer_value(json_object_get(json_object_get(f, "seats"), "value")));
    CHECK_INT(7, json_integer_value(json_object_get(doc, "version")));
    json_decref(doc);
    ft_entitlements_release(e);
}

RUN_TESTS(TEST_ENTRY(plan_features_are_on_with_their_values_and_others_off),
          TEST_ENTRY(override_switches_off_a_plan_feature_and_its_dependents),
          TEST_ENTRY(override_switches_on_a_chain_and_a_limit_gets_its_default), TEST_ENTRY(override_sets_a_limit_over_the_plan_value),
          TEST_ENTRY(expired_override_is_ignored_and_a_future_expiry_bounds_validity),
          TEST_ENTRY(suspension_cancellation_and_ended_trials_switch_everything_off), TEST_ENTRY(etag_follows_content_only),
          TEST_ENTRY(json_lists_every_feature_with_typed_values))
