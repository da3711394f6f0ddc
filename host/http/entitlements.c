/*
 * GET /api/v1/instances/{id}/entitlements: the resolved record with its ETag; If-None-Match
 * answers 304. Served from memory when the record is cached. With Accept: text/event-stream, an
 * event stream of the record: now, then after every change.
 */
#include "core/mem.h"
#include "domain/entitlement_render.h"
#include "http/ent_lookup.h"
#include "http/op.h"
#include "http/routes.h"
#include "http/sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void found(ft_req_t *r, ft_entitlements_t *e, void *arg)
{
    ft_req_add_header(r, "etag", e->etag);
    ft_req_add_header(r, "cache-control", "private, no-cache");
    if (ft_etag_matches(r, e->etag)) {
        ft_respond_empty(r, 304);
        return;
    }
    size_t len;
    char *json = ft_entitlements_json(e, &len);
    ft_respond_borrowed(r, 200, "application/json", json, len, free, json);
}

static void failed(ft_req_t *r, ft_problem_t *problem, const ft_error_t *err, void *arg)
{
    if (problem->status != 0)
        ft_respond_problem_struct(r, problem);
    else
        ft_respond_internal(r, 500, err);
}

/* --- with Accept: text/event-stream: the record again whenever its ETag changes --- */

typedef struct ent_watch {
    char id[40];
    char etag[24]; /* the last one the client has, without quotes */
} ent_watch_t;

typedef struct ent_read {
    ft_sse_stream_t *s; /* valid while the request is alive */
    ent_watch_t *w;
} ent_read_t;

static void watch_found(ft_req_t *r, ft_entitlements_t *e, void *arg)
{
    ent_read_t *rd = arg;
    char etag[24];
    size_t n = strlen(e->etag);
    snprintf(etag, sizeof(etag), "%.*s", n >= 2 ? (int)(n - 2) : 0, e->etag + 1);
    if (strcmp(etag, rd->w->etag) != 0) {
        size_t len;
        char *json = ft_entitlements_json(e, &len);
        ft_sse_send(rd->s, etag, "entitlements", json, len);
        free(json);
        memcpy(rd->w->etag, etag, sizeof(etag));
    }
    ft_sse_begin(rd->s);
    ft_sse_refreshed(rd->s);
}

static void watch_failed(ft_req_t *r, ft_problem_t *problem, const ft_error_t *err, void *arg)
{
    ent_read_t *rd = arg;
    if (r->status == 0)
        failed(r, problem, err, NULL);
    ft_sse_end(rd->s); /* gone, or out of reach for now: the client reconnects if it wants */
}

static void ent_refresh(ft_sse_stream_t *s, void *arg)
{
    ent_read_t *rd = ft_mem_calloc(1, sizeof(*rd));
    rd->s = s;
    rd->w = arg;
    ft_ent_lookup(ft_sse_req(s), ((ent_watch_t *)arg)->id, watch_found, watch_failed, rd);
}

static void get_entitlements(ft_req_t *r)
{
    char id[64];
    if (ft_op_uuid_param(r, "id", id, sizeof(id)) != 0)
        return;
    if (!ft_sse_wanted(r)) {
        ft_ent_lookup(r, id, found, failed, NULL);
        return;
    }
    ent_watch_t *w = ft_mem_calloc(1, sizeof(*w));
    snprintf(w->id, sizeof(w->id), "%s", id);
    /* the id sent is the ETag without quotes; an ETag as the header has it is taken too */
    const char *last = ft_sse_last_event_id(r);
    size_t n = last != NULL ? strlen(last) : 0;
    if (n >= 2 && last[0] == '"' && last[n - 1] == '"')
        snprintf(w->etag, sizeof(w->etag), "%.*s", (int)(n - 2), last + 1);
    else if (last != NULL)
        snprintf(w->etag, sizeof(w->etag), "%s", last);
    ft_sse_open(r, FT_SSE_ENTITLEMENTS, w->id, ent_refresh, w);
}

/* The API reference's part of each route (see ft_route_doc_t). */
static const ft_route_doc_t doc_get_instances_id_entitlements = {
    .tag = "Entitlements",
    .summary = "The resolved entitlements of an instance",
    .responses = (const ft_route_response_t[]){{200, "Entitlements", NULL, "The record; with Accept: text/event-stream, its event stream"},
                                               {200,
                                                "{\"type\":\"string\",\"description\":\"Server-Sent Events: `event: entitlements` (id: the"
                                                " record's ETag without quotes; data: the Entitlements as the plain GET answers them), now"
                                                " and again after every change of the record. Last-Event-ID naming the current ETag sends"
                                                " nothing until the next change; a `: keepalive` comment line keeps an idle stream open.\","
                                                "\"x-events\":{\"entitlements\":{\"$ref\":\"#/components/schemas/Entitlements\"}}}",
                                                "text/event-stream", NULL},
                                               {304, NULL, NULL, "Unchanged since If-None-Match"},
                                               {410, "Problem", NULL, "The instance was deleted"},
                                               {0}},
};

void ft_routes_entitlements(ft_router_t *router)
{
    static const ft_route_t routes[] = {
        {.method = "GET", .pattern = "/api/v1/instances/{id}/entitlements", .permission = "entitlements:read",
         .flags = FT_ROUTE_CHAIN, .handler = get_entitlements, .doc = &doc_get_instances_id_entitlements},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        ft_router_add(router, &routes[i]);
}
