/*
 * The sharded map. Keys are instance ids in their lower-case text form (36 characters), hashed
 * with FNV-1a; each shard is an open-addressing table (linear probing, backward-shift deletion)
 * of one-cache-line slots that hold the key, the record's validity and the record: a lookup
 * reads one slot where a chained table read a bucket, a node and the record. A shard doubles
 * when it is half full.
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

#define KEY_LEN 36
#define SLOT_SIZE 64
#define MIN_SLOTS 16

typedef struct slot {
    char key[KEY_LEN];
    uint32_t home;          /* the key's hash bits that pick its slot (& mask) */
    int64_t valid_until_us; /* the record's, copied: the lookup reads this line only */
    ft_entitlements_t *e;   /* NULL: an empty slot */
    char pad[SLOT_SIZE - KEY_LEN - 4 - 8 - sizeof(void *)];
} slot_t;

_Static_assert(sizeof(slot_t) == SLOT_SIZE, "a slot is one cache line");

typedef struct shard {
    pthread_mutex_t mutex;
    slot_t *slots;
    size_t nslots, count; /* nslots: a power of two */
    uint64_t epoch;
} shard_t;

struct ft_ent_cache {
    shard_t shards[NSHARDS];
    atomic_ullong invalidations;
};

static uint64_t hash_key(const char *k)
{
    uint64_t h = 14695981039346656037ull;
    for (int i = 0; i < KEY_LEN; i++) {
        h ^= (unsigned char)k[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Lower-cases a UUID's text into k; 0 when id is not 36 characters long. */
static int make_key(const char *id, char k[KEY_LEN])
{
    for (int i = 0; i < KEY_LEN; i++) {
        if (id[i] == '\0')
            return 0;
        k[i] = id[i] >= 'A' && id[i] <= 'Z' ? (char)(id[i] - 'A' + 'a') : id[i];
    }
    return id[KEY_LEN] == '\0';
}

static shard_t *shard_of(ft_ent_cache_t *c, const char *k, uint64_t *h)
{
    *h = hash_key(k);
    return &c->shards[*h % NSHARDS];
}

static slot_t *slots_new(size_t n)
{
    return ft_mem_calloc_aligned(SLOT_SIZE, n * sizeof(slot_t));
}

/* The slot holding k, or the empty slot where it would go. The shard's mutex is held. */
static size_t probe(const shard_t *s, const char *k, uint32_t home)
{
    size_t mask = s->nslots - 1, i = home & mask;
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
        size_t want = s->slots[j].home & mask;
        /* the entry at j may move to i unless its home lies cyclically in (i, j] */
        int stays = i <= j ? (i < want && want <= j) : (i < want || want <= j);
        if (!stays) {
            s->slots[i] = s->slots[j];
            i = j;
        }
    }
    memset(&s->slots[i], 0, sizeof(slot_t));
    s->count--;
}

static void grow(shard_t *s)
{
    slot_t *old = s->slots;
    size_t n = s->nslots;
    s->nslots = n * 2;
    s->slots = slots_new(s->nslots);
    for (size_t i = 0; i < n; i++)
        if (old[i].e != NULL)
            s->slots[probe(s, old[i].key, old[i].home)] = old[i];
    free(old);
}

ft_ent_cache_t *ft_ent_cache_create(void)
{
    ft_ent_cache_t *c = ft_mem_calloc(1, sizeof(*c));
    for (int i = 0; i < NSHARDS; i++) {
        pthread_mutex_init(&c->shards[i].mutex, NULL);
        c->shards[i].nslots = MIN_SLOTS;
        c->shards[i].slots = slots_new(MIN_SLOTS);
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
        pthread_mutex_destroy(&s->mutex);
    }
    free(c);
}

ft_entitlements_t *ft_ent_cache_get(ft_ent_cache_t *c, const char *instance_id, int64_t now_us)
{
    char k[KEY_LEN];
    if (!make_key(instance_id, k))
        return NULL;
    uint64_t h;
    shard_t *s = shard_of(c, k, &h);
    ft_entitlements_t *found = NULL;
    pthread_mutex_lock(&s->mutex);
    const slot_t *sl = &s->slots[probe(s, k, (uint32_t)(h >> 8))];
    if (sl->e != NULL && sl->valid_until_us > now_us) {
        found = sl->e;
        ft_entitlements_hold(found);
    }
    pthread_mutex_unlock(&s->mutex);
    return found;
}

uint64_t ft_ent_cache_epoch(ft_ent_cache_t *c, const char *instance_id)
{
    char k[KEY_LEN];
    if (!make_key(instance_id, k))
        return 0;
    uint64_t h, epoch;
    shard_t *s = shard_of(c, k, &h);
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
    char k[KEY_LEN];
    if (!make_key(instance_id, k))
        return 0;
    return snapshot[hash_key(k) % NSHARDS];
}

int ft_ent_cache_put(ft_ent_cache_t *c, ft_entitlements_t *e, uint64_t epoch)
{
    char k[KEY_LEN];
    if (!make_key(e->instance_id, k))
        return 0;
    uint64_t h;
    shard_t *s = shard_of(c, k, &h);
    ft_entitlements_t *old = NULL;
    int inserted = 0;
    pthread_mutex_lock(&s->mutex);
    if (s->epoch == epoch) {
        uint32_t home = (uint32_t)(h >> 8);
        slot_t *sl = &s->slots[probe(s, k, home)];
        if (sl->e == NULL || sl->e->version <= e->version) {
            old = sl->e;
            if (sl->e == NULL) {
                memcpy(sl->key, k, KEY_LEN);
                sl->home = home;
                s->count++;
            }
            sl->e = e;
            sl->valid_until_us = e->valid_until_us;
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
    char k[KEY_LEN];
    if (!make_key(instance_id, k))
        return;
    uint64_t h;
    shard_t *s = shard_of(c, k, &h);
    ft_entitlements_t *gone = NULL;
    pthread_mutex_lock(&s->mutex);
    s->epoch++;
    size_t i = probe(s, k, (uint32_t)(h >> 8));
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
        size_t n = s->nslots;
        s->slots = slots_new(n);
        s->count = 0;
        for (size_t j = 0; j < n; j++) {
            if (old[j].e == NULL)
                continue;
            if (product == NULL || strcmp(old[j].e->product, product) == 0)
                continue;
            s->slots[probe(s, old[j].key, old[j].home)] = old[j];
            old[j].e = NULL;
            s->count++;
        }
        pthread_mutex_unlock(&s->mutex);
        for (size_t j = 0; j < n; j++)
            ft_entitlements_release(old[j].e);
        free(old);
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

uint64_t ft_ent_cache_invalidations(ft_ent_cache_t *c)
{
    return atomic_load(&c->invalidations);
}
