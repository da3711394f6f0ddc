/*
 * The resolver, and the compact form of its result. One pass applies the plan and the
 * overrides; a fixpoint then switches off every feature whose requirements are off
 * (requirements may chain). The same resolution without the overrides is the record's base:
 * interned by content in one process-wide table, so the thousands of subscribers of a plan
 * version in the same state share one copy of its features, reasons and rendered text, and a
 * record keeps only the features where its overrides make it differ (none for most).
 */
#include "domain/entitlements.h"

#include "core/append.h"
#include "core/mem.h"
#include "domain/entitlement_render.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REASON_MAX 160
#define FT_ENT_CODE_MAX 64 /* a feature code: at most 63 characters (plugins/validate.c) */
#define NBUCKETS 1024

typedef struct work {
    int enabled, source;
    int64_t value, expires_us;
    char reason[REASON_MAX];
} work_t;

/* The intern table of bases: few (products × plans × versions × states), found on each
 * resolution and dropped with their last record, both rare next to lookups. */
static struct {
    pthread_mutex_t mutex;
    ft_ent_base_t *buckets[NBUCKETS];
    size_t count;
} bases = {.mutex = PTHREAD_MUTEX_INITIALIZER};

static const ft_ent_override_t *find_override(const ft_ent_input_t *in, const char *code)
{
    for (size_t i = 0; i < in->noverrides; i++)
        if (strcmp(in->overrides[i].feature, code) == 0 && (in->overrides[i].expires_us == 0 || in->overrides[i].expires_us > in->now_us))
            return &in->overrides[i];
    return NULL;
}

static const ft_ent_plan_item_t *find_plan_item(const ft_ent_input_t *in, const char *code)
{
    for (size_t i = 0; i < in->nplan_items; i++)
        if (strcmp(in->plan_items[i].feature, code) == 0)
            return &in->plan_items[i];
    return NULL;
}

/* Off for everyone when the subscription or the instance says so; NULL when nothing gates. */
static const char *gate(const ft_ent_input_t *in)
{
    const char *s = in->subscription_status;
    if (strcmp(in->instance_status, "deleted") == 0)
        return "the instance is deleted";
    if (strcmp(in->instance_status, "suspended") == 0 || strcmp(s, "suspended") == 0)
        return "the subscription is suspended";
    if (strcmp(s, "canceled") == 0)
        return "the subscription is canceled";
    if (strcmp(s, "trialing") == 0 && in->trial_ends_us != 0 && in->trial_ends_us <= in->now_us)
        return "the trial has ended";
    return NULL;
}

/* Applies the plan, the overrides (unless with_overrides is 0) and the gate, then the
 * requirements; w has one entry per product feature, in the product's order. */
static void resolve_work(const ft_product_t *p, const ft_ent_input_t *in, int with_overrides, work_t *w, int64_t *valid_until)
{
    size_t n = p->nfeatures;
    const char *gated = gate(in);
    /* the texts most features share, written once */
    char in_plan[REASON_MAX], not_in_plan[REASON_MAX], off[REASON_MAX];
    snprintf(in_plan, REASON_MAX, "included in plan %s v%u", in->plan, in->plan_version);
    snprintf(not_in_plan, REASON_MAX, "not in plan %s v%u", in->plan, in->plan_version);
    snprintf(off, REASON_MAX, "off: %s", gated != NULL ? gated : "");
    for (size_t i = 0; i < n; i++) {
        const ft_feature_t *f = &p->features[i];
        const ft_ent_plan_item_t *item = find_plan_item(in, f->code);
        const ft_ent_override_t *o = with_overrides ? find_override(in, f->code) : NULL;
        if (item != NULL) {
            w[i].enabled = 1;
            w[i].source = FT_ENT_SOURCE_PLAN;
            w[i].value = f->kind == FTP_FEATURE_LIMIT ? item->value : 1;
            memcpy(w[i].reason, in_plan, REASON_MAX);
        } else {
            memcpy(w[i].reason, not_in_plan, REASON_MAX);
        }
        if (o != NULL) {
            w[i].source = FT_ENT_SOURCE_OVERRIDE;
            w[i].enabled = o->enabled;
            w[i].expires_us = o->expires_us;
            if (o->expires_us != 0 && o->expires_us < *valid_until)
                *valid_until = o->expires_us;
            if (o->enabled)
                w[i].value = f->kind == FTP_FEATURE_FLAG ? 1 : o->has_limit ? o->limit : item != NULL ? item->value : f->default_value;
            snprintf(w[i].reason, REASON_MAX, "%s by override%s%s", o->enabled ? "on" : "off", o->reason ? ": " : "",
                     o->reason ? o->reason : "");
        }
        /* an expired override is simply absent, but its expiry may still wake a re-resolve */
        if (gated != NULL) {
            w[i].enabled = 0;
            memcpy(w[i].reason, off, REASON_MAX);
        }
    }
    /* requirements: switch off, until nothing changes, whatever needs something that is off */
    for (int changed = 1; changed;) {
        changed = 0;
        for (size_t i = 0; i < n; i++) {
            if (!w[i].enabled)
                continue;
            const ft_feature_t *f = &p->features[i];
            for (size_t r = 0; r < f->nrequires; r++) {
                long j = ft_product_feature_index(p, f->requires[r]);
                if (j >= 0 && w[j].enabled)
                    continue;
                w[i].enabled = 0;
                snprintf(w[i].reason, REASON_MAX, "off: requires %s, which is off", f->requires[r]);
                changed = 1;
                break;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        if (!w[i].enabled)
            w[i].value = 0;
}

/* The product's feature indices in code order (insertion sort: a product has tens of features). */
static void code_order(const ft_product_t *p, size_t *order)
{
    for (size_t i = 0; i < p->nfeatures; i++) {
        size_t j = i;
        while (j > 0 && strcmp(p->features[order[j - 1]].code, p->features[i].code) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
}

static uint64_t mix(uint64_t h, const void *data, size_t n)
{
    const unsigned char *b = data;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t mix_str(uint64_t h, const char *s)
{
    return mix(h, s, strlen(s) + 1);
}

static int same_work(const work_t *a, const work_t *b)
{
    return a->enabled == b->enabled && a->source == b->source && a->value == b->value && a->expires_us == b->expires_us &&
           strcmp(a->reason, b->reason) == 0;
}

static int same_feature(const ft_ent_feature_t *f, const ft_feature_t *pf, const work_t *w)
{
    return strcmp(f->code, pf->code) == 0 && f->kind == (uint8_t)pf->kind && f->enabled == (uint8_t)w->enabled &&
           f->source == (uint8_t)w->source && f->value == w->value && f->expires_us == w->expires_us && strcmp(f->reason, w->reason) == 0;
}

/* What a base holds, before it is interned. */
typedef struct base_key {
    const ft_product_t *p;
    const ft_ent_input_t *in;
    const work_t *w;
    const size_t *order;
    uint64_t hash;
} base_key_t;

static int base_matches(const ft_ent_base_t *b, const base_key_t *k)
{
    if (b->hash != k->hash || b->nfeatures != k->p->nfeatures || b->plan_version != k->in->plan_version ||
        strcmp(b->product, k->p->code) != 0 || strcmp(b->plan, k->in->plan) != 0 ||
        strcmp(b->subscription_status, k->in->subscription_status) != 0 || strcmp(b->instance_status, k->in->instance_status) != 0)
        return 0;
    for (size_t i = 0; i < b->nfeatures; i++)
        if (!same_feature(&b->features[i], &k->p->features[k->order[i]], &k->w[k->order[i]]))
            return 0;
    return 1;
}

static char *arena_put(char **arena, const char *s)
{
    size_t n = strlen(s) + 1;
    char *at = memcpy(*arena, s, n);
    *arena += n;
    return at;
}

/* A new base with one reference: its texts in one allocation, its REST parts rendered. */
static ft_ent_base_t *base_new(const base_key_t *k)
{
    const ft_product_t *p = k->p;
    size_t n = p->nfeatures, strings = strlen(p->code) + strlen(k->in->plan) + strlen(k->in->subscription_status) +
                                       strlen(k->in->instance_status) + 4;
    for (size_t i = 0; i < n; i++)
        strings += strlen(p->features[i].code) + 1 + strlen(k->w[i].reason) + 1;
    ft_ent_base_t *b = ft_mem_calloc(1, sizeof(*b) + n * sizeof(ft_ent_feature_t) + strings);
    b->features = (ft_ent_feature_t *)(b + 1);
    char *arena = (char *)(b->features + n);
    b->hash = k->hash;
    b->refs = 1;
    b->product = arena_put(&arena, p->code);
    b->plan = arena_put(&arena, k->in->plan);
    b->subscription_status = arena_put(&arena, k->in->subscription_status);
    b->instance_status = arena_put(&arena, k->in->instance_status);
    b->plan_version = k->in->plan_version;
    b->nfeatures = n;
    b->fragments = ft_mem_calloc(n + 1, sizeof(*b->fragments));
    b->fragment_lens = ft_mem_calloc(n + 1, sizeof(*b->fragment_lens));
    for (size_t i = 0; i < n; i++) {
        size_t j = k->order[i];
        ft_ent_feature_t *f = &b->features[i];
        f->code = arena_put(&arena, p->features[j].code);
        f->reason = arena_put(&arena, k->w[j].reason);
        f->kind = (uint8_t)p->features[j].kind;
        f->enabled = (uint8_t)k->w[j].enabled;
        f->source = (uint8_t)k->w[j].source;
        f->value = k->w[j].value;
        f->expires_us = k->w[j].expires_us;
        b->fragments[i] = ft_ent_render_fragment(f, &b->fragment_lens[i]);
        b->fragments_len += b->fragment_lens[i];
    }
    b->head = ft_ent_render_head(b, &b->head_len);
    return b;
}

static void base_free(ft_ent_base_t *b)
{
    for (size_t i = 0; i < b->nfeatures; i++)
        free((char *)b->fragments[i]);
    free(b->fragments);
    free(b->fragment_lens);
    free((char *)b->head);
    free(b);
}

/* The interned base equal to k, with one more reference; made if none is. */
static ft_ent_base_t *base_intern(const base_key_t *k)
{
    ft_ent_base_t **bucket = &bases.buckets[k->hash % NBUCKETS], *b;
    pthread_mutex_lock(&bases.mutex);
    for (b = *bucket; b != NULL; b = b->next)
        if (base_matches(b, k)) {
            b->refs++;
            break;
        }
    pthread_mutex_unlock(&bases.mutex);
    if (b != NULL)
        return b;
    /* rendered outside the lock; another thread may intern the same base meanwhile */
    ft_ent_base_t *fresh = base_new(k);
    pthread_mutex_lock(&bases.mutex);
    for (b = *bucket; b != NULL; b = b->next)
        if (base_matches(b, k)) {
            b->refs++;
            break;
        }
    if (b == NULL) {
        fresh->next = *bucket;
        *bucket = fresh;
        bases.count++;
        b = fresh;
        fresh = NULL;
    }
    pthread_mutex_unlock(&bases.mutex);
    if (fresh != NULL)
        base_free(fresh);
    return b;
}

static void base_release(ft_ent_base_t *b)
{
    int last = 0;
    pthread_mutex_lock(&bases.mutex);
    if (--b->refs == 0) {
        ft_ent_base_t **at = &bases.buckets[b->hash % NBUCKETS];
        while (*at != b)
            at = &(*at)->next;
        *at = b->next;
        bases.count--;
        last = 1;
    }
    pthread_mutex_unlock(&bases.mutex);
    if (last)
        base_free(b);
}

size_t ft_entitlements_bases(void)
{
    pthread_mutex_lock(&bases.mutex);
    size_t n = bases.count;
    pthread_mutex_unlock(&bases.mutex);
    return n;
}

static void set_etag(ft_entitlements_t *e)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    char line[256], id[37];
    const ft_ent_base_t *b = e->base;
    ft_uuid_format(e->instance_id, id);
    int n = snprintf(line, sizeof(line), "%s|%s|%s|%u|%s|%s\n", id, b->product, b->plan, b->plan_version, b->subscription_status,
                     b->instance_status);
    EVP_DigestUpdate(md, line, (size_t)n);
    for (size_t i = 0; i < b->nfeatures; i++) {
        /* "code=enabled:value:source:expires:reason\n", at most 255 bytes of it */
        const ft_ent_feature_t *f = ft_entitlements_at(e, i);
        char feature[FT_ENT_CODE_MAX + REASON_MAX + 80], *o = feature;
        if (strlen(f->code) >= FT_ENT_CODE_MAX) { /* not from a validated product: the slow way */
            n = snprintf(line, sizeof(line), "%s=%d:%lld:%d:%lld:%s\n", f->code, f->enabled, (long long)f->value, f->source,
                         (long long)f->expires_us, f->reason);
            EVP_DigestUpdate(md, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
            continue;
        }
        o = ft_put_str(o, f->code);
        *o++ = '=';
        o = ft_put_i64(o, f->enabled);
        *o++ = ':';
        o = ft_put_i64(o, f->value);
        *o++ = ':';
        o = ft_put_i64(o, f->source);
        *o++ = ':';
        o = ft_put_i64(o, f->expires_us);
        *o++ = ':';
        o = ft_put_str(o, f->reason);
        *o++ = '\n';
        size_t len = (size_t)(o - feature);
        EVP_DigestUpdate(md, feature, len < sizeof(line) ? len : sizeof(line) - 1);
    }
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dl = 0;
    EVP_DigestFinal_ex(md, d, &dl);
    EVP_MD_CTX_free(md);
    e->etag[0] = '"';
    for (int i = 0; i < 8; i++)
        snprintf(e->etag + 1 + 2 * i, 3, "%02x", d[i]);
    e->etag[17] = '"';
    e->etag[18] = '\0';
}

ft_entitlements_t *ft_entitlements_resolve(const ft_product_t *p, const ft_ent_input_t *in)
{
    size_t n = p->nfeatures;
    work_t *w = ft_mem_calloc(n, sizeof(*w)), *plain = w;
    size_t *order = ft_mem_calloc(n + 1, sizeof(*order));
    int64_t valid_until = INT64_MAX;
    if (strcmp(in->subscription_status, "trialing") == 0 && in->trial_ends_us > in->now_us)
        valid_until = in->trial_ends_us;
    if (in->change_due_us > in->now_us && in->change_due_us < valid_until)
        valid_until = in->change_due_us;
    resolve_work(p, in, 1, w, &valid_until);
    if (in->noverrides > 0) {
        int64_t ignored = INT64_MAX;
        plain = ft_mem_calloc(n, sizeof(*plain));
        resolve_work(p, in, 0, plain, &ignored);
    }
    code_order(p, order);

    base_key_t k = {.p = p, .in = in, .w = plain, .order = order, .hash = 14695981039346656037ull};
    k.hash = mix_str(mix_str(mix_str(mix_str(k.hash, p->code), in->plan), in->subscription_status), in->instance_status);
    k.hash = mix(k.hash, &in->plan_version, sizeof(in->plan_version));
    for (size_t i = 0; i < n; i++) {
        const work_t *x = &plain[order[i]];
        k.hash = mix_str(k.hash, p->features[order[i]].code);
        k.hash = mix(mix(mix(mix(k.hash, &x->enabled, sizeof(x->enabled)), &x->source, sizeof(x->source)), &x->value, sizeof(x->value)),
                     &x->expires_us, sizeof(x->expires_us));
        k.hash = mix_str(k.hash, x->reason);
    }
    ft_ent_base_t *base = base_intern(&k);

    /* the differences: each with its reason and its rendered part, in the record's allocation */
    size_t ndiff = 0, strings = 0;
    ft_ent_diff_t *diffs = ft_mem_calloc(n + 1, sizeof(*diffs));
    char **frags = ft_mem_calloc(n + 1, sizeof(*frags));
    for (size_t i = 0; plain != w && i < n; i++) {
        size_t j = order[i];
        if (same_work(&w[j], &plain[j]))
            continue;
        ft_ent_diff_t *d = &diffs[ndiff];
        d->index = i;
        d->f = base->features[i];
        d->f.enabled = (uint8_t)w[j].enabled;
        d->f.source = (uint8_t)w[j].source;
        d->f.value = w[j].value;
        d->f.expires_us = w[j].expires_us;
        d->f.reason = w[j].reason;
        frags[ndiff] = ft_ent_render_fragment(&d->f, &d->fragment_len);
        strings += strlen(w[j].reason) + 1 + d->fragment_len + 1;
        ndiff++;
    }
    ft_entitlements_t *e = ft_mem_calloc(1, sizeof(*e) + ndiff * sizeof(ft_ent_diff_t) + strings);
    char *arena = (char *)&e->diff[ndiff];
    for (size_t i = 0; i < ndiff; i++) {
        e->diff[i] = diffs[i];
        e->diff[i].f.reason = arena_put(&arena, diffs[i].f.reason);
        e->diff[i].fragment = arena_put(&arena, frags[i]);
        free(frags[i]);
    }
    atomic_init(&e->refs, 1);
    e->ndiff = (uint32_t)ndiff;
    e->base = base;
    ft_uuid_parse(in->instance_id, e->instance_id);
    ft_uuid_parse(in->customer_id, e->customer_id);
    e->version = in->version;
    e->resolved_us = in->now_us;
    e->valid_until_us = valid_until;
    set_etag(e);
    free(frags);
    free(diffs);
    free(order);
    if (plain != w)
        free(plain);
    free(w);
    return e;
}

void ft_entitlements_hold(ft_entitlements_t *e)
{
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
}

void ft_entitlements_release(ft_entitlements_t *e)
{
    if (e == NULL || atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 1)
        return;
    base_release(e->base);
    free(e);
}

size_t ft_entitlements_count(const ft_entitlements_t *e)
{
    return e->base->nfeatures;
}

const ft_ent_feature_t *ft_entitlements_at(const ft_entitlements_t *e, size_t i)
{
    size_t lo = 0, hi = e->ndiff;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (e->diff[mid].index == i)
            return &e->diff[mid].f;
        if (e->diff[mid].index < i)
            lo = mid + 1;
        else
            hi = mid;
    }
    return &e->base->features[i];
}

const ft_ent_feature_t *ft_entitlements_find(const ft_entitlements_t *e, const char *code)
{
    const ft_ent_base_t *b = e->base;
    size_t lo = 0, hi = b->nfeatures;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int d = strcmp(b->features[mid].code, code);
        if (d == 0)
            return ft_entitlements_at(e, mid);
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int ft_entitlements_value(void *arg, const char *code, int64_t *value)
{
    const ft_ent_feature_t *f = arg != NULL ? ft_entitlements_find(arg, code) : NULL;
    if (f == NULL || !f->enabled)
        return 0;
    *value = f->value;
    return 1;
}
