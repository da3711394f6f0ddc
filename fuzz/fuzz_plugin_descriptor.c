/*
 * Fuzzes what the host does with a plugin's descriptor before serving it: the loader's checks
 * (ft_plugin_descriptor_read), the deep copy (ft_product_copy), the structural checks
 * (ft_product_validate), and for a product that passes, what the registry and the resolver do
 * next (schema compilation, entitlements).
 *
 * The input is a JSON description of an ftp_plugin_t, turned into the C structs a plugin
 * would export (see corpus/fuzz_plugin_descriptor/ for examples):
 *   {"header": {"magic", "abi_major", "abi_minor", "pointer_size", "byte_order": n},
 *    "struct_size": n, "code": s, "name": s, "description": s, "version": s, "vendor": s,
 *    "support_url": s, "settings_schema": s|json, "init": b, "fini": b,
 *    "modules": T, "features": T, "plans": T, "migrations": T, "steps": T, "actions": T}
 * A table T is an array of items, null, or {"items": [...]|null, "count": n, "item_size": n}
 * (an older or newer item layout, or a bogus one: any size up to twice the real). Items:
 *   module    {"code", "name", "description", "depends": [codes]}
 *   feature   {"code", "module", "name", "description", "kind", "default", "requires": [codes], "unit"}
 *   plan      {"code", "name", "description", "version", "trial_days", "features": T of [code, value]}
 *   migration {"version", "name", "pooled", "siloed"}
 *   step      {"lifecycle", "name", "version", "timeout_ms", "run": b, "compensate": b}
 *   action    {"name", "description", "input_schema": s|json, "required_feature", "handler": b}
 * An absent or non-string string member is NULL; callbacks are present unless false or null.
 * The descriptor is freed before validation, so the product must not point into it.
 */
#include "domain/entitlements.h"
#include "domain/entitlement_render.h"
#include "domain/jsonschema.h"
#include "plugins/loader.h"
#include "plugins/product.h"
#include "plugins/validate.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ITEMS 128 /* per table: enough for every quadratic check to matter, bounded time */
#define MAX_CODES 100 /* per list: more than the validator's 64 edges per node */

static int verbose; /* FT_FUZZ_VERBOSE: print each verdict, to check what a seed reaches */

/* Everything one descriptor allocates, freed together. */
typedef struct arena {
    void **ptrs;
    size_t n, cap;
} arena_t;

static void *keep(arena_t *a, void *p)
{
    if (a->n == a->cap) {
        a->cap = a->cap != 0 ? 2 * a->cap : 64;
        a->ptrs = realloc(a->ptrs, a->cap * sizeof(void *));
        if (a->ptrs == NULL)
            abort();
    }
    a->ptrs[a->n++] = p;
    return p;
}

static void *arena_calloc(arena_t *a, size_t n, size_t size)
{
    void *p = calloc(n != 0 ? n : 1, size != 0 ? size : 1);
    if (p == NULL)
        abort();
    return keep(a, p);
}

/* Strings are copied out of the document, so that freeing the arena frees every byte the
 * descriptor points to. */
static const char *str(arena_t *a, json_t *v)
{
    if (!json_is_string(v))
        return NULL;
    return keep(a, strdup(json_string_value(v)));
}

/* A schema member: a string is the text as written, any other JSON value its serialization. */
static const char *schema_text(arena_t *a, json_t *v)
{
    if (v == NULL || json_is_null(v))
        return NULL;
    if (json_is_string(v))
        return str(a, v);
    char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    return text != NULL ? keep(a, text) : NULL;
}

static uint32_t u32(json_t *v, uint32_t dflt)
{
    return json_is_integer(v) ? (uint32_t)json_integer_value(v) : dflt;
}

static int64_t i64(json_t *v, int64_t dflt)
{
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

/* A callback member: present unless the input says false or null. */
static int present(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return !(json_is_false(v) || json_is_null(v));
}

static ftp_codes_t codes(arena_t *a, json_t *v)
{
    if (!json_is_array(v))
        return NULL;
    size_t n = json_array_size(v) < MAX_CODES ? json_array_size(v) : MAX_CODES;
    const char **out = arena_calloc(a, n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        out[i] = str(a, json_array_get(v, i));
        if (out[i] == NULL) /* a null ends the list, as it would in C */
            break;
    }
    return out;
}

static int step_run(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    return FTP_OK;
}

static int action_run(const ftp_host_api_t *api, ftp_ctx_t *ctx, const char *input, char **output)
{
    return FTP_OK;
}

static int plugin_init(const ftp_host_api_t *api)
{
    return FTP_OK;
}

static void plugin_fini(void)
{
}

/* Fills one C item from one JSON item. */
typedef void (*fill_fn)(arena_t *a, json_t *in, void *item);

/* An item type: its size in this build and how to fill one from JSON. */
typedef struct layout {
    size_t size;
    fill_fn fill;
} layout_t;

/* Any item_size a plugin may declare, up to twice the real one (a newer layout: zeros beyond). */
static size_t item_size_for(const layout_t *l, json_t *v)
{
    if (!json_is_integer(v))
        return l->size;
    json_int_t want = json_integer_value(v);
    if (want <= 0)
        return 0;
    return (size_t)want < 2 * l->size ? (size_t)want : 2 * l->size;
}

static ftp_table_t table(arena_t *a, json_t *v, const layout_t *l)
{
    ftp_table_t t = {NULL, 0, 0};
    json_t *items = v;
    size_t item_size = l->size;
    json_int_t count = -1;
    if (json_is_object(v)) {
        items = json_object_get(v, "items");
        item_size = item_size_for(l, json_object_get(v, "item_size"));
        if (json_is_integer(json_object_get(v, "count")))
            count = json_integer_value(json_object_get(v, "count"));
        if (items == NULL || json_is_null(items)) {
            /* no items but a count: the host must not read through NULL */
            t.count = count >= 0 ? (uint32_t)count : 0;
            t.item_size = (uint32_t)item_size;
            return t;
        }
    }
    if (!json_is_array(items))
        return t;
    size_t n = json_array_size(items) < MAX_ITEMS ? json_array_size(items) : MAX_ITEMS;
    if (count >= 0 && (size_t)count < n)
        n = (size_t)count;
    char *buf = arena_calloc(a, n, item_size);
    void *item = arena_calloc(a, 1, l->size);
    for (size_t i = 0; i < n; i++) {
        memset(item, 0, l->size);
        json_t *in = json_array_get(items, i);
        if (json_is_object(in) || json_is_array(in))
            l->fill(a, in, item);
        memcpy(buf + i * item_size, item, item_size < l->size ? item_size : l->size);
    }
    t.items = buf;
    t.count = (uint32_t)n;
    t.item_size = (uint32_t)item_size;
    return t;
}

static void fill_module(arena_t *a, json_t *in, void *item)
{
    ftp_module_t *m = item;
    m->code = str(a, json_object_get(in, "code"));
    m->name = str(a, json_object_get(in, "name"));
    m->description = str(a, json_object_get(in, "description"));
    m->depends = codes(a, json_object_get(in, "depends"));
}
static const layout_t module_layout = {sizeof(ftp_module_t), fill_module};

static void fill_feature(arena_t *a, json_t *in, void *item)
{
    ftp_feature_t *f = item;
    f->code = str(a, json_object_get(in, "code"));
    f->module = str(a, json_object_get(in, "module"));
    f->name = str(a, json_object_get(in, "name"));
    f->description = str(a, json_object_get(in, "description"));
    f->kind = u32(json_object_get(in, "kind"), FTP_FEATURE_FLAG);
    f->default_value = i64(json_object_get(in, "default"), 1);
    f->requires = codes(a, json_object_get(in, "requires"));
    f->unit = str(a, json_object_get(in, "unit"));
}
static const layout_t feature_layout = {sizeof(ftp_feature_t), fill_feature};

/* [code, value] or {"feature": code, "value": n} */
static void fill_plan_feature(arena_t *a, json_t *in, void *item)
{
    ftp_plan_feature_t *pf = item;
    if (json_is_array(in)) {
        pf->feature = str(a, json_array_get(in, 0));
        pf->value = i64(json_array_get(in, 1), 1);
    } else {
        pf->feature = str(a, json_object_get(in, "feature"));
        pf->value = i64(json_object_get(in, "value"), 1);
    }
}
static const layout_t plan_feature_layout = {sizeof(ftp_plan_feature_t), fill_plan_feature};

static void fill_plan(arena_t *a, json_t *in, void *item)
{
    ftp_plan_t *p = item;
    p->code = str(a, json_object_get(in, "code"));
    p->name = str(a, json_object_get(in, "name"));
    p->description = str(a, json_object_get(in, "description"));
    p->version = u32(json_object_get(in, "version"), 1);
    p->features = table(a, json_object_get(in, "features"), &plan_feature_layout);
    p->trial_days = u32(json_object_get(in, "trial_days"), 0);
}
static const layout_t plan_layout = {sizeof(ftp_plan_t), fill_plan};

static void fill_migration(arena_t *a, json_t *in, void *item)
{
    ftp_migration_t *m = item;
    m->version = u32(json_object_get(in, "version"), 1);
    m->name = str(a, json_object_get(in, "name"));
    m->pooled_sql = str(a, json_object_get(in, "pooled"));
    m->siloed_sql = str(a, json_object_get(in, "siloed"));
}
static const layout_t migration_layout = {sizeof(ftp_migration_t), fill_migration};

static void fill_step(arena_t *a, json_t *in, void *item)
{
    ftp_step_t *s = item;
    s->lifecycle = u32(json_object_get(in, "lifecycle"), FTP_LIFECYCLE_PROVISION);
    s->name = str(a, json_object_get(in, "name"));
    s->version = u32(json_object_get(in, "version"), 1);
    s->timeout_ms = u32(json_object_get(in, "timeout_ms"), 1000);
    s->run = present(in, "run") ? step_run : NULL;
    s->compensate = json_is_true(json_object_get(in, "compensate")) ? step_run : NULL;
}
static const layout_t step_layout = {sizeof(ftp_step_t), fill_step};

static void fill_action(arena_t *a, json_t *in, void *item)
{
    ftp_action_t *act = item;
    act->name = str(a, json_object_get(in, "name"));
    act->description = str(a, json_object_get(in, "description"));
    act->input_schema = schema_text(a, json_object_get(in, "input_schema"));
    act->required_feature = str(a, json_object_get(in, "required_feature"));
    act->handler = present(in, "handler") ? action_run : NULL;
}
static const layout_t action_layout = {sizeof(ftp_action_t), fill_action};

/* What the loader hands to ft_product_copy: the descriptor as the plugin would export it, read
 * through the loader's own checks (ABI header, required callbacks, product_code) and cut to its
 * struct_size. 0 when the loader refuses it. */
static int descriptor(arena_t *a, json_t *doc, ftp_plugin_t *out)
{
    ftp_plugin_t d = {.header = FTP_HEADER_INIT};
    json_t *h = json_object_get(doc, "header");
    d.header.magic = u32(json_object_get(h, "magic"), d.header.magic);
    d.header.abi_major = (uint16_t)u32(json_object_get(h, "abi_major"), d.header.abi_major);
    d.header.abi_minor = (uint16_t)u32(json_object_get(h, "abi_minor"), d.header.abi_minor);
    d.header.pointer_size = (uint8_t)u32(json_object_get(h, "pointer_size"), d.header.pointer_size);
    d.header.byte_order = (uint8_t)u32(json_object_get(h, "byte_order"), d.header.byte_order);
    d.header.struct_size = u32(json_object_get(doc, "struct_size"), d.header.struct_size);
    d.product_code = str(a, json_object_get(doc, "code"));
    d.product_name = str(a, json_object_get(doc, "name"));
    d.description = str(a, json_object_get(doc, "description"));
    d.version = str(a, json_object_get(doc, "version"));
    d.settings_schema = schema_text(a, json_object_get(doc, "settings_schema"));
    d.modules = table(a, json_object_get(doc, "modules"), &module_layout);
    d.features = table(a, json_object_get(doc, "features"), &feature_layout);
    d.plans = table(a, json_object_get(doc, "plans"), &plan_layout);
    d.migrations = table(a, json_object_get(doc, "migrations"), &migration_layout);
    d.steps = table(a, json_object_get(doc, "steps"), &step_layout);
    d.actions = table(a, json_object_get(doc, "actions"), &action_layout);
    d.init = present(doc, "init") ? plugin_init : NULL;
    d.fini = present(doc, "fini") ? plugin_fini : NULL;
    d.vendor = str(a, json_object_get(doc, "vendor"));
    d.support_url = str(a, json_object_get(doc, "support_url"));
    /* a plugin's descriptor is exactly as long as it says (the loader never reads past
     * min(struct_size, sizeof)): hand over a heap copy of that length, so ASan would see more */
    size_t len = d.header.struct_size < sizeof(d) ? d.header.struct_size : sizeof(d);
    if (len < sizeof(d.header))
        len = sizeof(d.header);
    ftp_plugin_t *raw = keep(a, malloc(len));
    if (raw == NULL)
        abort();
    memcpy(raw, &d, len);
    ft_error_t err = {0};
    int rc = ft_plugin_descriptor_read(raw, out, &err);
    if (verbose)
        fprintf(stderr, "loader: %s\n", rc == FT_OK ? "ok" : err.message);
    if (rc != FT_OK && (rc != FT_EINVAL || err.message[0] == '\0'))
        abort();
    return rc == FT_OK;
}

/* What a product that passed validation goes through next: the registry compiles its schemas,
 * the resolver turns each plan into entitlements (once as planned, once with every feature
 * overridden on) and renders them. */
static void serve(const ft_product_t *p)
{
    ft_error_t err = {0};
    ft_schema_free(p->settings_schema != NULL ? ft_schema_compile(p->settings_schema, &err) : NULL);
    for (size_t i = 0; i < p->nactions; i++)
        if (p->actions[i].input_schema != NULL)
            ft_schema_free(ft_schema_compile(p->actions[i].input_schema, &err));

    ft_ent_override_t *overrides = calloc(p->nfeatures + 1, sizeof(*overrides));
    if (overrides == NULL)
        abort();
    for (size_t i = 0; i < p->nfeatures; i++)
        overrides[i] = (ft_ent_override_t){p->features[i].code, 1, (int)(i & 1), (int64_t)i, 0, NULL};
    for (size_t i = 0; i < p->nplans; i++) {
        const ft_plan_t *pl = &p->plans[i];
        ft_ent_plan_item_t *items = calloc(pl->nitems + 1, sizeof(*items));
        if (items == NULL)
            abort();
        for (size_t k = 0; k < pl->nitems; k++)
            items[k] = (ft_ent_plan_item_t){pl->items[k].feature, pl->items[k].value};
        for (int with_overrides = 0; with_overrides < 2; with_overrides++) {
            ft_ent_input_t in = {.instance_id = "00000000-0000-4000-8000-000000000001",
                                 .customer_id = "00000000-0000-4000-8000-000000000002",
                                 .instance_status = "active",
                                 .subscription_status = pl->trial_days > 0 ? "trialing" : "active",
                                 .plan = pl->code,
                                 .plan_version = pl->version,
                                 .trial_ends_us = pl->trial_days > 0 ? 2 : 0, /* a running trial */
                                 .plan_items = items,
                                 .nplan_items = pl->nitems,
                                 .overrides = with_overrides ? overrides : NULL,
                                 .noverrides = with_overrides ? p->nfeatures : 0,
                                 .version = 1,
                                 .now_us = 1};
            ft_entitlements_t *e = ft_entitlements_resolve(p, &in);
            size_t len = 0;
            char *json = ft_entitlements_json(e, &len);
            if (json == NULL || ft_entitlements_count(e) != p->nfeatures)
                abort();
            free(json);
            for (size_t k = 0; k < p->nfeatures; k++)
                if (ft_entitlements_find(e, p->features[k].code) == NULL)
                    abort();
            ft_entitlements_release(e);
        }
        free(items);
    }
    free(overrides);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    verbose = getenv("FT_FUZZ_VERBOSE") != NULL;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *doc = json_loadb((const char *)data, size, 0, NULL);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return 0;
    }
    arena_t a = {0};
    ftp_plugin_t d;
    ft_product_t *p = descriptor(&a, doc, &d) ? ft_product_copy(&d) : NULL;
    /* the plugin may be unloaded once copied: nothing of it may be read from here on */
    json_decref(doc);
    for (size_t i = 0; i < a.n; i++)
        free(a.ptrs[i]);
    free(a.ptrs);
    if (p == NULL)
        return 0;

    ft_error_t err = {0};
    int rc = ft_product_validate(p, "fuzz.so", &err);
    if (rc != FT_OK && (rc != FT_EINVAL || err.message[0] == '\0'))
        abort(); /* a refusal always says why */
    if (strnlen(err.message, sizeof(err.message)) == sizeof(err.message))
        abort();
    if (verbose)
        fprintf(stderr, "validate: %s\n", rc == FT_OK ? "ok" : err.message);
    if (rc == FT_OK)
        serve(p);
    ft_product_free(p);
    return 0;
}
