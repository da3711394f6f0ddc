/*
 * The process-wide state handlers reach through their request: configuration, the database
 * pool, NATS, readiness and the route table. Built once at start, then read-only.
 */
#ifndef FT_APP_H
#define FT_APP_H

#include "http/router.h"
#include "infra/config.h"
#include "infra/db_lane.h"
#include "infra/db_pool.h"
#include "infra/migrate.h"
#include "infra/nats.h"
#include "infra/readiness.h"
#include "plugins/registry.h"

#define FT_VERSION_STRING "0.1.0"

typedef struct ft_app {
    ft_config_t config;
    ft_db_pool_t *db;
    ft_db_lane_t *ent_readers; /* cold entitlement reads (FT_ENTITLEMENT_READERS), or NULL */
    ft_nats_t *nats;
    ft_readiness_t *readiness;
    ft_migration_set_t migrations;
    ft_router_t *router;
    ft_registry_t *registry;
    struct ft_fleet *fleet;
    struct ft_ent_service *entitlements;
    struct ft_identity *identity;
    struct ft_ratelimit *limit_credential, *limit_ip;
    struct ft_openapi *openapi; /* the API's OpenAPI document, built from the route table */
    struct ft_static *console;  /* the operator console's files (FT_CONSOLE_DIR), or NULL */
} ft_app_t;

#endif
