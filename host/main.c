/*
 * farutech-host: start-up, roles and shutdown. Everything that may fail at start fails here,
 * with a message naming the setting, migration or address at fault, before any request is served.
 */
#include "app.h"
#include "auth/identity.h"
#include "auth/ratelimit.h"
#include "cli.h"
#include "core/mem.h"
#include "http/openapi.h"
#include "http/static.h"
#include "http/routes.h"
#include "http/request.h"
#include "http/server.h"
#include "infra/log.h"
#include "infra/metrics.h"
#include "infra/service.h"
#include "domain/entitlement_service.h"
#include "messaging/backlog.h"
#include "messaging/fleet.h"
#include "messaging/relay.h"
#include "messaging/worker.h"
#include "plugins/invoke.h"
#include "store/audit_store.h"
#include "store/catalog_store.h"
#include "store/tenant_database_store.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef FT_GIT_COMMIT
#define FT_GIT_COMMIT "unknown"
#endif

#define DB_START_TIMEOUT_SEC 30
/* Cold entitlement reads waiting for a reader at most: about a second of them at the measured
 * rate; past it a read is answered 503 at once rather than queued for longer than a client waits. */
#define ENT_READS_QUEUED_MAX 4096

static void usage(FILE *out)
{
    fputs("usage: farutech-host [--config FILE] [serve | migrate | config [--all] | openapi]\n"
          "       farutech-host [--config FILE] create-admin --email ADDRESS [--name NAME]\n"
          "       farutech-host [--config FILE] create-api-key --name NAME --role ROLE [--customer ID] [--instance ID]\n"
          "       farutech-host --version\n"
          "\n"
          "  serve           run the roles named by FT_ROLES (the default command)\n"
          "  migrate         apply pending control-plane migrations and exit\n"
          "  config          validate the configuration, print it (secrets masked) and exit; switches\n"
          "                  that exist for tests show only when set, or with --all\n"
          "  openapi         print the API's OpenAPI 3.1 document (as served at /api/v1/openapi.json)\n"
          "  create-admin    create a platform admin; the password is read from FT_ADMIN_PASSWORD,\n"
          "                  else from the first line of standard input (12 characters at least)\n"
          "  create-api-key  create an API key and print it (shown once)\n"
          "\n"
          "Settings come from FILE (KEY=VALUE lines; FT_CONFIG names it too) and the environment,\n"
          "which wins. With no FILE, an installed binary reads the system config file, if it exists,\n"
          "under the environment:\n",
          out);
    ft_config_site_t site;
    ft_config_site("/", &site); /* as for any executable outside a checkout */
    fprintf(out, "  %s\n", site.system_config);
    fputs("A binary run from the build tree of a checkout reads the local stack's var/stack.env instead\n"
          "(written by packaging/stack.sh start; FT_VAR_DIR moves it) and its defaults point into the\n"
          "checkout.\n",
          out);
}

static sigset_t signals;

/* Connects for migrations, retrying while the database comes up; SIGTERM/SIGINT end the wait. */
static PGconn *connect_at_start(const char *url, ft_error_t *err)
{
    time_t give_up = time(NULL) + DB_START_TIMEOUT_SEC;
    int logged = 0;
    for (;;) {
        PGconn *conn = ft_db_connect(url, "farutech-host-migrate", err);
        if (conn != NULL || time(NULL) >= give_up)
            return conn;
        if (!logged++)
            ft_log(FT_LOG_WARN, NULL, "%s; retrying for up to %d s", err->message, DB_START_TIMEOUT_SEC);
        struct timespec one_second = {1, 0};
        int sig = sigtimedwait(&signals, NULL, &one_second);
        if (sig == SIGTERM || sig == SIGINT) {
            ft_error_set(err, FT_ESTATE, "interrupted while waiting for the database");
            return NULL;
        }
    }
}

static int run_migrations(ft_app_t *app)
{
    ft_error_t err = {0};
    if (ft_migrations_load(app->config.migrations_dir, &app->migrations, &err) != FT_OK) {
        ft_log(FT_LOG_ERROR, NULL, "refusing to start: %s", err.message);
        return -1;
    }
    PGconn *conn = connect_at_start(app->config.database_url, &err);
    if (conn == NULL) {
        ft_log(FT_LOG_ERROR, NULL, "refusing to start: %s", err.message);
        return -1;
    }
    int applied = 0;
    unsigned long long placed = 0;
    uint64_t t0 = ft_now_ns();
    int rc = ft_migrations_apply(conn, &app->migrations, &applied, &err);
    uint64_t t1 = ft_now_ns();
    if (rc == FT_OK) {
        /* the Standard tier's default pooled database, as configured now */
        char display[512];
        ft_tenant_db_display_url(app->config.tenant_database_url, display, sizeof(display));
        rc = ft_tenant_database_register_default(conn, app->config.tenant_database_url, display,
                                                 app->config.tenant_database_capacity, &placed, &err);
    }
    PQfinish(conn);
    if (rc != FT_OK) {
        ft_log(FT_LOG_ERROR, NULL, "refusing to start: %s", err.message);
        return -1;
    }
    /* the two steps of the start that grow with the database: their times are in the line */
    ft_log(FT_LOG_INFO, NULL, "migrations: %d applied, %zu known (%.1f ms); %llu unplaced Standard instances placed (%.1f ms)",
           applied, app->migrations.count, (double)(t1 - t0) / 1e6, placed, (double)(ft_now_ns() - t1) / 1e6);
    return 0;
}

/* Registry callbacks: catalog rows and the load history, on a pooled connection. */
static int sync_catalog(void *arg, const ft_generation_t *gen, ft_error_t *err)
{
    ft_app_t *app = arg;
    PGconn *conn = ft_db_acquire(app->db, err);
    if (conn == NULL)
        return err->code;
    int rc = ft_catalog_store_sync(conn, gen, err);
    ft_db_release(app->db, conn);
    return rc;
}

static void record_load(void *arg, const char *product, const ft_generation_t *gen, const char *result, const char *reason)
{
    ft_app_t *app = arg;
    ft_error_t err = {0};
    PGconn *conn = ft_db_acquire(app->db, &err);
    if (conn != NULL) {
        ft_catalog_store_record_load(conn, product, gen, result, reason, &err);
        ft_db_release(app->db, conn);
    }
    if (err.code != FT_OK)
        ft_log(FT_LOG_WARN, NULL, "plugin %s: could not record the load: %s", product, err.message);
}

static int start_plugins(ft_app_t *app)
{
    ft_error_t err = {0};
    ft_registry_config_t rc = {
        .plugin_dir = app->config.plugin_dir,
        .drain_timeout_ms = app->config.plugin_drain_timeout_ms,
        .api = ft_host_api(),
        .sync = sync_catalog,
        .record = record_load,
        .arg = app,
    };
    app->registry = ft_registry_create(&rc, &err);
    if (app->registry == NULL) {
        ft_log(FT_LOG_ERROR, NULL, "refusing to start: %s", err.message);
        return -1;
    }
    /* Every role serves plugins (workers run their steps), so every role is a fleet host. A
     * product that fails to load is reported (GET /api/v1/plugins) while the others serve. */
    ft_fleet_config_t fc = {.database_url = app->config.database_url,
                            .db = app->db,
                            .registry = app->registry,
                            .roles = app->config.roles,
                            .version = FT_VERSION_STRING,
                            .commit = FT_GIT_COMMIT,
                            .heartbeat_ms = app->config.host_heartbeat_ms,
                            .rollout_timeout_ms = app->config.plugin_rollout_timeout_ms};
    app->fleet = ft_fleet_start(&fc, &err);
    if (app->fleet == NULL) {
        ft_log(FT_LOG_ERROR, NULL, "refusing to start: %s", err.message);
        return -1;
    }
    return 0;
}

/* Warms the entitlement cache with every instance, off the main thread, so the host serves
 * at once and the first request of each child app already finds its record. */
static void *warm_entitlements(void *arg)
{
    ft_app_t *app = arg;
    ft_error_t err = {0};
    /* warm only once changes are being heard, else a change in between could be cached stale */
    for (int i = 0; i < 100 && !ft_ent_service_listening(app->entitlements); i++)
        usleep(50000);
    /* a connection of its own, not a pooled one: the warm-up reads for a minute at 1,000,000
     * instances, and the pool is the requests' (a cold read must not wait for a connection) */
    PGconn *conn = ft_db_connect(app->config.database_url, "farutech-host warm-up", &err);
    if (conn == NULL) {
        ft_log(FT_LOG_WARN, NULL, "entitlements: not warmed: %s", err.message);
        return NULL;
    }
    uint64_t t0 = ft_now_ns();
    size_t n = ft_ent_service_warm(app->entitlements, conn, &err);
    PQfinish(conn);
    ft_log(FT_LOG_INFO, NULL, "entitlements: %zu instances resolved in %.1f ms", n, (double)(ft_now_ns() - t0) / 1e6);
    return NULL;
}

/* Credentials: the signing keys (the first is generated here) and the rate limiters. */
static int start_identity(ft_app_t *app)
{
    ft_error_t err = {0};
    ft_jwt_alg_t alg;
    ft_jwt_alg_parse(app->config.jwt_alg, &alg);
    ft_identity_config_t icfg = {.database_url = app->config.database_url,
                                 .alg = alg,
                                 .issuer = app->config.jwt_issuer,
                                 .audience = app->config.jwt_audience,
                                 .access_ttl_s = app->config.access_token_ttl_s,
                                 .leeway_s = app->config.jwt_leeway_s};
    PGconn *conn = ft_db_acquire(app->db, &err);
    if (conn != NULL) {
        app->identity = ft_identity_start(&icfg, conn, &err);
        ft_db_release(app->db, conn);
    }
    if (app->identity == NULL) {
        /* the host still serves /health, /ready and /metrics; credentialed routes answer 503 */
        ft_log(FT_LOG_ERROR, NULL, "signing keys unavailable, authenticated routes will answer 503: %s", err.message);
    }
    /* 64k tracked keys each: a bounded table, however many addresses or credentials call */
    if (app->config.rate_limit_rps > 0)
        app->limit_credential = ft_ratelimit_new(app->config.rate_limit_rps, app->config.rate_limit_burst, 65536);
    if (app->config.rate_limit_ip_rps > 0)
        app->limit_ip = ft_ratelimit_new(app->config.rate_limit_ip_rps, app->config.rate_limit_ip_burst, 65536);
    return 0;
}

/* SIGHUP: the same fleet-wide rollout as POST /api/v1/plugins/reload, audited with actor "signal". */
static void reload_on_signal(ft_app_t *app)
{
    ft_error_t err = {0};
    json_t *answer = NULL;
    ft_rollout_request_t req = {.actor = "signal"};
    int rc = ft_fleet_rollout(app->fleet, &req, &answer, &err);
    json_decref(answer);
    PGconn *conn = ft_db_acquire(app->db, &err);
    if (conn != NULL) {
        ft_audit_entry_t e = {.actor = "signal",
                              .action = "plugin.reload",
                              .entity_type = "plugin",
                              .result = rc == FT_OK ? "success" : "failure",
                              .reason = rc == FT_OK ? NULL : err.message};
        ft_error_t aerr = {0};
        if (ft_audit_write(conn, &e, &aerr) != FT_OK)
            ft_log(FT_LOG_WARN, NULL, "SIGHUP reload not audited: %s", aerr.message);
        ft_db_release(app->db, conn);
    }
}

/* READY=1 to the service manager once the readiness verdict (the one /ready answers) is good;
 * until then the status line names what is missing. Returns 1 once ready. */
static int announce_when_ready(ft_app_t *app)
{
    ft_readiness_report_t rep;
    if (ft_readiness_get(app->readiness, &rep)) {
        ft_service_ready();
        return 1;
    }
    char what[128];
    ft_service_status("waiting for %s", ft_readiness_failing(&rep, what, sizeof(what)));
    return 0;
}

static int serve(ft_app_t *app)
{
    char roles[32];
    ft_error_t err = {0};
    int rc = 1, drained = 1, warming = 0;
    pthread_t warmer;
    ft_http_server_t *server = NULL;
    ft_relay_t *relay = NULL;
    ft_workers_t *workers = NULL;
    ft_backlog_sampler_t *backlog = NULL;
    ft_log(FT_LOG_INFO, NULL, "farutech-host %s (%s) starting; roles %s", FT_VERSION_STRING, FT_GIT_COMMIT,
           ft_config_roles_str(app->config.roles, roles, sizeof(roles)));

    /* an address held by another process is refused before migrations run or jobs are taken;
     * like a bad setting, it exits 2, which no restart would fix */
    if (ft_http_server_probe(app, &err) != FT_OK) {
        ft_log(FT_LOG_ERROR, NULL, "refusing to start: %s", err.message);
        return err.code == FT_ECONFLICT ? 2 : 1;
    }
    if (run_migrations(app) != 0)
        return 1;
    if (ft_nats_open(&app->nats, app->config.nats_url, app->config.nats_replicas, &err) != FT_OK) {
        ft_log(FT_LOG_ERROR, NULL, "refusing to start: %s", err.message);
        return 1;
    }
    app->db = ft_db_pool_create(app->config.database_url, app->config.db_pool_size);
    app->readiness = ft_readiness_start(app->config.database_url, &app->migrations, app->nats,
                                        (app->config.roles & (FT_ROLE_RELAY | FT_ROLE_WORKER)) != 0, app->config.ready_interval_ms);
    if (start_plugins(app) != 0)
        goto out;
    if (app->config.roles & FT_ROLE_RELAY) {
        ft_relay_config_t rcfg = {.database_url = app->config.database_url,
                                  .nats = app->nats,
                                  .batch = app->config.relay_batch,
                                  .lanes = app->config.relay_lanes,
                                  .poll_ms = app->config.relay_poll_ms,
                                  .crash_after_publish = app->config.relay_crash_after_publish};
        relay = ft_relay_start(&rcfg);
    }
    if (app->config.roles & FT_ROLE_WORKER) {
        ft_worker_config_t wcfg = {.database_url = app->config.database_url,
                                   .nats = app->nats,
                                   .registry = app->registry,
                                   .tenant = {.shared_url = app->config.tenant_database_url,
                                              .archive_dir = app->config.archive_dir[0] ? app->config.archive_dir : NULL,
                                              .retention_days = app->config.archive_retention_days},
                                   .threads = app->config.worker_threads,
                                   .batch = app->config.worker_batch,
                                   .flush_ms = app->config.worker_flush_ms,
                                   .max_attempts = app->config.job_max_attempts,
                                   .backoff_ms = app->config.job_backoff_ms,
                                   .backoff_max_ms = app->config.job_backoff_max_ms,
                                   .ack_wait_ms = app->config.job_ack_wait_ms,
                                   .sweep_ms = app->config.sweep_interval_ms};
        workers = ft_workers_start(&wcfg, &err);
    }
    if (app->config.roles & (FT_ROLE_RELAY | FT_ROLE_WORKER))
        backlog = ft_backlog_sampler_start(app->config.database_url, app->nats, app->config.metrics_sample_ms);
    if (app->config.roles & FT_ROLE_API) {
        app->entitlements = ft_ent_service_start(app->config.database_url, app->registry, app->config.entitlement_cache_max);
        if (app->config.entitlement_readers > 0)
            app->ent_readers = ft_db_lane_start(app->config.database_url, app->config.entitlement_readers, ENT_READS_QUEUED_MAX);
        warming = pthread_create(&warmer, NULL, warm_entitlements, app) == 0;
    }

    if ((app->config.roles & FT_ROLE_API) && start_identity(app) != 0)
        goto out;
    /* every role listens: a relay or worker for /health, /ready and /metrics only */
    app->router = ft_router_create();
    if (ft_routes_register_all(app) != 0)
        goto out;
    if (app->config.roles & FT_ROLE_API)
        ft_static_open_console(app);
    server = ft_http_server_create(app, &err);
    if (server == NULL) {
        ft_log(FT_LOG_ERROR, NULL, "refusing to start: %s", err.message);
        rc = err.code == FT_ECONFLICT ? 2 : 1;
        goto out;
    }
    if (app->config.roles & FT_ROLE_API)
        ft_sse_feeds_start(ft_http_server_sse(server), app);
    ft_http_server_start(server);
    ft_log(FT_LOG_INFO, NULL, "listening on http://%s:%u with %u threads", app->config.http_host, ft_http_server_port(server),
           app->config.threads);
    char address[96];
    snprintf(address, sizeof(address), "%s:%u", app->config.http_host, ft_http_server_port(server));
    ft_fleet_set_address(app->fleet, address);

    int sig = 0, ready = 0;
    for (;;) {
        if (!ready) {
            /* until /ready would answer 200, look again every 100 ms; then tell the service manager */
            struct timespec tick = {0, 100000000L};
            sig = sigtimedwait(&signals, NULL, &tick);
            if (sig < 0) {
                ready = announce_when_ready(app);
                continue;
            }
        } else if (sigwait(&signals, &sig) != 0) {
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT)
            break;
        if (sig == SIGHUP) {
            ft_log(FT_LOG_INFO, NULL, "SIGHUP received: reloading plugins");
            ft_service_reloading();
            reload_on_signal(app);
            ft_service_reloaded();
        }
    }
    ft_service_stopping();
    ft_log(FT_LOG_INFO, NULL, "%s received: draining (up to %u ms)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
           app->config.shutdown_timeout_ms);
    if (server != NULL) {
        ft_http_server_shutdown(server);
        drained = ft_http_server_join(server) == 0;
        ft_sse_feeds_stop(ft_http_server_sse(server));
    }
    rc = 0;
out:
    ft_backlog_sampler_stop(backlog);
    ft_workers_stop(workers); /* a running job finishes its current step first */
    ft_relay_stop(relay);
    if (warming)
        pthread_join(warmer, NULL);
    if (drained) {
        ft_fleet_stop(app->fleet); /* no rollout is in flight any more: marks this host stopped */
        ft_db_lane_stop(app->ent_readers); /* after the HTTP threads: no read is submitted any more */
        ft_ent_service_stop(app->entitlements);
        ft_identity_stop(app->identity);
        ft_ratelimit_free(app->limit_credential);
        ft_ratelimit_free(app->limit_ip);
        ft_registry_destroy(app->registry); /* after the HTTP threads: no reader is left */
    }
    ft_readiness_stop(app->readiness);
    ft_nats_close(app->nats);
    if (drained)
        ft_db_pool_destroy(app->db); /* else a worker may still hold a connection: leave it to exit */
    if (rc == 0)
        ft_log(FT_LOG_INFO, NULL, "stopped%s", drained ? "" : " (drain timed out)");
    return rc;
}

/* `farutech-host openapi`: the API's document as an API host serves it, with no database needed.
 * main() frees the router and the document. */
static int print_openapi(ft_app_t *app)
{
    app->config.roles |= FT_ROLE_API;
    app->router = ft_router_create();
    int rc = ft_routes_register_all(app) == 0 ? 0 : 1;
    if (rc == 0) {
        size_t len;
        const char *json = ft_openapi_json(app->openapi, &len);
        rc = fwrite(json, 1, len, stdout) == len && fputc('\n', stdout) != EOF ? 0 : 1;
    }
    return rc;
}

int main(int argc, char **argv)
{
    const char *config_file = NULL, *command = "serve";
    int cmd_argc = 0, all = 0;
    char **cmd_argv = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config_file = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            config_file = argv[i] + 9;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("farutech-host %s (%s)\n", FT_VERSION_STRING, FT_GIT_COMMIT);
            return 0;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] != '-' &&
                   (strcmp(argv[i], "serve") == 0 || strcmp(argv[i], "migrate") == 0 || strcmp(argv[i], "config") == 0 ||
                    strcmp(argv[i], "openapi") == 0)) {
            command = argv[i];
        } else if (strcmp(argv[i], "--all") == 0 && strcmp(command, "config") == 0) {
            all = 1;
        } else if (strcmp(argv[i], "create-admin") == 0 || strcmp(argv[i], "create-api-key") == 0) {
            command = argv[i];
            cmd_argc = argc - i - 1;
            cmd_argv = argv + i + 1;
            break;
        } else {
            fprintf(stderr, "farutech-host: unknown argument %s\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }

    /* Signals are taken synchronously by the main thread; every thread created later inherits the mask. */
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    static ft_app_t app;
    static char errors[8192];
    static ft_config_site_t site;
    ft_config_site(NULL, &site);
    if (ft_config_load_site(&app.config, config_file, &site, errors, sizeof(errors)) != FT_OK) {
        fprintf(stderr, "farutech-host: invalid configuration:\n%s", errors);
        return 2;
    }
    ft_log_init(app.config.log_level);
    if (strncmp(command, "create-", 7) == 0)
        ft_log_to_stderr();

    if (strcmp(command, "config") == 0) {
        ft_config_dump(&app.config, STDOUT_FILENO, all);
        ft_config_free(&app.config);
        return 0;
    }
    if (app.config.stack_env != NULL)
        ft_log(FT_LOG_INFO, NULL, "settings not given otherwise come from the local stack: %s", app.config.stack_env);
    if (app.config.system_config != NULL)
        ft_log(FT_LOG_INFO, NULL, "settings read from %s, under the environment", app.config.system_config);
    /* Request work runs on libuv's thread pool, one thread per pooled connection. */
    char tp[16];
    snprintf(tp, sizeof(tp), "%u", app.config.db_pool_size < 4 ? 4 : app.config.db_pool_size);
    setenv("UV_THREADPOOL_SIZE", tp, 1);

    nats_Open(-1);
    ft_metrics_init(FT_VERSION_STRING, FT_GIT_COMMIT);
    int rc;
    if (strcmp(command, "openapi") == 0)
        rc = print_openapi(&app);
    else if (strcmp(command, "migrate") == 0)
        rc = run_migrations(&app) == 0 ? 0 : 1;
    else if (strcmp(command, "create-admin") == 0)
        rc = run_migrations(&app) == 0 ? ft_cli_create_admin(&app, cmd_argc, cmd_argv) : 1;
    else if (strcmp(command, "create-api-key") == 0)
        rc = run_migrations(&app) == 0 ? ft_cli_create_api_key(&app, cmd_argc, cmd_argv) : 1;
    else
        rc = serve(&app);

    ft_router_destroy(app.router);
    ft_openapi_free(app.openapi);
    ft_static_free(app.console);
    ft_migrations_free(&app.migrations);
    ft_config_free(&app.config);
    nats_Close();
    return rc;
}
