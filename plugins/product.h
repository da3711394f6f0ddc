/*
 * A product as the host keeps it: a deep copy of a plugin's descriptor, owned by the host and
 * immutable once built. Function pointers stay valid while the generation's shared object is
 * loaded, which the generation's reference count guarantees.
 */
#ifndef FT_PRODUCT_H
#define FT_PRODUCT_H

#include <farutech/plugin.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ft_module {
    char *code, *name, *description;
    char **depends;
    size_t ndepends;
} ft_module_t;

typedef struct ft_feature {
    char *code, *module, *name, *description, *unit;
    int kind; /* FTP_FEATURE_FLAG or FTP_FEATURE_LIMIT */
    int64_t default_value;
    char **requires;
    size_t nrequires;
} ft_feature_t;

typedef struct ft_plan_item {
    char *feature;
    int64_t value;
} ft_plan_item_t;

typedef struct ft_plan {
    char *code, *name, *description;
    uint32_t version, trial_days;
    ft_plan_item_t *items;
    size_t nitems;
    char content_hash[65]; /* of the sorted feature=value list: a changed plan needs a new version */
} ft_plan_t;

typedef struct ft_tenant_migration {
    uint32_t version;
    char *name, *pooled_sql, *siloed_sql;
} ft_tenant_migration_t;

typedef struct ft_step {
    uint32_t lifecycle;
    char *name;
    uint32_t version, timeout_ms;
    ftp_step_fn run, compensate;
} ft_step_t;

typedef struct ft_action {
    char *name, *description, *input_schema, *required_feature;
    ftp_action_fn handler;
} ft_action_t;

typedef struct ft_product {
    char *code, *name, *description, *version, *vendor, *support_url, *settings_schema;
    uint16_t abi_major, abi_minor;
    ft_module_t *modules;
    size_t nmodules;
    ft_feature_t *features;
    size_t nfeatures;
    ft_plan_t *plans;
    size_t nplans;
    ft_tenant_migration_t *migrations;
    size_t nmigrations;
    ft_step_t *steps;
    size_t nsteps;
    ft_action_t *actions;
    size_t nactions;
    int (*init)(const ftp_host_api_t *api);
    void (*fini)(void);
} ft_product_t;

/* Deep-copies a descriptor whose tables are read through their item_size (older or newer
 * item layouts). The result is freed with ft_product_free. */
ft_product_t *ft_product_copy(const ftp_plugin_t *desc);
void ft_product_free(ft_product_t *p);

const ft_module_t *ft_product_module(const ft_product_t *p, const char *code);
const ft_feature_t *ft_product_feature(const ft_product_t *p, const char *code);
const ft_plan_t *ft_product_plan(const ft_product_t *p, const char *code);
const ft_action_t *ft_product_action(const ft_product_t *p, const char *name);
/* Index of a feature in p->features, or -1. */
long ft_product_feature_index(const ft_product_t *p, const char *code);

const char *ft_lifecycle_name(uint32_t lifecycle);
/* The symbolic name of a plugin's return code ("FTP_E_FATAL"); print the number beside it,
 * since a plugin may return a code this host does not know. */
const char *ft_plugin_status_name(int rc);

#endif
