/*
 * Deep copy of a plugin descriptor into host-owned memory, and lookups on the result.
 */
#include "plugins/product.h"

#include "core/mem.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_or_null(const char *s)
{
    return s != NULL ? ft_mem_strdup(s) : NULL;
}

static char **dup_codes(ftp_codes_t codes, size_t *n)
{
    *n = 0;
    if (codes == NULL)
        return NULL;
    while (codes[*n] != NULL)
        (*n)++;
    char **out = ft_mem_calloc(*n + 1, sizeof(char *));
    for (size_t i = 0; i < *n; i++)
        out[i] = ft_mem_strdup(codes[i]);
    return out;
}

static void free_codes(char **codes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(codes[i]);
    free(codes);
}

/* Copies item i of a table into `out` (sizeof_out bytes, zero-filled beyond what the plugin has).
 * Every item layout's size is a multiple of the pointer size, so only whole words are copied: an
 * item_size that would cut a pointer in two leaves that field zero instead. */
static void read_item(const ftp_table_t *t, size_t i, void *out, size_t sizeof_out)
{
    memset(out, 0, sizeof_out);
    const char *item = (const char *)t->items + i * t->item_size;
    size_t n = t->item_size < sizeof_out ? t->item_size : sizeof_out;
    memcpy(out, item, n - n % sizeof(void *));
}

static size_t table_count(const ftp_table_t *t)
{
    return t->items != NULL && t->item_size > 0 ? t->count : 0;
}

static int cmp_items(const void *a, const void *b)
{
    return strcmp(((const ft_plan_item_t *)a)->feature ? ((const ft_plan_item_t *)a)->feature : "",
                  ((const ft_plan_item_t *)b)->feature ? ((const ft_plan_item_t *)b)->feature : "");
}

static void plan_hash(ft_plan_t *plan)
{
    ft_plan_item_t *sorted = ft_mem_calloc(plan->nitems, sizeof(*sorted));
    if (plan->nitems > 0)
        memcpy(sorted, plan->items, plan->nitems * sizeof(*sorted));
    if (plan->nitems > 1)
        qsort(sorted, plan->nitems, sizeof(*sorted), cmp_items);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    char line[256];
    for (size_t i = 0; i < plan->nitems; i++) {
        int n = snprintf(line, sizeof(line), "%s=%lld\n", sorted[i].feature ? sorted[i].feature : "", (long long)sorted[i].value);
        EVP_DigestUpdate(md, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    EVP_DigestFinal_ex(md, digest, &dlen);
    EVP_MD_CTX_free(md);
    for (unsigned i = 0; i < dlen && i < 32; i++)
        snprintf(plan->content_hash + 2 * i, 3, "%02x", digest[i]);
    free(sorted);
}

ft_product_t *ft_product_copy(const ftp_plugin_t *d)
{
    ft_product_t *p = ft_mem_calloc(1, sizeof(*p));
    p->code = dup_or_null(d->product_code);
    p->name = dup_or_null(d->product_name);
    p->description = dup_or_null(d->description);
    p->version = dup_or_null(d->version);
    p->vendor = dup_or_null(d->vendor);
    p->support_url = dup_or_null(d->support_url);
    p->settings_schema = dup_or_null(d->settings_schema);
    p->abi_major = d->header.abi_major;
    p->abi_minor = d->header.abi_minor;
    p->init = d->init;
    p->fini = d->fini;

    p->nmodules = table_count(&d->modules);
    p->modules = ft_mem_calloc(p->nmodules, sizeof(ft_module_t));
    for (size_t i = 0; i < p->nmodules; i++) {
        ftp_module_t m;
        read_item(&d->modules, i, &m, sizeof(m));
        p->modules[i].code = dup_or_null(m.code);
        p->modules[i].name = dup_or_null(m.name);
        p->modules[i].description = dup_or_null(m.description);
        p->modules[i].depends = dup_codes(m.depends, &p->modules[i].ndepends);
    }

    p->nfeatures = table_count(&d->features);
    p->features = ft_mem_calloc(p->nfeatures, sizeof(ft_feature_t));
    for (size_t i = 0; i < p->nfeatures; i++) {
        ftp_feature_t f;
        read_item(&d->features, i, &f, sizeof(f));
        ft_feature_t *o = &p->features[i];
        o->code = dup_or_null(f.code);
        o->module = dup_or_null(f.module);
        o->name = dup_or_null(f.name);
        o->description = dup_or_null(f.description);
        o->unit = dup_or_null(f.unit);
        o->kind = (int)f.kind;
        o->default_value = f.default_value;
        o->requires = dup_codes(f.requires, &o->nrequires);
    }

    p->nplans = table_count(&d->plans);
    p->plans = ft_mem_calloc(p->nplans, sizeof(ft_plan_t));
    for (size_t i = 0; i < p->nplans; i++) {
        ftp_plan_t pl;
        read_item(&d->plans, i, &pl, sizeof(pl));
        ft_plan_t *o = &p->plans[i];
        o->code = dup_or_null(pl.code);
        o->name = dup_or_null(pl.name);
        o->description = dup_or_null(pl.description);
        o->version = pl.version;
        o->trial_days = pl.trial_days;
        o->nitems = table_count(&pl.features);
        o->items = ft_mem_calloc(o->nitems, sizeof(ft_plan_item_t));
        for (size_t j = 0; j < o->nitems; j++) {
            ftp_plan_feature_t pf;
            read_item(&pl.features, j, &pf, sizeof(pf));
            o->items[j].feature = dup_or_null(pf.feature);
            o->items[j].value = pf.value;
        }
        plan_hash(o);
    }

    p->nmigrations = table_count(&d->migrations);
    p->migrations = ft_mem_calloc(p->nmigrations, sizeof(ft_tenant_migration_t));
    for (size_t i = 0; i < p->nmigrations; i++) {
        ftp_migration_t m;
        read_item(&d->migrations, i, &m, sizeof(m));
        p->migrations[i].version = m.version;
        p->migrations[i].name = dup_or_null(m.name);
        p->migrations[i].pooled_sql = dup_or_null(m.pooled_sql);
        p->migrations[i].siloed_sql = dup_or_null(m.siloed_sql);
    }

    p->nsteps = table_count(&d->steps);
    p->steps = ft_mem_calloc(p->nsteps, sizeof(ft_step_t));
    for (size_t i = 0; i < p->nsteps; i++) {
        ftp_step_t s;
        read_item(&d->steps, i, &s, sizeof(s));
        p->steps[i].lifecycle = s.lifecycle;
        p->steps[i].name = dup_or_null(s.name);
        p->steps[i].version = s.version;
        p->steps[i].timeout_ms = s.timeout_ms;
        p->steps[i].run = s.run;
        p->steps[i].compensate = s.compensate;
    }

    p->nactions = table_count(&d->actions);
    p->actions = ft_mem_calloc(p->nactions, sizeof(ft_action_t));
    for (size_t i = 0; i < p->nactions; i++) {
        ftp_action_t a;
        read_item(&d->actions, i, &a, sizeof(a));
        p->actions[i].name = dup_or_null(a.name);
        p->actions[i].description = dup_or_null(a.description);
        p->actions[i].input_schema = dup_or_null(a.input_schema);
        p->actions[i].required_feature = dup_or_null(a.required_feature);
        p->actions[i].handler = a.handler;
    }
    return p;
}

void ft_product_free(ft_product_t *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->nmodules; i++) {
        free(p->modules[i].code);
        free(p->modules[i].name);
        free(p->modules[i].description);
        free_codes(p->modules[i].depends, p->modules[i].ndepends);
    }
    for (size_t i = 0; i < p->nfeatures; i++) {
        ft_feature_t *f = &p->features[i];
        free(f->code);
        free(f->module);
        free(f->name);
        free(f->description);
        free(f->unit);
        free_codes(f->requires, f->nrequires);
    }
    for (size_t i = 0; i < p->nplans; i++) {
        free(p->plans[i].code);
        free(p->plans[i].name);
        free(p->plans[i].description);
        for (size_t j = 0; j < p->plans[i].nitems; j++)
            free(p->plans[i].items[j].feature);
        free(p->plans[i].items);
    }
    for (size_t i = 0; i < p->nmigrations; i++) {
        free(p->migrations[i].name);
        free(p->migrations[i].pooled_sql);
        free(p->migrations[i].siloed_sql);
    }
    for (size_t i = 0; i < p->nsteps; i++)
        free(p->steps[i].name);
    for (size_t i = 0; i < p->nactions; i++) {
        free(p->actions[i].name);
        free(p->actions[i].description);
        free(p->actions[i].input_schema);
        free(p->actions[i].required_feature);
    }
    free(p->modules);
    free(p->features);
    free(p->plans);
    free(p->migrations);
    free(p->steps);
    free(p->actions);
    free(p->code);
    free(p->name);
    free(p->description);
    free(p->version);
    free(p->vendor);
    free(p->support_url);
    free(p->settings_schema);
    free(p);
}

static int same(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

const ft_module_t *ft_product_module(const ft_product_t *p, const char *code)
{
    for (size_t i = 0; i < p->nmodules; i++)
        if (same(p->modules[i].code, code))
            return &p->modules[i];
    return NULL;
}

long ft_product_feature_index(const ft_product_t *p, const char *code)
{
    for (size_t i = 0; i < p->nfeatures; i++)
        if (same(p->features[i].code, code))
            return (long)i;
    return -1;
}

const ft_feature_t *ft_product_feature(const ft_product_t *p, const char *code)
{
    long i = ft_product_feature_index(p, code);
    return i >= 0 ? &p->features[i] : NULL;
}

const ft_plan_t *ft_product_plan(const ft_product_t *p, const char *code)
{
    for (size_t i = 0; i < p->nplans; i++)
        if (same(p->plans[i].code, code))
            return &p->plans[i];
    return NULL;
}

const ft_action_t *ft_product_action(const ft_product_t *p, const char *name)
{
    for (size_t i = 0; i < p->nactions; i++)
        if (same(p->actions[i].name, name))
            return &p->actions[i];
    return NULL;
}

const char *ft_lifecycle_name(uint32_t lifecycle)
{
    switch (lifecycle) {
    case FTP_LIFECYCLE_PROVISION:
        return "provision";
    case FTP_LIFECYCLE_DEPROVISION:
        return "deprovision";
    case FTP_LIFECYCLE_SUSPEND:
        return "suspend";
    case FTP_LIFECYCLE_RESUME:
        return "resume";
    case FTP_LIFECYCLE_FEATURES_CHANGED:
        return "features_changed";
    }
    return "unknown";
}

const char *ft_plugin_status_name(int rc)
{
    switch (rc) {
    case FTP_OK:
        return "FTP_OK";
    case FTP_E_RETRY:
        return "FTP_E_RETRY";
    case FTP_E_FATAL:
        return "FTP_E_FATAL";
    case FTP_E_INVALID:
        return "FTP_E_INVALID";
    case FTP_E_NOTFOUND:
        return "FTP_E_NOTFOUND";
    case FTP_E_CONFLICT:
        return "FTP_E_CONFLICT";
    case FTP_E_UNAVAILABLE:
        return "FTP_E_UNAVAILABLE";
    case FTP_E_TIMEOUT:
        return "FTP_E_TIMEOUT";
    case FTP_E_NOMEM:
        return "FTP_E_NOMEM";
    }
    return "an unknown code";
}
