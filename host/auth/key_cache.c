/*
 * The API key cache (see key_cache.h): prefix -> the row last read and what it grants, in
 * KEY_SHARDS shards of chained buckets, each behind its own mutex.
 */
#include "auth/key_cache.h"

#include "auth/crypto.h"
#include "core/mem.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY_SHARDS 16
#define KEY_BUCKETS 1024   /* per shard */
#define KEY_SHARD_MAX 4096 /* entries per shard before it is emptied */

typedef struct key_entry {
    struct key_entry *next;
    char prefix[FT_API_KEY_PREFIX_LEN + 1];
    int missing;
    ft_api_key_row_t row;
    ft_credential_t grants;
    uint64_t fetched_ns;
    uint64_t refresh_ns;    /* when a background read is due */
    uint64_t refreshing_ns; /* when one was handed out, 0: none out */
} key_entry_t;

typedef struct key_shard {
    pthread_mutex_t mutex;
    key_entry_t *buckets[KEY_BUCKETS];
    size_t count;
} key_shard_t;

struct ft_key_cache {
    key_shard_t shards[KEY_SHARDS];
    atomic_uint_fast64_t epoch;
};

static uint32_t prefix_hash(const char *p)
{
    /* prefixes are random: their first bytes spread well enough */
    uint32_t h = 2166136261u;
    for (; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h;
}

/* splitmix64's finaliser: a well-mixed 64 bits from the prefix's hash and the read's time */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

ft_key_cache_t *ft_key_cache_new(void)
{
    ft_key_cache_t *c = ft_mem_calloc(1, sizeof(*c));
    for (size_t i = 0; i < KEY_SHARDS; i++)
        pthread_mutex_init(&c->shards[i].mutex, NULL);
    atomic_init(&c->epoch, 1);
    return c;
}

static void shard_clear(key_shard_t *s)
{
    for (size_t b = 0; b < KEY_BUCKETS; b++) {
        key_entry_t *e = s->buckets[b];
        while (e != NULL) {
            key_entry_t *next = e->next;
            memset(e, 0, sizeof(*e));
            free(e);
            e = next;
        }
        s->buckets[b] = NULL;
    }
    s->count = 0;
}

void ft_key_cache_free(ft_key_cache_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < KEY_SHARDS; i++) {
        shard_clear(&c->shards[i]);
        pthread_mutex_destroy(&c->shards[i].mutex);
    }
    free(c);
}

static key_entry_t **find_slot(key_shard_t *s, uint32_t h, const char *prefix)
{
    key_entry_t **pp = &s->buckets[(h / KEY_SHARDS) % KEY_BUCKETS];
    while (*pp != NULL && strcmp((*pp)->prefix, prefix) != 0)
        pp = &(*pp)->next;
    return pp;
}

ft_key_check_t ft_key_judge(const ft_api_key_row_t *row, const ft_credential_t *grants, const unsigned char digest[32],
                            ft_credential_t *out, ft_error_t *err)
{
    if (row == NULL || !ft_ct_equal(digest, row->secret_hash, 32)) {
        ft_error_set(err, FT_EAUTH, "the API key is not valid");
        return FT_KEY_INVALID;
    }
    if (row->revoked) {
        ft_error_set(err, FT_EAUTH, "the API key was revoked");
        return FT_KEY_INVALID;
    }
    if (row->expires_at != 0 && (long long)time(NULL) >= row->expires_at) {
        ft_error_set(err, FT_EAUTH, "the API key expired");
        return FT_KEY_INVALID;
    }
    *out = *grants;
    if (out->roles == 0) {
        ft_error_set(err, FT_EAUTH, "the API key holds no known role");
        return FT_KEY_INVALID;
    }
    return FT_KEY_VALID;
}

ft_key_check_t ft_key_cache_check(ft_key_cache_t *c, const char *prefix, const unsigned char digest[32], uint64_t now,
                                  ft_credential_t *out, int *refresh, ft_error_t *err)
{
    uint32_t h = prefix_hash(prefix);
    key_shard_t *s = &c->shards[h % KEY_SHARDS];
    ft_key_check_t verdict;
    *refresh = 0;
    pthread_mutex_lock(&s->mutex);
    key_entry_t *e = *find_slot(s, h, prefix);
    /* now may be a little older than fetched_ns (the caller's request began before another's read ended) */
    uint64_t age = e != NULL && now > e->fetched_ns ? now - e->fetched_ns : 0;
    if (e == NULL || age > (e->missing ? FT_KEY_CACHE_MISSING_TTL_NS : FT_KEY_CACHE_TTL_NS)) {
        verdict = FT_KEY_UNKNOWN_HERE;
    } else {
        verdict = ft_key_judge(e->missing ? NULL : &e->row, &e->grants, digest, out, err);
        /* only a key in use is read ahead: an unknown prefix or a wrong secret waits for expiry */
        if (verdict == FT_KEY_VALID && now >= e->refresh_ns &&
            (e->refreshing_ns == 0 || now - e->refreshing_ns > FT_KEY_CACHE_REFRESH_RETRY_NS)) {
            e->refreshing_ns = now;
            *refresh = 1;
        }
    }
    pthread_mutex_unlock(&s->mutex);
    return verdict;
}

uint64_t ft_key_cache_epoch(ft_key_cache_t *c)
{
    return atomic_load(&c->epoch);
}

int ft_key_cache_learn(ft_key_cache_t *c, const char *prefix, const ft_api_key_row_t *row, const ft_credential_t *grants,
                       uint64_t now, uint64_t epoch)
{
    uint32_t h = prefix_hash(prefix);
    key_shard_t *s = &c->shards[h % KEY_SHARDS];
    int cached = 0;
    pthread_mutex_lock(&s->mutex);
    /* forgets bump the epoch under the shard's lock (or every shard's), so this check and the insert are one step */
    if (atomic_load(&c->epoch) != epoch)
        goto out;
    key_entry_t **pp = find_slot(s, h, prefix);
    if (*pp == NULL) {
        if (s->count >= KEY_SHARD_MAX)
            shard_clear(s), pp = find_slot(s, h, prefix);
        *pp = ft_mem_calloc(1, sizeof(key_entry_t));
        snprintf((*pp)->prefix, sizeof((*pp)->prefix), "%s", prefix);
        s->count++;
    }
    key_entry_t *e = *pp;
    e->missing = row == NULL;
    memset(&e->grants, 0, sizeof(e->grants));
    memset(&e->row, 0, sizeof(e->row));
    if (row != NULL) {
        e->row = *row;
        e->grants = *grants;
    }
    e->fetched_ns = now;
    e->refresh_ns = now + FT_KEY_CACHE_REFRESH_MIN_NS + mix64(now ^ ((uint64_t)h << 32)) % FT_KEY_CACHE_REFRESH_SPREAD_NS;
    e->refreshing_ns = 0;
    cached = 1;
out:
    pthread_mutex_unlock(&s->mutex);
    return cached;
}

void ft_key_cache_forget(ft_key_cache_t *c, const char *prefix)
{
    uint32_t h = prefix_hash(prefix);
    key_shard_t *s = &c->shards[h % KEY_SHARDS];
    pthread_mutex_lock(&s->mutex);
    atomic_fetch_add(&c->epoch, 1);
    key_entry_t **pp = find_slot(s, h, prefix);
    if (*pp != NULL) {
        key_entry_t *dead = *pp;
        *pp = dead->next;
        memset(dead, 0, sizeof(*dead));
        free(dead);
        s->count--;
    }
    pthread_mutex_unlock(&s->mutex);
}

void ft_key_cache_forget_all(ft_key_cache_t *c)
{
    for (size_t i = 0; i < KEY_SHARDS; i++) {
        pthread_mutex_lock(&c->shards[i].mutex);
        atomic_fetch_add(&c->epoch, 1);
        shard_clear(&c->shards[i]);
        pthread_mutex_unlock(&c->shards[i].mutex);
    }
}
