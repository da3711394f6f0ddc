/*
 * Farutech plugin ABI, version 1.2: the one header a product team compiles against.
 *
 * A product is one shared object exporting one function, ftp_plugin_entry(), which returns a
 * static descriptor: the product's modules, features, plans, settings schema, tenant-schema
 * migrations, lifecycle steps and actions, plus init/fini. The host reaches back through the
 * ftp_host_api_t vtable it hands to init and to every step; a plugin links nothing of the host
 * and sees no h2o, libuv or libpq type.
 *
 * Versioning
 *   - header.abi_major must equal the host's; header.abi_minor must be <= the host's.
 *   - New fields are only ever appended, to ftp_plugin_t, to ftp_host_api_t and to the table
 *     item structs. The host copies min(struct_size, its own size) into zeroed memory, so an
 *     older plugin reads as if it had set every newer field to zero. Items are read through
 *     ftp_table_t.item_size in the same way.
 *   - A plugin calls a host function added after ABI 1.0 only after FTP_HAS(api, fn): a host
 *     of an older minor hands a shorter ftp_host_api_t (its struct_size says how long).
 *
 * Ownership
 *   - Everything the descriptor points to is static data of the plugin. The host deep-copies
 *     it at load, so the plugin may be unloaded once no work of its generation is in flight.
 *   - Arguments passed to a plugin callback are borrowed for the duration of the call.
 *   - Memory that crosses the boundary and outlives a call is allocated with api->alloc and
 *     freed with api->free (an action's output, for instance), never with malloc/free.
 *   - Results of api->db_exec belong to the plugin until api->result_free.
 *
 * Rules for plugins (the host's loader lint checks the first three on every build)
 *   - Export only ftp_plugin_entry (build with FarutechPlugin.cmake: hidden visibility and a
 *     version script).
 *   - No threads of your own (pthread_create), no thread-local destructors
 *     (pthread_key_create), no atexit/at_quick_exit, no -z nodelete: the host unloads old
 *     generations while the process keeps running.
 *   - No side effects in constructors; do work in init().
 *   - Never exit, abort or raise: report failure through return codes and api->set_error
 *     (api->set_init_error in init).
 *   - Steps must be idempotent: a step may run again after a crash or a retry. A step gets a
 *     database transaction of its own; everything it writes commits or rolls back with it.
 *   - Keep no pointer into host memory after a call returns.
 *
 * Invocations (steps and actions)
 *   - Each runs in its own transaction on the instance's database: the shared tenant database
 *     (Standard tier) or the instance's own (Enterprise tier). The product's schema (named
 *     after the product code) comes first on the search_path and farutech.tenant_id holds the
 *     instance id, in both tiers.
 *   - Before the plugin runs, the host brings the product's tenant schema up to date with the
 *     declared migrations (so a migration added by a new plugin version reaches instances
 *     provisioned earlier on their next step or action). apply_tenant_migrations may also be
 *     called explicitly; it is idempotent.
 *   - In the Standard tier the plugin's statements run as the role farutech_tenant, with
 *     SELECT/INSERT/UPDATE/DELETE on the product's tables and USAGE on its sequences, under
 *     row-level security. Policies should read the tenant with
 *     nullif(current_setting('farutech.tenant_id', true), '')::uuid.
 *   - feature() answers with the instance's entitlements at the time of the invocation, during
 *     provisioning too. A limit that is off reads as 0 (nothing allowed).
 *     FEATURES_CHANGED steps run after a change of entitlements, not after provisioning.
 *   - setting() sees the settings as stored: validated, with the schema's defaults filled in.
 *   - Actions run only on active instances, and only when their required feature is on.
 *     The action's return code becomes the HTTP answer: FTP_OK 200 with *output_json (or {}),
 *     FTP_E_INVALID 422, FTP_E_NOTFOUND 404, FTP_E_CONFLICT 409, retryable codes 503, others 500,
 *     with the set_error text as the problem's detail. The host frees *output_json in every case.
 *   - Events a step emits are written to the outbox only if the step commits; their ids derive
 *     from the job, the step and their order, so a step that runs again emits the same ids and
 *     consumers, which deduplicate by id, see each once.
 *
 * Error codes are stable and never renumbered. FTP_IS_RETRYABLE tells the host whether a
 * failed step is worth another attempt.
 */
#ifndef FARUTECH_PLUGIN_H
#define FARUTECH_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FTP_ABI_MAGIC 0x31505446u /* "FTP1" in memory on a little-endian machine */
#define FTP_ABI_MAJOR 1
#define FTP_ABI_MINOR 2

#define FTP_BYTE_ORDER_LITTLE 1
#define FTP_BYTE_ORDER_BIG 2
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define FTP_BYTE_ORDER FTP_BYTE_ORDER_BIG
#else
#define FTP_BYTE_ORDER FTP_BYTE_ORDER_LITTLE
#endif

#if defined(__GNUC__)
#define FTP_EXPORT __attribute__((visibility("default")))
#define FTP_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define FTP_EXPORT
#define FTP_PRINTF(fmt, args)
#endif

/* ---------------------------------------------------------------- status codes */

enum {
    FTP_OK = 0,
    FTP_E_RETRY = -1,       /* transient failure: try the step again later */
    FTP_E_FATAL = -2,       /* permanent failure: retrying cannot help */
    FTP_E_INVALID = -3,     /* input, settings or state are invalid (permanent) */
    FTP_E_NOTFOUND = -4,    /* something the step needs does not exist (permanent) */
    FTP_E_CONFLICT = -5,    /* a uniqueness or state conflict (permanent) */
    FTP_E_UNAVAILABLE = -6, /* a dependency (the database) is unreachable (transient) */
    FTP_E_TIMEOUT = -7,     /* the step ran out of time (transient) */
    FTP_E_NOMEM = -8,       /* allocation failed (transient) */
};

#define FTP_IS_RETRYABLE(rc) ((rc) == FTP_E_RETRY || (rc) == FTP_E_UNAVAILABLE || (rc) == FTP_E_TIMEOUT || (rc) == FTP_E_NOMEM)

/* ---------------------------------------------------------------- enumerations */

enum { FTP_LOG_DEBUG = 0, FTP_LOG_INFO = 1, FTP_LOG_WARN = 2, FTP_LOG_ERROR = 3 };

typedef enum {
    FTP_FEATURE_FLAG = 1,  /* on or off */
    FTP_FEATURE_LIMIT = 2, /* a number: max_users = 25, storage_gb = 50 */
} ftp_feature_kind_t;

typedef enum {
    FTP_TIER_STANDARD = 1,   /* pooled: the product's schema in the shared tenant database, rows keyed by tenant_id */
    FTP_TIER_ENTERPRISE = 2, /* siloed: the instance has a database of its own */
} ftp_tier_t;

typedef enum {
    FTP_LIFECYCLE_PROVISION = 1,
    FTP_LIFECYCLE_DEPROVISION = 2,
    FTP_LIFECYCLE_SUSPEND = 3,
    FTP_LIFECYCLE_RESUME = 4,
    FTP_LIFECYCLE_FEATURES_CHANGED = 5,
} ftp_lifecycle_t;

/* ---------------------------------------------------------------- host services */

typedef struct ftp_ctx ftp_ctx_t;       /* one step or action invocation; opaque */
typedef struct ftp_result ftp_result_t; /* rows returned by db_exec; opaque */

typedef struct ftp_host_api {
    uint32_t struct_size; /* sizeof(ftp_host_api_t) as the host compiled it */
    uint16_t abi_major;
    uint16_t abi_minor;

    /* Logging; ctx may be NULL outside an invocation (init, fini). The line carries the
     * product, and inside an invocation the instance, job and correlation ids. */
    void (*log)(ftp_ctx_t *ctx, int level, const char *fmt, ...) FTP_PRINTF(3, 4);

    /* The host's allocator: for memory that crosses the boundary and outlives a call. */
    void *(*alloc)(size_t size);
    void (*free)(void *p);

    /* The invocation. Strings are borrowed until the callback returns. */
    const char *(*instance_id)(ftp_ctx_t *ctx);   /* global UUID of the tenant instance */
    const char *(*instance_code)(ftp_ctx_t *ctx); /* unique within its customer: "norte" */
    const char *(*customer_id)(ftp_ctx_t *ctx);   /* UUID of the paying customer */
    int (*tier)(ftp_ctx_t *ctx);                  /* ftp_tier_t */
    /* The SQL schema that holds the product's tables for this invocation (already first on
     * the search_path). Quote it with db_ident when you build SQL text. */
    const char *(*schema)(ftp_ctx_t *ctx);
    /* An instance setting (validated against settings_schema) as text, like payload_get, or NULL. */
    const char *(*setting)(ftp_ctx_t *ctx, const char *key);
    /* The lifecycle event's payload as JSON text (features-changed: {"enabled":[..],
     * "disabled":[..],"limits":{..}}; actions: the validated input), or NULL. */
    const char *(*payload_json)(ftp_ctx_t *ctx);
    /* One top-level member of the payload as text (strings unquoted, numbers and booleans as
     * written, objects and arrays as JSON), or NULL when absent or null. */
    const char *(*payload_get)(ftp_ctx_t *ctx, const char *key);
    /* The instance's entitlement for a feature: returns 1 and fills *value (flag: 1,
     * limit: the number) when it is on, 0 when it is off or unknown. value may be NULL. */
    int (*feature)(ftp_ctx_t *ctx, const char *code, int64_t *value);

    /* Database, inside the invocation's transaction. Parameters are text ($1, $2, ...; a NULL
     * entry is SQL NULL; the server infers their types, so cast where it cannot), results are
     * text ("t"/"f" for booleans). Returns FTP_OK, FTP_E_CONFLICT (unique, foreign key or check
     * violation), FTP_E_UNAVAILABLE (connection lost), FTP_E_TIMEOUT (statement timeout),
     * FTP_E_RETRY (serialization failure, deadlock) or FTP_E_FATAL (any other SQL error). On
     * every failure the server's message becomes the invocation's error (set_error may refine
     * it). result may be NULL when no rows matter. */
    int (*db_exec)(ftp_ctx_t *ctx, const char *sql, int nparams, const char *const *params, ftp_result_t **result);
    int (*result_rows)(const ftp_result_t *result);
    /* NULL for SQL NULL; the string lives until result_free. */
    const char *(*result_value)(const ftp_result_t *result, int row, int col);
    void (*result_free)(ftp_result_t *result);
    /* Applies the product's tenant-schema migrations for this invocation's tier, in its
     * transaction, each once (recorded in the target database). */
    int (*apply_tenant_migrations)(ftp_ctx_t *ctx);
    /* Quotes an SQL identifier into out, which needs 2 * strlen(name) + 3 bytes;
     * FTP_E_INVALID when it is smaller. */
    int (*db_ident)(const char *name, char *out, size_t outlen);

    /* Records an event (CloudEvents type suffix, e.g. "vet.clinic.seeded.v1" and a JSON object)
     * in the transactional outbox; it is published only if the invocation commits. */
    int (*emit_event)(ftp_ctx_t *ctx, const char *type, const char *data_json);

    /* Explains a failure; the text is kept with the job's attempt and shown to operators. */
    void (*set_error)(ftp_ctx_t *ctx, const char *fmt, ...) FTP_PRINTF(2, 3);

    /* --- ABI 1.2 (check FTP_HAS(api, set_init_error) first) --- */

    /* Explains why init is about to return non-zero (there is no ctx in init for set_error).
     * The host copies the text; it shows in the reload answer, in GET /api/v1/plugins, in the
     * load history and in the audit row of the reload, after the return code's name. Call it
     * only from init, on init's thread; elsewhere it is ignored. The last call wins. */
    void (*set_init_error)(const char *fmt, ...) FTP_PRINTF(1, 2);
} ftp_host_api_t;

/* True when the host provides `fn` (an entry added after ABI 1.0 may be absent). */
#define FTP_HAS(api, fn)                                                                                                      \
    ((api)->struct_size >= offsetof(ftp_host_api_t, fn) + sizeof((api)->fn) && (api)->fn != NULL)

/* ---------------------------------------------------------------- declarative tables */

/* A table of `count` items of `item_size` bytes each. Build it with FTP_TABLE(array). */
typedef struct ftp_table {
    const void *items;
    uint32_t count;
    uint32_t item_size;
} ftp_table_t;

#define FTP_TABLE(array) {(array), (uint32_t)(sizeof(array) / sizeof((array)[0])), (uint32_t)sizeof((array)[0])}
#define FTP_NO_TABLE {NULL, 0, 0}

/* Lists inside items are NULL-terminated arrays of codes, or NULL for none. */
typedef const char *const *ftp_codes_t;

typedef struct ftp_module {
    const char *code; /* [a-z][a-z0-9_]{0,62}, unique in the product */
    const char *name;
    const char *description;
    ftp_codes_t depends; /* modules that must be enabled with this one */
} ftp_module_t;

typedef struct ftp_feature {
    const char *code;   /* unique in the product; the OpenFeature flag key */
    const char *module; /* the module it belongs to */
    const char *name;
    const char *description;
    uint32_t kind;         /* ftp_feature_kind_t */
    int64_t default_value; /* a limit's value when switched on without one (flags: 1) */
    ftp_codes_t requires;  /* features that must be on for this one to be on */
    const char *unit;      /* limits: "users", "GB"; may be NULL */
} ftp_feature_t;

typedef struct ftp_plan_feature {
    const char *feature; /* a feature code */
    int64_t value;       /* limits: the value; flags: 1 */
} ftp_plan_feature_t;

typedef struct ftp_plan {
    const char *code; /* unique in the product */
    const char *name;
    const char *description;
    uint32_t version;     /* bump whenever the feature set or a value changes */
    ftp_table_t features; /* of ftp_plan_feature_t */
    uint32_t trial_days;  /* 0: no trial */
} ftp_plan_t;

/* A tenant-schema migration. pooled_sql runs once per product in the shared tenant database
 * (tables must carry tenant_id uuid and row-level security keyed on
 * current_setting('farutech.tenant_id')); siloed_sql runs in each Enterprise instance's own
 * database. Either may be NULL when the migration does not apply to a tier. Both run with the
 * product's schema first on the search_path. */
typedef struct ftp_migration {
    uint32_t version; /* 1, 2, 3 ... strictly increasing */
    const char *name;
    const char *pooled_sql;
    const char *siloed_sql;
} ftp_migration_t;

typedef int (*ftp_step_fn)(const ftp_host_api_t *api, ftp_ctx_t *ctx);

typedef struct ftp_step {
    uint32_t lifecycle; /* ftp_lifecycle_t */
    const char *name;   /* unique within its lifecycle; steps run in table order */
    uint32_t version;   /* recorded with each run; bump when the step's behaviour changes */
    uint32_t timeout_ms;
    ftp_step_fn run;        /* required; idempotent */
    ftp_step_fn compensate; /* optional: undoes run when a later step fails for good */
} ftp_step_t;

/* An action served as POST /api/v1/instances/{id}/actions/{name}. input_json has been
 * validated against input_schema; *output_json (api->alloc, or NULL) becomes the response. */
typedef int (*ftp_action_fn)(const ftp_host_api_t *api, ftp_ctx_t *ctx, const char *input_json, char **output_json);

typedef struct ftp_action {
    const char *name; /* [a-z][a-z0-9_-]*, unique in the product */
    const char *description;
    const char *input_schema;     /* JSON Schema of the input object; NULL = empty object */
    const char *required_feature; /* the action is refused unless this feature is on; may be NULL */
    ftp_action_fn handler;        /* required */
} ftp_action_t;

/* ---------------------------------------------------------------- the descriptor */

typedef struct ftp_header {
    uint32_t magic;       /* FTP_ABI_MAGIC */
    uint16_t abi_major;   /* FTP_ABI_MAJOR the plugin was built with */
    uint16_t abi_minor;   /* FTP_ABI_MINOR the plugin was built with */
    uint32_t struct_size; /* sizeof(ftp_plugin_t) the plugin was built with */
    uint8_t pointer_size; /* sizeof(void *) */
    uint8_t byte_order;   /* FTP_BYTE_ORDER */
    uint16_t reserved;    /* 0 */
} ftp_header_t;

typedef struct ftp_plugin {
    ftp_header_t header; /* first, always: FTP_HEADER_INIT */

    const char *product_code; /* [a-z][a-z0-9_]{0,30}: "vet", "erp" */
    const char *product_name;
    const char *description;
    const char *version; /* the plugin's own version, e.g. "1.4.0" */

    const char *settings_schema; /* JSON Schema of an instance's settings object; NULL = none */

    ftp_table_t modules;    /* ftp_module_t */
    ftp_table_t features;   /* ftp_feature_t */
    ftp_table_t plans;      /* ftp_plan_t */
    ftp_table_t migrations; /* ftp_migration_t */
    ftp_table_t steps;      /* ftp_step_t */
    ftp_table_t actions;    /* ftp_action_t */

    /* Required. init runs once per loaded generation, before any step; returning non-zero
     * (an FTP_E_* code) refuses the load (the previous generation keeps serving), and
     * api->set_init_error says why. fini runs before unload. */
    int (*init)(const ftp_host_api_t *api);
    void (*fini)(void);

    /* --- ABI 1.1 --- */
    const char *vendor;      /* who builds the product; may be NULL */
    const char *support_url; /* where operators report problems; may be NULL */
} ftp_plugin_t;

/* The size of ftp_plugin_t in ABI 1.0, for hosts and tests reading older plugins. */
#define FTP_PLUGIN_SIZE_1_0 offsetof(ftp_plugin_t, vendor)

#define FTP_HEADER_INIT {FTP_ABI_MAGIC, FTP_ABI_MAJOR, FTP_ABI_MINOR, (uint32_t)sizeof(ftp_plugin_t), (uint8_t)sizeof(void *), FTP_BYTE_ORDER, 0}

/* The one exported symbol. */
#define FTP_ENTRY_SYMBOL "ftp_plugin_entry"
typedef const ftp_plugin_t *(*ftp_entry_fn)(void);

/* Defines the entry function returning `descriptor` (a static ftp_plugin_t). */
#define FTP_DEFINE_PLUGIN(descriptor)                                                                                         \
    FTP_EXPORT const ftp_plugin_t *ftp_plugin_entry(void);                                                                     \
    FTP_EXPORT const ftp_plugin_t *ftp_plugin_entry(void)                                                                      \
    {                                                                                                                          \
        return &(descriptor);                                                                                                  \
    }

#ifdef __cplusplus
}
#endif

#endif
