/*
 * The entitlement cache: lookups by id in any case, validity, versions, epochs, invalidation of
 * one id, of a product and of everything, growth, and a long random run checked against a plain
 * model (every removal in the open-addressing table moves entries; the model catches a lost one).
 */
#include "core/mem.h"
#include "domain/entitlement_cache.h"
#include "ft_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define FOREVER INT64_MAX

/* A record as the resolver makes it, for a one-feature product named `product`. */
static ft_entitlements_t *record(const char *id, const char *product, uint64_t version, int64_t valid_until)
{
    static ft_feature_t features[] = {{.code = "base", .module = "m", .name = "Base", .kind = FTP_FEATURE_FLAG, .default_value = 1}};
    static const ft_ent_plan_item_t items[] = {{"base", 1}};
    ft_product_t p = {.code = (char *)product, .features = features, .nfeatures = 1};
    ft_ent_input_t in = {.instance_id = id, .instance_status = "active", .subscription_status = "active", .plan = "basic"};
    in.plan_items = items;
    in.nplan_items = 1;
    in.version = version;
    ft_entitlements_t *e = ft_entitlements_resolve(&p, &in);
    e->valid_until_us = valid_until;
    return e;
}

static void id_of(unsigned n, char out[37])
{
    snprintf(out, 37, "%08x-0000-4000-8000-%012x", n * 2654435761u, n);
}

/* Puts a fresh record (the cache takes its own reference); 1 when it went in. */
static int put(ft_ent_cache_t *c, const char *id, const char *product, uint64_t version, int64_t valid_until)
{
    ft_entitlements_t *e = record(id, product, version, valid_until);
    int in = ft_ent_cache_put(c, e, ft_ent_cache_epoch(c, id), 0);
    ft_entitlements_release(e);
    return in;
}

/* The cached version for id (0: none). */
static uint64_t version_of(ft_ent_cache_t *c, const char *id, int64_t now)
{
    ft_entitlements_t *e = ft_ent_cache_get(c, id, now);
    uint64_t v = e != NULL ? e->version : 0;
    ft_entitlements_release(e);
    return v;
}

TEST(get_finds_what_was_put_in_any_case)
{
    ft_ent_cache_t *c = ft_ent_cache_create(0);
    CHECK(put(c, "0a1b2c3d-0000-4000-8000-00000000abcd", "vet", 3, FOREVER));
    CHECK_INT(3, version_of(c, "0a1b2c3d-0000-4000-8000-00000000abcd", 1));
    CHECK_INT(3, version_of(c, "0A1B2C3D-0000-4000-8000-00000000ABCD", 1));
    CHECK_INT(0, version_of(c, "0a1b2c3d-0000-4000-8000-00000000abce", 1));
    CHECK_INT(0, version_of(c, "not an id", 1));
    CHECK_INT(0, version_of(c, "0a1b2c3d-0000-4000-8000-00000000abcd-", 1));
    CHECK_INT(1, ft_ent_cache_count(c));
    ft_ent_cache_destroy(c);
}

TEST(an_expired_record_is_not_served)
{
    ft_ent_cache_t *c = ft_ent_cache_create(0);
    put(c, "00000001-0000-4000-8000-000000000001", "vet", 1, 1000);
    CHECK_INT(1, version_of(c, "00000001-0000-4000-8000-000000000001", 999));
    CHECK_INT(0, version_of(c, "00000001-0000-4000-8000-000000000001", 1000));
    ft_ent_cache_destroy(c);
}

TEST(an_older_version_never_replaces_a_newer_one)
{
    ft_ent_cache_t *c = ft_ent_cache_create(0);
    const char *id = "00000002-0000-4000-8000-000000000002";
    CHECK(put(c, id, "vet", 5, FOREVER));
    CHECK(!put(c, id, "vet", 4, FOREVER));
    CHECK_INT(5, version_of(c, id, 1));
    CHECK(put(c, id, "vet", 6, FOREVER));
    CHECK_INT(6, version_of(c, id, 1));
    CHECK_INT(1, ft_ent_cache_count(c));
    ft_ent_cache_destroy(c);
}

TEST(a_resolution_older_than_an_invalidation_is_not_cached)
{
    ft_ent_cache_t *c = ft_ent_cache_create(0);
    const char *id = "00000003-0000-4000-8000-000000000003";
    uint64_t epoch = ft_ent_cache_epoch(c, id); /* a resolution starts */
    ft_ent_cache_invalidate(c, id);            /* a change commits meanwhile */
    ft_entitlements_t *e = record(id, "vet", 1, FOREVER);
    CHECK(!ft_ent_cache_put(c, e, epoch, 0));
    ft_entitlements_release(e);
    CHECK_INT(0, version_of(c, id, 1));
    ft_ent_cache_destroy(c);
}

TEST(a_warm_up_snapshot_of_the_epochs_guards_every_shard)
{
    ft_ent_cache_t *c = ft_ent_cache_create(0);
    const char *id = "00000005-0000-4000-8000-00000000000a", *upper = "00000005-0000-4000-8000-00000000000A";
    uint64_t snapshot[FT_ENT_CACHE_SHARDS];
    ft_ent_cache_epochs(c, snapshot); /* a warm-up starts */
    CHECK_INT(ft_ent_cache_epoch(c, id), ft_ent_cache_epoch_in(snapshot, upper));
    CHECK_INT(0, ft_ent_cache_epoch_in(snapshot, "not an id"));
    ft_ent_cache_invalidate(c, id); /* a change commits during it */
    ft_entitlements_t *e = record(id, "vet", 1, FOREVER);
    CHECK(!ft_ent_cache_put(c, e, ft_ent_cache_epoch_in(snapshot, id), 0));
    ft_entitlements_release(e);
    CHECK_INT(0, version_of(c, id, 1));
    /* an id whose shard saw no change still goes in */
    char other[37];
    for (unsigned n = 0;; n++) {
        id_of(n, other);
        if (ft_ent_cache_epoch_in(snapshot, other) == ft_ent_cache_epoch(c, other))
            break;
    }
    e = record(other, "vet", 1, FOREVER);
    CHECK(ft_ent_cache_put(c, e, ft_ent_cache_epoch_in(snapshot, other), 0));
    ft_entitlements_release(e);
    ft_ent_cache_destroy(c);
}

TEST(a_held_record_outlives_its_invalidation)
{
    ft_ent_cache_t *c = ft_ent_cache_create(0);
    const char *id = "00000004-0000-4000-8000-000000000004";
    put(c, id, "vet", 1, FOREVER);
    ft_entitlements_t *held = ft_ent_cache_get(c, id, 1);
    ft_ent_cache_invalidate(c, id);
    CHECK_INT(0, version_of(c, id, 1));
    char text[37];
    ft_uuid_format(held->instance_id, text);
    CHECK_STR(id, text); /* still readable: the reference is ours */
    ft_entitlements_release(held);
    ft_ent_cache_destroy(c);
}

TEST(invalidate_all_drops_one_product_or_everything)
{
    ft_ent_cache_t *c = ft_ent_cache_create(0);
    char id[37];
    for (unsigned i = 0; i < 3000; i++) {
        id_of(i, id);
        put(c, id, i % 3 == 0 ? "erp" : "vet", 1, FOREVER);
    }
    CHECK_INT(3000, ft_ent_cache_count(c));
    uint64_t before = ft_ent_cache_invalidations(c);
    ft_ent_cache_invalidate_all(c, "erp");
    CHECK_INT(2000, ft_ent_cache_count(c));
    CHECK(ft_ent_cache_invalidations(c) > before);
    for (unsigned i = 0; i < 3000; i++) {
        id_of(i, id);
        CHECK_INT(i % 3 == 0 ? 0 : 1, version_of(c, id, 1));
    }
    ft_ent_cache_invalidate_all(c, NULL);
    CHECK_INT(0, ft_ent_cache_count(c));
    id_of(7, id);
    CHECK_INT(0, version_of(c, id, 1));
    ft_ent_cache_destroy(c);
}

TEST(a_full_cache_evicts_cold_records_and_keeps_the_ones_read)
{
    enum { MAX = FT_ENT_CACHE_SHARDS * 8, HOT = MAX / 4, N = MAX * 3 };
    ft_ent_cache_t *c = ft_ent_cache_create(MAX);
    CHECK_INT(MAX, ft_ent_cache_capacity(c));
    char id[37];
    /* the first records are read often */
    for (unsigned i = 0; i < HOT; i++) {
        id_of(i, id);
        put(c, id, "vet", 1, FOREVER);
    }
    for (unsigned i = HOT; i < N; i++) {
        for (unsigned j = 0; j < HOT; j += 1 + i % 3) { /* between inserts, each at least every third time */
            id_of(j, id);
            version_of(c, id, 1);
        }
        id_of(i, id);
        put(c, id, "vet", 1, FOREVER);
        CHECK(ft_ent_cache_count(c) <= MAX);
    }
    CHECK(ft_ent_cache_evictions(c) >= N - MAX);
    CHECK_INT(N, ft_ent_cache_count(c) + ft_ent_cache_evictions(c));
    unsigned hot = 0, cold = 0;
    for (unsigned i = 0; i < N; i++) {
        id_of(i, id);
        if (version_of(c, id, 1) != 0)
            *(i < HOT ? &hot : &cold) += 1;
    }
    /* the records read between inserts survived; the cache's other room went to the newest */
    CHECK_INT(HOT, hot);
    CHECK_INT(ft_ent_cache_count(c), hot + cold);
    ft_ent_cache_destroy(c);
}

/* Random puts, invalidations and lookups over more ids than the shards start with, checked
 * against an array of what each id should hold. */
TEST(a_long_random_run_agrees_with_a_plain_model)
{
    enum { NIDS = 20000, NOPS = 400000 };
    ft_ent_cache_t *c = ft_ent_cache_create(0);
    uint64_t *model = ft_mem_calloc(NIDS, sizeof(uint64_t)); /* cached version; 0: absent */
    uint64_t next_version = 1;
    size_t count = 0;
    unsigned seed = 12345;
    char id[37];
    for (unsigned op = 0; op < NOPS; op++) {
        unsigned n = (unsigned)(rand_r(&seed) % NIDS), what = (unsigned)(rand_r(&seed) % 10);
        id_of(n, id);
        if (what < 5) {
            uint64_t v = next_version++;
            CHECK(put(c, id, "vet", v, FOREVER));
            count += model[n] == 0;
            model[n] = v;
        } else if (what < 8) {
            ft_ent_cache_invalidate(c, id);
            count -= model[n] != 0;
            model[n] = 0;
        } else {
            CHECK_INT(model[n], version_of(c, id, 1));
        }
        if (op % 50000 == 0)
            CHECK_INT(count, ft_ent_cache_count(c));
    }
    for (unsigned n = 0; n < NIDS; n++) {
        id_of(n, id);
        CHECK_INT(model[n], version_of(c, id, 1));
    }
    CHECK_INT(count, ft_ent_cache_count(c));
    free(model);
    ft_ent_cache_destroy(c);
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Not a pass/fail figure: lookups of random ids among 100,000 cached, as the entitlements and
 * OFREP routes do (with the record's first line read, as they do). */
TEST(benchmark_random_gets)
{
    enum { NIDS = 100000, NGETS = 2000000 };
    ft_ent_cache_t *c = ft_ent_cache_create(0);
    char(*ids)[37] = ft_mem_calloc(NIDS, sizeof(*ids));
    for (unsigned i = 0; i < NIDS; i++) {
        id_of(i, ids[i]);
        put(c, ids[i], "vet", 1, FOREVER);
    }
    unsigned seed = 7, *order = ft_mem_calloc(NGETS, sizeof(unsigned));
    for (unsigned i = 0; i < NGETS; i++)
        order[i] = (unsigned)(rand_r(&seed) % NIDS);
    uint64_t sum = 0;
    double t = seconds();
    for (unsigned i = 0; i < NGETS; i++) {
        ft_entitlements_t *e = ft_ent_cache_get(c, ids[order[i]], 1);
        sum += e->version;
        ft_entitlements_release(e);
    }
    double dt = seconds() - t;
    CHECK_INT(NGETS, sum);
    printf("  benchmark: %.0f ns per lookup of a random id among %d (one thread)\n", dt * 1e9 / NGETS, NIDS);
    free(order);
    free(ids);
    ft_ent_cache_destroy(c);
}

RUN_TESTS(TEST_ENTRY(get_finds_what_was_put_in_any_case), TEST_ENTRY(an_expired_record_is_not_served),
          TEST_ENTRY(an_older_version_never_replaces_a_newer_one),
          TEST_ENTRY(a_resolution_older_than_an_invalidation_is_not_cached),
          TEST_ENTRY(a_warm_up_snapshot_of_the_epochs_guards_every_shard), TEST_ENTRY(a_held_record_outlives_its_invalidation),
          TEST_ENTRY(invalidate_all_drops_one_product_or_everything), TEST_ENTRY(a_long_random_run_agrees_with_a_plain_model),
          TEST_ENTRY(a_full_cache_evicts_cold_records_and_keeps_the_ones_read), TEST_ENTRY(benchmark_random_gets))
