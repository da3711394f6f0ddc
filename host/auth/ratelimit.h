/*
 * Token-bucket rate limiting keyed by a string (a credential id, a client IP), shared by every
 * HTTP loop thread. The table is split in shards, each behind its own mutex held for a few
 * lines; taking a token from a key already tracked allocates nothing.
 *
 * Memory is bounded by max_keys. A key idle long enough for its bucket to be full again is
 * indistinguishable from a new key, so new keys recycle such entries first (looked for at the
 * LRU end of the shard), at no cost. When those are still refilling and the shard is full (a
 * flood of distinct keys), the shard's least recently used key is evicted and comes back later
 * with a full bucket. A key used steadily stays at the recent end and keeps its limit, but a
 * client that sends enough distinct keys between two uses of its own key (about max_keys of
 * them; each shard holds its share) gets a fresh burst each time: the accepted cost of LRU
 * under such a flood. Size max_keys well above the keys expected to be active within one
 * refill period (burst / rate).
 */
#ifndef FT_RATELIMIT_H
#define FT_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

/* Keys longer than this are replaced by their SHA-256 digest, kept apart from the keys of 32
 * bytes: two different long keys never share a bucket (short of a SHA-256 collision). */
#define FT_RATELIMIT_KEY_MAX 255

typedef struct ft_ratelimit ft_ratelimit_t;

typedef struct ft_ratelimit_result {
    int allowed;             /* 1: take the request; 0: refuse it (429) */
    unsigned limit;          /* the bucket's burst size */
    unsigned remaining;      /* whole tokens left after this call */
    unsigned retry_after_ms; /* when refused: until one token is back (>= 1); 0 when allowed */
    unsigned reset_ms;       /* until the bucket is full again (0 when it is full) */
} ft_ratelimit_result_t;

/* A limiter refilling rate_per_s tokens per second (resolved to a millionth of a token per
 * second, rates below that count as that) into buckets of `burst` tokens, tracking at most
 * max_keys keys. rate_per_s 0 means unlimited: every call is allowed and no key is tracked.
 * Returns NULL when rate_per_s is negative or not finite, burst is 0, or a limited rate has
 * max_keys 0. The caller frees with ft_ratelimit_free. */
ft_ratelimit_t *ft_ratelimit_new(double rate_per_s, unsigned burst, size_t max_keys);
/* Frees rl and its keys (NULL is fine); no call on rl may be running or follow. */
void ft_ratelimit_free(ft_ratelimit_t *rl);

/* Takes one token from the bucket of key (keylen bytes, any content, copied; key may be NULL
 * when keylen is 0) at now_ns, a monotonic clock in nanoseconds, and fills *res. A key seen
 * for the first time starts with a full bucket. Thread-safe. A now_ns older than the bucket's
 * last update (a clock read before another thread's) adds no tokens; the times in *res are
 * then counted from now_ns. */
void ft_ratelimit_take(ft_ratelimit_t *rl, const char *key, size_t keylen, uint64_t now_ns, ft_ratelimit_result_t *res);

/* Keys tracked now (for tests and metrics); a snapshot, exact only when no call is running. */
size_t ft_ratelimit_size(const ft_ratelimit_t *rl);

#endif
