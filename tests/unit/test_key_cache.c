/*
 * The API key cache: verdicts from a cached row, expiry, the background refresh (when it is
 * due, that one caller at a time is told, that it does not move the expiry), the spread of
 * refresh times over keys read together, and forgets racing a read.
 */
#include "auth/crypto.h"
#include "auth/key_cache.h"
#include "ft_test.h"

#include <stdint.h>

#define SEC 1000000000ull
#define T0 (1000 * SEC) /* an arbitrary start on the monotonic clock */

static const char secret[] = "the-secret";

static void make_row(ft_api_key_row_t *row, ft_credential_t *grants)
{
    memset(row, 0, sizeof(*row));
    memset(grants, 0, sizeof(*grants));
    snprintf(row->id, sizeof(row->id), "%s", "6f1c2a5e-0000-4000-8000-000000000001");
    ft_sha256(secret, strlen(secret), row->secret_hash);
    snprintf(grants->subject, sizeof(grants->subject), "key:%s", row->id);
    grants->roles = 1;
}

static ft_key_check_t check(ft_key_cache_t *c, const char *prefix, const char *presented, uint64_t now, int *refresh)
{
    unsigned char digest[32];
    ft_credential_t out;
    ft_error_t err = {0};
    ft_sha256(presented, strlen(presented), digest);
    return ft_key_cache_check(c, prefix, digest, now, &out, refresh, &err);
}

/* A cache holding one good key "aaaaaaaaaaaa" read at T0. */
static ft_key_cache_t *cache_with_key(void)
{
    ft_key_cache_t *c = ft_key_cache_new();
    ft_api_key_row_t row;
    ft_credential_t grants;
    make_row(&row, &grants);
    CHECK_INT(1, ft_key_cache_learn(c, "aaaaaaaaaaaa", &row, &grants, T0, ft_key_cache_epoch(c)));
    return c;
}

TEST(a_cached_key_is_judged_from_memory_until_its_ttl)
{
    ft_key_cache_t *c = cache_with_key();
    int refresh = -1;
    CHECK_INT(FT_KEY_VALID, check(c, "aaaaaaaaaaaa", secret, T0 + SEC, &refresh));
    CHECK_INT(0, refresh);
    CHECK_INT(FT_KEY_INVALID, check(c, "aaaaaaaaaaaa", "another-secret", T0 + SEC, &refresh));
    CHECK_INT(FT_KEY_UNKNOWN_HERE, check(c, "bbbbbbbbbbbb", secret, T0 + SEC, &refresh));
    CHECK_INT(FT_KEY_VALID, check(c, "aaaaaaaaaaaa", secret, T0 + FT_KEY_CACHE_TTL_NS, &refresh));
    CHECK_INT(FT_KEY_UNKNOWN_HERE, check(c, "aaaaaaaaaaaa", secret, T0 + FT_KEY_CACHE_TTL_NS + 1, &refresh));
    ft_key_cache_free(c);
}

TEST(a_refresh_is_due_within_its_window_and_handed_to_one_caller)
{
    ft_key_cache_t *c = cache_with_key();
    int refresh = -1;
    CHECK_INT(FT_KEY_VALID, check(c, "aaaaaaaaaaaa", secret, T0 + FT_KEY_CACHE_REFRESH_MIN_NS - 1, &refresh));
    CHECK_INT(0, refresh);
    /* due at a time drawn within the window: probed second by second */
    uint64_t last = T0 + FT_KEY_CACHE_REFRESH_MIN_NS;
    for (refresh = 0; !refresh && last <= T0 + FT_KEY_CACHE_REFRESH_MIN_NS + FT_KEY_CACHE_REFRESH_SPREAD_NS; last += SEC)
        CHECK_INT(FT_KEY_VALID, check(c, "aaaaaaaaaaaa", secret, last, &refresh));
    CHECK_INT(1, refresh);
    /* the others keep the cached row and are not told again while the first is out */
    CHECK_INT(FT_KEY_VALID, check(c, "aaaaaaaaaaaa", secret, last + 1, &refresh));
    CHECK_INT(0, refresh);
    /* a refresh not back after the retry time is handed out again */
    CHECK_INT(FT_KEY_VALID, check(c, "aaaaaaaaaaaa", secret, last + FT_KEY_CACHE_REFRESH_RETRY_NS + 1, &refresh));
    CHECK_INT(1, refresh);
    ft_key_cache_free(c);
}

TEST(a_wrong_secret_never_starts_a_refresh)
{
    ft_key_cache_t *c = cache_with_key();
    int refresh = -1;
    CHECK_INT(FT_KEY_INVALID, check(c, "aaaaaaaaaaaa", "another-secret", T0 + FT_KEY_CACHE_TTL_NS - 1, &refresh));
    CHECK_INT(0, refresh);
    ft_key_cache_free(c);
}

TEST(an_unanswered_refresh_does_not_extend_the_ttl)
{
    ft_key_cache_t *c = cache_with_key();
    int refresh = -1;
    CHECK_INT(FT_KEY_VALID, check(c, "aaaaaaaaaaaa", secret, T0 + FT_KEY_CACHE_TTL_NS - SEC, &refresh));
    CHECK_INT(1, refresh);
    CHECK_INT(FT_KEY_UNKNOWN_HERE, check(c, "aaaaaaaaaaaa", secret, T0 + FT_KEY_CACHE_TTL_NS + 1, &refresh));
    ft_key_cache_free(c);
}

TEST(a_refreshed_row_replaces_the_cached_one_and_restarts_its_clock)
{
    ft_key_cache_t *c = cache_with_key();
    int refresh = -1;
    uint64_t due = T0 + FT_KEY_CACHE_TTL_NS - SEC;
    CHECK_INT(FT_KEY_VALID, check(c, "aaaaaaaaaaaa", secret, due, &refresh));
    CHECK_INT(1, refresh);
    uint64_t epoch = ft_key_cache_epoch(c);
    ft_api_key_row_t row;
    ft_credential_t grants;
    make_row(&row, &grants);
    row.revoked = 1; /* revoked meanwhile, its NOTIFY lost */
    CHECK_INT(1, ft_key_cache_learn(c, "aaaaaaaaaaaa", &row, &grants, due + SEC / 2, epoch));
    CHECK_INT(FT_KEY_INVALID, check(c, "aaaaaaaaaaaa", secret, due + SEC, &refresh));
    CHECK_INT(FT_KEY_INVALID, check(c, "aaaaaaaaaaaa", secret, due + FT_KEY_CACHE_TTL_NS, &refresh));
    CHECK_INT(FT_KEY_UNKNOWN_HERE, check(c, "aaaaaaaaaaaa", secret, due + SEC / 2 + FT_KEY_CACHE_TTL_NS + 1, &refresh));
    ft_key_cache_free(c);
}

TEST(a_forget_during_a_read_keeps_the_row_read_out_of_the_cache)
{
    ft_key_cache_t *c = cache_with_key();
    ft_api_key_row_t row;
    ft_credential_t grants;
    make_row(&row, &grants);
    uint64_t epoch = ft_key_cache_epoch(c);
    ft_key_cache_forget(c, "aaaaaaaaaaaa"); /* the revocation's NOTIFY, while the read was out */
    CHECK_INT(0, ft_key_cache_learn(c, "aaaaaaaaaaaa", &row, &grants, T0 + SEC, epoch));
    int refresh = -1;
    CHECK_INT(FT_KEY_UNKNOWN_HERE, check(c, "aaaaaaaaaaaa", secret, T0 + 2 * SEC, &refresh));
    epoch = ft_key_cache_epoch(c);
    ft_key_cache_forget_all(c); /* a reconnect of the listener */
    CHECK_INT(0, ft_key_cache_learn(c, "aaaaaaaaaaaa", &row, &grants, T0 + 3 * SEC, epoch));
    CHECK_INT(1, ft_key_cache_learn(c, "aaaaaaaaaaaa", &row, &grants, T0 + 3 * SEC, ft_key_cache_epoch(c)));
    CHECK_INT(FT_KEY_VALID, check(c, "aaaaaaaaaaaa", secret, T0 + 4 * SEC, &refresh));
    ft_key_cache_free(c);
}

TEST(an_unknown_prefix_is_remembered_for_the_short_ttl_and_never_refreshed)
{
    ft_key_cache_t *c = ft_key_cache_new();
    CHECK_INT(1, ft_key_cache_learn(c, "cccccccccccc", NULL, NULL, T0, ft_key_cache_epoch(c)));
    int refresh = -1;
    CHECK_INT(FT_KEY_INVALID, check(c, "cccccccccccc", secret, T0 + FT_KEY_CACHE_MISSING_TTL_NS, &refresh));
    CHECK_INT(0, refresh);
    CHECK_INT(FT_KEY_UNKNOWN_HERE, check(c, "cccccccccccc", secret, T0 + FT_KEY_CACHE_MISSING_TTL_NS + 1, &refresh));
    ft_key_cache_free(c);
}

/* 2,000 keys read within one second come due over the whole spread, not together. */
TEST(keys_read_together_come_due_spread_over_the_window)
{
    enum { N = 2000, SLOTS = 10 };
    ft_key_cache_t *c = ft_key_cache_new();
    ft_api_key_row_t row;
    ft_credential_t grants;
    make_row(&row, &grants);
    char prefix[16];
    for (int i = 0; i < N; i++) {
        snprintf(prefix, sizeof(prefix), "k%011d", i);
        CHECK_INT(1, ft_key_cache_learn(c, prefix, &row, &grants, T0 + (uint64_t)i * (SEC / N), ft_key_cache_epoch(c)));
    }
    /* how many come due in each second of the window (probed second by second) */
    int per_slot[SLOTS + 1] = {0};
    for (int i = 0; i < N; i++) {
        snprintf(prefix, sizeof(prefix), "k%011d", i);
        for (int s = 0; s <= SLOTS; s++) {
            int refresh = 0;
            check(c, prefix, secret, T0 + FT_KEY_CACHE_REFRESH_MIN_NS + (uint64_t)(s + 1) * SEC, &refresh);
            if (refresh) {
                per_slot[s]++;
                break;
            }
        }
    }
    int total = 0;
    for (int s = 0; s <= SLOTS; s++) {
        total += per_slot[s];
        CHECK(per_slot[s] < N / 5); /* about N / 10 each; all together would be N */
    }
    CHECK_INT(N, total);
    ft_key_cache_free(c);
}

RUN_TESTS(TEST_ENTRY(a_cached_key_is_judged_from_memory_until_its_ttl), TEST_ENTRY(a_refresh_is_due_within_its_window_and_handed_to_one_caller),
          TEST_ENTRY(a_wrong_secret_never_starts_a_refresh), TEST_ENTRY(an_unanswered_refresh_does_not_extend_the_ttl),
          TEST_ENTRY(a_refreshed_row_replaces_the_cached_one_and_restarts_its_clock),
          TEST_ENTRY(a_forget_during_a_read_keeps_the_row_read_out_of_the_cache),
          TEST_ENTRY(an_unknown_prefix_is_remembered_for_the_short_ttl_and_never_refreshed),
          TEST_ENTRY(keys_read_together_come_due_spread_over_the_window))
