/*
 * What fleet.c (membership, convergence) and rollout.c (coordination) share: the fleet's state
 * and the steps both take. Not for other files.
 */
#ifndef FT_FLEET_INTERNAL_H
#define FT_FLEET_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "infra/pg_listen.h"
#include "messaging/fleet.h"

struct ft_fleet {
    ft_fleet_config_t cfg; /* strings copied */
    char id[37];
    char *address; /* guarded by mutex */
    pthread_mutex_t mutex;
    pthread_cond_t kick_cond;    /* the heartbeat thread: a rollout was announced, or stop */
    pthread_cond_t results_cond; /* coordinators: some host wrote rollout results */
    int kick, beat_now, stopping;
    unsigned long long results_seq;
    /* held by a convergence and by a rollout's local phase (reload, releases, announcement):
     * they would otherwise undo each other's loads */
    pthread_mutex_t work_mutex;
    json_t *failed;  /* product -> the release id that failed to load here (work_mutex) */
    char *published; /* the plugin state last written to ft_host_plugins (work_mutex) */
    ft_listener_t *listener;
    pthread_t thread;
    int thread_started;
};

/* The generation of product serving here: 1 and its number, SHA-256 and version; 0 if none. */
int ft_fleet_serving(ft_fleet_t *f, const char *product, unsigned long long *number, char sha256[65], char *version,
                     size_t version_len);
/* Writes what this host serves to ft_host_plugins when it changed. work_mutex held. */
void ft_fleet_publish(ft_fleet_t *f);
/* Makes this host serve release (product, release_id, sha256): nothing when it already does
 * (unless force), else loads it from FT_PLUGIN_DIR if the file there is that release, or from
 * the release's bytes. Returns a rollout result {"product","result":"loaded|unchanged|failed",
 * ...}. work_mutex held. */
json_t *ft_fleet_apply(ft_fleet_t *f, const char *product, long long release_id, const char *sha256, int force);
/* Reads <FT_PLUGIN_DIR>/<product>.so whole and checks it still has sha256 (malloc'd; caller frees). */
int ft_fleet_read_plugin(ft_fleet_t *f, const char *product, const char *sha256, unsigned char **bytes, size_t *len,
                         ft_error_t *err);
/* Waits until a rollout-results notification newer than `seen` arrives or the monotonic
 * deadline passes; returns the notification count now. */
unsigned long long ft_fleet_results_seen(ft_fleet_t *f);
unsigned long long ft_fleet_wait_results(ft_fleet_t *f, unsigned long long seen, uint64_t deadline_ns);
uint64_t ft_fleet_now_ns(void);

#endif
