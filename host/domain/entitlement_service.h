/*
 * Entitlements as the API serves them: from the cache when a fresh record is there, otherwise
 * read (store), resolved (domain) against the product's current definitions and cached. Also
 * keeps every cache fresh: PostgreSQL notifications (channel ft_entitlements) from any host's
 * committed change drop the record, and the cache can be warmed at start (as far as its bound).
 */
#ifndef FT_ENTITLEMENT_SERVICE_H
#define FT_ENTITLEMENT_SERVICE_H

#include <libpq-fe.h>

#include "core/problem.h"
#include "domain/entitlement_cache.h"
#include "plugins/registry.h"
#include "store/scope.h"

typedef struct ft_ent_service ft_ent_service_t; /* also named struct ft_ent_service in app.h */

/* max_records bounds the cache (0: no bound). */
ft_ent_service_t *ft_ent_service_start(const char *database_url, ft_registry_t *registry, size_t max_records);
void ft_ent_service_stop(ft_ent_service_t *s);
ft_ent_cache_t *ft_ent_service_cache(ft_ent_service_t *s);

/* A cached record the caller may see, or NULL (miss, stale, or out of scope). Any thread. */
ft_entitlements_t *ft_ent_service_cached(ft_ent_service_t *s, const ft_call_t *call, const char *instance_id, int64_t now_us);

/* Reads, resolves and caches. Blocking (worker thread). FT_ENOTFOUND with problem filled when
 * the instance does not exist for this caller; FT_EUNAVAILABLE when its product is not loaded. */
int ft_ent_service_resolve(ft_ent_service_t *s, PGconn *c, const ft_catalog_t *catalog, const ft_call_t *call,
                           const char *instance_id, ft_entitlements_t **out, ft_problem_t *problem, ft_error_t *err);

/* Resolves instances into the cache, in pages in id order, until every one is or the cache is
 * full. Blocking. Returns how many were cached. */
size_t ft_ent_service_warm(ft_ent_service_t *s, PGconn *c, ft_error_t *err);

/* fn(arg, instance_id) runs on the listener thread after each committed change has dropped the
 * cached record: instance_id NULL when every record (or a product's) may have changed. One
 * callback; set it before changes matter. */
typedef void (*ft_ent_change_fn)(void *arg, const char *instance_id);
void ft_ent_service_on_change(ft_ent_service_t *s, ft_ent_change_fn fn, void *arg);

/* 1 while the invalidation listener is connected. */
int ft_ent_service_listening(ft_ent_service_t *s);

#endif
