/*
 * The fleet's SQL: host records and heartbeats, what each host serves, plugin releases (the
 * fleet's desired state), rollouts and their per-host results. Functions that take part in a
 * larger change (releases, rollouts, results, notifications) run in the caller's transaction.
 */
#ifndef FT_FLEET_STORE_H
#define FT_FLEET_STORE_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

#include "core/error.h"

#define FT_FLEET_ROLLOUT_CHANNEL "ft_plugin_rollout"
#define FT_FLEET_RESULT_CHANNEL "ft_plugin_rollout_result"

typedef struct ft_host_record {
    const char *hostname;
    int pid;
    const char *const *roles; /* NULL-terminated */
    const char *version, *commit, *address;
    unsigned heartbeat_ms;
} ft_host_record_t;

/* Inserts this process's row; id receives its new uuid. */
int ft_fleet_store_register(PGconn *conn, const ft_host_record_t *h, char id[37], ft_error_t *err);
/* Stamps heartbeat_at (and the address, when not NULL). */
int ft_fleet_store_heartbeat(PGconn *conn, const char *host_id, const char *address, ft_error_t *err);
/* Sets stopped_at: a clean shutdown. */
int ft_fleet_store_stopped(PGconn *conn, const char *host_id, ft_error_t *err);

/* Replaces the host's ft_host_plugins rows with plugins ([{"product","generation","version",
 * "sha256","loaded_at","last_error","last_error_at"}], borrowed), in one transaction. */
int ft_fleet_store_set_plugins(PGconn *conn, const char *host_id, json_t *plugins, ft_error_t *err);

/* The current release of every product, without its file: [{"release_id","product","sha256",
 * "version","released_by","released_at"}] ordered by product. The caller json_decref()s. */
int ft_fleet_store_releases(PGconn *conn, json_t **out, ft_error_t *err);
/* Every release's {"product","release_id","sha256","released_epoch"} (no files; the time in
 * seconds since 1970), by product, newest first. */
int ft_fleet_store_release_history(PGconn *conn, json_t **out, ft_error_t *err);
/* A release's file; *bytes is malloc'd (the caller frees). FT_ENOTFOUND for no such release. */
int ft_fleet_store_release_file(PGconn *conn, long long release_id, unsigned char **bytes, size_t *len, ft_error_t *err);

typedef struct ft_release {
    const char *product, *sha256, *version;
    const unsigned char *file;
    size_t len;
    const char *released_by, *host_id, *rollout_id; /* rollout_id may be NULL */
} ft_release_t;

/*
 * Makes rel the product's current release, unless its current release already has this SHA-256
 * or (if_absent) it has one at all; serialized per product by an advisory lock held to the end of
 * the caller's transaction. *release_id and current_sha256 receive the current release after the
 * call (ours or the one that was there).
 */
int ft_fleet_store_release(PGconn *conn, const ft_release_t *rel, int if_absent, long long *release_id, char current_sha256[65],
                           ft_error_t *err);

/* A fresh uuid from the database, for a rollout id. */
int ft_fleet_store_new_id(PGconn *conn, char id[37], ft_error_t *err);
/* The live hosts other than `except`: a JSON array of ids. */
int ft_fleet_store_live_hosts(PGconn *conn, const char *except, json_t **ids, ft_error_t *err);

typedef struct ft_rollout_row {
    const char *id, *coordinator, *actor, *mode, *product; /* product NULL: every product */
    int force;
    json_t *items, *hosts; /* borrowed */
    const char *state;
} ft_rollout_row_t;

int ft_fleet_store_rollout_insert(PGconn *conn, const ft_rollout_row_t *r, ft_error_t *err);
/* Ends a rollout with state "done" or "incomplete"; started_at and finished_at (may be NULL)
 * receive its times as ISO 8601 text (caller-owned buffers of 40 bytes). */
int ft_fleet_store_rollout_finish(PGconn *conn, const char *id, const char *state, char *started_at, char *finished_at,
                                  ft_error_t *err);
/* One host's results for a rollout (borrowed array of {"product","result","generation",
 * "serving_generation","version","sha256","reason","load_ms"}). */
int ft_fleet_store_results_insert(PGconn *conn, const char *rollout_id, const char *host_id, json_t *results, ft_error_t *err);
/* NOTIFY channel, payload: delivered when the caller's transaction commits. */
int ft_fleet_store_notify(PGconn *conn, const char *channel, const char *payload, ft_error_t *err);

/* Rollouts still rolling that asked host_id and that it has not answered, oldest first:
 * [{"id","force","items"}]. */
int ft_fleet_store_pending(PGconn *conn, const char *host_id, json_t **out, ft_error_t *err);

/* The coordinator and every host a rollout asked, coordinator first: [{"host_id","hostname",
 * "status","coordinator","results":[...],"plugins":[{"product","generation","sha256","version"}]}]. */
int ft_fleet_store_rollout_hosts(PGconn *conn, const char *rollout_id, json_t **out, ft_error_t *err);

/* GET /api/v1/hosts: live hosts (all: also stale and stopped ones seen in the last hour), each
 * with its plugins; newest first. */
int ft_fleet_store_hosts(PGconn *conn, int all, json_t **out, ft_error_t *err);

#endif
