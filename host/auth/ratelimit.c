/*
 * The sharded token-bucket table. Keys are hashed with SipHash-1-3 under a random per-limiter
 * seed; the high half of the hash picks the shard, the low half the chain inside it. Each shard
 * holds a pool of entries (grown up to its share of max_keys, then recycled), chained hash
 * buckets and an LRU list, all linked by index so that growing the pool may move it. A new key
 * takes the LRU entry if its bucket is full again, else a fresh one while the shard has room,
 * else the first full bucket among the EVICT_SCAN least recently used, else the LRU entry.
 *
 * Arithmetic: a bucket holds `units`, where one token is UNITS_PER_TOKEN = 10^15 units
 * (10^9 ns per second times 10^6, the rate's resolution), and each nanosecond adds `rate`
 * units, the rate in millionths of a token per second. Refilling adds exactly
 * (now - last) * rate units: integers, no rounding, so nothing drifts however long the process
 * runs, and the bucket is always exactly what the rate and the elapsed time say. Units are
 * unsigned 128-bit: the product of an elapsed time (< 2^64 ns) and a rate (clamped to 10^18,
 * < 2^60) stays below 2^124, and a full bucket (burst < 2^32 tokens) below 2^82, so no elapsed
 * time, however long, can overflow. A now_ns older than the bucket's last update adds nothing
 * and leaves `last` where it is, so a clock seen out of order never adds the same time twice.
 */
#include "auth/ratelimit.h"

#include "core/mem.h"

#include <limits.h>
#include <math.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

__extension__ typedef unsigned __int128 units_t;

#define UNITS_PER_TOKEN 1000000000000000ull /* 10^9 ns/s * 10^6 */
#define NS_PER_MS 1000000ull
#define RATE_MAX 1000000000000000000ull /* 10^12 tokens/s: beyond any real limit */

#define NIL UINT32_MAX
#define KEY_INLINE 80       /* IPv6 text and UUIDs fit; longer keys live on the heap */
#define KLEN_DIGEST 0x8000u /* klen flag: the key is the SHA-256 of a longer key */
#define SHARDS_MAX 64
#define SHARD_KEYS_MIN 16        /* fewer shards for small tables, so each LRU list means something */
#define SHARD_CAP_MAX (1u << 30) /* entry indices are 32-bit */
#define EVICT_SCAN 8             /* entries looked at from the LRU end for a full bucket */

typedef struct entry {
    units_t units;
    uint64_t last_ns;
    uint32_t hash;         /* low half of the key's hash */
    uint32_t next;         /* next entry in the chain */
    uint32_t newer, older; /* LRU list neighbours */
    uint16_t klen;         /* key length, | KLEN_DIGEST for a digest */
    union {
        unsigned char inl[KEY_INLINE];
        unsigned char *ext;
    } key;
} entry_t;

typedef struct shard {
    pthread_mutex_t mutex;
    entry_t *entries; /* [0, used) in use, `alloc` allocated, never more than `cap` */
    uint32_t used, alloc, cap;
    uint32_t *heads; /* chain heads, mask + 1 of them */
    uint32_t mask;
    uint32_t mru, lru;
    atomic_size_t count; /* `used`, readable without the mutex */
} shard_t;

/* One shard per cache line (or more), so two shards' mutexes never share one. */
typedef union shard_slot {
    shard_t s;
    char pad[(sizeof(shard_t) + 63) / 64 * 64];
} shard_slot_t;

struct ft_ratelimit {
    unsigned burst;
    int unlimited;
    uint64_t rate; /* units per nanosecond */
    units_t cap;   /* burst * UNITS_PER_TOKEN */
    uint64_t seed[2];
    unsigned nshards;
    shard_slot_t *shards;
    void *shards_mem;
};

/* SipHash-1-3 (Aumasson and Bernstein; the variant Rust's HashMap uses). */
#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                                                   \
    do {                                                                                                                           \
        v0 += v1;                                                                                                                  \
        v1 = ROTL(v1, 13);                                                                                                         \
        v1 ^= v0;                                                                                                                  \
        v0 = ROTL(v0, 32);                                                                                                         \
        v2 += v3;                                                                                                                  \
        v3 = ROTL(v3, 16);                                                                                                         \
        v3 ^= v2;                                                                                                                  \
        v0 += v3;                                                                                                                  \
        v3 = ROTL(v3, 21);                                                                                                         \
        v3 ^= v0;                                                                                                                  \
        v2 += v1;                                                                                                                  \
        v1 = ROTL(v1, 17);                                                                                                         \
        v1 ^= v2;                                                                                                                  \
        v2 = ROTL(v2, 32);                                                                                                         \
    } while (0)

static uint64_t siphash13(const uint64_t seed[2], const unsigned char *in, size_t len)
{
    uint64_t v0 = 0x736f6d6570736575ull ^ seed[0], v1 = 0x646f72616e646f6dull ^ seed[1];
    uint64_t v2 = 0x6c7967656e657261ull ^ seed[0], v3 = 0x7465646279746573ull ^ seed[1];
    size_t whole = len & ~(size_t)7;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m;
        memcpy(&m, in + i, 8); /* the host's byte order: the hash never leaves the process */
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = 0; i < (len & 7); i++)
        b |= (uint64_t)in[whole + i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static size_t klen_bytes(uint16_t klen)
{
    return klen & ~KLEN_DIGEST;
}

static const unsigned char *key_of(const entry_t *e)
{
    return klen_bytes(e->klen) <= KEY_INLINE ? e->key.inl : e->key.ext;
}

/* ceil(a / b), b > 0, on 64 bits when both fit (the common case: 128-bit division is a call). */
static units_t div_ceil(units_t a, units_t b)
{
    if ((a >> 64) == 0 && (b >> 64) == 0) {
        uint64_t a64 = (uint64_t)a, b64 = (uint64_t)b;
        return a64 / b64 + (a64 % b64 != 0);
    }
    return a / b + (a % b != 0);
}

static unsigned clamp_uint(units_t v)
{
    return v > UINT_MAX ? UINT_MAX : (unsigned)v;
}

/* Whether e's bucket is full at now: then it is the same as no entry at all. */
static int is_full(const ft_ratelimit_t *rl, const entry_t *e, uint64_t now)
{
    return e->units >= rl->cap || (now > e->last_ns && (units_t)(now - e->last_ns) * rl->rate >= rl->cap - e->units);
}

static void refill(const ft_ratelimit_t *rl, entry_t *e, uint64_t now)
{
    if (now <= e->last_ns)
        return;
    if (e->units < rl->cap) {
        units_t add = (units_t)(now - e->last_ns) * rl->rate;
        e->units = add >= rl->cap - e->units ? rl->cap : e->units + add;
    }
    e->last_ns = now;
}

static void lru_unlink(shard_t *s, uint32_t i)
{
    entry_t *e = &s->entries[i];
    if (e->newer != NIL)
        s->entries[e->newer].older = e->older;
    else
        s->mru = e->older;
    if (e->older != NIL)
        s->entries[e->older].newer = e->newer;
    else
        s->lru = e->newer;
}

static void lru_push(shard_t *s, uint32_t i)
{
    entry_t *e = &s->entries[i];
    e->newer = NIL;
    e->older = s->mru;
    if (s->mru != NIL)
        s->entries[s->mru].newer = i;
    else
        s->lru = i;
    s->mru = i;
}

static void chain_unlink(shard_t *s, uint32_t i)
{
    uint32_t *p = &s->heads[s->entries[i].hash & s->mask];
    while (*p != i)
        p = &s->entries[*p].next;
    *p = s->entries[i].next;
}

static void chain_link(shard_t *s, uint32_t i)
{
    uint32_t *head = &s->heads[s->entries[i].hash & s->mask];
    s->entries[i].next = *head;
    *head = i;
}

static uint32_t find(const shard_t *s, uint32_t hash, const unsigned char *k, uint16_t klen)
{
    for (uint32_t i = s->heads[hash & s->mask]; i != NIL; i = s->entries[i].next) {
        const entry_t *e = &s->entries[i];
        if (e->hash == hash && e->klen == klen && memcmp(key_of(e), k, klen_bytes(klen)) == 0)
            return i;
    }
    return NIL;
}

/* A slot for a new entry: a recycled one (dropped from its chain and the LRU list), or a fresh
 * one from the pool. Allocates only when the pool grows. */
static uint32_t claim_slot(const ft_ratelimit_t *rl, shard_t *s, uint64_t now)
{
    uint32_t victim = NIL;
    if (s->lru != NIL && is_full(rl, &s->entries[s->lru], now)) {
        victim = s->lru;
    } else if (s->used < s->cap) {
        if (s->used == s->alloc) {
            uint32_t n = s->alloc < 8 ? 8 : s->alloc * 2;
            s->alloc = n < s->cap ? n : s->cap;
            s->entries = ft_mem_realloc(s->entries, s->alloc * sizeof(entry_t));
        }
        if (s->used > s->mask) {
            s->mask = s->mask * 2 + 1;
            s->heads = ft_mem_realloc(s->heads, ((size_t)s->mask + 1) * sizeof(uint32_t));
            memset(s->heads, 0xff, ((size_t)s->mask + 1) * sizeof(uint32_t));
            for (uint32_t i = 0; i < s->used; i++)
                chain_link(s, i);
        }
        s->used++;
        atomic_store_explicit(&s->count, s->used, memory_order_relaxed);
        return s->used - 1;
    } else {
        victim = s->lru;
        uint32_t i = s->lru;
        for (int n = 0; n < EVICT_SCAN && i != NIL; n++, i = s->entries[i].newer) {
            if (is_full(rl, &s->entries[i], now)) {
                victim = i;
                break;
            }
        }
    }
    chain_unlink(s, victim);
    lru_unlink(s, victim);
    if (klen_bytes(s->entries[victim].klen) > KEY_INLINE)
        free(s->entries[victim].key.ext);
    return victim;
}

static uint32_t insert(const ft_ratelimit_t *rl, shard_t *s, uint32_t hash, const unsigned char *k, uint16_t klen, uint64_t now)
{
    uint32_t i = claim_slot(rl, s, now);
    entry_t *e = &s->entries[i];
    size_t n = klen_bytes(klen);
    e->hash = hash;
    e->klen = klen;
    if (n <= KEY_INLINE) {
        if (n > 0)
            memcpy(e->key.inl, k, n);
    } else {
        e->key.ext = ft_mem_alloc(n);
        memcpy(e->key.ext, k, n);
    }
    e->units = rl->cap;
    e->last_ns = now;
    chain_link(s, i);
    lru_push(s, i);
    return i;
}

ft_ratelimit_t *ft_ratelimit_new(double rate_per_s, unsigned burst, size_t max_keys)
{
    if (!(rate_per_s >= 0) || !isfinite(rate_per_s) || burst == 0 || (rate_per_s > 0 && max_keys == 0))
        return NULL;
    ft_ratelimit_t *rl = ft_mem_calloc(1, sizeof(*rl));
    rl->burst = burst;
    if (rate_per_s == 0) {
        rl->unlimited = 1;
        return rl;
    }
    double r = rate_per_s * 1e6;
    rl->rate = r < 1 ? 1 : r >= (double)RATE_MAX ? RATE_MAX : (uint64_t)(r + 0.5);
    rl->cap = (units_t)burst * UNITS_PER_TOKEN;
    if (RAND_bytes((unsigned char *)rl->seed, sizeof(rl->seed)) != 1) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        rl->seed[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)rl;
        rl->seed[1] = (uint64_t)ts.tv_sec * 0xc2b2ae3d27d4eb4full ^ (uint64_t)(uintptr_t)&ts;
    }

    rl->nshards = 1;
    while (rl->nshards < SHARDS_MAX && (size_t)rl->nshards * 2 * SHARD_KEYS_MIN <= max_keys)
        rl->nshards *= 2;
    rl->shards_mem = ft_mem_alloc(rl->nshards * sizeof(shard_slot_t) + 63);
    rl->shards = (shard_slot_t *)(((uintptr_t)rl->shards_mem + 63) & ~(uintptr_t)63);
    for (unsigned i = 0; i < rl->nshards; i++) {
        shard_t *s = &rl->shards[i].s;
        memset(s, 0, sizeof(*s));
        pthread_mutex_init(&s->mutex, NULL);
        size_t cap = max_keys / rl->nshards + (i < max_keys % rl->nshards);
        s->cap = cap > SHARD_CAP_MAX ? SHARD_CAP_MAX : (uint32_t)cap;
        s->mask = 15;
        s->heads = ft_mem_alloc(16 * sizeof(uint32_t));
        memset(s->heads, 0xff, 16 * sizeof(uint32_t));
        s->mru = s->lru = NIL;
        atomic_init(&s->count, 0);
    }
    return rl;
}

void ft_ratelimit_free(ft_ratelimit_t *rl)
{
    if (rl == NULL)
        return;
    for (unsigned i = 0; i < rl->nshards; i++) {
        shard_t *s = &rl->shards[i].s;
        for (uint32_t j = 0; j < s->used; j++)
            if (klen_bytes(s->entries[j].klen) > KEY_INLINE)
                free(s->entries[j].key.ext);
        free(s->entries);
        free(s->heads);
        pthread_mutex_destroy(&s->mutex);
    }
    free(rl->shards_mem);
    free(rl);
}

void ft_ratelimit_take(ft_ratelimit_t *rl, const char *key, size_t keylen, uint64_t now_ns, ft_ratelimit_result_t *res)
{
    res->limit = rl->burst;
    if (rl->unlimited) {
        res->allowed = 1;
        res->remaining = rl->burst;
        res->retry_after_ms = 0;
        res->reset_ms = 0;
        return;
    }
    unsigned char digest[SHA256_DIGEST_LENGTH];
    const unsigned char *k = key != NULL ? (const unsigned char *)key : (const unsigned char *)"";
    uint16_t klen = (uint16_t)keylen;
    if (keylen > FT_RATELIMIT_KEY_MAX) {
        SHA256(k, keylen, digest);
        k = digest;
        klen = KLEN_DIGEST | SHA256_DIGEST_LENGTH;
    }
    uint64_t h = siphash13(rl->seed, k, klen_bytes(klen));
    shard_t *s = &rl->shards[(h >> 32) & (rl->nshards - 1)].s;

    pthread_mutex_lock(&s->mutex);
    uint32_t i = find(s, (uint32_t)h, k, klen);
    if (i == NIL) {
        i = insert(rl, s, (uint32_t)h, k, klen, now_ns);
    } else {
        refill(rl, &s->entries[i], now_ns);
        if (s->mru != i) {
            lru_unlink(s, i);
            lru_push(s, i);
        }
    }
    entry_t *e = &s->entries[i];
    int allowed = e->units >= UNITS_PER_TOKEN;
    if (allowed)
        e->units -= UNITS_PER_TOKEN;
    units_t units = e->units;
    uint64_t last = e->last_ns;
    pthread_mutex_unlock(&s->mutex);

    /* Times from now_ns: (lag * rate + missing units) / rate ns, rounded up to whole ms. */
    units_t lag = now_ns < last ? (units_t)(last - now_ns) * rl->rate : 0;
    units_t per_ms = (units_t)rl->rate * NS_PER_MS;
    res->allowed = allowed;
    res->remaining = (unsigned)((units >> 64) == 0 ? (uint64_t)units / UNITS_PER_TOKEN : units / UNITS_PER_TOKEN);
    res->retry_after_ms = allowed ? 0 : clamp_uint(div_ceil(lag + UNITS_PER_TOKEN - units, per_ms));
    res->reset_ms = units >= rl->cap ? 0 : clamp_uint(div_ceil(lag + rl->cap - units, per_ms));
}

size_t ft_ratelimit_size(const ft_ratelimit_t *rl)
{
    size_t n = 0;
    for (unsigned i = 0; i < rl->nshards; i++)
        n += atomic_load_explicit(&rl->shards[i].s.count, memory_order_relaxed);
    return n;
}
