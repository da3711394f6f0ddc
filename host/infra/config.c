/*
 * Configuration loading and validation. One table names every setting, its default, its
 * parser and its limits; the file and the environment go through the same parsers.
 */
#include "infra/config.h"

#include "core/error.h"
#include "core/mem.h"

#include <ctype.h>
#include <errno.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The installed layout (from CMAKE_INSTALL_PREFIX and GNUInstallDirs at configure time). */
#ifndef FT_INSTALL_PLUGIN_DIR
#define FT_INSTALL_PLUGIN_DIR "/usr/local/lib/farutech/products"
#endif
#ifndef FT_INSTALL_MIGRATIONS_DIR
#define FT_INSTALL_MIGRATIONS_DIR "/usr/local/share/farutech/migrations"
#endif
#ifndef FT_INSTALL_DOCS_DIR
#define FT_INSTALL_DOCS_DIR "/usr/local/share/farutech/docs"
#endif
#ifndef FT_INSTALL_CONSOLE_DIR
#define FT_INSTALL_CONSOLE_DIR "/usr/local/share/farutech/console"
#endif
#ifndef FT_SYSTEM_CONFIG
#define FT_SYSTEM_CONFIG "/usr/local/etc/farutech/farutech.conf"
#endif
/* The trees this binary was built from and in; a binary run from elsewhere is not in a checkout. */
#ifndef FT_SOURCE_DIR
#define FT_SOURCE_DIR "/nonexistent"
#endif
#ifndef FT_BUILD_DIR
#define FT_BUILD_DIR "/nonexistent"
#endif

/* K_TESTSWITCH: a K_BOOL that exists for tests only; `config` shows it only when it is on. */
typedef enum {
    K_STRING,
    K_OPTSTRING,
    K_LISTEN,
    K_UINT,
    K_SIZE,
    K_BOOL,
    K_TESTSWITCH,
    K_ROLES,
    K_LOGLEVEL,
    K_PGURL,
    K_NATSURL,
    K_CHOICE /* one of the setting's choices */
} kind_t;

typedef struct setting {
    const char *name;
    kind_t kind;
    size_t offset;
    const char *def;
    unsigned long long min, max; /* for K_UINT and K_SIZE */
    const char *help;
} setting_t;

/* The values a K_CHOICE setting accepts, NULL-terminated. */
static const struct {
    const char *setting;
    const char *values[4];
} choices[] = {
    {"FT_JWT_ALG", {"RS256", "ES256", "EdDSA", NULL}},
    {"FT_PLACEMENT_POLICY", {"least-loaded", "fill-first", NULL}},
};

static const char *const *choices_of(const char *setting)
{
    for (size_t i = 0; i < sizeof(choices) / sizeof(choices[0]); i++)
        if (strcmp(choices[i].setting, setting) == 0)
            return choices[i].values;
    return NULL;
}

#define OFF(f) offsetof(ft_config_t, f)

static const setting_t settings[] = {
    {"FT_HTTP_LISTEN", K_LISTEN, OFF(http_listen), "127.0.0.1:8080", 0, 0, "HTTP listen address, host:port"},
    {"FT_DATABASE_URL", K_PGURL, OFF(database_url), "postgresql://farutech@127.0.0.1:55432/farutech", 0, 0,
     "PostgreSQL connection URL or conninfo string"},
    {"FT_NATS_URL", K_NATSURL, OFF(nats_url), "nats://127.0.0.1:14222", 0, 0, "NATS server URL(s), comma separated"},
    {"FT_PLUGIN_DIR", K_STRING, OFF(plugin_dir), FT_INSTALL_PLUGIN_DIR, 0, 0, "directory of product plugins (*.so)"},
    {"FT_MIGRATIONS_DIR", K_STRING, OFF(migrations_dir), FT_INSTALL_MIGRATIONS_DIR, 0, 0, "directory of NNNN_name.sql migrations"},
    {"FT_DOCS_DIR", K_STRING, OFF(docs_dir), FT_INSTALL_DOCS_DIR, 0, 0,
     "directory of the API reference's renderer (redoc.standalone.js), served at /api/v1/docs"},
    {"FT_CONSOLE_DIR", K_STRING, OFF(console_dir), FT_INSTALL_CONSOLE_DIR, 0, 0,
     "directory of the operator console's files (index.html, console.css, js/), served at /console/"},
    {"FT_ROLES", K_ROLES, OFF(roles), "api,relay,worker", 0, 0, "roles this process runs: api, relay, worker (all: every one)"},
    {"FT_THREADS", K_UINT, OFF(threads), "0", 0, 256, "HTTP loop threads (0 = one per CPU)"},
    {"FT_DB_POOL_SIZE", K_UINT, OFF(db_pool_size), "8", 1, 512, "PostgreSQL connections for request work"},
    {"FT_MAX_BODY_BYTES", K_SIZE, OFF(max_body_bytes), "1MiB", 1, 1ull << 30, "largest request body accepted"},
    {"FT_LOG_LEVEL", K_LOGLEVEL, OFF(log_level), "info", 0, 0, "debug, info, warn or error"},
    {"FT_SHUTDOWN_TIMEOUT_MS", K_UINT, OFF(shutdown_timeout_ms), "30000", 0, 3600000,
     "how long a drain waits for in-flight requests"},
    {"FT_PLUGIN_DRAIN_TIMEOUT_MS", K_UINT, OFF(plugin_drain_timeout_ms), "10000", 1, 3600000,
     "how long a replaced plugin generation may take to drain before an alert"},
    {"FT_PLUGIN_ROLLOUT_TIMEOUT_MS", K_UINT, OFF(plugin_rollout_timeout_ms), "30000", 100, 3600000,
     "how long a plugin rollout waits for every live host's result"},
    {"FT_HOST_HEARTBEAT_MS", K_UINT, OFF(host_heartbeat_ms), "2000", 100, 600000,
     "fleet heartbeat period; a host is live while its heartbeat is younger than three periods"},
    {"FT_READY_INTERVAL_MS", K_UINT, OFF(ready_interval_ms), "1000", 50, 60000, "readiness probe period"},
    {"FT_NATS_REPLICAS", K_UINT, OFF(nats_replicas), "1", 1, 5, "JetStream stream replicas"},
    {"FT_DEV_ROUTES", K_TESTSWITCH, OFF(dev_routes), "false", 0, 0, "serve /api/v1/_dev diagnostics (never in production)"},
    {"FT_TENANT_DATABASE_URL", K_PGURL, OFF(tenant_database_url), "", 0, 0,
     "the Standard tier's shared database (default: database farutech_tenants beside FT_DATABASE_URL)"},
    /* 5000: a Standard tenant's rows are small (a clinic's or a shop's records), and five thousand
     * of them share one PostgreSQL database comfortably; a pool of a few such databases per server
     * is the expected shape. An operator who knows the server's size sets it. */
    {"FT_TENANT_DATABASE_CAPACITY", K_UINT, OFF(tenant_database_capacity), "5000", 1, 2147483647,
     "Standard instances the default pooled database (FT_TENANT_DATABASE_URL) takes"},
    {"FT_PLACEMENT_POLICY", K_CHOICE, OFF(placement_policy), "least-loaded", 0, 0,
     "where a new Standard instance goes: least-loaded (lowest share of capacity used) or fill-first (first database by name with room)"},
    {"FT_ARCHIVE_DIR", K_OPTSTRING, OFF(archive_dir), "", 0, 0, "where removed tenants' data is archived (empty: no archive)"},
    {"FT_ARCHIVE_RETENTION_DAYS", K_UINT, OFF(archive_retention_days), "30", 1, 36500, "days archives are kept"},
    {"FT_WORKER_THREADS", K_UINT, OFF(worker_threads), "2", 1, 64, "jobs run at once by this process"},
    /* 128: one JetStream request, one claim and a few outcome transactions for up to 128 quick
     * jobs (pg-boss's best configuration takes 100 at once); a thread asks for as many as its
     * recent jobs suggest it runs in a second, from one up, so slow jobs do not hold quick ones up */
    {"FT_WORKER_BATCH", K_UINT, OFF(worker_batch), "128", 1, 1024, "job messages a worker thread fetches at once, at most"},
    /* 25 ms: a quick job's outcome (and step progress) waits at most about this long to be
     * recorded with the next ones in one transaction, one disk flush for many jobs */
    {"FT_WORKER_FLUSH_MS", K_UINT, OFF(worker_flush_ms), "25", 1, 10000,
     "how long a worker thread gathers the outcomes of quick jobs before recording them together"},
    {"FT_JOB_MAX_ATTEMPTS", K_UINT, OFF(job_max_attempts), "5", 1, 50, "attempts before a job goes to the DLQ"},
    {"FT_JOB_BACKOFF_MS", K_UINT, OFF(job_backoff_ms), "1000", 1, 3600000, "delay after a first failed attempt (doubles)"},
    {"FT_JOB_BACKOFF_MAX_MS", K_UINT, OFF(job_backoff_max_ms), "60000", 1, 86400000, "longest delay between attempts"},
    {"FT_JOB_ACK_WAIT_MS", K_UINT, OFF(job_ack_wait_ms), "30000", 500, 3600000, "redelivery after a worker vanished mid-job"},
    {"FT_RELAY_BATCH", K_UINT, OFF(relay_batch), "500", 1, 10000, "outbox rows per relay batch"},
    {"FT_RELAY_LANES", K_UINT, OFF(relay_lanes), "2", 1, 16, "relay batches in flight at once, each on its own connection"},
    {"FT_RELAY_POLL_MS", K_UINT, OFF(relay_poll_ms), "5000", 10, 600000, "relay poll when no notification arrives"},
    {"FT_RELAY_CRASH_AFTER_PUBLISH", K_TESTSWITCH, OFF(relay_crash_after_publish), "false", 0, 0,
     "fault injection for tests: exit after publishing, before marking rows"},
    {"FT_JWT_ALG", K_CHOICE, OFF(jwt_alg), "RS256", 0, 0, "the one JWT algorithm signed and accepted: RS256, ES256 or EdDSA"},
    {"FT_JWT_ISSUER", K_STRING, OFF(jwt_issuer), "farutech", 0, 0, "iss of the access tokens issued and required"},
    {"FT_JWT_AUDIENCE", K_STRING, OFF(jwt_audience), "farutech-api", 0, 0, "aud of the access tokens issued and required"},
    {"FT_ACCESS_TOKEN_TTL_S", K_UINT, OFF(access_token_ttl_s), "900", 10, 86400, "access token lifetime in seconds"},
    {"FT_REFRESH_TOKEN_TTL_S", K_UINT, OFF(refresh_token_ttl_s), "2592000", 60, 31536000, "refresh token lifetime in seconds"},
    {"FT_JWT_LEEWAY_S", K_UINT, OFF(jwt_leeway_s), "0", 0, 300, "clock skew allowed on exp and nbf, in seconds"},
    {"FT_LOGIN_MAX_FAILURES", K_UINT, OFF(login_max_failures), "5", 1, 1000, "failed sign-ins in a row that lock an address"},
    {"FT_LOGIN_LOCKOUT_S", K_UINT, OFF(login_lockout_s), "900", 1, 86400, "how long a locked address waits, in seconds"},
    {"FT_RATE_LIMIT_RPS", K_UINT, OFF(rate_limit_rps), "100", 0, 10000000, "requests per second per credential (0: no limit)"},
    {"FT_RATE_LIMIT_BURST", K_UINT, OFF(rate_limit_burst), "200", 1, 10000000, "burst per credential"},
    {"FT_RATE_LIMIT_IP_RPS", K_UINT, OFF(rate_limit_ip_rps), "300", 0, 10000000, "requests per second per client IP (0: no limit)"},
    {"FT_RATE_LIMIT_IP_BURST", K_UINT, OFF(rate_limit_ip_burst), "600", 1, 10000000, "burst per client IP"},
    {"FT_IDEMPOTENCY_TTL_S", K_UINT, OFF(idempotency_ttl_s), "86400", 60, 2592000, "how long an Idempotency-Key is remembered"},
    {"FT_SSE_HEARTBEAT_MS", K_UINT, OFF(sse_heartbeat_ms), "15000", 100, 3600000,
     "a comment line on every idle event stream this often, so proxies and clients keep it open"},
    {"FT_SSE_MAX_PER_CREDENTIAL", K_UINT, OFF(sse_max_per_credential), "8", 1, 100000, "event streams one credential may hold open"},
    {"FT_SSE_MAX_STREAMS", K_UINT, OFF(sse_max_streams), "1000", 1, 1000000, "event streams this host holds open in all"},
    /* 250,000: a large fleet's instances in memory, the host measured at 70 MiB of RSS in all (see
     * the README's benchmarks); past it, the coldest records go and are read again on their next
     * request. */
    {"FT_ENTITLEMENT_CACHE_MAX", K_UINT, OFF(entitlement_cache_max), "250000", 1000, 100000000,
     "resolved entitlement records kept in memory; past it the coldest are evicted"},
    /* 2: a cold read is one indexed statement (well under a millisecond when its blocks are in
     * memory), so two threads keep up with thousands of them a second and leave room for one that
     * waits on the disk; 0 sends them to the request pool with everything else. */
    {"FT_ENTITLEMENT_READERS", K_UINT, OFF(entitlement_readers), "2", 0, 64,
     "threads, each with its own PostgreSQL connection, that serve cold entitlement reads (0 = the request pool)"},
    {"FT_SWEEP_INTERVAL_MS", K_UINT, OFF(sweep_interval_ms), "30000", 100, 3600000, "subscription period roll-over check"},
    {"FT_METRICS_SAMPLE_MS", K_UINT, OFF(metrics_sample_ms), "5000", 100, 600000,
     "how often a relay or worker reads the backlog gauges (JetStream pending, DLQ, outbox)"},
};

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

typedef struct errbuf {
    char *buf;
    size_t len, used;
    int count;
} errbuf_t;

static void add_error(errbuf_t *eb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add_error(errbuf_t *eb, const char *fmt, ...)
{
    eb->count++;
    if (eb->used + 1 >= eb->len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(eb->buf + eb->used, eb->len - eb->used, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    eb->used += (size_t)n;
    if (eb->used >= eb->len)
        eb->used = eb->len - 1;
    if (eb->used + 1 < eb->len) {
        eb->buf[eb->used++] = '\n';
        eb->buf[eb->used] = '\0';
    }
}

static int parse_uint(const char *v, unsigned long long *out)
{
    if (*v == '\0' || !isdigit((unsigned char)*v))
        return -1;
    errno = 0;
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = n;
    return 0;
}

/* "1048576", "512KiB", "1MiB", "1GiB" (also k/K, M, G as binary multiples). */
static int parse_size(const char *v, unsigned long long *out)
{
    if (!isdigit((unsigned char)*v))
        return -1;
    errno = 0;
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno != 0)
        return -1;
    unsigned long long mult = 1;
    if (*end != '\0') {
        if (strcmp(end, "k") == 0 || strcmp(end, "K") == 0 || strcmp(end, "KiB") == 0 || strcmp(end, "KB") == 0)
            mult = 1ull << 10;
        else if (strcmp(end, "M") == 0 || strcmp(end, "MiB") == 0 || strcmp(end, "MB") == 0)
            mult = 1ull << 20;
        else if (strcmp(end, "G") == 0 || strcmp(end, "GiB") == 0 || strcmp(end, "GB") == 0)
            mult = 1ull << 30;
        else
            return -1;
    }
    if (n > ~0ull / mult)
        return -1;
    *out = n * mult;
    return 0;
}

static int parse_listen(const char *v, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon;
    const char *h = v;
    size_t hl;
    if (*v == '[') { /* [::1]:8080 */
        const char *close = strchr(v, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        h = v + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(v, ':');
        if (colon == NULL)
            return -1;
        hl = (size_t)(colon - v);
    }
    if (hl == 0 || hl >= hostlen)
        return -1;
    unsigned long long p;
    if (parse_uint(colon + 1, &p) != 0 || p > 65535)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (uint16_t)p;
    return 0;
}

static int parse_roles(const char *v, unsigned *out)
{
    unsigned roles = 0;
    char *copy = ft_mem_strdup(v), *save = NULL;
    int rc = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        size_t n = strlen(tok);
        while (n > 0 && isspace((unsigned char)tok[n - 1]))
            tok[--n] = '\0';
        if (strcmp(tok, "all") == 0) /* the systemd instance farutech@all */
            roles |= FT_ROLE_API | FT_ROLE_RELAY | FT_ROLE_WORKER;
        else if (strcmp(tok, "api") == 0)
            roles |= FT_ROLE_API;
        else if (strcmp(tok, "relay") == 0)
            roles |= FT_ROLE_RELAY;
        else if (strcmp(tok, "worker") == 0)
            roles |= FT_ROLE_WORKER;
        else
            rc = -1;
    }
    free(copy);
    if (roles == 0)
        rc = -1;
    *out = roles;
    return rc;
}

static int parse_bool(const char *v, int *out)
{
    if (strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 || strcasecmp(v, "on") == 0) {
        *out = 1;
        return 0;
    }
    if (strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0 || strcasecmp(v, "off") == 0) {
        *out = 0;
        return 0;
    }
    return -1;
}

static int parse_loglevel(const char *v, int *out)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(v, names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    return -1;
}

static int valid_nats_url(const char *v)
{
    /* one or more comma separated nats://, tls:// or host:port entries, no blanks */
    char *copy = ft_mem_strdup(v), *save = NULL;
    int ok = 1, n = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        n++;
        const char *rest = tok;
        if (strncmp(tok, "nats://", 7) == 0)
            rest = tok + 7;
        else if (strncmp(tok, "tls://", 6) == 0)
            rest = tok + 6;
        else if (strstr(tok, "://") != NULL)
            ok = 0;
        if (*rest == '\0' || strpbrk(tok, " \t") != NULL)
            ok = 0;
    }
    free(copy);
    return ok && n > 0;
}

/* Applies one value to the config; on a bad value records a message naming key, value and source. */
static void apply(ft_config_t *cfg, const setting_t *s, const char *value, const char *source, errbuf_t *eb)
{
    char *field = (char *)cfg + s->offset;
    unsigned long long n;
    int b;
    switch (s->kind) {
    case K_STRING:
        if (*value == '\0') {
            add_error(eb, "%s (from %s): must not be empty; %s", s->name, source, s->help);
            return;
        }
        free(*(char **)field);
        *(char **)field = ft_mem_strdup(value);
        return;
    case K_OPTSTRING:
        free(*(char **)field);
        *(char **)field = ft_mem_strdup(value);
        return;
    case K_CHOICE: {
        const char *const *all = choices_of(s->name), *const *c = all;
        while (*c != NULL && strcmp(*c, value) != 0)
            c++;
        if (*c == NULL) {
            char expected[200] = "";
            for (c = all; *c != NULL; c++)
                snprintf(expected + strlen(expected), sizeof(expected) - strlen(expected), "%s%s", c != all ? ", " : "", *c);
            add_error(eb, "%s=%s (from %s): expected one of %s", s->name, value, source, expected);
            return;
        }
        free(*(char **)field);
        *(char **)field = ft_mem_strdup(value);
        return;
    }
    case K_LISTEN:
        if (parse_listen(value, cfg->http_host, sizeof(cfg->http_host), &cfg->http_port) != 0) {
            add_error(eb, "%s=%s (from %s): expected host:port with a port from 0 to 65535, e.g. 127.0.0.1:8080 or [::1]:8080",
                      s->name, value, source);
            return;
        }
        free(*(char **)field);
        *(char **)field = ft_mem_strdup(value);
        return;
    case K_UINT:
        if (parse_uint(value, &n) != 0 || n < s->min || n > s->max) {
            add_error(eb, "%s=%s (from %s): expected an integer from %llu to %llu; %s", s->name, value, source, s->min, s->max,
                      s->help);
            return;
        }
        *(unsigned *)field = (unsigned)n;
        return;
    case K_SIZE:
        if (parse_size(value, &n) != 0 || n < s->min || n > s->max) {
            add_error(eb, "%s=%s (from %s): expected a size from %llu bytes to %llu bytes, e.g. 1048576, 512KiB or 4MiB", s->name,
                      value, source, s->min, s->max);
            return;
        }
        *(size_t *)field = (size_t)n;
        return;
    case K_BOOL:
    case K_TESTSWITCH:
        if (parse_bool(value, &b) != 0) {
            add_error(eb, "%s=%s (from %s): expected true or false", s->name, value, source);
            return;
        }
        *(int *)field = b;
        return;
    case K_ROLES:
        if (parse_roles(value, (unsigned *)field) != 0) {
            add_error(eb, "%s=%s (from %s): expected a comma separated list of api, relay, worker, or all", s->name, value, source);
            return;
        }
        return;
    case K_LOGLEVEL:
        if (parse_loglevel(value, (int *)field) != 0) {
            add_error(eb, "%s=%s (from %s): expected debug, info, warn or error", s->name, value, source);
            return;
        }
        return;
    case K_PGURL: {
        char *perr = NULL;
        PQconninfoOption *opts = PQconninfoParse(value, &perr);
        if (opts == NULL) {
            size_t l = perr != NULL ? strlen(perr) : 0;
            while (l > 0 && (perr[l - 1] == '\n' || perr[l - 1] == ' '))
                perr[--l] = '\0';
            add_error(eb, "%s (from %s): not a valid PostgreSQL URL or conninfo: %s", s->name, source,
                      perr != NULL ? perr : "out of memory");
            PQfreemem(perr);
            return;
        }
        PQconninfoFree(opts);
        free(*(char **)field);
        *(char **)field = ft_mem_strdup(value);
        return;
    }
    case K_NATSURL:
        if (!valid_nats_url(value)) {
            add_error(eb, "%s=%s (from %s): expected nats://host:port or tls://host:port, comma separated for a cluster", s->name,
                      value, source);
            return;
        }
        free(*(char **)field);
        *(char **)field = ft_mem_strdup(value);
        return;
    }
}

static const setting_t *find_setting(const char *name, size_t len)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strlen(settings[i].name) == len && memcmp(settings[i].name, name, len) == 0)
            return &settings[i];
    return NULL;
}

/* KEY=VALUE lines of path. skip_unknown: keys that are not settings are passed over (the local
 * stack's file also carries values for other tools), else each is an error. */
static void load_file(ft_config_t *cfg, const char *path, int skip_unknown, errbuf_t *eb)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        add_error(eb, "config file %s: %s", path, strerror(errno));
        return;
    }
    char *line = NULL;
    size_t cap = 0;
    unsigned lineno = 0;
    while (getline(&line, &cap, fp) != -1) {
        lineno++;
        char *p = line;
        size_t n = strlen(p);
        while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r' || isspace((unsigned char)p[n - 1])))
            p[--n] = '\0';
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '\0' || *p == '#')
            continue;
        if (strncmp(p, "export ", 7) == 0)
            p += 7;
        char *eq = strchr(p, '=');
        if (eq == NULL) {
            add_error(eb, "%s:%u: expected KEY=VALUE", path, lineno);
            continue;
        }
        size_t klen = (size_t)(eq - p);
        while (klen > 0 && isspace((unsigned char)p[klen - 1]))
            klen--;
        char *v = eq + 1;
        while (isspace((unsigned char)*v))
            v++;
        size_t vlen = strlen(v);
        if (vlen >= 2 && (v[0] == '"' || v[0] == '\'') && v[vlen - 1] == v[0]) {
            v[vlen - 1] = '\0';
            v++;
        }
        const setting_t *s = find_setting(p, klen);
        if (s == NULL) {
            if (!skip_unknown)
                add_error(eb, "%s:%u: unknown setting %.*s", path, lineno, (int)klen, p);
            continue;
        }
        char source[600];
        snprintf(source, sizeof(source), "%s:%u", path, lineno);
        apply(cfg, s, v, source, eb);
    }
    free(line);
    fclose(fp);
}

/* url (a URL or conninfo) as a conninfo string naming another database of the same server. */
static char *derive_url(const char *url, const char *dbname)
{
    PQconninfoOption *opts = PQconninfoParse(url, NULL);
    char *out = ft_mem_strdup("");
    for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++) {
        if (o->val == NULL || strcmp(o->keyword, "dbname") == 0)
            continue;
        char *v = ft_mem_alloc(strlen(o->val) * 2 + 1), *q = v;
        for (const char *c = o->val; *c; c++) {
            if (*c == '\'' || *c == '\\')
                *q++ = '\\';
            *q++ = *c;
        }
        *q = '\0';
        char *next = ft_mem_asprintf("%s%s%s='%s'", out, *out ? " " : "", o->keyword, v);
        free(v);
        free(out);
        out = next;
    }
    PQconninfoFree(opts);
    char *next = ft_mem_asprintf("%s dbname='%s'", out, dbname);
    free(out);
    return next;
}

int ft_config_load(ft_config_t *cfg, const char *file, char *errors, size_t errlen)
{
    return ft_config_load_site(cfg, file, NULL, errors, errlen);
}

void ft_config_site(const char *exe, ft_config_site_t *site)
{
    memset(site, 0, sizeof(*site));
    if (ft_config_local_stack_env(exe, site->buf, sizeof(site->buf))) {
        site->plugin_dir = FT_BUILD_DIR "/products";
        site->migrations_dir = FT_SOURCE_DIR "/migrations";
        site->docs_dir = FT_SOURCE_DIR "/docs/openapi/node_modules/redoc/bundles";
        site->console_dir = FT_SOURCE_DIR "/console";
        site->stack_env = site->buf;
    } else {
        site->plugin_dir = FT_INSTALL_PLUGIN_DIR;
        site->migrations_dir = FT_INSTALL_MIGRATIONS_DIR;
        site->docs_dir = FT_INSTALL_DOCS_DIR;
        site->console_dir = FT_INSTALL_CONSOLE_DIR;
        site->system_config = FT_SYSTEM_CONFIG;
    }
}

int ft_config_load_site(ft_config_t *cfg, const char *file, const ft_config_site_t *site, char *errors, size_t errlen)
{
    errbuf_t eb = {errors, errlen, 0, 0};
    if (errlen > 0)
        errors[0] = '\0';
    memset(cfg, 0, sizeof(*cfg));

    for (size_t i = 0; i < NSETTINGS; i++)
        apply(cfg, &settings[i], settings[i].def, "default", &eb);
    if (site != NULL) {
        apply(cfg, find_setting("FT_PLUGIN_DIR", sizeof("FT_PLUGIN_DIR") - 1), site->plugin_dir, "default", &eb);
        apply(cfg, find_setting("FT_MIGRATIONS_DIR", sizeof("FT_MIGRATIONS_DIR") - 1), site->migrations_dir, "default", &eb);
        if (site->docs_dir != NULL)
            apply(cfg, find_setting("FT_DOCS_DIR", sizeof("FT_DOCS_DIR") - 1), site->docs_dir, "default", &eb);
        if (site->console_dir != NULL)
            apply(cfg, find_setting("FT_CONSOLE_DIR", sizeof("FT_CONSOLE_DIR") - 1), site->console_dir, "default", &eb);
    }
    if (eb.count != 0)
        return FT_EINVAL; /* a default that does not parse is a programming error, reported as such */

    if (file == NULL)
        file = getenv("FT_CONFIG");
    if (file != NULL && *file != '\0') {
        load_file(cfg, file, 0, &eb);
    } else if (site != NULL && site->stack_env != NULL && access(site->stack_env, R_OK) == 0) {
        load_file(cfg, site->stack_env, 1, &eb);
        cfg->stack_env = ft_mem_strdup(site->stack_env);
    } else if (site != NULL && site->system_config != NULL && access(site->system_config, F_OK) == 0) {
        /* present but unreadable is an error naming it, not a silent fall back to the defaults */
        load_file(cfg, site->system_config, 0, &eb);
        cfg->system_config = ft_mem_strdup(site->system_config);
    }

    extern char **environ;
    for (char **e = environ; *e != NULL; e++) {
        if (strncmp(*e, "FT_", 3) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        if (eq == NULL)
            continue;
        const setting_t *s = find_setting(*e, (size_t)(eq - *e));
        if (s != NULL)
            apply(cfg, s, eq + 1, "environment", &eb);
    }

    if (cfg->tenant_database_url != NULL && cfg->tenant_database_url[0] == '\0' && eb.count == 0) {
        free(cfg->tenant_database_url);
        cfg->tenant_database_url = derive_url(cfg->database_url, "farutech_tenants");
    }
    if (cfg->threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->threads = n > 0 ? (unsigned)n : 1;
    }
    return eb.count == 0 ? FT_OK : FT_EINVAL;
}

void ft_config_free(ft_config_t *cfg)
{
    free(cfg->stack_env);
    cfg->stack_env = NULL;
    free(cfg->system_config);
    cfg->system_config = NULL;
    for (size_t i = 0; i < NSETTINGS; i++) {
        kind_t k = settings[i].kind;
        if (k == K_STRING || k == K_OPTSTRING || k == K_LISTEN || k == K_PGURL || k == K_NATSURL || k == K_CHOICE) {
            char **f = (char **)((char *)cfg + settings[i].offset);
            free(*f);
            *f = NULL;
        }
    }
}

const char *ft_config_roles_str(unsigned roles, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s%s%s%s", (roles & FT_ROLE_API) ? "api" : "",
             (roles & FT_ROLE_API) && (roles & (FT_ROLE_RELAY | FT_ROLE_WORKER)) ? "," : "", (roles & FT_ROLE_RELAY) ? "relay" : "",
             (roles & FT_ROLE_RELAY) && (roles & FT_ROLE_WORKER) ? "," : "", (roles & FT_ROLE_WORKER) ? "worker" : "");
    return buf;
}

/* Replaces [from, to) of the string s (in a buffer of len bytes) with "***", cutting the tail if
 * it no longer fits. */
static void put_stars(char *s, size_t len, char *from, const char *to)
{
    size_t head = (size_t)(from - s), tail = strlen(to);
    if (head + 3 >= len)
        return;
    if (head + 3 + tail >= len)
        tail = len - head - 4;
    memmove(from + 3, to, tail);
    memcpy(from, "***", 3);
    from[3 + tail] = '\0';
}

/* Copies one URL or conninfo string to out, masking its secrets: the password of "user:secret@"
 * and any password=... (conninfo, or a URL's query). token_userinfo: a URL's user information
 * without a colon is a secret too (NATS reads "nats://secret@host" as a token). */
static void mask_secret(const char *in, int token_userinfo, char *out, size_t len)
{
    snprintf(out, len, "%s", in);
    char *scheme = strstr(out, "://");
    if (scheme != NULL) {
        char *host = scheme + 3;
        char *at = memchr(host, '@', strcspn(host, "/?#"));
        char *colon = at != NULL ? memchr(host, ':', (size_t)(at - host)) : NULL;
        if (colon != NULL)
            put_stars(out, len, colon + 1, at);
        else if (at != NULL && token_userinfo && at > host)
            put_stars(out, len, host, at);
    }
    char *pw = strstr(out, "password=");
    if (pw != NULL) {
        char *cut = pw + 9;
        put_stars(out, len, cut, cut + strcspn(cut, scheme != NULL ? "&#" : " "));
    }
}

/* mask_secret for each URL of a comma separated NATS list. */
static void mask_nats_urls(const char *in, char *out, size_t len)
{
    char *copy = ft_mem_strdup(in), *save = NULL, one[1024];
    size_t used = 0;
    out[0] = '\0';
    for (char *tok = strtok_r(copy, ",", &save); tok != NULL && used + 1 < len; tok = strtok_r(NULL, ",", &save)) {
        mask_secret(tok, 1, one, sizeof(one));
        int n = snprintf(out + used, len - used, "%s%s", used > 0 ? "," : "", one);
        used = n < 0 ? len : used + (size_t)n;
    }
    free(copy);
}

void ft_config_dump(const ft_config_t *cfg, int fd, int all)
{
    char line[1200], value[1024], roles[32];
    static const char *levels[] = {"debug", "info", "warn", "error"};
    if (cfg->stack_env != NULL) {
        snprintf(line, sizeof(line), "# settings not given otherwise come from the local stack: %s\n", cfg->stack_env);
        if (write(fd, line, strlen(line)) < 0)
            return;
    }
    if (cfg->system_config != NULL) {
        snprintf(line, sizeof(line), "# settings read from %s, under the environment\n", cfg->system_config);
        if (write(fd, line, strlen(line)) < 0)
            return;
    }
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting_t *s = &settings[i];
        const char *field = (const char *)cfg + s->offset;
        switch (s->kind) {
        case K_STRING:
        case K_OPTSTRING:
        case K_LISTEN:
        case K_CHOICE:
            snprintf(value, sizeof(value), "%s", *(char *const *)field);
            break;
        case K_PGURL:
            mask_secret(*(char *const *)field, 0, value, sizeof(value));
            break;
        case K_NATSURL:
            mask_nats_urls(*(char *const *)field, value, sizeof(value));
            break;
        case K_UINT:
            snprintf(value, sizeof(value), "%u", *(const unsigned *)field);
            break;
        case K_SIZE:
            snprintf(value, sizeof(value), "%zu", *(const size_t *)field);
            break;
        case K_BOOL:
        case K_TESTSWITCH:
            snprintf(value, sizeof(value), "%s", *(const int *)field ? "true" : "false");
            break;
        case K_ROLES:
            snprintf(value, sizeof(value), "%s", ft_config_roles_str(cfg->roles, roles, sizeof(roles)));
            break;
        case K_LOGLEVEL:
            snprintf(value, sizeof(value), "%s", levels[cfg->log_level]);
            break;
        }
        if (s->kind == K_TESTSWITCH && !all && !*(const int *)field)
            continue;
        snprintf(line, sizeof(line), "%s=%s\n", s->name, value);
        if (write(fd, line, strlen(line)) < 0)
            return;
    }
}

/* 1 when path is dir or lies under it (both canonical). */
static int path_under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

int ft_config_local_stack_env(const char *exe, char *out, size_t len)
{
    char self[PATH_MAX], build[PATH_MAX], script[PATH_MAX];
    if (exe == NULL) {
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n <= 0)
            return 0;
        self[n] = '\0';
        exe = self;
    }
    char *real = realpath(exe, NULL);
    int ok = real != NULL && realpath(FT_BUILD_DIR, build) != NULL && path_under(real, build);
    free(real);
    snprintf(script, sizeof(script), "%s/packaging/stack.sh", FT_SOURCE_DIR);
    if (!ok || access(script, X_OK) != 0)
        return 0;
    /* where packaging/stack.sh keeps it: FT_VAR_DIR, relative to the source tree, default var */
    const char *var = getenv("FT_VAR_DIR");
    if (var == NULL || *var == '\0')
        var = "var";
    int n = var[0] == '/' ? snprintf(out, len, "%s/stack.env", var) : snprintf(out, len, "%s/%s/stack.env", FT_SOURCE_DIR, var);
    return n > 0 && (size_t)n < len;
}
