/*
 * The sharded map. Keys are instance ids in their lower-case text form (36 characters), hashed
 * with FNV-1a; each shard is a chained hash table that doubles when it is full.
 */
#include "domain/entitlement_cache.h"

#include "core/mem.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define NSHARDS FT_ENT_CACHE_SHARDS

#define KEY_LEN 36

typedef struct node {
    char key[KEY_LEN];
    ft_entitlements_t *e;
    struct node *next;
} node_t;

typedef struct shard {
    pthread_mutex_t mutex;
    node_t **buckets;
    size_t nbuckets, count;
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

ft_ent_cache_t *ft_ent_cache_create(void)
{
    ft_ent_cache_t *c = ft_mem_calloc(1, sizeof(*c));
    for (int i = 0; i < NSHARDS; i++) {
        pthread_mutex_init(&c->shards[i].mutex, NULL);
        c->shards[i].nbuckets = 16;
        c->shards[i].buckets = ft_mem_calloc(16, sizeof(node_t *));
    }
    return c;
}

static void clear_shard(shard_t *s)
{
    for (size_t b = 0; b < s->nbuckets; b++) {
        for (node_t *n = s->buckets[b]; n != NULL;) {
            node_t *next = n->next;
            ft_entitlements_release(n->e);
            free(n);
            n = next;
        }
        s->buckets[b] = NULL;
    }
    s->count = 0;
}

void ft_ent_cache_destroy(ft_ent_cache_t *c)
{
    if (c == NULL)
        return;
    for (int i = 0; i < NSHARDS; i++) {
        clear_shard(&c->shards[i]);
        free(c->shards[i].buckets);
        pthread_mutex_destroy(&c->shards[i].mutex);
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
    for (node_t *n = s->buckets[(h >> 8) & (s->nbuckets - 1)]; n != NULL; n = n->next) {
        if (memcmp(n->key, k, KEY_LEN) == 0) {
            if (n->e->valid_until_us > now_us) {
                found = n->e;
                ft_entitlements_hold(found);
            }
            break;
        }
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

static void grow(shard_t *s)
{
    size_t nb = s->nbuckets * 2;
    node_t **buckets = ft_mem_calloc(nb, sizeof(node_t *));
    for (size_t b = 0; b < s->nbuckets; b++) {
        for (node_t *n = s->buckets[b]; n != NULL;) {
            node_t *next = n->next;
            size_t nbk = (hash_key(n->key) >> 8) & (nb - 1);
            n->next = buckets[nbk];
            buckets[nbk] = n;
            n = next;
        }
    }
    free(s->buckets);
    s->buckets = buckets;
    s->nbuckets = nb;
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
        node_t **slot = &s->buckets[(h >> 8) & (s->nbuckets - 1)], *n;
        for (n = *slot; n != NULL; n = n->next)
            if (memcmp(n->key, k, KEY_LEN) == 0)
                break;
        if (n == NULL) {
            n = ft_mem_alloc(sizeof(*n));
            memcpy(n->key, k, KEY_LEN);
            n->e = e;
            n->next = *slot;
            *slot = n;
            ft_entitlements_hold(e);
            inserted = 1;
            if (++s->count > s->nbuckets)
                grow(s);
        } else if (n->e->version <= e->version) {
            old = n->e;
            n->e = e;
            ft_entitlements_hold(e);
            inserted = 1;
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
    node_t *gone = NULL;
    pthread_mutex_lock(&s->mutex);
    s->epoch++;
    for (node_t **pp = &s->buckets[(h >> 8) & (s->nbuckets - 1)]; *pp != NULL; pp = &(*pp)->next) {
        if (memcmp((*pp)->key, k, KEY_LEN) == 0) {
            gone = *pp;
            *pp = gone->next;
            s->count--;
            break;
        }
    }
    pthread_mutex_unlock(&s->mutex);
    atomic_fetch_add(&c->invalidations, 1);
    if (gone != NULL) {
        ft_entitlements_release(gone->e);
        free(gone);
    }
}

void ft_ent_cache_invalidate_all(ft_ent_cache_t *c, const char *product)
{
    for (int i = 0; i < NSHARDS; i++) {
        shard_t *s = &c->shards[i];
        node_t *gone = NULL;
        pthread_mutex_lock(&s->mutex);
        s->epoch++;
        for (size_t b = 0; b < s->nbuckets; b++) {
            for (node_t **pp = &s->buckets[b]; *pp != NULL;) {
                node_t *n = *pp;
                if (product == NULL || strcmp(n->e->product, product) == 0) {
                    *pp = n->next;
                    n->next = gone;
                    gone = n;
                    s->count--;
                } else {
                    pp = &n->next;
                }
            }
        }
        pthread_mutex_unlock(&s->mutex);
        while (gone != NULL) {
            node_t *next = gone->next;
            ft_entitlements_release(gone->e);
            free(gone);
            gone = next;
        }
    }
    atomic_fetch_add(&c->invalidations, 1);
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
