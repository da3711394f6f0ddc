/*
 * Entitlement resolution as pure logic: plan, overrides both ways, limits, expiry, chained
 * requirements, gates, ETags and the rendered JSON. Then every answer clients read (the REST
 * document, its ETag, OFREP single and bulk evaluations) for a spread of instances — plan only,
 * overrides of each kind, expiries, suspended, canceled, trialing, ended trials, scheduled
 * changes, two products — compared byte for byte with tests/unit/golden/entitlements.txt, so the
 * record's in-memory form may change while what clients read cannot. FT_GOLDEN_WRITE=1 rewrites
 * that file (only for a change of the answers themselves, reviewed in its diff).
 */
#include "domain/entitlement_render.h"
#include "domain/entitlements.h"
#include "core/error.h"
#include "domain/ofrep_context.h"
#include "ft_test.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    char *text = ft_entitlements_json(e, &len);
    CHECK_INT(strlen(text), len);
    json_t *doc = json_loads(text, 0, NULL);
    CHECK(doc != NULL);
    json_t *f = json_object_get(doc, "features");
    CHECK_INT(5, json_object_size(f));
    CHECK(json_is_true(json_object_get(json_object_get(f, "base"), "value")));
    CHECK_INT(10, json_integer_value(json_object_get(json_object_get(f, "seats"), "value")));
    CHECK_INT(7, json_integer_value(json_object_get(doc, "version")));
    json_decref(doc);
    free(text);
    ft_entitlements_release(e);
}

/* a second product: flags and one limit, no requirements */
static ft_feature_t erp_features[] = {
    {.code = "ledger", .module = "f", .name = "Ledger", .kind = FTP_FEATURE_FLAG, .default_value = 1},
    {.code = "invoicing", .module = "f", .name = "Invoicing", .kind = FTP_FEATURE_FLAG, .default_value = 1},
    {.code = "max_companies", .module = "f", .name = "Companies", .kind = FTP_FEATURE_LIMIT, .default_value = 1},
};
static const ft_ent_plan_item_t pro[] = {{"base", 1}, {"booking", 1}, {"reminders", 1}, {"quota", 2000}, {"seats", 50}};
static const ft_ent_plan_item_t erp_std[] = {{"ledger", 1}, {"max_companies", 3}};

static ft_product_t erp(void)
{
    return (ft_product_t){.code = "erp", .features = erp_features, .nfeatures = 3};
}

#define NOW 1765000000123456LL
#define DAY 86400000000LL

/* input() for another instance id, at NOW */
static ft_ent_input_t at(const char *id, const ft_ent_override_t *ov, size_t nov)
{
    ft_ent_input_t in = input(ov, nov);
    in.instance_id = id;
    in.now_us = NOW;
    return in;
}

/* The ETag as first defined: SHA-256 over "id|product|plan|version|statuses" and one line per
 * feature in code order, each cut at 255 bytes; its first 8 bytes in hex, quoted. */
static void reference_etag(const ft_entitlements_t *e, const ft_ent_input_t *in, char out[19])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    char line[256];
    int n = snprintf(line, sizeof(line), "%s|%s|%s|%u|%s|%s\n", in->instance_id, e->base->product, in->plan, in->plan_version,
                     in->subscription_status, in->instance_status);
    EVP_DigestUpdate(md, line, (size_t)n);
    for (size_t i = 0; i < ft_entitlements_count(e); i++) {
        const ft_ent_feature_t *f = ft_entitlements_at(e, i);
        n = snprintf(line, sizeof(line), "%s=%d:%lld:%d:%lld:%s\n", f->code, f->enabled, (long long)f->value, f->source,
                     (long long)f->expires_us, f->reason);
        EVP_DigestUpdate(md, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
    }
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dl = 0;
    EVP_DigestFinal_ex(md, d, &dl);
    EVP_MD_CTX_free(md);
    out[0] = '"';
    for (int i = 0; i < 8; i++)
        snprintf(out + 1 + 2 * i, 3, "%02x", d[i]);
    out[17] = '"';
    out[18] = '\0';
}

TEST(etag_hashes_each_feature_line_cut_at_255_bytes)
{
    /* a 63-character code, the longest a product may have, with the widest numbers and reason */
    static ft_feature_t wide[] = {{.code = "a_limit_with_the_longest_code_a_product_may_declare_for_one_fea", .module = "m",
                                   .name = "Wide", .kind = FTP_FEATURE_LIMIT, .default_value = 1}};
    ft_product_t p = {.code = "demo", .features = wide, .nfeatures = 1};
    char reason[200];
    memset(reason, 'r', sizeof(reason) - 1);
    reason[sizeof(reason) - 1] = '\0';
    ft_ent_override_t ov[] = {{.feature = wide[0].code, .enabled = 1, .has_limit = 1, .limit = INT64_MIN + 1,
                               .expires_us = INT64_MAX - 1, .reason = reason}};
    ft_ent_input_t in = input(ov, 1);
    ft_entitlements_t *e = ft_entitlements_resolve(&p, &in);
    char want[19];
    reference_etag(e, &in, want);
    CHECK_STR(want, e->etag);
    CHECK_INT(159, strlen(ft_entitlements_at(e, 0)->reason)); /* reasons are cut at 159 bytes */
    CHECK_INT(63, strlen(wide[0].code));
    ft_entitlements_release(e);
}

TEST(subscribers_in_the_same_state_share_one_base_and_keep_only_their_differences)
{
    ft_product_t p = product();
    size_t before = ft_entitlements_bases();
    ft_ent_input_t in = input(NULL, 0);
    ft_entitlements_t *a = ft_entitlements_resolve(&p, &in);
    in.instance_id = "33333333-3333-4333-8333-333333333333";
    ft_entitlements_t *b = ft_entitlements_resolve(&p, &in);
    CHECK(a->base == b->base);
    CHECK_INT(0, a->ndiff);
    CHECK_INT(before + 1, ft_entitlements_bases());
    ft_ent_override_t ov[] = {{.feature = "seats", .enabled = 1, .has_limit = 1, .limit = 42}};
    in.overrides = ov;
    in.noverrides = 1;
    ft_entitlements_t *c = ft_entitlements_resolve(&p, &in);
    CHECK(c->base == a->base);
    CHECK_INT(1, c->ndiff);
    CHECK_INT(42, get(c, "seats")->value);
    CHECK_INT(10, get(a, "seats")->value);
    in.subscription_status = "suspended"; /* another state: another base */
    ft_entitlements_t *d = ft_entitlements_resolve(&p, &in);
    CHECK(d->base != a->base);
    CHECK_INT(before + 2, ft_entitlements_bases());
    ft_entitlements_release(a);
    ft_entitlements_release(b);
    ft_entitlements_release(c);
    ft_entitlements_release(d);
    CHECK_INT(before, ft_entitlements_bases()); /* a base goes with its last record */
}

typedef struct golden {
    char *text;
    size_t len, cap;
} golden_t;

static void add(golden_t *g, const char *label, const char *s, size_t n)
{
    size_t need = g->len + strlen(label) + n + 3;
    if (need > g->cap) {
        g->cap = need * 2;
        g->text = realloc(g->text, g->cap);
    }
    g->len += (size_t)sprintf(g->text + g->len, "%s ", label);
    memcpy(g->text + g->len, s, n);
    g->len += n;
    g->text[g->len++] = '\n';
    g->text[g->len] = '\0';
}

/* Every answer of one record, labelled with the case. */
static void answers(golden_t *g, const char *name, const ft_product_t *p, const ft_ent_input_t *in)
{
    ft_entitlements_t *e = ft_entitlements_resolve(p, in);
    char label[96];
    snprintf(label, sizeof(label), "%s etag", name);
    add(g, label, e->etag, strlen(e->etag));
    size_t len;
    char *json = ft_entitlements_json(e, &len);
    CHECK_INT(strlen(json), len);
    snprintf(label, sizeof(label), "%s json", name);
    add(g, label, json, len);
    free(json);
    char *bulk = ft_entitlements_ofrep_bulk(e, &len);
    CHECK_INT(strlen(bulk), len);
    snprintf(label, sizeof(label), "%s bulk", name);
    add(g, label, bulk, len);
    free(bulk);
    for (size_t i = 0; i < p->nfeatures; i++) {
        const ft_ent_feature_t *f = ft_entitlements_find(e, p->features[i].code);
        CHECK(f != NULL);
        char flag[FT_ENT_OFREP_FLAG_MAX];
        size_t n = ft_entitlements_ofrep_flag(e, f, flag);
        snprintf(label, sizeof(label), "%s flag", name);
        add(g, label, flag, n);
    }
    ft_entitlements_release(e);
}

static void all_answers(golden_t *g)
{
    ft_product_t v = product(), x = erp();
    const char *id1 = "11111111-1111-4111-8111-111111111111", *id2 = "33333333-3333-4333-8333-333333333333";

    ft_ent_input_t in = at(id1, NULL, 0);
    answers(g, "plan-only", &v, &in);
    in = at(id2, NULL, 0);
    answers(g, "plan-only-other-instance", &v, &in);
    in = at(id1, NULL, 0);
    in.plan = "pro";
    in.plan_version = 1;
    in.plan_items = pro;
    in.nplan_items = 5;
    in.version = 18446744073709551615ull;
    answers(g, "other-plan", &v, &in);

    ft_ent_override_t off[] = {{.feature = "base", .enabled = 0, .reason = "dispute \"open\" \\ line\nnext\ttab \x01 ñ / €"}};
    in = at(id1, off, 1);
    answers(g, "override-off-with-dependents", &v, &in);
    ft_ent_override_t on[] = {{.feature = "reminders", .enabled = 1}, {.feature = "quota", .enabled = 1}};
    in = at(id1, on, 2);
    answers(g, "override-on-chain-limit-default", &v, &in);
    ft_ent_override_t limit[] = {{.feature = "seats", .enabled = 1, .has_limit = 1, .limit = 42, .expires_us = NOW + DAY, .reason = "promo"}};
    in = at(id1, limit, 1);
    answers(g, "override-limit-expiring", &v, &in);
    ft_ent_override_t new_limit[] = {{.feature = "quota", .enabled = 1, .has_limit = 1, .limit = -1},
                                     {.feature = "reminders", .enabled = 1, .reason = "pilot"}};
    in = at(id1, new_limit, 2);
    answers(g, "override-non-plan-features", &v, &in);
    ft_ent_override_t limit_off[] = {{.feature = "seats", .enabled = 0, .reason = ""}};
    in = at(id1, limit_off, 1);
    answers(g, "override-limit-off", &v, &in);
    ft_ent_override_t expired[] = {{.feature = "base", .enabled = 0, .expires_us = NOW - 1},
                                   {.feature = "reminders", .enabled = 1, .expires_us = NOW + 5000000}};
    in = at(id1, expired, 2);
    answers(g, "override-expired-and-future", &v, &in);

    const char *states[][3] = {{"active", "suspended", "subscription-suspended"},
                               {"suspended", "active", "instance-suspended"},
                               {"active", "canceled", "canceled"},
                               {"deleted", "active", "deleted"},
                               {"provisioning", "active", "provisioning"}};
    for (int i = 0; i < 5; i++) {
        in = at(id1, on, 2);
        in.instance_status = states[i][0];
        in.subscription_status = states[i][1];
        answers(g, states[i][2], &v, &in);
    }
    in = at(id1, NULL, 0);
    in.subscription_status = "trialing";
    in.trial_ends_us = NOW + 14 * DAY;
    answers(g, "trialing", &v, &in);
    in.trial_ends_us = NOW - 1;
    answers(g, "trial-ended", &v, &in);
    in = at(id1, NULL, 0);
    in.change_due_us = NOW + 3 * DAY;
    answers(g, "change-due", &v, &in);

    in = at(id2, NULL, 0);
    in.customer_id = "44444444-4444-4444-8444-444444444444";
    in.plan = "standard";
    in.plan_version = 3;
    in.plan_items = erp_std;
    in.nplan_items = 2;
    in.version = 1;
    in.now_us = 1000000;
    answers(g, "erp-plan-only", &x, &in);
    ft_ent_override_t erp_on[] = {{.feature = "invoicing", .enabled = 1, .reason = "beta"}};
    in.overrides = erp_on;
    in.noverrides = 1;
    answers(g, "erp-override", &x, &in);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    *len = fread(s, 1, (size_t)n, f);
    s[*len] = '\0';
    fclose(f);
    return s;
}

TEST(answers_match_the_golden_file_byte_for_byte)
{
    golden_t g = {0};
    all_answers(&g);
    const char *path = FT_GOLDEN_DIR "/entitlements.txt";
    if (getenv("FT_GOLDEN_WRITE") != NULL) {
        FILE *f = fopen(path, "wb");
        CHECK(f != NULL);
        fwrite(g.text, 1, g.len, f);
        fclose(f);
    }
    size_t len = 0;
    char *want = read_file(path, &len);
    CHECK(want != NULL);
    /* the first line that differs, both ways */
    const char *a = want, *b = g.text;
    while (*a != '\0' && *b != '\0') {
        const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
        if (la != lb || memcmp(a, b, la) != 0) {
            fprintf(stderr, "  golden: %.*s\n  actual: %.*s\n", (int)la, a, (int)lb, b);
            break;
        }
        a += la + (ea != NULL);
        b += lb + (eb != NULL);
    }
    CHECK_INT(len, g.len);
    CHECK(memcmp(want, g.text, len) == 0);
    free(want);
    free(g.text);
}

/* OFREP contexts: the empty forms a provider sends read as no context; anything else, or those
 * forms with more after them, goes through the JSON parser as before. */
TEST(ofrep_empty_contexts_and_their_look_alikes)
{
    const char *empty[] = {"{\"context\":{}}", "{}", " { \"context\" : { } }\n", "{\"context\":null}", "{\"other\":1}"};
    for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
        ft_ofrep_context_t ctx;
        CHECK_INT(FT_OK, ft_ofrep_context_parse(empty[i], strlen(empty[i]), &ctx));
        CHECK_STR("", ctx.targeting_key);
    }
    const char *bad[] = {"{\"context\":{}}}", "{\"context\":{}", "{\"context\":[]}", "{}x", "[]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ft_ofrep_context_t ctx;
        CHECK_INT(FT_EINVAL, ft_ofrep_context_parse(bad[i], strlen(bad[i]), &ctx));
        CHECK(ctx.error_code != NULL);
    }
    const char *keyed = "{\"context\":{\"targetingKey\":\"abc\"}}";
    ft_ofrep_context_t ctx;
    CHECK_INT(FT_OK, ft_ofrep_context_parse(keyed, strlen(keyed), &ctx));
    CHECK_STR("abc", ctx.targeting_key);
}

RUN_TESTS(TEST_ENTRY(plan_features_are_on_with_their_values_and_others_off), TEST_ENTRY(ofrep_empty_contexts_and_their_look_alikes),
          TEST_ENTRY(override_switches_off_a_plan_feature_and_its_dependents),
          TEST_ENTRY(override_switches_on_a_chain_and_a_limit_gets_its_default), TEST_ENTRY(override_sets_a_limit_over_the_plan_value),
          TEST_ENTRY(expired_override_is_ignored_and_a_future_expiry_bounds_validity),
          TEST_ENTRY(suspension_cancellation_and_ended_trials_switch_everything_off), TEST_ENTRY(etag_follows_content_only),
          TEST_ENTRY(json_lists_every_feature_with_typed_values),
          TEST_ENTRY(etag_hashes_each_feature_line_cut_at_255_bytes),
          TEST_ENTRY(subscribers_in_the_same_state_share_one_base_and_keep_only_their_differences),
          TEST_ENTRY(answers_match_the_golden_file_byte_for_byte))
