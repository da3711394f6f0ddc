/*
 * Coordination of the entitlement cache, its store and the resolver, and the listener that
 * keeps the cache fresh across hosts.
 */
#include "domain/entitlement_service.h"

#include "core/mem.h"
#include "infra/log.h"
#include "infra/metrics.h"
#include "infra/pg_listen.h"
#include "store/entitlement_store.h"
#include "store/instance_store.h"

#include <stdatomic.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WARM_PAGE 2000

FT_COUNTER(cache_hits, "ft_entitlements_cache_hits_total", "Entitlement lookups answered from memory.", FT_NO_LABELS);
FT_COUNTER(cache_misses, "ft_entitlements_cache_misses_total",
           "Entitlement lookups that found no record in memory and read the database.", FT_NO_LABELS);
FT_GAUGE(cached_records, "ft_entitlements_cached", "Resolved entitlement records held in memory.", FT_NO_LABELS);

struct ft_ent_service {
    ft_ent_cache_t *cache;
    ft_registry_t *registry;
    ft_listener_t *listener;
    _Atomic(ft_ent_change_fn) on_change;
    void *_Atomic on_change_arg;
};

void ft_ent_service_on_change(ft_ent_service_t *s, ft_ent_change_fn fn, void *arg)
{
    atomic_store(&s->on_change_arg, arg);
    atomic_store(&s->on_change, fn);
}

static void changed(ft_ent_service_t *s, const char *instance_id)
{
    ft_ent_change_fn fn = atomic_load(&s->on_change);
    if (fn != NULL)
        fn(atomic_load(&s->on_change_arg), instance_id);
}

static void on_notify(void *arg, const char *channel, const char *payload)
{
    ft_ent_service_t *s = arg;
    if (channel == NULL) {
        /* (re)connected: anything may have changed while no one listened */
        ft_ent_cache_invalidate_all(s->cache, NULL);
        changed(s, NULL);
        return;
    }
    if (payload == NULL || *payload == '\0' || strcmp(payload, "*") == 0) {
        ft_ent_cache_invalidate_all(s->cache, NULL);
        changed(s, NULL);
    } else if (strncmp(payload, "product:", 8) == 0) {
        ft_ent_cache_invalidate_all(s->cache, payload + 8);
        changed(s, NULL);
    } else {
        ft_ent_cache_invalidate(s->cache, payload);
        changed(s, payload);
    }
}

/* A reloaded product may define its features differently: forget its records. */
static void on_swap(void *arg)
{
    ft_ent_service_t *s = arg;
    ft_ent_cache_invalidate_all(s->cache, NULL);
    changed(s, NULL);
}

static double read_cached(void *arg)
{
    return (double)ft_ent_cache_count(arg);
}

ft_ent_service_t *ft_ent_service_start(const char *database_url, ft_registry_t *registry, size_t max_records)
{
    ft_ent_service_t *s = ft_mem_calloc(1, sizeof(*s));
    s->cache = ft_ent_cache_create(max_records);
    s->registry = registry;
    static const char *const channels[] = {"ft_entitlements", NULL};
    s->listener = ft_listener_start(database_url, channels, on_notify, s);
    ft_registry_on_swap(registry, on_swap, s);
    ft_gauge_bind(&cached_records, read_cached, s->cache);
    return s;
}

void ft_ent_service_stop(ft_ent_service_t *s)
{
    if (s == NULL)
        return;
    ft_gauge_bind(&cached_records, NULL, NULL);
    ft_listener_stop(s->listener);
    ft_ent_cache_destroy(s->cache);
    free(s);
}

ft_ent_cache_t *ft_ent_service_cache(ft_ent_service_t *s)
{
    return s->cache;
}

int ft_ent_service_listening(ft_ent_service_t *s)
{
    return ft_listener_connected(s->listener);
}

/* 1 when id (NULL: anyone) names the UUID `is`. */
static int names(const char *id, const uint8_t is[16])
{
    uint8_t b[16];
    return id == NULL || (ft_uuid_parse(id, b) && memcmp(b, is, 16) == 0);
}

static int in_scope(const ft_call_t *call, const ft_entitlements_t *e)
{
    return names(call->customer_id, e->customer_id) && names(call->instance_id, e->instance_id);
}

ft_entitlements_t *ft_ent_service_cached(ft_ent_service_t *s, const ft_call_t *call, const char *instance_id, int64_t now_us)
{
    ft_entitlements_t *e = ft_ent_cache_get(s->cache, instance_id, now_us);
    if (e != NULL && !in_scope(call, e)) {
        ft_entitlements_release(e);
        e = NULL;
    }
    ft_counter_inc(ft_metric_series(e != NULL ? &cache_hits : &cache_misses));
    return e;
}

static int resolve_row(ft_ent_service_t *s, const ft_catalog_t *catalog, ft_ent_row_t *row, uint64_t epoch, ft_entitlements_t **out,
                       int *inserted, int used, ft_error_t *err)
{
    ft_generation_t *g = ft_catalog_find(catalog, row->product);
    if (g == NULL)
        return ft_error_set(err, FT_EUNAVAILABLE, "product %s is not loaded; its entitlements cannot be resolved", row->product);
    *out = ft_entitlements_resolve(g->product, &row->in);
    int put = ft_ent_cache_put(s->cache, *out, epoch, used);
    if (inserted != NULL)
        *inserted = put;
    return FT_OK;
}

int ft_ent_service_resolve(ft_ent_service_t *s, PGconn *c, const ft_catalog_t *catalog, const ft_call_t *call,
                           const char *instance_id, ft_entitlements_t **out, ft_problem_t *problem, ft_error_t *err)
{
    uint64_t epoch = ft_ent_cache_epoch(s->cache, instance_id);
    ft_ent_row_t row;
    int rc = ft_ent_store_load(c, call, instance_id, &row, err);
    if (rc == FT_ENOTFOUND)
        return ft_instance_missing(c, call, instance_id, problem, err);
    if (rc != FT_OK)
        return rc;
    rc = resolve_row(s, catalog, &row, epoch, out, NULL, 1, err);
    ft_ent_row_free(&row);
    return rc;
}

size_t ft_ent_service_warm(ft_ent_service_t *s, PGconn *c, ft_error_t *err)
{
    ft_catalog_t *catalog = ft_catalog_acquire(s->registry);
    char after[37] = "";
    size_t cached = 0, limit = ft_ent_cache_capacity(s->cache);
    for (;;) {
        ft_ent_row_t *rows = NULL;
        size_t n = 0;
        uint64_t epochs[FT_ENT_CACHE_SHARDS];
        ft_ent_cache_epochs(s->cache, epochs); /* before the read: a change after it stops the insert */
        if (ft_ent_store_load_page(c, after[0] ? after : NULL, WARM_PAGE, &rows, &n, err) != FT_OK) {
            free(rows);
            break;
        }
        for (size_t i = 0; i < n; i++) {
            ft_entitlements_t *e = NULL;
            int inserted = 0;
            uint64_t epoch = ft_ent_cache_epoch_in(epochs, rows[i].in.instance_id);
            if (resolve_row(s, catalog, &rows[i], epoch, &e, &inserted, 0, err) == FT_OK) {
                cached += (size_t)inserted;
                ft_entitlements_release(e);
            }
            if (i == n - 1)
                snprintf(after, sizeof(after), "%s", rows[i].in.instance_id);
            ft_ent_row_free(&rows[i]);
        }
        free(rows);
        if (n < WARM_PAGE || (limit != 0 && cached >= limit))
            break;
    }
    ft_catalog_release(catalog);
#ifdef __GLIBC__
    malloc_trim(0); /* the pages' rows are gone: give their memory back, between the records that stay */
#endif
    return cached;
}
