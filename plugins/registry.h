/*
 * The plugin registry: which generation of each product serves right now.
 *
 * A catalog is an immutable snapshot (one generation per product) published through one
 * pointer. HTTP loop threads read it without locks: each keeps a pinned catalog and counts
 * requests on it in a per-thread slot; other threads take a counted reference. A reload
 * builds a new generation (load, validate, init, sync to the database), swaps a new catalog
 * in, and hands the old one to the reaper, which unloads a generation once no catalog that
 * still has readers includes it. A drain that outlasts its bound is reported, never forced.
 */
#ifndef FT_REGISTRY_H
#define FT_REGISTRY_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "core/error.h"
#include "plugins/loader.h"

#define FT_CATALOG_MAX_READERS 64

typedef struct ft_generation {
    char *product_code;
    unsigned long long number; /* 1, 2, 3 ... per product, in this process */
    char *file_path;
    ft_loaded_t loaded;
    const ft_product_t *product;
    time_t loaded_at;
    char *detail_json;     /* GET /api/v1/products/{code} */
    char *plans_json;      /* GET /api/v1/products/{code}/plans */
    char **plan_json;      /* GET /api/v1/products/{code}/plans/{plan}, in product->plans order */
    struct ft_schema *settings_schema;  /* product->settings_schema compiled, or NULL */
    struct ft_schema **action_schemas;  /* each action's input_schema compiled (NULL entries: none) */
    atomic_long refs;      /* catalogs that include this generation */
    uint64_t retired_ns;   /* when it left the current catalog, 0 while current */
    int alerted;           /* its drain passed the bound and was reported */
} ft_generation_t;

typedef struct ft_catalog {
    unsigned long long version;
    size_t count;
    ft_generation_t **gens; /* sorted by product code */
    char *list_json;        /* GET /api/v1/products */
    atomic_long shared_refs;
    atomic_long local_refs[FT_CATALOG_MAX_READERS];
    uint64_t retired_ns;
    struct ft_catalog *next_retired;
} ft_catalog_t;

typedef struct ft_registry ft_registry_t;

/* Writes a generation's catalog rows (products, modules, features, plans) before it serves.
 * Runs on the reloading thread; a failure keeps the previous generation. */
typedef int (*ft_catalog_sync_fn)(void *arg, const ft_generation_t *gen, ft_error_t *err);
/* Records a load attempt (result "loaded", "reloaded" or "failed"). gen is NULL on failure. */
typedef void (*ft_load_record_fn)(void *arg, const char *product, const ft_generation_t *gen, const char *result,
                                  const char *reason);

typedef struct ft_registry_config {
    const char *plugin_dir;
    unsigned drain_timeout_ms;
    const ftp_host_api_t *api;
    ft_catalog_sync_fn sync;
    ft_load_record_fn record;
    void *arg;
} ft_registry_config_t;

ft_registry_t *ft_registry_create(const ft_registry_config_t *cfg, ft_error_t *err);
/* Unloads everything; no reader may hold a catalog any more. */
void ft_registry_destroy(ft_registry_t *reg);

/*
 * Loads (product NULL: every *.so in the directory; else <product>.so). Unchanged files are
 * skipped unless force; so are the products in skip (NULL-terminated, may be NULL), whose files
 * are neither loaded, reported nor "missing". Blocking: never on an HTTP loop thread. Returns
 * FT_OK when every attempted product loaded; *report (may be NULL) gets one object per product:
 * {"product","result":"loaded|reloaded|unchanged|failed","generation","previous_generation",
 *  "serving_generation","version","sha256","reason","swap_ms","load_ms"}. A serving product
 * whose file is gone fails with "file missing; generation N keeps serving". FT_EINVAL when some
 * failed (err: their reasons), FT_ENOTFOUND for a product with neither a file nor a serving
 * generation, FT_EIO for an unreadable directory.
 */
int ft_registry_reload(ft_registry_t *reg, const char *product, int force, const char *const *skip, json_t **report,
                       ft_error_t *err);

/* The products of the directory's *.so files, sorted; the caller frees each code and the array.
 * FT_EIO when the directory cannot be read. */
int ft_registry_dir_products(const ft_registry_t *reg, char ***codes, size_t *n, ft_error_t *err);

/*
 * Loads the file at `path` (anywhere, e.g. a fleet release written to the runtime directory) as
 * the next generation of `product`, with the same checks, swap and drain as a reload; an
 * unchanged file (same SHA-256 as the serving generation) is skipped unless force. Blocking.
 * FT_OK, or FT_EINVAL with err giving the reason (the serving generation, if any, stays);
 * *report as for ft_registry_reload, one entry.
 */
int ft_registry_load_file(ft_registry_t *reg, const char *product, const char *path, int force, json_t **report,
                          ft_error_t *err);

/* The private directory this registry copies plugin files to (removed by ft_registry_destroy:
 * a caller that writes a file there unlinks it again). */
const char *ft_registry_runtime_dir(const ft_registry_t *reg);
/* FT_PLUGIN_DIR as configured. */
const char *ft_registry_plugin_dir(const ft_registry_t *reg);

/* Any thread: a counted reference to the current catalog. */
ft_catalog_t *ft_catalog_acquire(ft_registry_t *reg);
void ft_catalog_release(ft_catalog_t *c);

/* The generation of `code` in a catalog, or NULL. */
ft_generation_t *ft_catalog_find(const ft_catalog_t *c, const char *code);

/* Loop threads: a reader per thread in slot 0..FT_CATALOG_MAX_READERS-1. */
typedef struct ft_catalog_reader {
    ft_registry_t *reg;
    unsigned slot;
    ft_catalog_t *current; /* holds one shared reference */
} ft_catalog_reader_t;

void ft_catalog_reader_attach(ft_registry_t *reg, ft_catalog_reader_t *rd, unsigned slot);
void ft_catalog_reader_detach(ft_catalog_reader_t *rd);
/* Moves the reader to the current catalog if it changed. Call from the reader's thread. */
void ft_catalog_reader_refresh(ft_catalog_reader_t *rd);
/* The reader's catalog with one more request on it, and back. Reader's thread only. */
ft_catalog_t *ft_catalog_pin(ft_catalog_reader_t *rd);
void ft_catalog_unpin(ft_catalog_reader_t *rd, ft_catalog_t *c);

/* Called (on the reloading thread) after every swap; loop threads use it to wake and refresh. */
void ft_registry_on_swap(ft_registry_t *reg, void (*fn)(void *arg), void *arg);

/* GET /api/v1/plugins: {"plugins": every loaded generation (the active one with
 * "last_reload_error" while its product's last attempt failed) and every product whose last
 * load failed and that serves no generation; "reload_history": this process's last attempts per
 * product, newest first, {"product","at","result","generation" | "serving_generation","reason"}}. */
json_t *ft_registry_status(ft_registry_t *reg);

/* Generations that were loaded / are still draining (for metrics and tests). */
void ft_registry_counts(ft_registry_t *reg, unsigned long long *reloads, unsigned long long *failures,
                        unsigned long long *drain_timeouts, unsigned *draining);

#endif
