/*
 * Host configuration: defaults, then a KEY=VALUE file, then the environment (which wins).
 * Every setting is validated at start; each bad value gets its own message.
 */
#ifndef FT_CONFIG_H
#define FT_CONFIG_H

#include <stddef.h>
#include <stdint.h>

enum {
    FT_ROLE_API = 1u << 0,
    FT_ROLE_RELAY = 1u << 1,
    FT_ROLE_WORKER = 1u << 2,
};

enum { FT_LOG_DEBUG, FT_LOG_INFO, FT_LOG_WARN, FT_LOG_ERROR };

typedef struct ft_config {
    char *http_listen; /* as given, "host:port" */
    char http_host[64];
    uint16_t http_port;
    char *database_url;
    char *nats_url;
    char *plugin_dir;
    char *migrations_dir;
    char *docs_dir;
    char *console_dir;
    unsigned roles;
    unsigned threads;
    unsigned db_pool_size;
    size_t max_body_bytes;
    int log_level;
    unsigned shutdown_timeout_ms;
    unsigned plugin_drain_timeout_ms;
    unsigned plugin_rollout_timeout_ms;
    unsigned host_heartbeat_ms;
    unsigned ready_interval_ms;
    unsigned nats_replicas;
    int dev_routes;
    char *tenant_database_url; /* "" until derived from database_url */
    unsigned tenant_database_capacity; /* of the default pooled database */
    char *placement_policy;            /* "least-loaded" or "fill-first" */
    char *archive_dir;                 /* "": no archive */
    unsigned archive_retention_days;
    unsigned worker_threads, worker_batch, worker_flush_ms;
    unsigned job_max_attempts;
    unsigned job_backoff_ms, job_backoff_max_ms, job_ack_wait_ms;
    unsigned relay_batch, relay_lanes, relay_poll_ms;
    int relay_crash_after_publish;
    unsigned sweep_interval_ms;
    unsigned metrics_sample_ms; /* backlog gauges' sampling period */
    char *jwt_alg; /* "RS256", "ES256" or "EdDSA" */
    char *jwt_issuer, *jwt_audience;
    unsigned access_token_ttl_s, refresh_token_ttl_s, jwt_leeway_s;
    unsigned login_max_failures, login_lockout_s;
    unsigned rate_limit_rps, rate_limit_burst, rate_limit_ip_rps, rate_limit_ip_burst;
    unsigned idempotency_ttl_s;
    unsigned sse_heartbeat_ms, sse_max_per_credential, sse_max_streams;
    unsigned entitlement_cache_max; /* resolved records kept in memory */
    unsigned entitlement_readers;   /* the cold reads' lane: threads and connections */
    char *stack_env;     /* the local stack's file these settings were completed from, or NULL */
    char *system_config; /* the system config file these settings were read from, or NULL */
} ft_config_t;

/*
 * Loads the configuration. `file` may be NULL (then FT_CONFIG names the file, if set).
 * On failure returns a negative code and writes one line per problem to `errors`
 * (a caller-owned buffer of `errlen` bytes). The config's strings are freed by ft_config_free.
 */
int ft_config_load(ft_config_t *cfg, const char *file, char *errors, size_t errlen);
/*
 * Where a binary's defaults point, by one rule (ft_config_local_stack_env): run from the checkout
 * it was built in, the build tree's products/, the source tree's migrations/ and the local
 * stack's settings file; anywhere else, the installed layout's plugin and migration directories
 * and the system config file (<sysconfdir>/farutech/farutech.conf: /etc/farutech/farutech.conf
 * for prefix /usr), all fixed when the build was configured.
 */
typedef struct ft_config_site {
    const char *plugin_dir;     /* default of FT_PLUGIN_DIR */
    const char *migrations_dir; /* default of FT_MIGRATIONS_DIR */
    const char *docs_dir;       /* default of FT_DOCS_DIR */
    const char *console_dir;    /* default of FT_CONSOLE_DIR */
    const char *stack_env;      /* the local stack's settings file, or NULL */
    const char *system_config;  /* the system config file, or NULL */
    char buf[4096];             /* holds stack_env */
} ft_config_site_t;

/* Fills site for the executable exe (NULL: the running one). */
void ft_config_site(const char *exe, ft_config_site_t *site);
/*
 * As ft_config_load, with the site's directories as defaults and, when no config file is named
 * (neither file nor FT_CONFIG), one more layer beneath the environment: the site's stack_env if
 * it exists (its keys that are not settings are passed over; cfg->stack_env then names it), or
 * else its system_config if it exists (cfg->system_config then names it; unreadable is an
 * error). site may be NULL: the installed directories and no such layer, as ft_config_load.
 */
int ft_config_load_site(ft_config_t *cfg, const char *file, const ft_config_site_t *site, char *errors, size_t errlen);
void ft_config_free(ft_config_t *cfg);
/*
 * Writes the effective configuration as KEY=VALUE lines, passwords in URLs masked, preceded by a
 * comment naming the local stack's file when it was read. Switches that exist only for tests are
 * left out while they hold their default, unless all is set.
 */
void ft_config_dump(const ft_config_t *cfg, int fd, int all);
/*
 * Whether this binary runs from the checkout it was built in: the executable (exe, or NULL for
 * the running one) lies under its build directory and the source tree has packaging/stack.sh.
 * If so writes where that script keeps the local stack's settings (FT_VAR_DIR, relative to the
 * source tree, default var; then /stack.env) to out and returns 1; else 0.
 */
int ft_config_local_stack_env(const char *exe, char *out, size_t len);
/* "api,relay" style rendering of a role mask into buf. */
const char *ft_config_roles_str(unsigned roles, char *buf, size_t len);

#endif
