/*
 * Structural checks of a product's tables. Everything a plugin can get wrong is reported in
 * terms of the plugin's own tables and entries, so the product team can find it at once.
 */
#include "plugins/validate.h"

#include "core/mem.h"

#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_PROBLEMS 5

typedef struct report {
    const char *plugin;
    ft_error_t *err;
    int count;
} report_t;

static void problem(report_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(report_t *r, const char *fmt, ...)
{
    if (r->count++ >= MAX_PROBLEMS)
        return;
    size_t used = strlen(r->err->message);
    if (used + 2 >= sizeof(r->err->message))
        return;
    if (used > 0) {
        memcpy(r->err->message + used, "; ", 3);
        used += 2;
    } else {
        used = (size_t)snprintf(r->err->message, sizeof(r->err->message), "plugin %s: ", r->plugin);
        if (used >= sizeof(r->err->message))
            return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err->message + used, sizeof(r->err->message) - used, fmt, ap);
    va_end(ap);
}

/* [a-z][a-z0-9_]{0,max-1}, plus '-' when dash is allowed (action names). */
static int valid_code(const char *s, size_t max, int dash)
{
    if (s == NULL || !islower((unsigned char)s[0]))
        return 0;
    size_t n = 0;
    for (const char *c = s; *c != '\0'; c++, n++) {
        if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '_' || (dash && *c == '-')))
            return 0;
    }
    return n <= max;
}

static const char *show(const char *s)
{
    return s != NULL ? s : "(null)";
}

static int empty(const char *s)
{
    return s == NULL || *s == '\0';
}

/* Depth-first search for a cycle in a graph given by an edge function; colour: 0 new, 1 on stack, 2 done. */
typedef size_t (*edges_fn)(const ft_product_t *p, size_t node, long *out, size_t max);

static int has_cycle_from(const ft_product_t *p, size_t node, edges_fn edges, int *colour, size_t n)
{
    colour[node] = 1;
    long next[64];
    size_t k = edges(p, node, next, 64);
    for (size_t i = 0; i < k; i++) {
        if (next[i] < 0 || (size_t)next[i] >= n)
            continue;
        if (colour[next[i]] == 1)
            return 1;
        if (colour[next[i]] == 0 && has_cycle_from(p, (size_t)next[i], edges, colour, n))
            return 1;
    }
    colour[node] = 2;
    return 0;
}

static size_t module_edges(const ft_product_t *p, size_t node, long *out, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < p->modules[node].ndepends && k < max; i++) {
        const ft_module_t *m = ft_product_module(p, p->modules[node].depends[i]);
        out[k++] = m != NULL ? (long)(m - p->modules) : -1;
    }
    return k;
}

static size_t feature_edges(const ft_product_t *p, size_t node, long *out, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < p->features[node].nrequires && k < max; i++)
        out[k++] = ft_product_feature_index(p, p->features[node].requires[i]);
    return k;
}

static void check_json_object(report_t *r, const char *what, const char *text)
{
    if (text == NULL)
        return;
    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr);
    if (doc == NULL)
        problem(r, "%s is not valid JSON: %s at line %d, column %d", what, jerr.text, jerr.line, jerr.column);
    else if (!json_is_object(doc))
        problem(r, "%s must be a JSON object", what);
    json_decref(doc);
}

static void check_modules(const ft_product_t *p, report_t *r)
{
    if (p->nmodules == 0)
        problem(r, "modules: at least one module is required");
    for (size_t i = 0; i < p->nmodules; i++) {
        const ft_module_t *m = &p->modules[i];
        if (!valid_code(m->code, 63, 0))
            problem(r, "modules[%zu] %s: code must match [a-z][a-z0-9_]{0,62}", i, show(m->code));
        if (empty(m->name))
            problem(r, "modules[%zu] %s: name is required", i, show(m->code));
        for (size_t j = 0; j < i; j++)
            if (m->code != NULL && p->modules[j].code != NULL && strcmp(m->code, p->modules[j].code) == 0)
                problem(r, "modules[%zu] %s: duplicate code (also modules[%zu])", i, m->code, j);
        for (size_t d = 0; d < m->ndepends; d++)
            if (ft_product_module(p, m->depends[d]) == NULL)
                problem(r, "modules[%zu] %s: depends on unknown module %s", i, show(m->code), m->depends[d]);
    }
    int *colour = ft_mem_calloc(p->nmodules, sizeof(int));
    for (size_t i = 0; i < p->nmodules; i++)
        if (colour[i] == 0 && has_cycle_from(p, i, module_edges, colour, p->nmodules)) {
            problem(r, "modules: dependency cycle through %s", show(p->modules[i].code));
            break;
        }
    free(colour);
}

static void check_features(const ft_product_t *p, report_t *r)
{
    if (p->nfeatures == 0)
        problem(r, "features: at least one feature is required");
    for (size_t i = 0; i < p->nfeatures; i++) {
        const ft_feature_t *f = &p->features[i];
        if (!valid_code(f->code, 63, 0))
            problem(r, "features[%zu] %s: code must match [a-z][a-z0-9_]{0,62}", i, show(f->code));
        if (empty(f->name))
            problem(r, "features[%zu] %s: name is required", i, show(f->code));
        for (size_t j = 0; j < i; j++)
            if (f->code != NULL && p->features[j].code != NULL && strcmp(f->code, p->features[j].code) == 0)
                problem(r, "features[%zu] %s: duplicate code (also features[%zu])", i, f->code, j);
        if (ft_product_module(p, f->module) == NULL)
            problem(r, "features[%zu] %s: belongs to unknown module %s", i, show(f->code), show(f->module));
        if (f->kind != FTP_FEATURE_FLAG && f->kind != FTP_FEATURE_LIMIT)
            problem(r, "features[%zu] %s: kind must be FTP_FEATURE_FLAG or FTP_FEATURE_LIMIT (got %d)", i, show(f->code), f->kind);
        if (f->kind == FTP_FEATURE_FLAG && f->default_value != 0 && f->default_value != 1)
            problem(r, "features[%zu] %s: a flag's default must be 0 or 1", i, show(f->code));
        if (f->kind == FTP_FEATURE_LIMIT && f->default_value < 0)
            problem(r, "features[%zu] %s: a limit's default must not be negative", i, show(f->code));
        for (size_t d = 0; d < f->nrequires; d++) {
            if (ft_product_feature(p, f->requires[d]) == NULL)
                problem(r, "features[%zu] %s: requires unknown feature %s", i, show(f->code), f->requires[d]);
            else if (f->code != NULL && strcmp(f->code, f->requires[d]) == 0)
                problem(r, "features[%zu] %s: requires itself", i, show(f->code));
        }
    }
    int *colour = ft_mem_calloc(p->nfeatures, sizeof(int));
    for (size_t i = 0; i < p->nfeatures; i++)
        if (colour[i] == 0 && has_cycle_from(p, i, feature_edges, colour, p->nfeatures)) {
            problem(r, "features: requirement cycle through %s", show(p->features[i].code));
            break;
        }
    free(colour);
}

static void check_plans(const ft_product_t *p, report_t *r)
{
    if (p->nplans == 0)
        problem(r, "plans: at least one plan is required");
    for (size_t i = 0; i < p->nplans; i++) {
        const ft_plan_t *pl = &p->plans[i];
        if (!valid_code(pl->code, 63, 0))
            problem(r, "plans[%zu] %s: code must match [a-z][a-z0-9_]{0,62}", i, show(pl->code));
        if (empty(pl->name))
            problem(r, "plans[%zu] %s: name is required", i, show(pl->code));
        if (pl->version == 0)
            problem(r, "plans[%zu] %s: version must be 1 or more", i, show(pl->code));
        for (size_t j = 0; j < i; j++)
            if (pl->code != NULL && p->plans[j].code != NULL && strcmp(pl->code, p->plans[j].code) == 0)
                problem(r, "plans[%zu] %s: duplicate code (also plans[%zu])", i, pl->code, j);
        for (size_t k = 0; k < pl->nitems; k++) {
            const ft_plan_item_t *it = &pl->items[k];
            const ft_feature_t *f = ft_product_feature(p, it->feature);
            if (f == NULL) {
                problem(r, "plans[%zu] %s: features[%zu] names unknown feature %s", i, show(pl->code), k, show(it->feature));
                continue;
            }
            for (size_t j = 0; j < k; j++)
                if (pl->items[j].feature != NULL && strcmp(pl->items[j].feature, it->feature) == 0)
                    problem(r, "plans[%zu] %s: feature %s listed twice", i, show(pl->code), it->feature);
            if (f->kind == FTP_FEATURE_FLAG && it->value != 1)
                problem(r, "plans[%zu] %s: flag %s must have value 1 (leave it out to switch it off)", i, show(pl->code),
                        it->feature);
            if (f->kind == FTP_FEATURE_LIMIT && it->value < 0)
                problem(r, "plans[%zu] %s: limit %s must not be negative", i, show(pl->code), it->feature);
            for (size_t d = 0; d < f->nrequires; d++) {
                int found = 0;
                for (size_t j = 0; j < pl->nitems && !found; j++)
                    found = pl->items[j].feature != NULL && strcmp(pl->items[j].feature, f->requires[d]) == 0;
                if (!found)
                    problem(r, "plans[%zu] %s: includes %s but not %s, which it requires", i, show(pl->code), it->feature,
                            f->requires[d]);
            }
        }
    }
}

static void check_lifecycle(const ft_product_t *p, report_t *r)
{
    for (size_t i = 0; i < p->nmigrations; i++) {
        const ft_tenant_migration_t *m = &p->migrations[i];
        if (m->version != i + 1)
            problem(r, "migrations[%zu] %s: versions must run 1, 2, 3... (got %u)", i, show(m->name), m->version);
        if (empty(m->name))
            problem(r, "migrations[%zu]: name is required", i);
        if (m->pooled_sql == NULL && m->siloed_sql == NULL)
            problem(r, "migrations[%zu] %s: needs pooled_sql, siloed_sql or both", i, show(m->name));
    }
    for (size_t i = 0; i < p->nsteps; i++) {
        const ft_step_t *s = &p->steps[i];
        if (s->lifecycle < FTP_LIFECYCLE_PROVISION || s->lifecycle > FTP_LIFECYCLE_FEATURES_CHANGED)
            problem(r, "steps[%zu] %s: unknown lifecycle %u", i, show(s->name), s->lifecycle);
        if (!valid_code(s->name, 63, 0))
            problem(r, "steps[%zu] %s: name must match [a-z][a-z0-9_]{0,62}", i, show(s->name));
        if (s->run == NULL)
            problem(r, "steps[%zu] %s: run callback is required", i, show(s->name));
        if (s->version == 0)
            problem(r, "steps[%zu] %s: version must be 1 or more", i, show(s->name));
        if (s->timeout_ms == 0)
            problem(r, "steps[%zu] %s: timeout_ms must be set", i, show(s->name));
        for (size_t j = 0; j < i; j++)
            if (p->steps[j].lifecycle == s->lifecycle && s->name != NULL && p->steps[j].name != NULL &&
                strcmp(p->steps[j].name, s->name) == 0)
                problem(r, "steps[%zu] %s: duplicate name in lifecycle %s (also steps[%zu])", i, s->name,
                        ft_lifecycle_name(s->lifecycle), j);
    }
    for (size_t i = 0; i < p->nactions; i++) {
        const ft_action_t *a = &p->actions[i];
        if (!valid_code(a->name, 63, 1))
            problem(r, "actions[%zu] %s: name must match [a-z][a-z0-9_-]{0,62}", i, show(a->name));
        if (a->handler == NULL)
            problem(r, "actions[%zu] %s: handler is required", i, show(a->name));
        if (a->required_feature != NULL && ft_product_feature(p, a->required_feature) == NULL)
            problem(r, "actions[%zu] %s: requires unknown feature %s", i, show(a->name), a->required_feature);
        for (size_t j = 0; j < i; j++)
            if (a->name != NULL && p->actions[j].name != NULL && strcmp(a->name, p->actions[j].name) == 0)
                problem(r, "actions[%zu] %s: collides with actions[%zu]", i, a->name, j);
        char what[96];
        snprintf(what, sizeof(what), "actions[%zu] %s: input_schema", i, show(a->name));
        check_json_object(r, what, a->input_schema);
    }
}

int ft_product_validate(const ft_product_t *p, const char *plugin_name, ft_error_t *err)
{
    report_t r = {plugin_name, err, 0};
    err->message[0] = '\0';
    if (!valid_code(p->code, 31, 0))
        problem(&r, "product_code %s must match [a-z][a-z0-9_]{0,30}", show(p->code));
    if (empty(p->name))
        problem(&r, "product_name is required");
    if (empty(p->version))
        problem(&r, "version is required");
    if (p->init == NULL)
        problem(&r, "the init callback is required");
    if (p->fini == NULL)
        problem(&r, "the fini callback is required");
    check_json_object(&r, "settings_schema", p->settings_schema);
    check_modules(p, &r);
    check_features(p, &r);
    check_plans(p, &r);
    check_lifecycle(p, &r);
    if (r.count > MAX_PROBLEMS) {
        size_t used = strlen(err->message);
        snprintf(err->message + used, sizeof(err->message) - used, "; and %d more", r.count - MAX_PROBLEMS);
    }
    err->code = r.count == 0 ? FT_OK : FT_EINVAL;
    return err->code;
}
