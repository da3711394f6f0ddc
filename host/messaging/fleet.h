/*
 * This process as a member of the fleet: it records itself and what it serves, heartbeats,
 * and converges on the fleet's current plugin releases, told by PostgreSQL NOTIFY (on the
 * channel ft_plugin_rollout) and checked again on every heartbeat, so a missed notification
 * costs one heartbeat at most. A rollout (ft_fleet_rollout) reloads here first, records the
 * releases and asks every other live host, then collects their results.
 */
#ifndef FT_FLEET_H
#define FT_FLEET_H

#include <jansson.h>

#include "core/error.h"
#include "infra/db_pool.h"
#include "plugins/registry.h"

typedef struct ft_fleet ft_fleet_t;

typedef struct ft_fleet_config {
    const char *database_url;
    ft_db_pool_t *db;
    ft_registry_t *registry;
    unsigned roles; /* FT_ROLE_* bits */
    const char *version, *commit, *address;
    unsigned heartbeat_ms, rollout_timeout_ms;
} ft_fleet_config_t;

/*
 * Registers this process, loads every product: the current release where one exists (from
 * FT_PLUGIN_DIR when the file there has the release's SHA-256, else from the release's bytes),
 * the plugin directory's file for a product with no release yet (recorded as its first release
 * unless another host recorded one first, whose file is then loaded instead); then starts the
 * heartbeat and the listener. Blocking (start-up). A database that refuses the registration
 * (the fleet's tables missing) leaves the host on its own: it loads its plugin directory and its
 * rollouts reach itself only. NULL + err (FT_EIO) when the plugin directory cannot be read.
 */
ft_fleet_t *ft_fleet_start(const ft_fleet_config_t *cfg, ft_error_t *err);
/* Stops the threads and marks this host stopped. NULL is a no-op. */
void ft_fleet_stop(ft_fleet_t *f);
/* The HTTP address once known ("127.0.0.1:8080"), written with the next heartbeat. */
void ft_fleet_set_address(ft_fleet_t *f, const char *address);
/* This host's id, or NULL when it is on its own. */
const char *ft_fleet_host_id(const ft_fleet_t *f);

typedef struct ft_rollout_request {
    const char *product; /* NULL: every product */
    int force, canary;
    int rollback;      /* a file in FT_PLUGIN_DIR that was an earlier release may become current again */
    const char *actor; /* "user:<id>", "key:<id>", "signal" */
} ft_rollout_request_t;

/*
 * A fleet-wide reload, coordinated from this host. Blocking (up to the rollout timeout): never
 * on an HTTP loop thread. *answer (the caller json_decref()s) gets {"results": this host's
 * registry report, "rollout": {...}, "hosts": [{"host_id","hostname","status","coordinator",
 * "results":[{"product","result":"loaded|unchanged|failed|timeout|skipped",...}]}]}.
 * Returns FT_OK when every host loaded or kept every product; FT_EINVAL when some product
 * failed somewhere (err: the reasons); FT_ETIMEOUT when a host did not answer in time;
 * FT_ENOTFOUND for an unknown product, FT_EIO for an unreadable plugin directory and
 * FT_EUNAVAILABLE/FT_EDB when the database failed (*answer NULL for these three).
 */
int ft_fleet_rollout(ft_fleet_t *f, const ft_rollout_request_t *req, json_t **answer, ft_error_t *err);

#endif
