/*
 * Token buckets: burst and refusal, refill over simulated time, fractional rates, the bound on
 * tracked keys, a clock seen out of order, exactness under contention, and a printed benchmark.
 */
#include "auth/ratelimit.h"
#include "ft_test.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#define MS 1000000ull
#define SEC 1000000000ull
#define T0 (1000 * SEC) /* an arbitrary start on the monotonic clock */

static ft_ratelimit_result_t take(ft_ratelimit_t *rl, const char *key, uint64_t now)
{
    ft_ratelimit_result_t r;
    memset(&r, 0x5a, sizeof(r));
    ft_ratelimit_take(rl, key, strlen(key), now, &r);
    return r;
}

/* Takes until refused; returns how many were allowed. */
static unsigned drain(ft_ratelimit_t *rl, const char *key, uint64_t now)
{
    unsigned n = 0;
    while (take(rl, key, now).allowed)
        n++;
    return n;
}

TEST(burst_is_allowed_then_refused_with_retry_after)
{
    ft_ratelimit_t *rl = ft_ratelimit_new(10, 5, 1000);
    for (int i = 0; i < 5; i++) {
        ft_ratelimit_result_t r = take(rl, "cred-1", T0);
        CHECK_INT(1, r.allowed);
        CHECK_INT(5, r.limit);
        CHECK_INT(0, r.retry_after_ms);
    }
    ft_ratelimit_result_t r = take(rl, "cred-1", T0);
    CHECK_INT(0, r.allowed);
    CHECK_INT(5, r.limit);
    CHECK_INT(0, r.remaining);
    CHECK_INT(100, r.retry_after_ms);
    CHECK_INT(500, r.reset_ms);
    ft_ratelimit_free(rl);
}

TEST(remaining_counts_down)
{
    ft_ratelimit_t *rl = ft_ratelimit_new(1, 4, 1000);
    for (int i = 3; i >= 0; i--)
        CHECK_INT(i, take(rl, "k", T0).remaining);
    CHECK_INT(0, take(rl, "k", T0).remaining);
    /* half a token back: still no whole token */
    CHECK_INT(0, take(rl, "k", T0 + 500 * MS).remaining);
    ft_ratelimit_free(rl);
}

TEST(reset_is_the_time_until_the_bucket_is_full)
{
    ft_ratelimit_t *rl = ft_ratelimit_new(10, 5, 1000);
    CHECK_INT(100, take(rl, "k", T0).reset_ms);
    CHECK_INT(200, take(rl, "k", T0).reset_ms);
    CHECK_INT(300, take(rl, "k", T0).reset_ms);
    /* 50 ms later half a token is back; one more taken: 3.5 tokens missing */
    ft_ratelimit_result_t r = take(rl, "k", T0 + 50 * MS);
    CHECK_INT(1, r.allowed);
    CHECK_INT(350, r.reset_ms);
    CHECK_INT(1, r.remaining);
    /* partial milliseconds round up: 4.5 tokens less a nanosecond's worth is still 450 ms */
    r = take(rl, "k", T0 + 50 * MS + 1);
    CHECK_INT(450, r.reset_ms);
    ft_ratelimit_free(rl);
}

TEST(tokens_refill_with_time_up_to_the_burst)
{
    ft_ratelimit_t *rl = ft_ratelimit_new(10, 5, 1000);
    CHECK_INT(5, drain(rl, "k", T0));
    CHECK_INT(0, take(rl, "k", T0 + 99 * MS).allowed);
    ft_ratelimit_result_t r = take(rl, "k", T0 + 100 * MS);
    CHECK_INT(1, r.allowed);
    CHECK_INT(0, r.remaining);
    r = take(rl, "k", T0 + 100 * MS);
    CHECK_INT(0, r.allowed);
    CHECK_INT(100, r.retry_after_ms);
    /* 250 ms: 2.5 tokens, two whole ones */
    CHECK_INT(2, drain(rl, "k", T0 + 350 * MS));
    /* an hour idle fills the bucket, no more */
    CHECK_INT(5, drain(rl, "k", T0 + 3600 * SEC));
    ft_ratelimit_free(rl);
}

TEST(fractional_rate_refills_one_token_in_two_seconds)
{
    ft_ratelimit_t *rl = ft_ratelimit_new(0.5, 1, 1000);
    CHECK_INT(1, take(rl, "ip", T0).allowed);
    ft_ratelimit_result_t r = take(rl, "ip", T0);
    CHECK_INT(0, r.allowed);
    CHECK_INT(2000, r.retry_after_ms);
    CHECK_INT(2000, r.reset_ms);
    r = take(rl, "ip", T0 + 2 * SEC - 1);
    CHECK_INT(0, r.allowed);
    CHECK_INT(1, r.retry_after_ms);
    CHECK_INT(1, take(rl, "ip", T0 + 2 * SEC).allowed);
    CHECK_INT(0, take(rl, "ip", T0 + 2 * SEC).allowed);
    ft_ratelimit_free(rl);
}

TEST(refill_is_exact_for_rates_that_do_not_divide_a_second)
{
    /* At 3 tokens/s, token k is back at exactly ceil(k * 10^9 / 3) ns: no rounding of the
     * interval to whole nanoseconds, which would be a nanosecond off after three tokens and
     * drift further with every one. Far out on the clock, where a double has lost the
     * nanoseconds. A burst of 2 so that the bucket never overflows between the calls. */
    ft_ratelimit_t *rl = ft_ratelimit_new(3, 2, 1000);
    const uint64_t start = UINT64_C(1) << 62;
    CHECK_INT(2, drain(rl, "k", start));
    for (uint64_t k = 1; k <= 3000; k++) {
        uint64_t back = start + (k * SEC + 2) / 3;
        ft_ratelimit_result_t r = take(rl, "k", back - 1);
        if (r.allowed)
            CHECK_INT(0, r.allowed);
        r = take(rl, "k", back);
        if (!r.allowed)
            CHECK_INT(1, r.allowed);
    }
    ft_ratelimit_free(rl);
}

TEST(keys_are_independent)
{
    ft_ratelimit_t *rl = ft_ratelimit_new(1, 2, 1000);
    CHECK_INT(2, drain(rl, "10.0.0.1", T0));
    CHECK_INT(2, drain(rl, "10.0.0.2", T0));
    CHECK_INT(2, drain(rl, "10.0.0.10", T0));
    /* a prefix and the empty key are keys of their own */
    CHECK_INT(2, drain(rl, "10.0.0.", T0));
    ft_ratelimit_result_t r;
    ft_ratelimit_take(rl, NULL, 0, T0, &r);
    CHECK_INT(1, r.allowed);
    CHECK_INT(1, r.remaining);
    CHECK_INT(5, ft_ratelimit_size(rl));
    ft_ratelimit_free(rl);
}

TEST(keys_may_hold_any_bytes)
{
    ft_ratelimit_t *rl = ft_ratelimit_new(1, 1, 1000);
    ft_ratelimit_result_t r;
    ft_ratelimit_take(rl, "a\0b", 3, T0, &r);
    CHECK_INT(1, r.allowed);
    ft_ratelimit_take(rl, "a\0c", 3, T0, &r);
    CHECK_INT(1, r.allowed);
    ft_ratelimit_take(rl, "a\0b", 3, T0, &r);
    CHECK_INT(0, r.allowed);
    ft_ratelimit_free(rl);
}

TEST(long_keys_are_tracked_by_digest)
{
    ft_ratelimit_t *rl = ft_ratelimit_new(1, 1, 1000);
    char a[1000], b[1000], mid[200];
    memset(a, 'x', sizeof(a));
    memcpy(b, a, sizeof(b));
    b[sizeof(b) - 1] = 'y'; /* differs after byte 255 only */
    memset(mid, 'm', sizeof(mid));
    ft_ratelimit_result_t r;
    ft_ratelimit_take(rl, a, sizeof(a), T0, &r);
    CHECK_INT(1, r.allowed);
    ft_ratelimit_take(rl, b, sizeof(b), T0, &r);
    CHECK_INT(1, r.allowed);
    ft_ratelimit_take(rl, a, sizeof(a), T0, &r);
    CHECK_INT(0, r.allowed);
    ft_ratelimit_take(rl, a, 256, T0, &r); /* just over the limit */
    CHECK_INT(1, r.allowed);
    ft_ratelimit_take(rl, a, 255, T0, &r); /* at the limit: a key of its own */
    CHECK_INT(1, r.allowed);
    ft_ratelimit_take(rl, a, 255, T0, &r);
    CHECK_INT(0, r.allowed);
    ft_ratelimit_take(rl, mid, sizeof(mid), T0, &r);
    CHECK_INT(1, r.allowed);
    ft_ratelimit_take(rl, mid, sizeof(mid), T0, &r);
    CHECK_INT(0, r.allowed);
    CHECK_INT(5, ft_ratelimit_size(rl));
    ft_ratelimit_free(rl);
}

TEST(zero_rate_is_unlimited)
{
    ft_ratelimit_t *rl = ft_ratelimit_new(0, 10, 0);
    CHECK(rl != NULL);
    for (int i = 0; i < 100000; i++) {
        ft_ratelimit_result_t r = take(rl, "k", T0);
        if (!r.allowed)
            CHECK_INT(1, r.allowed);
    }
    ft_ratelimit_result_t r = take(rl, "k", T0);
    CHECK_INT(10, r.limit);
    CHECK_INT(10, r.remaining);
    CHECK_INT(0, r.retry_after_ms);
    CHECK_INT(0, r.reset_ms);
    CHECK_INT(0, ft_ratelimit_size(rl));
    ft_ratelimit_free(rl);
}

TEST(invalid_parameters_are_refused)
{
    CHECK(ft_ratelimit_new(1, 0, 10) == NULL);
    CHECK(ft_ratelimit_new(-1, 1, 10) == NULL);
    CHECK(ft_ratelimit_new(NAN, 1, 10) == NULL);
    CHECK(ft_ratelimit_new(INFINITY, 1, 10) == NULL);
    CHECK(ft_ratelimit_new(1, 1, 0) == NULL);
    ft_ratelimit_free(NULL);
}

TEST(clock_going_backwards_adds_no_tokens)
{
    ft_ratelimit_t *rl = ft_ratelimit_new(10, 2, 1000);
    CHECK_INT(2, drain(rl, "k", T0));
    ft_ratelimit_result_t r = take(rl, "k", T0 - 5 * SEC);
    CHECK_INT(0, r.allowed);
    CHECK_INT(5100, r.retry_after_ms); /* counted from the older now */
    CHECK_INT(5200, r.reset_ms);
    CHECK_INT(0, take(rl, "k", 0).allowed);
    /* coming back to T0 adds nothing either: the backward calls did not move the clock */
    CHECK_INT(0, take(rl, "k", T0).allowed);
    CHECK_INT(0, take(rl, "k", T0 + 99 * MS).allowed);
    CHECK_INT(1, take(rl, "k", T0 + 100 * MS).allowed);
    CHECK_INT(0, take(rl, "k", T0 + 100 * MS).allowed);
    /* the far end of the clock neither overflows nor wraps */
    CHECK_INT(2, drain(rl, "k", UINT64_MAX));
    CHECK_INT(0, take(rl, "k", 1).allowed);
    ft_ratelimit_free(rl);
}

TEST(tracked_keys_stay_bounded_under_a_flood_and_an_active_key_stays_limited)
{
    ft_ratelimit_t *rl = ft_ratelimit_new(1, 3, 1000);
    CHECK_INT(3, drain(rl, "victim", T0));
    char key[32];
    for (int i = 0; i < 100000; i++) {
        uint64_t now = T0 + (uint64_t)i * 5000; /* 0.5 s in all: not a token's worth */
        snprintf(key, sizeof(key), "flood-%d", i);
        CHECK_INT(1, take(rl, key, now).allowed);
        if (i % 50 == 0) {
            ft_ratelimit_result_t r = take(rl, "victim", now);
            if (r.allowed)
                CHECK_INT(0, r.allowed);
            if (ft_ratelimit_size(rl) > 1000)
                CHECK_INT(1000, ft_ratelimit_size(rl));
        }
    }
    CHECK(ft_ratelimit_size(rl) <= 1000);
    CHECK(ft_ratelimit_size(rl) >= 900);
    CHECK_INT(0, take(rl, "victim", T0 + 500 * MS).allowed);
    ft_ratelimit_free(rl);
}

TEST(keys_with_a_full_bucket_are_evicted_before_the_least_recently_used)
{
    /* 16 keys: one shard, so the eviction order is deterministic. */
    ft_ratelimit_t *rl = ft_ratelimit_new(1, 2, 16);
    CHECK_INT(2, drain(rl, "a", T0)); /* the LRU key, full again at T0 + 2 s */
    char key[32];
    for (int i = 0; i < 15; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        take(rl, key, T0 + 500 * MS); /* full again at T0 + 1.5 s */
    }
    CHECK_INT(16, ft_ratelimit_size(rl));
    CHECK_INT(1, take(rl, "new", T0 + 1600 * MS).allowed);
    CHECK_INT(16, ft_ratelimit_size(rl));
    /* "a" was kept: 1.6 tokens, not a fresh bucket of 2 */
    CHECK_INT(1, take(rl, "a", T0 + 1600 * MS).allowed);
    CHECK_INT(0, take(rl, "a", T0 + 1600 * MS).allowed);
    ft_ratelimit_free(rl);
}

TEST(idle_keys_are_recycled_before_the_table_grows)
{
    ft_ratelimit_t *rl = ft_ratelimit_new(1, 2, 1000);
    char key[32];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        take(rl, key, T0 + (uint64_t)i * 10 * SEC); /* every previous key is full again */
    }
    CHECK(ft_ratelimit_size(rl) <= 64); /* at most one per shard, and there are 64 at most */
    ft_ratelimit_free(rl);
}

TEST(lru_eviction_under_a_full_table_forgets_the_oldest_key)
{
    ft_ratelimit_t *rl = ft_ratelimit_new(1, 2, 16);
    CHECK_INT(2, drain(rl, "old", T0));
    char key[32];
    for (int i = 0; i < 16; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        take(rl, key, T0);
    }
    CHECK_INT(16, ft_ratelimit_size(rl));
    /* "old" was evicted, so it starts again with a full bucket: the documented cost of LRU */
    CHECK_INT(1, take(rl, "old", T0).allowed);
    ft_ratelimit_free(rl);
}

typedef struct hammer {
    ft_ratelimit_t *rl;
    atomic_uint_fast64_t *clock;
    uint64_t end;
    uint64_t step;
    unsigned allowed;
} hammer_t;

static void *hammer_run(void *arg)
{
    hammer_t *h = arg;
    for (;;) {
        uint64_t now = atomic_fetch_add(h->clock, h->step);
        if (now >= h->end)
            break;
        ft_ratelimit_result_t r;
        ft_ratelimit_take(h->rl, "shared", 6, now, &r);
        h->allowed += (unsigned)r.allowed;
    }
    return NULL;
}

TEST(concurrent_takes_never_exceed_burst_plus_rate_times_window)
{
    const unsigned burst = 50;
    const uint64_t rate = 1000, window = 2 * SEC;
    ft_ratelimit_t *rl = ft_ratelimit_new((double)rate, burst, 1000);
    atomic_uint_fast64_t clock = T0;
    hammer_t h[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        h[i] = (hammer_t){.rl = rl, .clock = &clock, .end = T0 + window, .step = 3000, .allowed = 0};
        CHECK_INT(0, pthread_create(&th[i], NULL, hammer_run, &h[i]));
    }
    unsigned allowed = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        allowed += h[i].allowed;
    }
    unsigned bound = burst + (unsigned)(rate * window / SEC);
    printf("  concurrency: %u allowed of %llu calls in 4 threads, bound %u\n", allowed, (unsigned long long)(window / 3000), bound);
    CHECK(allowed <= bound);
    CHECK(allowed + 2 >= bound); /* and no token lost either */
    ft_ratelimit_free(rl);
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

TEST(benchmark_one_thread)
{
    ft_ratelimit_t *rl = ft_ratelimit_new(100, 20, 100000);
    const int n = 2000000;
    unsigned allowed = 0;
    double t = seconds();
    for (int i = 0; i < n; i++) {
        ft_ratelimit_result_t r;
        ft_ratelimit_take(rl, "0123456789abcdef0123456789abcdef", 32, T0 + (uint64_t)i * 1000, &r);
        allowed += (unsigned)r.allowed;
    }
    double one = n / (seconds() - t);

    enum { NKEYS = 10000 };
    static char keys[NKEYS][40];
    for (int i = 0; i < NKEYS; i++)
        snprintf(keys[i], sizeof(keys[i]), "203.0.113.%d:%d", i % 256, i);
    t = seconds();
    for (int i = 0; i < n; i++) {
        ft_ratelimit_result_t r;
        const char *k = keys[i % NKEYS];
        ft_ratelimit_take(rl, k, strlen(k), T0 + (uint64_t)i * 1000, &r);
        allowed += (unsigned)r.allowed;
    }
    double many = n / (seconds() - t);
    printf("  benchmark: %.0f calls/s on one key, %.0f calls/s over %d keys (one thread, %u allowed)\n", one, many, NKEYS, allowed);
    ft_ratelimit_free(rl);
}

RUN_TESTS(TEST_ENTRY(burst_is_allowed_then_refused_with_retry_after), TEST_ENTRY(remaining_counts_down),
          TEST_ENTRY(reset_is_the_time_until_the_bucket_is_full), TEST_ENTRY(tokens_refill_with_time_up_to_the_burst),
          TEST_ENTRY(fractional_rate_refills_one_token_in_two_seconds),
          TEST_ENTRY(refill_is_exact_for_rates_that_do_not_divide_a_second), TEST_ENTRY(keys_are_independent),
          TEST_ENTRY(keys_may_hold_any_bytes), TEST_ENTRY(long_keys_are_tracked_by_digest), TEST_ENTRY(zero_rate_is_unlimited),
          TEST_ENTRY(invalid_parameters_are_refused), TEST_ENTRY(clock_going_backwards_adds_no_tokens),
          TEST_ENTRY(tracked_keys_stay_bounded_under_a_flood_and_an_active_key_stays_limited),
          TEST_ENTRY(keys_with_a_full_bucket_are_evicted_before_the_least_recently_used),
          TEST_ENTRY(idle_keys_are_recycled_before_the_table_grows),
          TEST_ENTRY(lru_eviction_under_a_full_table_forgets_the_oldest_key),
          TEST_ENTRY(concurrent_takes_never_exceed_burst_plus_rate_times_window), TEST_ENTRY(benchmark_one_thread))
