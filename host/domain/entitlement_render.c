/*
 * The renderers. OFREP answers are appended by hand (codes and plan codes are [a-z0-9_], at
 * most 63 characters, and need no escaping).
 */
#include "domain/entitlement_render.h"

#include "core/append.h"
#include "core/mem.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static json_t *time_json(int64_t us)
{
    char buf[40], base[32];
    time_t s = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, sizeof(buf), "%s.%06lldZ", base, (long long)(us % 1000000));
    return json_string(buf);
}

static const char *source_name(int s)
{
    return s == FT_ENT_SOURCE_PLAN ? "plan" : s == FT_ENT_SOURCE_OVERRIDE ? "override" : "none";
}

char *ft_entitlements_json(const ft_entitlements_t *e, size_t *len)
{
    json_t *features = json_object();
    for (size_t i = 0; i < e->nfeatures; i++) {
        const ft_ent_feature_t *f = &e->features[i];
        json_t *item = json_pack("{s:s, s:b, s:o, s:s, s:s}", "kind", f->kind == FTP_FEATURE_FLAG ? "flag" : "limit", "enabled",
                                 f->enabled, "value", f->kind == FTP_FEATURE_FLAG ? json_boolean(f->enabled) : json_integer(f->value),
                                 "source", source_name(f->source), "reason", f->reason);
        if (f->expires_us != 0)
            json_object_set_new(item, "expires_at", time_json(f->expires_us));
        json_object_set_new(features, f->code, item);
    }
    json_t *doc = json_pack("{s:s, s:s, s:s, s:{s:s, s:i}, s:s, s:s, s:I, s:o, s:o, s:o}", "instance_id", e->instance_id,
                            "customer_id", e->customer_id, "product", e->product, "plan", "code", e->plan, "version",
                            (int)e->plan_version, "subscription_status", e->subscription_status, "instance_status",
                            e->instance_status, "version", (json_int_t)e->version, "resolved_at", time_json(e->resolved_us),
                            "valid_until", e->valid_until_us == INT64_MAX ? json_null() : time_json(e->valid_until_us),
                            "features", features);
    char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (text == NULL)
        abort(); /* out of memory */
    if (len != NULL)
        *len = strlen(text);
    return text;
}

static const char *reason_of(const ft_ent_feature_t *f)
{
    return f->enabled ? "TARGETING_MATCH" : "DISABLED";
}

size_t ft_entitlements_ofrep_flag(const ft_entitlements_t *e, const ft_ent_feature_t *f, char *out)
{
    char *o = ft_put_str(out, "{\"key\":\"");
    o = ft_put_str(o, f->code);
    o = ft_put_str(o, "\",\"value\":");
    if (f->kind == FTP_FEATURE_FLAG)
        o = ft_put_str(o, f->enabled ? "true" : "false");
    else
        o = ft_put_i64(o, f->value);
    o = ft_put_str(o, ",\"reason\":\"");
    o = ft_put_str(o, reason_of(f));
    o = ft_put_str(o, f->enabled ? "\",\"variant\":\"on\",\"metadata\":{\"kind\":\"" : "\",\"variant\":\"off\",\"metadata\":{\"kind\":\"");
    o = ft_put_str(o, f->kind == FTP_FEATURE_FLAG ? "flag" : "limit");
    o = ft_put_str(o, "\",\"source\":\"");
    o = ft_put_str(o, source_name(f->source));
    o = ft_put_str(o, "\",\"plan\":\"");
    o = ft_put_str(o, e->plan);
    o = ft_put_str(o, "\",\"entitlementsVersion\":");
    o = ft_put_u64(o, e->version);
    o = ft_put(o, "}}", 2);
    return (size_t)(o - out);
}

char *ft_entitlements_ofrep_bulk(const ft_entitlements_t *e, size_t *len)
{
    size_t cap = FT_ENT_OFREP_FLAG_MAX + e->nfeatures * FT_ENT_OFREP_FLAG_MAX, used = 0;
    char *buf = ft_mem_alloc(cap);
    used += (size_t)snprintf(buf, cap, "{\"flags\":[");
    for (size_t i = 0; i < e->nfeatures; i++) {
        if (i > 0)
            buf[used++] = ',';
        used += ft_entitlements_ofrep_flag(e, &e->features[i], buf + used);
    }
    used += (size_t)snprintf(buf + used, cap - used,
                             "],\"metadata\":{\"instanceId\":\"%s\",\"product\":\"%s\",\"plan\":\"%s\",\"planVersion\":%u,"
                             "\"entitlementsVersion\":%llu}}",
                             e->instance_id, e->product, e->plan, e->plan_version, (unsigned long long)e->version);
    if (len != NULL)
        *len = used;
    return buf;
}
