/*
 * Resolved entitlement records by instance id, shared by every thread of the process. The map
 * is split in shards, each behind one mutex held for a lookup or an insert only; the records
 * themselves are immutable and reference counted. Each shard has an epoch that every
 * invalidation bumps: a resolution that started before an invalidation cannot put its
 * (possibly stale) record in. Bounded: past its size, an insert evicts a cold record.
 */
#ifndef FT_ENTITLEMENT_CACHE_H
#define FT_ENTITLEMENT_CACHE_H

#include <stdint.h>

#include "domain/entitlements.h"

typedef struct ft_ent_cache ft_ent_cache_t;

/* Holds at most about max_records (rounded up to a multiple of FT_ENT_CACHE_SHARDS; 0: no bound). */
ft_ent_cache_t *ft_ent_cache_create(size_t max_records);
void ft_ent_cache_destroy(ft_ent_cache_t *c);

/* The record for instance_id with one reference for the caller, or NULL when absent or past
 * its valid_until (now_us). instance_id must be a valid UUID. */
ft_entitlements_t *ft_ent_cache_get(ft_ent_cache_t *c, const char *instance_id, int64_t now_us);

/* The epoch to note before resolving instance_id from the database. */
uint64_t ft_ent_cache_epoch(ft_ent_cache_t *c, const char *instance_id);
/* Every shard's epoch at once, and the one that applies to instance_id in such a snapshot: for
 * resolving many instances read in one go (the warm-up). */
#define FT_ENT_CACHE_SHARDS 256
void ft_ent_cache_epochs(ft_ent_cache_t *c, uint64_t out[FT_ENT_CACHE_SHARDS]);
uint64_t ft_ent_cache_epoch_in(const uint64_t snapshot[FT_ENT_CACHE_SHARDS], const char *instance_id);

/* Inserts (taking its own reference) unless the shard was invalidated since `epoch`; returns 1
 * if inserted. A newer version already present wins. In a full shard a cold record makes room.
 * used: the record is being read now (a request's miss), not only warmed. */
int ft_ent_cache_put(ft_ent_cache_t *c, ft_entitlements_t *e, uint64_t epoch, int used);

void ft_ent_cache_invalidate(ft_ent_cache_t *c, const char *instance_id);
/* Drops every record of `product`, or every record when product is NULL. */
void ft_ent_cache_invalidate_all(ft_ent_cache_t *c, const char *product);

size_t ft_ent_cache_count(ft_ent_cache_t *c);
/* The bound (0: none). */
size_t ft_ent_cache_capacity(ft_ent_cache_t *c);
uint64_t ft_ent_cache_invalidations(ft_ent_cache_t *c);
uint64_t ft_ent_cache_evictions(ft_ent_cache_t *c);

#endif
