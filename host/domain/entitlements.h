/*
 * Entitlement resolution: what one instance may use right now. Plan ∪ overrides (an override
 * always beats the plan, both ways), expired overrides ignored, a feature whose requirement is
 * off reported off with the reason, limits resolved, and the whole gated by the subscription's
 * and the instance's state. The result is one immutable, reference-counted record that shares
 * its plan's resolution with every subscriber in the same state and keeps only its differences.
 * Plain C: no SQL, no HTTP.
 */
#ifndef FT_ENTITLEMENTS_H
#define FT_ENTITLEMENTS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/uuid.h"
#include "plugins/product.h"

enum { FT_ENT_SOURCE_NONE, FT_ENT_SOURCE_PLAN, FT_ENT_SOURCE_OVERRIDE };

typedef struct ft_ent_override {
    const char *feature;
    int enabled;
    int has_limit;
    int64_t limit;
    int64_t expires_us; /* 0: never */
    const char *reason; /* may be NULL */
} ft_ent_override_t;

typedef struct ft_ent_plan_item {
    const char *feature;
    int64_t value;
} ft_ent_plan_item_t;

typedef struct ft_ent_input {
    const char *instance_id, *customer_id, *instance_status;
    const char *subscription_status; /* trialing, active, suspended, canceled */
    const char *plan;                /* the plan in force (a due pending change already applied) */
    unsigned plan_version;
    int64_t trial_ends_us;       /* 0: no trial */
    int64_t change_due_us;       /* a scheduled downgrade or cancellation takes effect then; 0: none */
    const ft_ent_plan_item_t *plan_items;
    size_t nplan_items;
    const ft_ent_override_t *overrides;
    size_t noverrides;
    uint64_t version; /* the instance's entitlements_version */
    int64_t now_us;
} ft_ent_input_t;

typedef struct ft_ent_feature {
    const char *code;
    const char *reason; /* why it is on or off, for people */
    int64_t value;      /* limits: the number (0 when off); flags: 1 or 0 */
    int64_t expires_us; /* the override behind it expires then; 0: no expiry */
    uint8_t kind;       /* FTP_FEATURE_FLAG or FTP_FEATURE_LIMIT */
    uint8_t enabled;
    uint8_t source; /* FT_ENT_SOURCE_* */
} ft_ent_feature_t;

/* What every subscriber of one plan version in one state shares: the plan's resolution without
 * overrides (features sorted by code, with their texts) and the parts of the REST document it
 * decides, rendered once. Interned by content, so a base is shared by every record that would
 * hold the same; reference counted by its records. */
typedef struct ft_ent_base {
    struct ft_ent_base *next; /* in the intern table */
    uint64_t hash;
    size_t refs; /* under the intern table's mutex */
    const char *product, *plan, *subscription_status, *instance_status;
    unsigned plan_version;
    size_t nfeatures;
    ft_ent_feature_t *features;
    const char *head; /* "product":...,"instance_status":"..." */
    const char **fragments; /* each feature's "code":{...} in the REST document */
    size_t head_len, *fragment_lens, fragments_len;
} ft_ent_base_t;

/* A feature where an instance differs from its base (an override, or what an override caused). */
typedef struct ft_ent_diff {
    size_t index; /* in the base's features */
    ft_ent_feature_t f;
    const char *fragment; /* its "code":{...} */
    size_t fragment_len;
} ft_ent_diff_t;

/* One instance's record: its base, the features where it differs, and what is its own: 96 bytes
 * for an instance without overrides. Immutable once resolved. */
typedef struct ft_entitlements {
    atomic_int refs;
    uint32_t ndiff;
    uint64_t version;
    int64_t resolved_us;
    int64_t valid_until_us; /* an override expiry, trial end or due change: re-resolve after; INT64_MAX: none */
    ft_ent_base_t *base;
    uint8_t instance_id[16], customer_id[16];
    char etag[19]; /* "\"<16 hex>\"": a hash of everything a client sees */
    ft_ent_diff_t diff[]; /* sorted by index */
} ft_entitlements_t;

#if UINTPTR_MAX == UINT64_MAX
_Static_assert(sizeof(ft_entitlements_t) == 96, "a record without differences is 96 bytes (the README says so)");
#endif

/* Resolves against the product's current definitions. The result has one reference. */
ft_entitlements_t *ft_entitlements_resolve(const ft_product_t *product, const ft_ent_input_t *in);
void ft_entitlements_hold(ft_entitlements_t *e);
void ft_entitlements_release(ft_entitlements_t *e);
const ft_ent_feature_t *ft_entitlements_find(const ft_entitlements_t *e, const char *code);
/* The record's features in code order: count, and the i-th (its base's, or its own difference). */
size_t ft_entitlements_count(const ft_entitlements_t *e);
const ft_ent_feature_t *ft_entitlements_at(const ft_entitlements_t *e, size_t i);
/* Bases interned now. */
size_t ft_entitlements_bases(void);
/* The plugin ABI's entitlement lookup (arg: an ft_entitlements_t, or NULL: nothing is on):
 * 1 with *value when the feature is on, 0 otherwise. */
int ft_entitlements_value(void *arg, const char *code, int64_t *value);

#endif
