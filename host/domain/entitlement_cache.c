/*
 * The sharded map. Keys are instance ids in their 16 bytes; each shard is an open-addressing
 * table (linear probing, backward-shift deletion) of 32-byte slots that hold the key, the
 * record's validity and the record: a lookup reads one slot, inside one cache line, before the
 * record. A shard doubles when it is half full, up to what its share of the bound needs.
 *
 * Bounded by CLOCK (second chance), per shard: a lookup that finds a record sets the slot's
 * referenced byte, which it does under the shard's mutex it already holds; an insert into a
 * full shard sweeps the hand, clearing referenced bytes, and evicts the first record that was not
 * read since the hand last passed. We chose it over LRU because an LRU list costs two pointers
 * per record and a list update (more cache lines written) on every hit, where CLOCK writes one
 * byte beside the slot the lookup reads anyway; its victim is found in amortised O(1) under the
 * same short lock; and cold records (warmed at start and never asked for, or asked for once) go
 * first while records read again survive.
 */
#include "domain/entitlement_cache.h"

#include "core/mem.h"
#include "infra/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define NSHARDS FT_ENT_CACHE_SHARDS

FT_COUNTER(invalidations_total, "ft_entitlements_invalidations_total",
           "Entitlement cache invalidations received (changes committed anywhere).", FT_NO_LABELS);
FT_COUNTER(evictions_total, "ft_entitlements_evictions_total",
           "Entitlement records evicted, the cache being full (FT_ENTITLEMENT_CACHE_MAX), to make room for another.", FT_NO_LABELS);

#define KEY_LEN 16
#define SLOT_SIZE 32
#define MIN_SLOTS 16

typedef struct slot {
    uint8_t key[KEY_LEN];
    ft_entitlements_t *e;   /* NULL: an empty slot */
    int64_t valid_until_us; /* the record's, copied: the lookup reads this slot only */
} slot_t;

_Static_assert(sizeof(slot_t) == SLOT_SIZE, "a slot is half a cache line");

typedef struct shard {
    pthread_mutex_t mutex;
    slot_t *slots;
    uint8_t *referenced; /* per slot: read since the hand last passed */
    size_t nslots, count, hand; /* nslots: a power of two */
    uint64_t epoch;
} shard_t;

struct ft_ent_cache {
    shard_t shards[NSHARDS];
    size_t shard_max; /* records a shard keeps */
    atomic_ullong invalidations, evictions;
};

static uint64_t hash_key(const uint8_t k[KEY_LEN])
{
    uint64_t a, b;
    memcpy(&a, k, 8);
    memcpy(&b, k + 8, 8);
    uint64_t h = a ^ (b * 0x9e3779b97f4a7c15ull);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static size_t home_of(const shard_t *s, const uint8_t k[KEY_LEN])
{
    return (size_t)(hash_key(k) >> 8) & (s->nslots - 1);
}

static shard_t *shard_of(ft_ent_cache_t *c, const uint8_t k[KEY_LEN])
{
    return &c->shards[hash_key(k) % NSHARDS];
}

static void table_new(shard_t *s, size_t n)
{
    s->nslots = n;
    s->slots = ft_mem_calloc_aligned(SLOT_SIZE * 2, n * sizeof(slot_t));
    s->referenced = ft_mem_calloc(n, 1);
    s->hand = 0;
}

/* The slot holding k, or the empty slot where it would go. The shard's mutex is held. */
static size_t probe(const shard_t *s, const uint8_t k[KEY_LEN])
{
    size_t mask = s->nslots - 1, i = home_of(s, k);
    while (s->slots[i].e != NULL && memcmp(s->slots[i].key, k, KEY_LEN) != 0)
        i = (i + 1) & mask;
    return i;
}

/* Empties slot i and moves later entries of its run back, so that no probe meets a hole. */
static void remove_at(shard_t *s, size_t i)
{
    size_t mask = s->nslots - 1, j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (s->slots[j].e == NULL)
            break;
        size_t want = home_of(s, s->slots[j].key);
        /* the entry at j may move to i unless its home lies cyclically in (i, j] */
        int stays = i <= j ? (i < want && want <= j) : (i < want || want <= j);
        if (!stays) {
            s->slots[i] = s->slots[j];
            s->referenced[i] = s->referenced[j];
            i = j;
        }
    }
    memset(&s->slots[i], 0, sizeof(slot_t));
    s->referenced[i] = 0;
    s->count--;
}

static void grow(shard_t *s)
{
    slot_t *old = s->slots;
    uint8_t *old_ref = s->referenced;
    size_t n = s->nslots;
    table_new(s, n * 2);
    for (size_t i = 0; i < n; i++)
        if (old[i].e != NULL) {
            size_t j = probe(s, old[i].key);
            s->slots[j] = old[i];
            s->referenced[j] = old_ref[i];
        }
    free(old);
    free(old_ref);
}

/* CLOCK: the first record the hand finds unread since its last pass, removed; the caller
 * releases it after the lock. The shard is not empty. */
static ft_entitlements_t *evict_one(shard_t *s)
{
    size_t mask = s->nslots - 1;
    for (;;) {
        size_t i = s->hand;
        s->hand = (s->hand + 1) & mask;
        if (s->slots[i].e == NULL)
            continue;
        if (s->referenced[i]) {
            s->referenced[i] = 0;
            continue;
        }
        ft_entitlements_t *victim = s->slots[i].e;
        remove_at(s, i);
        return victim;
    }
}

ft_ent_cache_t *ft_ent_cache_create(size_t max_records)
{
    ft_ent_cache_t *c = ft_mem_calloc(1, sizeof(*c));
    c->shard_max = max_records == 0 ? SIZE_MAX : (max_records + NSHARDS - 1) / NSHARDS;
    for (int i = 0; i < NSHARDS; i++) {
        pthread_mutex_init(&c->shards[i].mutex, NULL);
        table_new(&c->shards[i], MIN_SLOTS);
    }
    return c;
}

void ft_ent_cache_destroy(ft_ent_cache_t *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < NSHARDS; i++) {
        shard_t *s = &c->shards[i];
        for (size_t j = 0; j < s->nslots; j++)
            ft_entitlements_release(s->slots[j].e);
        free(s->slots);
        free(s->referenced);
        pthread_mutex_destroy(&s->mutex);
    }
    free(c);
}

ft_entitlements_t *ft_ent_cache_get(ft_ent_cache_t *c, const char *instance_id, int64_t now_us)
{
    uint8_t k[KEY_LEN];
    if (!ft_uuid_parse(instance_id, k))
        return NULL;
    shard_t *s = shard_of(c, k);
    ft_entitlements_t *found = NULL;
    pthread_mutex_lock(&s->mutex);
    size_t i = probe(s, k);
    const slot_t *sl = &s->slots[i];
    if (sl->e != NULL && sl->valid_until_us > now_us) {
        found = sl->e;
        s->referenced[i] = 1;
        ft_entitlements_hold(found);
    }
    pthread_mutex_unlock(&s->mutex);
    return found;
}

uint64_t ft_ent_cache_epoch(ft_ent_cache_t *c, const char *instance_id)
{
    uint8_t k[KEY_LEN];
    if (!ft_uuid_parse(instance_id, k))
        return 0;
    uint64_t epoch;
    shard_t *s = shard_of(c, k);
    pthread_mutex_lock(&s->mutex);
    epoch = s->epoch;
    pthread_mutex_unlock(&s->mutex);
    return epoch;
}

void ft_ent_cache_epochs(ft_ent_cache_t *c, uint64_t out[FT_ENT_CACHE_SHARDS])
{
    for (int i = 0; i < NSHARDS; i++) {
        pthread_mutex_lock(&c->shards[i].mutex);
        out[i] = c->shards[i].epoch;
        pthread_mutex_unlock(&c->shards[i].mutex);
    }
}

uint64_t ft_ent_cache_epoch_in(const uint64_t snapshot[FT_ENT_CACHE_SHARDS], const char *instance_id)
{
    uint8_t k[KEY_LEN];
    if (!ft_uuid_parse(instance_id, k))
        return 0;
    return snapshot[hash_key(k) % NSHARDS];
}

int ft_ent_cache_put(ft_ent_cache_t *c, ft_entitlements_t *e, uint64_t epoch, int used)
{
    const uint8_t *k = e->instance_id;
    shard_t *s = shard_of(c, k);
    ft_entitlements_t *old = NULL;
    int inserted = 0;
    pthread_mutex_lock(&s->mutex);
    if (s->epoch == epoch) {
        size_t i = probe(s, k);
        if (s->slots[i].e == NULL && s->count >= c->shard_max) {
            old = evict_one(s); /* moves entries: find the place again */
            i = probe(s, k);
            atomic_fetch_add(&c->evictions, 1);
            ft_counter_inc(ft_metric_series(&evictions_total));
        }
        slot_t *sl = &s->slots[i];
        if (sl->e == NULL || sl->e->version <= e->version) {
            if (sl->e == NULL) {
                memcpy(sl->key, k, KEY_LEN);
                s->count++;
            } else {
                old = sl->e;
            }
            sl->e = e;
            sl->valid_until_us = e->valid_until_us;
            s->referenced[i] = (uint8_t)(used != 0);
            ft_entitlements_hold(e);
            inserted = 1;
            if (s->count * 2 > s->nslots)
                grow(s);
        }
    }
    pthread_mutex_unlock(&s->mutex);
    ft_entitlements_release(old);
    return inserted;
}

void ft_ent_cache_invalidate(ft_ent_cache_t *c, const char *instance_id)
{
    uint8_t k[KEY_LEN];
    if (!ft_uuid_parse(instance_id, k))
        return;
    shard_t *s = shard_of(c, k);
    ft_entitlements_t *gone = NULL;
    pthread_mutex_lock(&s->mutex);
    s->epoch++;
    size_t i = probe(s, k);
    if (s->slots[i].e != NULL) {
        gone = s->slots[i].e;
        remove_at(s, i);
    }
    pthread_mutex_unlock(&s->mutex);
    atomic_fetch_add(&c->invalidations, 1);
    ft_counter_inc(ft_metric_series(&invalidations_total));
    ft_entitlements_release(gone);
}

void ft_ent_cache_invalidate_all(ft_ent_cache_t *c, const char *product)
{
    for (int i = 0; i < NSHARDS; i++) {
        shard_t *s = &c->shards[i];
        pthread_mutex_lock(&s->mutex);
        s->epoch++;
        /* the survivors go into a fresh table; the dropped records are released after the lock */
        slot_t *old = s->slots;
        uint8_t *old_ref = s->referenced;
        size_t n = s->nslots;
        table_new(s, n);
        s->count = 0;
        for (size_t j = 0; j < n; j++) {
            if (old[j].e == NULL)
                continue;
            if (product == NULL || strcmp(old[j].e->base->product, product) == 0)
                continue;
            size_t at = probe(s, old[j].key);
            s->slots[at] = old[j];
            s->referenced[at] = old_ref[j];
            old[j].e = NULL;
            s->count++;
        }
        pthread_mutex_unlock(&s->mutex);
        for (size_t j = 0; j < n; j++)
            ft_entitlements_release(old[j].e);
        free(old);
        free(old_ref);
    }
    atomic_fetch_add(&c->invalidations, 1);
    ft_counter_inc(ft_metric_series(&invalidations_total));
}

size_t ft_ent_cache_count(ft_ent_cache_t *c)
{
    size_t n = 0;
    for (int i = 0; i < NSHARDS; i++) {
        pthread_mutex_lock(&c->shards[i].mutex);
        n += c->shards[i].count;
        pthread_mutex_unlock(&c->shards[i].mutex);
    }
    return n;
}

size_t ft_ent_cache_capacity(ft_ent_cache_t *c)
{
    return c->shard_max == SIZE_MAX ? 0 : c->shard_max * NSHARDS;
}

uint64_t ft_ent_cache_invalidations(ft_ent_cache_t *c)
{
    return atomic_load(&c->invalidations);
}

uint64_t ft_ent_cache_evictions(ft_ent_cache_t *c)
{
    return atomic_load(&c->evictions);
}
