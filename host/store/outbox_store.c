/*
 * Outbox rows. The relay reads them in seq order with FOR UPDATE SKIP LOCKED.
 */
#include "store/outbox_store.h"

#include "store/sql.h"

#include <stdio.h>
#include <stdlib.h>

int ft_outbox_append(PGconn *c, const char *aggregate_type, const char *aggregate_id, const char *subject, json_t *event,
                     ft_error_t *err)
{
    char *text = json_dumps(event, JSON_COMPACT);
    const char *params[] = {json_string_value(json_object_get(event, "id")), aggregate_type, aggregate_id, subject,
                            json_string_value(json_object_get(event, "type")), text};
    int rc = ft_sql(c, "appending to the outbox",
                    "INSERT INTO ft_outbox (id, aggregate_type, aggregate_id, subject, type, event)"
                    " VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
                    6, params, NULL, err);
    free(text);
    return rc;
}

int ft_outbox_emit(PGconn *c, const char *aggregate_type, const char *aggregate_id, const char *name, const ft_event_meta_t *meta,
                   json_t *data, ft_error_t *err)
{
    char subject[160], path[160];
    snprintf(subject, sizeof(subject), "ft.events.%s", name);
    snprintf(path, sizeof(path), "%ss/%s", aggregate_type, aggregate_id);
    json_t *ev = ft_event_new(name, path, meta, data, NULL);
    int rc = ft_outbox_append(c, aggregate_type, aggregate_id, subject, ev, err);
    json_decref(ev);
    return rc;
}

int ft_outbox_finish(PGconn *c, const ft_call_t *call, const char *aggregate, const char *what, const char *id, json_t *entity, int rc,
                     ft_error_t *err)
{
    if (rc == FT_OK) {
        char name[96], id_member[64];
        snprintf(name, sizeof(name), "%s.%s.v1", aggregate, what);
        snprintf(id_member, sizeof(id_member), "%s_id", aggregate);
        ft_event_meta_t meta = {.correlation_id = call->correlation_id};
        json_t *data = entity != NULL ? json_pack("{s:O, s:s}", aggregate, entity, "actor", call->actor)
                                      : json_pack("{s:s, s:s}", id_member, id, "actor", call->actor);
        rc = ft_outbox_emit(c, aggregate, id, name, &meta, data, err);
    }
    if (rc == FT_OK)
        rc = ft_sql_commit(c, err);
    else
        ft_sql_rollback(c);
    return rc;
}

int ft_outbox_emit_instance_events(PGconn *c, const char *instance_id, const char *correlation_id, json_t *events, ft_error_t *err)
{
    if (json_array_size(events) == 0)
        return FT_OK;
    ft_event_meta_t meta = {.tenant_id = instance_id, .correlation_id = correlation_id};
    int rc = ft_sql_begin(c, err);
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev)
    {
        if (rc != FT_OK)
            break;
        rc = ft_outbox_emit(c, "instance", instance_id, json_string_value(json_object_get(ev, "type")), &meta,
                            json_incref(json_object_get(ev, "data")), err);
    }
    if (rc == FT_OK)
        return ft_sql_commit(c, err);
    ft_sql_rollback(c);
    return rc;
}
