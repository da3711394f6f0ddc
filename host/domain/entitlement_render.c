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

/* us as the REST document writes times: "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" (quotes included);
 * returns the length. */
static size_t put_time(char *out, int64_t us)
{
    char base[32];
    time_t s = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    return (size_t)snprintf(out, 48, "\"%s.%06lldZ\"", base, (long long)(us % 1000000));
}

static const char *source_name(int s)
{
    return s == FT_ENT_SOURCE_PLAN ? "plan" : s == FT_ENT_SOURCE_OVERRIDE ? "override" : "none";
}

/* An object's members as JSON_COMPACT renders them, without the braces around them. */
static char *members(json_t *obj, size_t *len)
{
    char *text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    if (text == NULL)
        abort(); /* out of memory */
    size_t n = strlen(text);
    memmove(text, text + 1, n - 2);
    text[n - 2] = '\0';
    *len = n - 2;
    return text;
}

char *ft_ent_render_fragment(const ft_ent_feature_t *f, size_t *len)
{
    json_t *item = json_pack("{s:s, s:b, s:o, s:s, s:s}", "kind", f->kind == FTP_FEATURE_FLAG ? "flag" : "limit", "enabled", f->enabled,
                             "value", f->kind == FTP_FEATURE_FLAG ? json_boolean(f->enabled) : json_integer(f->value), "source",
                             source_name(f->source), "reason", f->reason);
    if (f->expires_us != 0) {
        char t[48];
        size_t n = put_time(t, f->expires_us);
        json_object_set_new(item, "expires_at", json_stringn(t + 1, n - 2));
    }
    json_t *one = json_object();
    json_object_set_new(one, f->code, item);
    return members(one, len);
}

char *ft_ent_render_head(const ft_ent_base_t *b, size_t *len)
{
    return members(json_pack("{s:s, s:{s:s, s:i}, s:s, s:s}", "product", b->product, "plan", "code", b->plan, "version",
                             (int)b->plan_version, "subscription_status", b->subscription_status, "instance_status",
                             b->instance_status),
                   len);
}

char *ft_entitlements_json(const ft_entitlements_t *e, size_t *len)
{
    const ft_ent_base_t *b = e->base;
    size_t cap = 320 + b->head_len + b->fragments_len + b->nfeatures; /* 320: every other part at its longest */
    for (uint32_t i = 0; i < e->ndiff; i++)
        cap += e->diff[i].fragment_len;
    char *out = ft_mem_alloc(cap), *o = out, id[37];
    o = ft_put_str(o, "{\"instance_id\":\"");
    ft_uuid_format(e->instance_id, id);
    o = ft_put(o, id, 36);
    o = ft_put_str(o, "\",\"customer_id\":\"");
    ft_uuid_format(e->customer_id, id);
    o = ft_put(o, id, 36);
    o = ft_put(o, "\",", 2);
    o = ft_put(o, b->head, b->head_len);
    o = ft_put_str(o, ",\"version\":");
    o = ft_put_i64(o, (int64_t)e->version); /* as jansson writes a json_int_t */
    o = ft_put_str(o, ",\"resolved_at\":");
    o += put_time(o, e->resolved_us);
    o = ft_put_str(o, ",\"valid_until\":");
    if (e->valid_until_us == INT64_MAX)
        o = ft_put_str(o, "null");
    else
        o += put_time(o, e->valid_until_us);
    o = ft_put_str(o, ",\"features\":{");
    for (size_t i = 0, d = 0; i < b->nfeatures; i++) {
        if (i > 0)
            *o++ = ',';
        if (d < e->ndiff && e->diff[d].index == i) {
            o = ft_put(o, e->diff[d].fragment, e->diff[d].fragment_len);
            d++;
        } else {
            o = ft_put(o, b->fragments[i], b->fragment_lens[i]);
        }
    }
    o = ft_put(o, "}}", 3);
    if (len != NULL)
        *len = (size_t)(o - out) - 1;
    return out;
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
    o = ft_put_str(o, e->base->plan);
    o = ft_put_str(o, "\",\"entitlementsVersion\":");
    o = ft_put_u64(o, e->version);
    o = ft_put(o, "}}", 2);
    return (size_t)(o - out);
}

char *ft_entitlements_ofrep_bulk(const ft_entitlements_t *e, size_t *len)
{
    const ft_ent_base_t *b = e->base;
    size_t cap = FT_ENT_OFREP_FLAG_MAX + b->nfeatures * FT_ENT_OFREP_FLAG_MAX, used = 0;
    char *buf = ft_mem_alloc(cap), id[37];
    used += (size_t)snprintf(buf, cap, "{\"flags\":[");
    for (size_t i = 0; i < b->nfeatures; i++) {
        if (i > 0)
            buf[used++] = ',';
        used += ft_entitlements_ofrep_flag(e, ft_entitlements_at(e, i), buf + used);
    }
    ft_uuid_format(e->instance_id, id);
    used += (size_t)snprintf(buf + used, cap - used,
                             "],\"metadata\":{\"instanceId\":\"%s\",\"product\":\"%s\",\"plan\":\"%s\",\"planVersion\":%u,"
                             "\"entitlementsVersion\":%llu}}",
                             id, b->product, b->plan, b->plan_version, (unsigned long long)e->version);
    if (len != NULL)
        *len = used;
    return buf;
}
