/*
 * Generations, catalogs, reloads and the reaper. Locking: `mutex` guards the current catalog
 * pointer, the retired list, the product states and the live generation list, for a few
 * lines at a time; `reload_mutex` serializes whole reloads (which block on dlopen, init and
 * the database). Neither is taken on a loop thread's request path.
 */
#include "plugins/registry.h"

#include "core/mem.h"
#include "domain/jsonschema.h"
#include "infra/log.h"
#include "infra/metrics.h"
#include "plugins/invoke.h"
#include "plugins/validate.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

FT_COUNTER(loads_total, "ft_plugin_loads_total", "Plugin generations loaded (first loads and reloads), by product.",
           FT_LABELS("product"));
FT_COUNTER(load_failures_total, "ft_plugin_load_failures_total", "Plugin load or reload attempts that failed, by product.",
           FT_LABELS("product"));
FT_COUNTER(drain_timeouts_total, "ft_plugin_drain_timeouts_total", "Replaced generations that outlived the drain bound.",
           FT_NO_LABELS);
FT_GAUGE(generations_draining, "ft_plugin_generations_draining", "Replaced generations still loaded.", FT_NO_LABELS);

#define REAPER_POLL_MS 2

/* Reload attempts kept per product for GET /api/v1/plugins. Memory is enough: the history says
 * what this process went through (each host loads its own generations), and every attempt of
 * every host is also written to ft_plugin_loads, which outlives restarts. */
#define HISTORY_MAX 32

typedef struct reload_event {
    unsigned long long seq; /* orders events across products */
    const char *product;    /* its product_state_t's code */
    time_t at;
    const char *result; /* "loaded", "reloaded" or "failed" */
    /* loaded, reloaded: the new generation; failed: the one that keeps serving (0: none) */
    unsigned long long generation;
    char *reason; /* failed only */
} reload_event_t;

typedef struct product_state {
    char *code;
    unsigned long long last_number;
    char *last_error; /* the last attempt's reason while it failed; NULL once one succeeds */
    time_t last_error_at;
    reload_event_t history[HISTORY_MAX]; /* a ring, the newest at (nhistory - 1) % HISTORY_MAX */
    unsigned long long nhistory;
} product_state_t;

typedef struct swap_cb {
    void (*fn)(void *arg);
    void *arg;
} swap_cb_t;

struct ft_registry {
    char *plugin_dir;
    char runtime_dir[PATH_MAX];
    unsigned drain_timeout_ms;
    const ftp_host_api_t *api;
    ft_catalog_sync_fn sync;
    ft_load_record_fn record;
    void *arg;

    pthread_mutex_t mutex;
    pthread_mutex_t reload_mutex;
    pthread_cond_t reaper_cond;
    pthread_t reaper;
    int stopping;

    ft_catalog_t *current;
    atomic_ullong version;
    ft_catalog_t *retired;
    product_state_t *states;
    size_t nstates;
    ft_generation_t **live; /* every loaded generation, current or draining */
    size_t nlive;
    swap_cb_t swap_cbs[FT_CATALOG_MAX_READERS];
    size_t nswap_cbs;
    unsigned long long load_tag;
    unsigned long long reloads, failures, drain_timeouts;
    unsigned long long history_seq;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static char *dump(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (s == NULL)
        abort(); /* allocation failure */
    return s;
}

static json_t *codes_json(char **codes, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(codes[i]));
    return a;
}

static json_t *nullable(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

static json_t *plan_json(const ft_product_t *p, const ft_plan_t *pl)
{
    json_t *features = json_array();
    for (size_t i = 0; i < pl->nitems; i++) {
        const ft_feature_t *f = ft_product_feature(p, pl->items[i].feature);
        json_t *item = json_pack("{s:s, s:s, s:s, s:I}", "code", pl->items[i].feature, "name", f->name, "kind",
                                 f->kind == FTP_FEATURE_FLAG ? "flag" : "limit", "value", (json_int_t)pl->items[i].value);
        if (f->kind == FTP_FEATURE_LIMIT && f->unit != NULL)
            json_object_set_new(item, "unit", json_string(f->unit));
        json_array_append_new(features, item);
    }
    return json_pack("{s:s, s:s, s:s, s:o, s:i, s:i, s:o}", "product", p->code, "code", pl->code, "name", pl->name,
                     "description", nullable(pl->description), "version", (int)pl->version, "trial_days", (int)pl->trial_days,
                     "features", features);
}

static void build_gen_json(ft_generation_t *g)
{
    const ft_product_t *p = g->product;
    json_t *modules = json_array();
    for (size_t m = 0; m < p->nmodules; m++) {
        json_t *features = json_array();
        for (size_t i = 0; i < p->nfeatures; i++) {
            const ft_feature_t *f = &p->features[i];
            if (strcmp(f->module, p->modules[m].code) != 0)
                continue;
            json_array_append_new(features,
                                  json_pack("{s:s, s:s, s:o, s:s, s:I, s:o, s:o}", "code", f->code, "name", f->name,
                                            "description", nullable(f->description), "kind",
                                            f->kind == FTP_FEATURE_FLAG ? "flag" : "limit", "default", (json_int_t)f->default_value,
                                            "requires", codes_json(f->requires, f->nrequires), "unit", nullable(f->unit)));
        }
        json_array_append_new(modules, json_pack("{s:s, s:s, s:o, s:o, s:o}", "code", p->modules[m].code, "name",
                                                 p->modules[m].name, "description", nullable(p->modules[m].description),
                                                 "depends", codes_json(p->modules[m].depends, p->modules[m].ndepends),
                                                 "features", features));
    }
    json_t *actions = json_array();
    for (size_t i = 0; i < p->nactions; i++) {
        const ft_action_t *a = &p->actions[i];
        json_t *schema = a->input_schema != NULL ? json_loads(a->input_schema, 0, NULL) : NULL;
        json_array_append_new(actions, json_pack("{s:s, s:o, s:o, s:o}", "name", a->name, "description",
                                                 nullable(a->description), "required_feature", nullable(a->required_feature),
                                                 "input_schema", schema != NULL ? schema : json_null()));
    }
    json_t *settings = p->settings_schema != NULL ? json_loads(p->settings_schema, 0, NULL) : NULL;
    char abi[16];
    snprintf(abi, sizeof(abi), "%u.%u", p->abi_major, p->abi_minor);
    json_t *plans = json_array();
    for (size_t i = 0; i < p->nplans; i++)
        json_array_append_new(plans, json_string(p->plans[i].code));
    g->detail_json = dump(json_pack("{s:s, s:s, s:o, s:s, s:o, s:s, s:I, s:o, s:o, s:o, s:o}", "code", p->code, "name", p->name,
                                    "description", nullable(p->description), "version", p->version, "vendor",
                                    nullable(p->vendor), "abi", abi, "generation", (json_int_t)g->number, "settings_schema",
                                    settings != NULL ? settings : json_null(), "modules", modules, "plans", plans, "actions",
                                    actions));

    json_t *all = json_array();
    g->plan_json = ft_mem_calloc(p->nplans + 1, sizeof(char *));
    for (size_t i = 0; i < p->nplans; i++) {
        json_array_append_new(all, plan_json(p, &p->plans[i]));
        g->plan_json[i] = dump(plan_json(p, &p->plans[i]));
    }
    g->plans_json = dump(json_pack("{s:s, s:o}", "product", p->code, "plans", all));
}

static void free_gen(ft_generation_t *g)
{
    ft_schema_free(g->settings_schema);
    for (size_t i = 0; g->action_schemas != NULL && i < g->product->nactions; i++)
        ft_schema_free(g->action_schemas[i]);
    free(g->action_schemas);
    free(g->detail_json);
    free(g->plans_json);
    for (size_t i = 0; g->plan_json != NULL && i < g->product->nplans; i++)
        free(g->plan_json[i]);
    free(g->plan_json);
    ft_plugin_unload(&g->loaded);
    free(g->product_code);
    free(g->file_path);
    free(g);
}

static int cmp_gen(const void *a, const void *b)
{
    return strcmp((*(ft_generation_t *const *)a)->product_code, (*(ft_generation_t *const *)b)->product_code);
}

/* A new catalog: `base`'s generations with `gen` added or replacing its product's. */
static ft_catalog_t *catalog_with(const ft_catalog_t *base, ft_generation_t *gen, unsigned long long version)
{
    ft_catalog_t *c = ft_mem_calloc(1, sizeof(*c));
    c->version = version;
    size_t n = base != NULL ? base->count : 0;
    c->gens = ft_mem_calloc(n + 1, sizeof(ft_generation_t *));
    for (size_t i = 0; i < n; i++)
        if (gen == NULL || strcmp(base->gens[i]->product_code, gen->product_code) != 0)
            c->gens[c->count++] = base->gens[i];
    if (gen != NULL)
        c->gens[c->count++] = gen;
    if (c->count > 1)
        qsort(c->gens, c->count, sizeof(*c->gens), cmp_gen);
    json_t *list = json_array();
    for (size_t i = 0; i < c->count; i++) {
        ft_generation_t *g = c->gens[i];
        atomic_fetch_add(&g->refs, 1);
        const ft_product_t *p = g->product;
        json_t *plans = json_array();
        for (size_t k = 0; k < p->nplans; k++)
            json_array_append_new(plans, json_string(p->plans[k].code));
        json_array_append_new(list, json_pack("{s:s, s:s, s:o, s:s, s:I, s:i, s:i, s:o}", "code", p->code, "name", p->name,
                                              "description", nullable(p->description), "version", p->version, "generation",
                                              (json_int_t)g->number, "modules", (int)p->nmodules, "features",
                                              (int)p->nfeatures, "plans", plans));
    }
    c->list_json = dump(json_pack("{s:o}", "products", list));
    atomic_store(&c->shared_refs, 1); /* the registry's own reference while current */
    return c;
}

static void remove_live(ft_registry_t *reg, ft_generation_t *g)
{
    for (size_t i = 0; i < reg->nlive; i++) {
        if (reg->live[i] == g) {
            reg->live[i] = reg->live[--reg->nlive];
            return;
        }
    }
}

/* Frees a drained catalog and unloads the generations no other catalog includes.
 * Called without reg->mutex held (fini and dlclose may take time). */
static void free_catalog(ft_registry_t *reg, ft_catalog_t *c)
{
    for (size_t i = 0; i < c->count; i++) {
        ft_generation_t *g = c->gens[i];
        if (atomic_fetch_sub(&g->refs, 1) != 1)
            continue;
        pthread_mutex_lock(&reg->mutex);
        remove_live(reg, g);
        pthread_mutex_unlock(&reg->mutex);
        ft_invoke_fini(g->product);
        ft_log_product(FT_LOG_INFO, NULL, g->product_code, "plugin %s: generation %llu unloaded", g->product_code, g->number);
        free_gen(g);
    }
    free(c->gens);
    free(c->list_json);
    free(c);
}

static int drained(const ft_catalog_t *c)
{
    if (atomic_load_explicit(&c->shared_refs, memory_order_acquire) != 0)
        return 0;
    for (size_t i = 0; i < FT_CATALOG_MAX_READERS; i++)
        if (atomic_load_explicit(&c->local_refs[i], memory_order_acquire) != 0)
            return 0;
    return 1;
}

static long holders(const ft_catalog_t *c)
{
    long n = atomic_load(&c->shared_refs);
    for (size_t i = 0; i < FT_CATALOG_MAX_READERS; i++)
        n += atomic_load(&c->local_refs[i]);
    return n;
}

static int in_catalog(const ft_catalog_t *c, const ft_generation_t *g)
{
    for (size_t i = 0; i < c->count; i++)
        if (c->gens[i] == g)
            return 1;
    return 0;
}

static void *reaper_main(void *arg)
{
    ft_registry_t *reg = arg;
    pthread_mutex_lock(&reg->mutex);
    while (!reg->stopping) {
        ft_catalog_t *done = NULL;
        uint64_t now = now_ns();
        for (ft_catalog_t **pp = &reg->retired; *pp != NULL;) {
            ft_catalog_t *c = *pp;
            if (drained(c)) {
                *pp = c->next_retired;
                c->next_retired = done;
                done = c;
                continue;
            }
            if (now - c->retired_ns > (uint64_t)reg->drain_timeout_ms * 1000000u) {
                for (size_t i = 0; i < c->count; i++) {
                    ft_generation_t *g = c->gens[i];
                    if (in_catalog(reg->current, g) || g->alerted)
                        continue;
                    g->alerted = 1;
                    reg->drain_timeouts++;
                    ft_counter_inc(ft_metric_series(&drain_timeouts_total));
                    ft_log_product(FT_LOG_ERROR, NULL, g->product_code,
                                   "ALERT plugin %s: generation %llu has not drained %u ms after it was replaced (%ld holders); "
                                   "it stays loaded until they finish",
                                   g->product_code, g->number, reg->drain_timeout_ms, holders(c));
                }
            }
            pp = &c->next_retired;
        }
        if (done != NULL) {
            pthread_mutex_unlock(&reg->mutex);
            while (done != NULL) {
                ft_catalog_t *next = done->next_retired;
                free_catalog(reg, done);
                done = next;
            }
            pthread_mutex_lock(&reg->mutex);
            continue;
        }
        if (reg->retired == NULL) {
            pthread_cond_wait(&reg->reaper_cond, &reg->mutex);
        } else {
            struct timespec deadline;
            clock_gettime(CLOCK_MONOTONIC, &deadline);
            deadline.tv_nsec += REAPER_POLL_MS * 1000000L;
            if (deadline.tv_nsec >= 1000000000L) {
                deadline.tv_sec++;
                deadline.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&reg->reaper_cond, &reg->mutex, &deadline);
        }
    }
    pthread_mutex_unlock(&reg->mutex);
    return NULL;
}

/* Scrape-time reader of ft_plugin_generations_draining: a few lines under the mutex. */
static double read_draining(void *arg)
{
    unsigned long long reloads, failures, timeouts;
    unsigned draining;
    ft_registry_counts(arg, &reloads, &failures, &timeouts, &draining);
    return draining;
}

ft_registry_t *ft_registry_create(const ft_registry_config_t *cfg, ft_error_t *err)
{
    ft_registry_t *reg = ft_mem_calloc(1, sizeof(*reg));
    reg->plugin_dir = ft_mem_strdup(cfg->plugin_dir);
    reg->drain_timeout_ms = cfg->drain_timeout_ms;
    reg->api = cfg->api;
    reg->sync = cfg->sync;
    reg->record = cfg->record;
    reg->arg = cfg->arg;
    const char *tmp = getenv("TMPDIR");
    snprintf(reg->runtime_dir, sizeof(reg->runtime_dir), "%s/farutech-plugins.XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
    if (mkdtemp(reg->runtime_dir) == NULL) {
        ft_error_set(err, FT_EIO, "cannot create a directory for plugin copies (%s): %s", reg->runtime_dir, strerror(errno));
        free(reg->plugin_dir);
        free(reg);
        return NULL;
    }
    pthread_mutex_init(&reg->mutex, NULL);
    pthread_mutex_init(&reg->reload_mutex, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&reg->reaper_cond, &ca);
    pthread_condattr_destroy(&ca);
    reg->current = catalog_with(NULL, NULL, 1);
    atomic_store(&reg->version, 1);
    pthread_create(&reg->reaper, NULL, reaper_main, reg);
    ft_gauge_bind(&generations_draining, read_draining, reg);
    return reg;
}

void ft_registry_destroy(ft_registry_t *reg)
{
    if (reg == NULL)
        return;
    ft_gauge_bind(&generations_draining, NULL, NULL);
    pthread_mutex_lock(&reg->mutex);
    reg->stopping = 1;
    pthread_cond_signal(&reg->reaper_cond);
    pthread_mutex_unlock(&reg->mutex);
    pthread_join(reg->reaper, NULL);
    for (ft_catalog_t *c = reg->retired; c != NULL;) {
        ft_catalog_t *next = c->next_retired;
        free_catalog(reg, c);
        c = next;
    }
    free_catalog(reg, reg->current);
    for (size_t i = 0; i < reg->nstates; i++) {
        free(reg->states[i].code);
        free(reg->states[i].last_error);
        for (size_t k = 0; k < HISTORY_MAX; k++)
            free(reg->states[i].history[k].reason);
    }
    free(reg->states);
    free(reg->live);
    rmdir(reg->runtime_dir);
    pthread_mutex_destroy(&reg->mutex);
    pthread_mutex_destroy(&reg->reload_mutex);
    pthread_cond_destroy(&reg->reaper_cond);
    free(reg->plugin_dir);
    free(reg);
}

static product_state_t *state_of(ft_registry_t *reg, const char *code)
{
    for (size_t i = 0; i < reg->nstates; i++)
        if (strcmp(reg->states[i].code, code) == 0)
            return &reg->states[i];
    reg->states = ft_mem_realloc(reg->states, (reg->nstates + 1) * sizeof(*reg->states));
    product_state_t *s = &reg->states[reg->nstates++];
    memset(s, 0, sizeof(*s));
    s->code = ft_mem_strdup(code);
    return s;
}

ft_catalog_t *ft_catalog_acquire(ft_registry_t *reg)
{
    pthread_mutex_lock(&reg->mutex);
    ft_catalog_t *c = reg->current;
    atomic_fetch_add(&c->shared_refs, 1);
    pthread_mutex_unlock(&reg->mutex);
    return c;
}

void ft_catalog_release(ft_catalog_t *c)
{
    atomic_fetch_sub_explicit(&c->shared_refs, 1, memory_order_acq_rel);
}

ft_generation_t *ft_catalog_find(const ft_catalog_t *c, const char *code)
{
    size_t lo = 0, hi = c->count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int d = strcmp(c->gens[mid]->product_code, code);
        if (d == 0)
            return c->gens[mid];
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void ft_catalog_reader_attach(ft_registry_t *reg, ft_catalog_reader_t *rd, unsigned slot)
{
    rd->reg = reg;
    rd->slot = slot % FT_CATALOG_MAX_READERS;
    rd->current = ft_catalog_acquire(reg);
}

void ft_catalog_reader_detach(ft_catalog_reader_t *rd)
{
    if (rd->current != NULL)
        ft_catalog_release(rd->current);
    rd->current = NULL;
}

void ft_catalog_reader_refresh(ft_catalog_reader_t *rd)
{
    if (rd->current->version == atomic_load_explicit(&rd->reg->version, memory_order_acquire))
        return;
    ft_catalog_t *old = rd->current;
    rd->current = ft_catalog_acquire(rd->reg);
    ft_catalog_release(old);
}

ft_catalog_t *ft_catalog_pin(ft_catalog_reader_t *rd)
{
    ft_catalog_reader_refresh(rd);
    ft_catalog_t *c = rd->current;
    atomic_long *slot = &c->local_refs[rd->slot];
    atomic_store_explicit(slot, atomic_load_explicit(slot, memory_order_relaxed) + 1, memory_order_release);
    return c;
}

void ft_catalog_unpin(ft_catalog_reader_t *rd, ft_catalog_t *c)
{
    atomic_long *slot = &c->local_refs[rd->slot];
    atomic_store_explicit(slot, atomic_load_explicit(slot, memory_order_relaxed) - 1, memory_order_release);
}

void ft_registry_on_swap(ft_registry_t *reg, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&reg->mutex);
    if (reg->nswap_cbs < FT_CATALOG_MAX_READERS)
        reg->swap_cbs[reg->nswap_cbs++] = (swap_cb_t){fn, arg};
    pthread_mutex_unlock(&reg->mutex);
}

/* Publishes gen; returns the swap time in ms. reload_mutex is held by the caller. */
static double swap_in(ft_registry_t *reg, ft_generation_t *gen)
{
    uint64_t t0 = now_ns();
    pthread_mutex_lock(&reg->mutex);
    ft_catalog_t *old = reg->current;
    ft_catalog_t *next = catalog_with(old, gen, old->version + 1);
    reg->live = ft_mem_realloc(reg->live, (reg->nlive + 1) * sizeof(*reg->live));
    reg->live[reg->nlive++] = gen;
    reg->current = next;
    atomic_store_explicit(&reg->version, next->version, memory_order_release);
    ft_generation_t *replaced = ft_catalog_find(old, gen->product_code);
    if (replaced != NULL)
        replaced->retired_ns = t0;
    old->retired_ns = t0;
    old->next_retired = reg->retired;
    reg->retired = old;
    swap_cb_t cbs[FT_CATALOG_MAX_READERS];
    size_t ncbs = reg->nswap_cbs;
    memcpy(cbs, reg->swap_cbs, ncbs * sizeof(*cbs));
    pthread_cond_signal(&reg->reaper_cond);
    pthread_mutex_unlock(&reg->mutex);
    ft_catalog_release(old); /* the registry's reference */
    for (size_t i = 0; i < ncbs; i++)
        cbs[i].fn(cbs[i].arg);
    return (double)(now_ns() - t0) / 1e6;
}

/* Appends to the product's history, dropping the oldest beyond HISTORY_MAX. reg->mutex held. */
static void remember(ft_registry_t *reg, product_state_t *s, const char *result, unsigned long long generation, const char *reason)
{
    reload_event_t *e = &s->history[s->nhistory++ % HISTORY_MAX];
    free(e->reason);
    *e = (reload_event_t){.seq = ++reg->history_seq,
                          .product = s->code,
                          .at = time(NULL),
                          .result = result,
                          .generation = generation,
                          .reason = reason != NULL ? ft_mem_strdup(reason) : NULL};
}

/* A failed attempt: the generation serving, if any, stays; the reason (which says so) goes to
 * the product's state and history, the log, the load record and the report. reload_mutex held. */
static void fail(ft_registry_t *reg, const char *code, json_t *report, const char *why)
{
    pthread_mutex_lock(&reg->mutex);
    ft_generation_t *serving = ft_catalog_find(reg->current, code);
    unsigned long long serving_number = serving != NULL ? serving->number : 0;
    char *reason =
        serving_number != 0 ? ft_mem_asprintf("%s; generation %llu keeps serving", why, serving_number) : ft_mem_strdup(why);
    product_state_t *s = state_of(reg, code);
    free(s->last_error);
    s->last_error = ft_mem_strdup(reason);
    s->last_error_at = time(NULL);
    remember(reg, s, "failed", serving_number, reason);
    reg->failures++;
    pthread_mutex_unlock(&reg->mutex);
    ft_counter_inc(ft_metric_series(&load_failures_total, code));
    ft_log_product(FT_LOG_ERROR, NULL, code, "plugin %s: load failed: %s", code, reason);
    if (reg->record != NULL)
        reg->record(reg->arg, code, NULL, "failed", reason);
    if (report != NULL) {
        json_t *item = json_pack("{s:s, s:s, s:s}", "product", code, "result", "failed", "reason", reason);
        if (serving_number != 0)
            json_object_set_new(item, "serving_generation", json_integer((json_int_t)serving_number));
        json_array_append_new(report, item);
    }
    free(reason);
}

/* The product's JSON Schemas, compiled once per generation; a schema outside the supported
 * subset refuses the plugin. */
static int compile_schemas(ft_generation_t *g, char *reason, size_t len)
{
    const ft_product_t *p = g->product;
    ft_error_t err = {0};
    if (p->settings_schema != NULL && (g->settings_schema = ft_schema_compile(p->settings_schema, &err)) == NULL) {
        snprintf(reason, len, "%s: settings_schema: %s", g->file_path, err.message);
        return FT_EINVAL;
    }
    g->action_schemas = ft_mem_calloc(p->nactions + 1, sizeof(*g->action_schemas));
    for (size_t i = 0; i < p->nactions; i++) {
        if (p->actions[i].input_schema == NULL)
            continue;
        if ((g->action_schemas[i] = ft_schema_compile(p->actions[i].input_schema, &err)) == NULL) {
            snprintf(reason, len, "%s: actions[%zu] %s: input_schema: %s", g->file_path, i, p->actions[i].name, err.message);
            return FT_EINVAL;
        }
    }
    return FT_OK;
}

/* Loads the file at path (owned, freed here) as the next generation of code. reload_mutex held. */
static int reload_path(ft_registry_t *reg, const char *code, char *path, int force, json_t *report)
{
    ft_error_t err = {0};
    char reason[sizeof(err.message) + 64];
    int rc = FT_OK;
    ft_generation_t *gen = NULL;
    uint64_t t0 = now_ns();

    pthread_mutex_lock(&reg->mutex);
    ft_generation_t *serving = ft_catalog_find(reg->current, code);
    unsigned long long prev = serving != NULL ? serving->number : 0;
    char prev_hash[65] = "";
    if (serving != NULL)
        memcpy(prev_hash, serving->loaded.file_hash, sizeof(prev_hash));
    unsigned long long number = state_of(reg, code)->last_number + 1;
    unsigned long long tag = ++reg->load_tag;
    pthread_mutex_unlock(&reg->mutex);

    if (!force && serving != NULL) {
        char hash[65];
        if (ft_file_sha256(path, hash, &err) == FT_OK && strcmp(hash, prev_hash) == 0) {
            if (report != NULL)
                json_array_append_new(report, json_pack("{s:s, s:s, s:I, s:s}", "product", code, "result", "unchanged",
                                                        "generation", (json_int_t)prev, "sha256", prev_hash));
            goto out;
        }
    }

    ft_loaded_t loaded;
    if ((rc = ft_plugin_load(path, reg->runtime_dir, tag, &loaded, &err)) != FT_OK) {
        snprintf(reason, sizeof(reason), "%s: %s", path, err.message);
        fail(reg, code, report, reason);
        goto out;
    }
    if (strcmp(loaded.product->code, code) != 0) {
        snprintf(reason, sizeof(reason), "%s declares product %s; the file must be named %s.so", path, loaded.product->code,
                 loaded.product->code);
        ft_plugin_unload(&loaded);
        rc = FT_EINVAL;
        fail(reg, code, report, reason);
        goto out;
    }
    if ((rc = ft_product_validate(loaded.product, path, &err)) != FT_OK) {
        ft_plugin_unload(&loaded);
        fail(reg, code, report, err.message);
        goto out;
    }
    char init_reason[256];
    int init_rc = ft_invoke_init(loaded.product, reg->api, init_reason, sizeof(init_reason));
    if (init_rc != FTP_OK) {
        snprintf(reason, sizeof(reason), "%s: init returned %s (%d)%s%s", path, ft_plugin_status_name(init_rc), init_rc,
                 init_reason[0] != '\0' ? ": " : "", init_reason);
        ft_plugin_unload(&loaded);
        rc = FT_EINVAL;
        fail(reg, code, report, reason);
        goto out;
    }
    gen = ft_mem_calloc(1, sizeof(*gen));
    gen->product_code = ft_mem_strdup(code);
    gen->number = number;
    gen->file_path = path;
    path = NULL;
    gen->loaded = loaded;
    gen->product = loaded.product;
    gen->loaded_at = time(NULL);
    build_gen_json(gen);
    if ((rc = compile_schemas(gen, reason, sizeof(reason))) != FT_OK) {
        ft_invoke_fini(gen->product);
        free_gen(gen);
        fail(reg, code, report, reason);
        goto out;
    }
    if (reg->sync != NULL && (rc = reg->sync(reg->arg, gen, &err)) != FT_OK) {
        snprintf(reason, sizeof(reason), "catalog sync: %s", err.message);
        ft_invoke_fini(gen->product);
        free_gen(gen);
        fail(reg, code, report, reason);
        goto out;
    }
    const char *result = prev != 0 ? "reloaded" : "loaded";
    pthread_mutex_lock(&reg->mutex);
    product_state_t *state = state_of(reg, code);
    state->last_number = number;
    free(state->last_error);
    state->last_error = NULL;
    remember(reg, state, result, number, NULL);
    reg->reloads++;
    pthread_mutex_unlock(&reg->mutex);
    ft_counter_inc(ft_metric_series(&loads_total, code));
    double swap_ms = swap_in(reg, gen);
    ft_log_product(FT_LOG_INFO, NULL, code, "plugin %s: generation %llu %s (version %s, ABI %u.%u, sha256 %.12s, swap %.3f ms)",
                   code, number, result, gen->product->version, gen->product->abi_major, gen->product->abi_minor,
                   gen->loaded.file_hash, swap_ms);
    if (reg->record != NULL)
        reg->record(reg->arg, code, gen, result, NULL);
    if (report != NULL) {
        json_t *item = json_pack("{s:s, s:s, s:I, s:s, s:s, s:f, s:f}", "product", code, "result", result, "generation",
                                 (json_int_t)number, "version", gen->product->version, "sha256", gen->loaded.file_hash, "swap_ms",
                                 swap_ms, "load_ms", (double)(now_ns() - t0) / 1e6);
        if (prev != 0)
            json_object_set_new(item, "previous_generation", json_integer((json_int_t)prev));
        json_array_append_new(report, item);
    }
out:
    free(path);
    return rc;
}

/* Loads <dir>/<code>.so as the next generation of code. reload_mutex held. */
static int reload_one(ft_registry_t *reg, const char *code, int force, json_t *report)
{
    return reload_path(reg, code, ft_mem_asprintf("%s/%s.so", reg->plugin_dir, code), force, report);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A serving product whose file is gone from the directory: nothing to load, and no way to
 * tell a deploy in progress from a removal, so the generation keeps serving and the attempt
 * fails saying so. Returns how many of `codes` (present files; NULL with n 0: none) miss. */
static int missing_files(ft_registry_t *reg, char *const *codes, size_t n, const char *only, json_t *report)
{
    char **gone = NULL;
    size_t ngone = 0;
    pthread_mutex_lock(&reg->mutex);
    for (size_t i = 0; i < reg->current->count; i++) {
        const char *code = reg->current->gens[i]->product_code;
        int present = 0;
        for (size_t k = 0; k < n && !present; k++)
            present = strcmp(codes[k], code) == 0;
        if (present || (only != NULL && strcmp(only, code) != 0))
            continue;
        gone = ft_mem_realloc(gone, (ngone + 1) * sizeof(char *));
        gone[ngone++] = ft_mem_asprintf("%s/%s.so", reg->plugin_dir, code);
    }
    pthread_mutex_unlock(&reg->mutex);
    for (size_t i = 0; i < ngone; i++) {
        char *why = ft_mem_asprintf("%s: file missing", gone[i]);
        char *code = strrchr(gone[i], '/') + 1;
        code[strlen(code) - 3] = '\0';
        fail(reg, code, report, why);
        free(why);
        free(gone[i]);
    }
    free(gone);
    return (int)ngone;
}

/* err gets the reason of every failed product in the report (one product: the reason alone). */
static int failures_of(const json_t *report, const char *product, ft_error_t *err)
{
    char text[sizeof(err->message)] = "";
    size_t used = 0, i;
    json_t *item;
    json_array_foreach(report, i, item)
    {
        if (strcmp(json_string_value(json_object_get(item, "result")), "failed") != 0 || used >= sizeof(text) - 1)
            continue;
        const char *reason = json_string_value(json_object_get(item, "reason"));
        int n = product != NULL ? snprintf(text + used, sizeof(text) - used, "%s", reason)
                                : snprintf(text + used, sizeof(text) - used, "%s%s: %s", used > 0 ? " | " : "",
                                           json_string_value(json_object_get(item, "product")), reason);
        used += n > 0 ? (size_t)n : 0;
    }
    return ft_error_set(err, FT_EINVAL, "%s", text);
}

int ft_registry_dir_products(const ft_registry_t *reg, char ***codes_out, size_t *n_out, ft_error_t *err)
{
    DIR *d = opendir(reg->plugin_dir);
    if (d == NULL)
        return ft_error_set(err, FT_EIO, "plugin directory %s: %s", reg->plugin_dir, strerror(errno));
    char **codes = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len <= 3 || strcmp(de->d_name + len - 3, ".so") != 0 || de->d_name[0] == '.')
            continue;
        codes = ft_mem_realloc(codes, (n + 1) * sizeof(char *));
        codes[n++] = ft_mem_strndup(de->d_name, len - 3);
    }
    closedir(d);
    if (n > 1)
        qsort(codes, n, sizeof(char *), cmp_str);
    *codes_out = codes;
    *n_out = n;
    return FT_OK;
}

static int listed(const char *const *list, const char *code)
{
    for (; list != NULL && *list != NULL; list++)
        if (strcmp(*list, code) == 0)
            return 1;
    return 0;
}

/* Hands the report out (or drops it), with err naming the failures. reload_mutex held. */
static int finish(ft_registry_t *reg, int rc, const char *product, json_t *report, json_t **report_out, ft_error_t *err)
{
    if (rc == FT_EINVAL)
        failures_of(report, product, err);
    pthread_mutex_unlock(&reg->reload_mutex);
    if (report_out != NULL)
        *report_out = report;
    else
        json_decref(report);
    return rc;
}

int ft_registry_reload(ft_registry_t *reg, const char *product, int force, const char *const *skip, json_t **report_out,
                       ft_error_t *err)
{
    json_t *report = json_array();
    int rc = FT_OK;
    pthread_mutex_lock(&reg->reload_mutex);
    if (product != NULL) {
        char *path = ft_mem_asprintf("%s/%s.so", reg->plugin_dir, product);
        struct stat st;
        int exists = stat(path, &st) == 0;
        free(path);
        if (exists && listed(skip, product))
            rc = FT_OK;
        else if (exists)
            rc = reload_one(reg, product, force, report) != FT_OK ? FT_EINVAL : FT_OK;
        else if (missing_files(reg, NULL, 0, product, report) > 0)
            rc = FT_EINVAL;
        else
            rc = ft_error_set(err, FT_ENOTFOUND, "no plugin file %s.so in %s", product, reg->plugin_dir);
        return finish(reg, rc, product, report, report_out, err);
    }
    char **codes = NULL;
    size_t n = 0;
    if ((rc = ft_registry_dir_products(reg, &codes, &n, err)) != FT_OK)
        return finish(reg, rc, product, report, report_out, err);
    for (size_t i = 0; i < n; i++)
        if (!listed(skip, codes[i]) && reload_one(reg, codes[i], force, report) != FT_OK)
            rc = FT_EINVAL;
    if (missing_files(reg, codes, n, NULL, report) > 0)
        rc = FT_EINVAL;
    for (size_t i = 0; i < n; i++)
        free(codes[i]);
    free(codes);
    return finish(reg, rc, product, report, report_out, err);
}

int ft_registry_load_file(ft_registry_t *reg, const char *product, const char *path, int force, json_t **report_out,
                          ft_error_t *err)
{
    json_t *report = json_array();
    pthread_mutex_lock(&reg->reload_mutex);
    int rc = reload_path(reg, product, ft_mem_strdup(path), force, report) != FT_OK ? FT_EINVAL : FT_OK;
    return finish(reg, rc, product, report, report_out, err);
}

const char *ft_registry_runtime_dir(const ft_registry_t *reg)
{
    return reg->runtime_dir;
}

const char *ft_registry_plugin_dir(const ft_registry_t *reg)
{
    return reg->plugin_dir;
}

static json_t *time_json(time_t t)
{
    char buf[32];
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

static int cmp_event(const void *a, const void *b)
{
    unsigned long long x = (*(reload_event_t *const *)a)->seq, y = (*(reload_event_t *const *)b)->seq;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Every product's kept attempts, newest first. reg->mutex held. */
static json_t *history_json(ft_registry_t *reg)
{
    reload_event_t **all = ft_mem_calloc(reg->nstates * HISTORY_MAX + 1, sizeof(*all));
    size_t n = 0;
    for (size_t i = 0; i < reg->nstates; i++) {
        product_state_t *s = &reg->states[i];
        for (unsigned long long k = 0; k < s->nhistory && k < HISTORY_MAX; k++)
            all[n++] = &s->history[k];
    }
    if (n > 1)
        qsort(all, n, sizeof(*all), cmp_event);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        const reload_event_t *e = all[i];
        json_t *item = json_pack("{s:s, s:o, s:s}", "product", e->product, "at", time_json(e->at), "result", e->result);
        if (e->reason == NULL)
            json_object_set_new(item, "generation", json_integer((json_int_t)e->generation));
        else if (e->generation != 0)
            json_object_set_new(item, "serving_generation", json_integer((json_int_t)e->generation));
        if (e->reason != NULL)
            json_object_set_new(item, "reason", json_string(e->reason));
        json_array_append_new(list, item);
    }
    free(all);
    return list;
}

json_t *ft_registry_status(ft_registry_t *reg)
{
    json_t *list = json_array();
    pthread_mutex_lock(&reg->mutex);
    for (size_t i = 0; i < reg->nlive; i++) {
        ft_generation_t *g = reg->live[i];
        int active = in_catalog(reg->current, g);
        char abi[16];
        snprintf(abi, sizeof(abi), "%u.%u", g->product->abi_major, g->product->abi_minor);
        json_t *item = json_pack("{s:s, s:I, s:s, s:s, s:s, s:o, s:s, s:s}", "product", g->product_code, "generation",
                                 (json_int_t)g->number, "state", active ? "active" : "draining", "version", g->product->version,
                                 "abi", abi, "loaded_at", time_json(g->loaded_at), "file", g->file_path, "file_hash",
                                 g->loaded.file_hash);
        if (!active) {
            char why[160];
            snprintf(why, sizeof(why), "replaced; waiting for requests and jobs that started on it%s",
                     g->alerted ? " (drain timed out, alert raised)" : "");
            json_object_set_new(item, "reason", json_string(why));
        }
        product_state_t *s = state_of(reg, g->product_code);
        if (active && s->last_error != NULL)
            json_object_set_new(item, "last_reload_error",
                                json_pack("{s:o, s:s}", "at", time_json(s->last_error_at), "reason", s->last_error));
        json_array_append_new(list, item);
    }
    for (size_t i = 0; i < reg->nstates; i++) {
        product_state_t *s = &reg->states[i];
        if (ft_catalog_find(reg->current, s->code) != NULL || s->last_error == NULL)
            continue;
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:o}", "product", s->code, "state", "failed", "reason",
                                              s->last_error, "failed_at", time_json(s->last_error_at)));
    }
    json_t *history = history_json(reg);
    pthread_mutex_unlock(&reg->mutex);
    return json_pack("{s:o, s:o}", "plugins", list, "reload_history", history);
}

void ft_registry_counts(ft_registry_t *reg, unsigned long long *reloads, unsigned long long *failures,
                        unsigned long long *drain_timeouts, unsigned *draining)
{
    pthread_mutex_lock(&reg->mutex);
    *reloads = reg->reloads;
    *failures = reg->failures;
    *drain_timeouts = reg->drain_timeouts;
    unsigned n = 0;
    for (size_t i = 0; i < reg->nlive; i++)
        n += !in_catalog(reg->current, reg->live[i]);
    *draining = n;
    pthread_mutex_unlock(&reg->mutex);
}
