/*
 * Building CloudEvents envelopes.
 */
#include "domain/events.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>

static void now_rfc3339(char *out, size_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char base[32];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, len, "%s.%06ldZ", base, ts.tv_nsec / 1000);
}

json_t *ft_event_new_with_id(const char *id, const char *name, const char *subject, const ft_event_meta_t *meta, json_t *data)
{
    char type[160], time_s[40];
    snprintf(type, sizeof(type), FT_EVENT_TYPE_PREFIX "%s", name);
    now_rfc3339(time_s, sizeof(time_s));
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "specversion", "1.0", "id", id, "source", FT_EVENT_SOURCE,
                           "type", type, "time", time_s, "subject", subject, "datacontenttype", "application/json");
    if (meta != NULL) {
        if (meta->tenant_id != NULL)
            json_object_set_new(ev, "tenantid", json_string(meta->tenant_id));
        if (meta->correlation_id != NULL)
            json_object_set_new(ev, "correlationid", json_string(meta->correlation_id));
        if (meta->causation_id != NULL)
            json_object_set_new(ev, "causationid", json_string(meta->causation_id));
        if (meta->traceparent != NULL)
            json_object_set_new(ev, "traceparent", json_string(meta->traceparent));
    }
    json_object_set_new(ev, "data", data != NULL ? data : json_object());
    return ev;
}

json_t *ft_event_new(const char *name, const char *subject, const ft_event_meta_t *meta, json_t *data, char id_out[37])
{
    uuid_t u;
    char id[37];
    uuid_generate_random(u);
    uuid_unparse_lower(u, id);
    if (id_out != NULL)
        memcpy(id_out, id, sizeof(id));
    return ft_event_new_with_id(id, name, subject, meta, data);
}
