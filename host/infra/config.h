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
    unsigned roles;
    unsigned threads;
    unsigned db_pool_size;
    size_t max_body_bytes;
    int log_level;
    unsigned shutdown_timeout_ms;
    unsigned plugin_drain_timeout_ms;
    unsigned ready_interval_ms;
    unsigned nats_replicas;
    int dev_routes;
    char *tenant_database_url; /* "" until derived from database_url */
    char *archive_dir;         /* "": no archive */
    unsigned archive_retention_days;
    unsigned worker_threads;
    unsigned job_max_attempts;
    unsigned job_backoff_ms, job_backoff_max_ms, job_ack_wait_ms;
    unsigned relay_batch, relay_poll_ms;
    int relay_crash_after_publish;
    unsigned sweep_interval_ms;
    char *jwt_alg; /* "RS256", "ES256" or "EdDSA" */
    char *jwt_issuer, *jwt_audience;
    unsigned access_token_ttl_s, refresh_token_ttl_s, jwt_leeway_s;
    unsigned login_max_failures, login_lockout_s;
    unsigned rate_limit_rps, rate_limit_burst, rate_limit_ip_rps, rate_limit_ip_burst;
    unsigned idempotency_ttl_s;
} ft_config_t;

/*
 * Loads the configuration. `file` may be NULL (then FT_CONFIG names the file, if set).
 * On failure returns a negative code and writes one line per problem to `errors`
 * (a caller-owned buffer of `errlen` bytes). The config's strings are freed by ft_config_free.
 */
int ft_config_load(ft_config_t *cfg, const char *file, char *errors, size_t errlen);
void ft_config_free(ft_config_t *cfg);
/* Writes the effective configuration as KEY=VALUE lines, passwords in URLs masked. */
void ft_config_dump(const ft_config_t *cfg, int fd);
/* "api,relay" style rendering of a role mask into buf. */
const char *ft_config_roles_str(unsigned roles, char *buf, size_t len);

#endif
