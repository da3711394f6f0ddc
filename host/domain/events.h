/*
 * CloudEvents 1.0 envelopes for the control plane's events, with the extensions tenantid,
 * correlationid, causationid and traceparent. Types are "dev.farutech.<name>.v<N>"; a v1 never
 * changes shape (docs/events.md lists them with their JSON Schemas).
 */
#ifndef FT_EVENTS_H
#define FT_EVENTS_H

#include <jansson.h>

#define FT_EVENT_SOURCE "/farutech/control-plane"
#define FT_EVENT_TYPE_PREFIX "dev.farutech."

typedef struct ft_event_meta {
    const char *tenant_id;      /* the instance the event is about, or NULL */
    const char *correlation_id; /* ties the request, the jobs, the events and the log lines */
    const char *causation_id;   /* the event (or request) that caused this one, or NULL */
    const char *traceparent;    /* W3C trace context, or NULL */
} ft_event_meta_t;

/* A new envelope (caller owns it) with a fresh random id, written into id_out when not NULL.
 * `name` is "instance.provisioning_requested.v1"; data is stolen. */
json_t *ft_event_new(const char *name, const char *subject, const ft_event_meta_t *meta, json_t *data, char id_out[37]);

/* The same with a caller-chosen id (deterministic ids make re-emitted events deduplicate). */
json_t *ft_event_new_with_id(const char *id, const char *name, const char *subject, const ft_event_meta_t *meta, json_t *data);

#endif
