/*
 * The resolver. One pass applies the plan and the overrides; a fixpoint then switches off
 * every feature whose requirements are off (requirements may chain). All strings of a record
 * live in one allocation with it, so a record costs one malloc and one free.
 */
#include "domain/entitlements.h"

#include "core/mem.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REASON_MAX 160

typedef struct work {
    int enabled, source;
    int64_t value, expires_us;
    char reason[REASON_MAX];
} work_t;

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

static int cmp_feature(const void *a, const void *b)
{
    return strcmp(((const ft_ent_feature_t *)a)->code, ((const ft_ent_feature_t *)b)->code);
}

static void set_etag(ft_entitlements_t *e)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    char line[256];
    int n = snprintf(line, sizeof(line), "%s|%s|%s|%u|%s|%s\n", e->instance_id, e->product, e->plan, e->plan_version,
                     e->subscription_status, e->instance_status);
    EVP_DigestUpdate(md, line, (size_t)n);
    for (size_t i = 0; i < e->nfeatures; i++) {
        const ft_ent_feature_t *f = &e->features[i];
        n = snprintf(line, sizeof(line), "%s=%d:%lld:%d:%lld:%s\n", f->code, f->enabled, (long long)f->value, f->source,
                     (long long)f->expires_us, f->reason);
        EVP_DigestUpdate(md, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
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
    work_t *w = ft_mem_calloc(n, sizeof(*w));
    const char *gated = gate(in);
    int64_t valid_until = INT64_MAX;
    if (strcmp(in->subscription_status, "trialing") == 0 && in->trial_ends_us > in->now_us)
        valid_until = in->trial_ends_us;
    if (in->change_due_us > in->now_us && in->change_due_us < valid_until)
        valid_until = in->change_due_us;

    for (size_t i = 0; i < n; i++) {
        const ft_feature_t *f = &p->features[i];
        const ft_ent_plan_item_t *item = find_plan_item(in, f->code);
        const ft_ent_override_t *o = find_override(in, f->code);
        if (item != NULL) {
            w[i].enabled = 1;
            w[i].source = FT_ENT_SOURCE_PLAN;
            w[i].value = f->kind == FTP_FEATURE_LIMIT ? item->value : 1;
            snprintf(w[i].reason, REASON_MAX, "included in plan %s v%u", in->plan, in->plan_version);
        } else {
            snprintf(w[i].reason, REASON_MAX, "not in plan %s v%u", in->plan, in->plan_version);
        }
        if (o != NULL) {
            w[i].source = FT_ENT_SOURCE_OVERRIDE;
            w[i].enabled = o->enabled;
            w[i].expires_us = o->expires_us;
            if (o->expires_us != 0 && o->expires_us < valid_until)
                valid_until = o->expires_us;
            if (o->enabled)
                w[i].value = f->kind == FTP_FEATURE_FLAG ? 1 : o->has_limit ? o->limit : item != NULL ? item->value : f->default_value;
            snprintf(w[i].reason, REASON_MAX, "%s by override%s%s", o->enabled ? "on" : "off", o->reason ? ": " : "",
                     o->reason ? o->reason : "");
        }
        /* an expired override is simply absent, but its expiry may still wake a re-resolve */
        if (gated != NULL) {
            w[i].enabled = 0;
            snprintf(w[i].reason, REASON_MAX, "off: %s", gated);
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

    /* one allocation: the record, its features, then every string */
    size_t strings = 0;
    for (size_t i = 0; i < n; i++)
        strings += strlen(p->features[i].code) + 1 + strlen(w[i].reason) + 1;
    size_t head = (sizeof(ft_entitlements_t) + 15) & ~(size_t)15;
    ft_entitlements_t *e = ft_mem_calloc(1, head + n * sizeof(ft_ent_feature_t) + strings);
    e->features = (ft_ent_feature_t *)((char *)e + head);
    char *arena = (char *)(e->features + n);
    atomic_init(&e->refs, 1);
    snprintf(e->instance_id, sizeof(e->instance_id), "%s", in->instance_id);
    snprintf(e->customer_id, sizeof(e->customer_id), "%s", in->customer_id);
    snprintf(e->product, sizeof(e->product), "%s", p->code);
    snprintf(e->plan, sizeof(e->plan), "%s", in->plan);
    snprintf(e->subscription_status, sizeof(e->subscription_status), "%s", in->subscription_status);
    snprintf(e->instance_status, sizeof(e->instance_status), "%s", in->instance_status);
    e->plan_version = in->plan_version;
    e->version = in->version;
    e->resolved_us = in->now_us;
    e->valid_until_us = valid_until;
    e->nfeatures = n;
    for (size_t i = 0; i < n; i++) {
        ft_ent_feature_t *o = &e->features[i];
        size_t cl = strlen(p->features[i].code) + 1, rl = strlen(w[i].reason) + 1;
        memcpy(arena, p->features[i].code, cl);
        o->code = arena;
        arena += cl;
        memcpy(arena, w[i].reason, rl);
        o->reason = arena;
        arena += rl;
        o->kind = (uint8_t)p->features[i].kind;
        o->enabled = (uint8_t)w[i].enabled;
        o->source = (uint8_t)w[i].source;
        o->value = w[i].enabled ? w[i].value : 0;
        o->expires_us = w[i].expires_us;
    }
    free(w);
    if (n > 1)
        qsort(e->features, n, sizeof(*e->features), cmp_feature);
    set_etag(e);
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
    free(e);
}

const ft_ent_feature_t *ft_entitlements_find(const ft_entitlements_t *e, const char *code)
{
    size_t lo = 0, hi = e->nfeatures;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int d = strcmp(e->features[mid].code, code);
        if (d == 0)
            return &e->features[mid];
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

