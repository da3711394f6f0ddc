/*
 * Fleet membership and convergence: the host's row and heartbeat, its plugin state in
 * ft_host_plugins, and the thread that answers rollouts and re-checks the current releases on
 * every heartbeat (a notification missed while the listener reconnected costs one heartbeat).
 */
#include "messaging/fleet_internal.h"

#include "auth/crypto.h"
#include "core/mem.h"
#include "infra/config.h"
#include "infra/log.h"
#include "plugins/loader.h"
#include "store/fleet_store.h"
#include "store/sql.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

uint64_t ft_fleet_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct timespec deadline_ts(uint64_t deadline_ns)
{
    return (struct timespec){.tv_sec = (time_t)(deadline_ns / 1000000000u), .tv_nsec = (long)(deadline_ns % 1000000000u)};
}

int ft_fleet_serving(ft_fleet_t *f, const char *product, unsigned long long *number, char sha256[65], char *version,
                     size_t version_len)
{
    ft_catalog_t *c = ft_catalog_acquire(f->cfg.registry);
    ft_generation_t *g = ft_catalog_find(c, product);
    if (g != NULL) {
        *number = g->number;
        memcpy(sha256, g->loaded.file_hash, 65);
        snprintf(version, version_len, "%s", g->product->version);
    }
    ft_catalog_release(c);
    return g != NULL;
}

/* ft_host_plugins rows from the registry's status: active generations and failed products. */
static json_t *plugin_state(ft_registry_t *reg)
{
    json_t *status = ft_registry_status(reg), *out = json_array(), *p;
    size_t i;
    json_array_foreach(json_object_get(status, "plugins"), i, p)
    {
        const char *state = json_string_value(json_object_get(p, "state"));
        json_t *err = json_object_get(p, "last_reload_error");
        if (strcmp(state, "active") == 0)
            json_array_append_new(out, json_pack("{s:O, s:O, s:O, s:O, s:O, s:O, s:O}", "product", json_object_get(p, "product"),
                                                 "generation", json_object_get(p, "generation"), "version",
                                                 json_object_get(p, "version"), "sha256", json_object_get(p, "file_hash"),
                                                 "loaded_at", json_object_get(p, "loaded_at"), "last_error",
                                                 err != NULL ? json_object_get(err, "reason") : json_null(), "last_error_at",
                                                 err != NULL ? json_object_get(err, "at") : json_null()));
        else if (strcmp(state, "failed") == 0)
            json_array_append_new(out, json_pack("{s:O, s:n, s:O, s:O}", "product", json_object_get(p, "product"), "generation",
                                                 "last_error", json_object_get(p, "reason"), "last_error_at",
                                                 json_object_get(p, "failed_at")));
    }
    json_decref(status);
    return out;
}

void ft_fleet_publish(ft_fleet_t *f)
{
    json_t *state = plugin_state(f->cfg.registry);
    char *text = json_dumps(state, JSON_COMPACT | JSON_SORT_KEYS);
    if (f->published != NULL && strcmp(f->published, text) == 0) {
        free(text);
        json_decref(state);
        return;
    }
    ft_error_t err = {0};
    PGconn *conn = ft_db_acquire(f->cfg.db, &err);
    if (conn != NULL) {
        if (ft_fleet_store_set_plugins(conn, f->id, state, &err) == FT_OK) {
            free(f->published);
            f->published = text;
            text = NULL;
        }
        ft_db_release(f->cfg.db, conn);
    }
    if (err.code != FT_OK)
        ft_log(FT_LOG_WARN, NULL, "fleet: could not record this host's plugins: %s", err.message);
    free(text);
    json_decref(state);
}

static int write_file(const char *path, const unsigned char *bytes, size_t len, ft_error_t *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return ft_error_set(err, FT_EIO, "%s: %s", path, strerror(errno));
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, bytes + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = errno;
            close(fd);
            unlink(path);
            return ft_error_set(err, FT_EIO, "%s: %s", path, strerror(e));
        }
        done += (size_t)n;
    }
    close(fd);
    return FT_OK;
}

/* Writes release_id's file to the runtime directory; *path (caller frees) names it. */
static int fetch_release(ft_fleet_t *f, long long release_id, char **path, ft_error_t *err)
{
    unsigned char *bytes = NULL;
    size_t len = 0;
    PGconn *conn = ft_db_acquire(f->cfg.db, err);
    if (conn == NULL)
        return err->code;
    int rc = ft_fleet_store_release_file(conn, release_id, &bytes, &len, err);
    ft_db_release(f->cfg.db, conn);
    if (rc != FT_OK)
        return rc;
    *path = ft_mem_asprintf("%s/release-%lld.so", ft_registry_runtime_dir(f->cfg.registry), release_id);
    rc = write_file(*path, bytes, len, err);
    free(bytes);
    if (rc != FT_OK) {
        free(*path);
        *path = NULL;
    }
    return rc;
}

json_t *ft_fleet_apply(ft_fleet_t *f, const char *product, long long release_id, const char *sha256, int force)
{
    unsigned long long number = 0;
    char serving_sha[65] = "", version[64] = "";
    int serving = ft_fleet_serving(f, product, &number, serving_sha, version, sizeof(version));
    if (serving && strcmp(serving_sha, sha256) == 0 && !force)
        return json_pack("{s:s, s:s, s:I, s:s, s:s}", "product", product, "result", "unchanged", "generation", (json_int_t)number,
                         "version", version, "sha256", serving_sha);

    ft_error_t err = {0};
    json_t *report = NULL, *out = NULL;
    char *local = ft_mem_asprintf("%s/%s.so", ft_registry_plugin_dir(f->cfg.registry), product), *fetched = NULL;
    char local_sha[65];
    int from_local = ft_file_sha256(local, local_sha, &err) == FT_OK && strcmp(local_sha, sha256) == 0;
    int rc = from_local ? FT_OK : fetch_release(f, release_id, &fetched, &err);
    if (rc == FT_OK) {
        rc = ft_registry_load_file(f->cfg.registry, product, from_local ? local : fetched, 1, &report, &err);
        if (fetched != NULL)
            unlink(fetched);
    }
    json_t *item = json_array_get(report, 0);
    if (rc == FT_OK) {
        out = json_pack("{s:s, s:s, s:O, s:O, s:O, s:O}", "product", product, "result", "loaded", "generation",
                        json_object_get(item, "generation"), "version", json_object_get(item, "version"), "sha256",
                        json_object_get(item, "sha256"), "load_ms", json_object_get(item, "load_ms"));
    } else {
        /* the registry's reason says which generation keeps serving; a fetch failure does not */
        out = json_pack("{s:s, s:s, s:s}", "product", product, "result", "failed", "reason",
                        item != NULL ? json_string_value(json_object_get(item, "reason")) : err.message);
        if (serving) {
            json_object_set_new(out, "serving_generation", json_integer((json_int_t)number));
            json_object_set_new(out, "sha256", json_string(serving_sha));
        }
        ft_log_product(FT_LOG_ERROR, NULL, product, "fleet: release %lld of %s (sha256 %.12s) did not load here: %s", release_id,
                       product, sha256, json_string_value(json_object_get(out, "reason")));
    }
    json_decref(report);
    free(local);
    free(fetched);
    return out;
}

int ft_fleet_read_plugin(ft_fleet_t *f, const char *product, const char *sha256, unsigned char **bytes, size_t *len,
                         ft_error_t *err)
{
    char *path = ft_mem_asprintf("%s/%s.so", ft_registry_plugin_dir(f->cfg.registry), product);
    int rc = FT_OK;
    *bytes = NULL;
    FILE *in = fopen(path, "rb");
    struct stat st;
    if (in == NULL || fstat(fileno(in), &st) != 0) {
        rc = ft_error_set(err, FT_EIO, "%s: %s", path, strerror(errno));
        goto out;
    }
    *len = (size_t)st.st_size;
    *bytes = ft_mem_alloc(*len + 1);
    if (fread(*bytes, 1, *len, in) != *len) {
        rc = ft_error_set(err, FT_EIO, "%s: short read", path);
        goto out;
    }
    char hash[65];
    ft_sha256_hex(*bytes, *len, hash);
    if (strcmp(hash, sha256) != 0)
        rc = ft_error_set(err, FT_ECONFLICT, "%s changed while it was being loaded", path);
out:
    if (in != NULL)
        fclose(in);
    if (rc != FT_OK) {
        free(*bytes);
        *bytes = NULL;
    }
    free(path);
    return rc;
}

/* The release id this host last failed to load for product, or 0. */
static long long failed_release(ft_fleet_t *f, const char *product)
{
    return (long long)json_integer_value(json_object_get(f->failed, product));
}

static void note_result(ft_fleet_t *f, json_t *result, long long release_id)
{
    const char *product = json_string_value(json_object_get(result, "product"));
    if (strcmp(json_string_value(json_object_get(result, "result")), "failed") == 0)
        json_object_set_new(f->failed, product, json_integer(release_id));
    else
        json_object_del(f->failed, product);
}

/* Answers one rollout: applies its items, records what this host serves, then the results. */
static void answer_rollout(ft_fleet_t *f, json_t *rollout)
{
    const char *id = json_string_value(json_object_get(rollout, "id"));
    int force = json_is_true(json_object_get(rollout, "force"));
    json_t *results = json_array(), *item;
    size_t i;
    json_array_foreach(json_object_get(rollout, "items"), i, item)
    {
        long long release_id = (long long)json_integer_value(json_object_get(item, "release_id"));
        json_t *r = ft_fleet_apply(f, json_string_value(json_object_get(item, "product")), release_id,
                                   json_string_value(json_object_get(item, "sha256")), force);
        note_result(f, r, release_id);
        json_array_append_new(results, r);
    }
    ft_fleet_publish(f);
    ft_error_t err = {0};
    PGconn *conn = ft_db_acquire(f->cfg.db, &err);
    int rc = conn != NULL ? ft_sql_begin(conn, &err) : err.code;
    if (rc == FT_OK && (rc = ft_fleet_store_results_insert(conn, id, f->id, results, &err)) == FT_OK &&
        (rc = ft_fleet_store_notify(conn, FT_FLEET_RESULT_CHANNEL, id, &err)) == FT_OK)
        rc = ft_sql_commit(conn, &err);
    else if (conn != NULL)
        ft_sql_rollback(conn);
    if (conn != NULL)
        ft_db_release(f->cfg.db, conn);
    if (rc != FT_OK)
        ft_log(FT_LOG_WARN, NULL, "fleet: could not answer rollout %s: %s", id, err.message);
    json_decref(results);
}

/* Answers pending rollouts, then makes every product serve its current release (except one that
 * already failed here: it is tried again with the next release or rollout). */
static void converge(ft_fleet_t *f)
{
    ft_error_t err = {0};
    json_t *releases = NULL, *pending = NULL, *x;
    size_t i;
    pthread_mutex_lock(&f->work_mutex);
    PGconn *conn = ft_db_acquire(f->cfg.db, &err);
    if (conn == NULL)
        goto out;
    int rc = ft_fleet_store_pending(conn, f->id, &pending, &err);
    if (rc == FT_OK)
        rc = ft_fleet_store_releases(conn, &releases, &err);
    ft_db_release(f->cfg.db, conn);
    if (rc != FT_OK)
        goto out;
    json_array_foreach(pending, i, x) answer_rollout(f, x);
    json_array_foreach(releases, i, x)
    {
        const char *product = json_string_value(json_object_get(x, "product"));
        const char *sha = json_string_value(json_object_get(x, "sha256"));
        long long release_id = (long long)json_integer_value(json_object_get(x, "release_id"));
        unsigned long long number;
        char serving_sha[65] = "", version[64];
        if ((ft_fleet_serving(f, product, &number, serving_sha, version, sizeof(version)) && strcmp(serving_sha, sha) == 0) ||
            failed_release(f, product) == release_id)
            continue;
        ft_log_product(FT_LOG_INFO, NULL, product, "fleet: %s serves sha256 %.12s here; loading release %lld (sha256 %.12s)",
                       product, serving_sha[0] ? serving_sha : "(none)", release_id, sha);
        json_t *r = ft_fleet_apply(f, product, release_id, sha, 0);
        note_result(f, r, release_id);
        json_decref(r);
    }
    ft_fleet_publish(f);
out:
    if (err.code != FT_OK)
        ft_log(FT_LOG_WARN, NULL, "fleet: cannot check the plugin releases: %s", err.message);
    pthread_mutex_unlock(&f->work_mutex);
    json_decref(releases);
    json_decref(pending);
}

static void heartbeat(ft_fleet_t *f)
{
    ft_error_t err = {0};
    pthread_mutex_lock(&f->mutex);
    char *address = f->address != NULL ? ft_mem_strdup(f->address) : NULL;
    pthread_mutex_unlock(&f->mutex);
    PGconn *conn = ft_db_acquire(f->cfg.db, &err);
    if (conn != NULL) {
        ft_fleet_store_heartbeat(conn, f->id, address, &err);
        ft_db_release(f->cfg.db, conn);
    }
    if (err.code != FT_OK)
        ft_log(FT_LOG_WARN, NULL, "fleet: heartbeat not recorded: %s", err.message);
    free(address);
}

static void *fleet_main(void *arg)
{
    ft_fleet_t *f = arg;
    uint64_t next = 0;
    for (;;) {
        pthread_mutex_lock(&f->mutex);
        while (!f->stopping && !f->kick && !f->beat_now && ft_fleet_now_ns() < next) {
            struct timespec ts = deadline_ts(next);
            pthread_cond_timedwait(&f->kick_cond, &f->mutex, &ts);
        }
        int stopping = f->stopping, beat = f->beat_now;
        f->kick = f->beat_now = 0;
        pthread_mutex_unlock(&f->mutex);
        if (stopping)
            break;
        if (beat || ft_fleet_now_ns() >= next) {
            heartbeat(f);
            next = ft_fleet_now_ns() + (uint64_t)f->cfg.heartbeat_ms * 1000000u;
        }
        converge(f);
    }
    return NULL;
}

/* The listener thread: a rollout wakes the heartbeat thread, results wake coordinators; after a
 * reconnect (channel NULL) both, since either may have been missed. */
static void on_notify(void *arg, const char *channel, const char *payload)
{
    (void)payload;
    ft_fleet_t *f = arg;
    pthread_mutex_lock(&f->mutex);
    if (channel == NULL || strcmp(channel, FT_FLEET_ROLLOUT_CHANNEL) == 0) {
        f->kick = 1;
        pthread_cond_signal(&f->kick_cond);
    }
    if (channel == NULL || strcmp(channel, FT_FLEET_RESULT_CHANNEL) == 0) {
        f->results_seq++;
        pthread_cond_broadcast(&f->results_cond);
    }
    pthread_mutex_unlock(&f->mutex);
}

unsigned long long ft_fleet_results_seen(ft_fleet_t *f)
{
    pthread_mutex_lock(&f->mutex);
    unsigned long long seen = f->results_seq;
    pthread_mutex_unlock(&f->mutex);
    return seen;
}

unsigned long long ft_fleet_wait_results(ft_fleet_t *f, unsigned long long seen, uint64_t deadline_ns)
{
    struct timespec ts = deadline_ts(deadline_ns);
    pthread_mutex_lock(&f->mutex);
    while (f->results_seq == seen && !f->stopping && ft_fleet_now_ns() < deadline_ns)
        pthread_cond_timedwait(&f->results_cond, &f->mutex, &ts);
    unsigned long long now = f->results_seq;
    pthread_mutex_unlock(&f->mutex);
    return now;
}

/* A product with no release yet, loaded from FT_PLUGIN_DIR: its file becomes the first release,
 * unless another host recorded one first (then that one is loaded). work_mutex held. */
static void first_release(ft_fleet_t *f, const char *product)
{
    unsigned long long number;
    char sha[65], version[64], current[65] = "";
    if (!ft_fleet_serving(f, product, &number, sha, version, sizeof(version)))
        return;
    ft_error_t err = {0};
    unsigned char *bytes = NULL;
    size_t len = 0;
    long long release_id = 0;
    char *by = ft_mem_asprintf("host:%s", f->id);
    PGconn *conn = NULL;
    int rc = ft_fleet_read_plugin(f, product, sha, &bytes, &len, &err);
    if (rc == FT_OK && (conn = ft_db_acquire(f->cfg.db, &err)) == NULL)
        rc = err.code;
    if (rc == FT_OK && (rc = ft_sql_begin(conn, &err)) == FT_OK) {
        ft_release_t rel = {
            .product = product, .sha256 = sha, .version = version, .file = bytes, .len = len, .released_by = by, .host_id = f->id};
        rc = ft_fleet_store_release(conn, &rel, 1, &release_id, current, &err);
        if (rc == FT_OK)
            rc = ft_sql_commit(conn, &err);
        else
            ft_sql_rollback(conn);
    }
    if (conn != NULL)
        ft_db_release(f->cfg.db, conn);
    if (rc != FT_OK) {
        ft_log_product(FT_LOG_WARN, NULL, product, "fleet: %s not recorded as a release: %s", product, err.message);
    } else if (strcmp(current, sha) != 0) {
        ft_log_product(FT_LOG_INFO, NULL, product, "fleet: another host released %s first (sha256 %.12s); loading it", product,
                       current);
        json_t *r = ft_fleet_apply(f, product, release_id, current, 0);
        note_result(f, r, release_id);
        json_decref(r);
    }
    free(by);
    free(bytes);
}

static int has_release(json_t *releases, const char *product)
{
    size_t i;
    json_t *r;
    json_array_foreach(releases, i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "product")), product) == 0)
            return 1;
    }
    return 0;
}

/* Start-up: the current releases, then the plugin directory's products that have none. */
static int initial_load(ft_fleet_t *f, json_t *releases, ft_error_t *err)
{
    size_t i;
    json_t *r;
    json_array_foreach(releases, i, r)
    {
        long long release_id = (long long)json_integer_value(json_object_get(r, "release_id"));
        json_t *res = ft_fleet_apply(f, json_string_value(json_object_get(r, "product")), release_id,
                                     json_string_value(json_object_get(r, "sha256")), 0);
        note_result(f, res, release_id);
        json_decref(res);
    }
    char **codes = NULL;
    size_t n = 0;
    int rc = ft_registry_dir_products(f->cfg.registry, &codes, &n, err);
    if (rc != FT_OK)
        return rc;
    for (i = 0; i < n; i++) {
        if (!has_release(releases, codes[i])) {
            ft_error_t lerr = {0};
            if (ft_registry_reload(f->cfg.registry, codes[i], 0, NULL, NULL, &lerr) == FT_OK)
                first_release(f, codes[i]);
        }
        free(codes[i]);
    }
    free(codes);
    return FT_OK;
}

static const char *const *role_names(unsigned roles)
{
    static const char *const all[][4] = {
        {NULL},           {"api", NULL},           {"relay", NULL},           {"api", "relay", NULL},
        {"worker", NULL}, {"api", "worker", NULL}, {"relay", "worker", NULL}, {"api", "relay", "worker", NULL}};
    return all[roles & 7];
}

ft_fleet_t *ft_fleet_start(const ft_fleet_config_t *cfg, ft_error_t *err)
{
    ft_fleet_t *f = ft_mem_calloc(1, sizeof(*f));
    f->cfg = *cfg;
    f->cfg.database_url = ft_mem_strdup(cfg->database_url);
    f->cfg.version = ft_mem_strdup(cfg->version);
    f->cfg.commit = ft_mem_strdup(cfg->commit);
    f->cfg.address = NULL;
    f->address = cfg->address != NULL ? ft_mem_strdup(cfg->address) : NULL;
    f->failed = json_object();
    pthread_mutex_init(&f->mutex, NULL);
    pthread_mutex_init(&f->work_mutex, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->kick_cond, &ca);
    pthread_cond_init(&f->results_cond, &ca);
    pthread_condattr_destroy(&ca);

    char hostname[256] = "";
    gethostname(hostname, sizeof(hostname) - 1);
    ft_host_record_t rec = {.hostname = hostname,
                            .pid = (int)getpid(),
                            .roles = role_names(cfg->roles),
                            .version = cfg->version,
                            .commit = cfg->commit,
                            .address = cfg->address,
                            .heartbeat_ms = cfg->heartbeat_ms};
    json_t *releases = NULL;
    PGconn *conn = ft_db_acquire(cfg->db, err);
    int rc = conn != NULL ? ft_fleet_store_register(conn, &rec, f->id, err) : err->code;
    if (rc == FT_OK)
        rc = ft_fleet_store_releases(conn, &releases, err);
    if (conn != NULL)
        ft_db_release(cfg->db, conn);
    if (rc != FT_OK) {
        /* as with the catalog, a database without the fleet's tables leaves this host on its own */
        ft_log(FT_LOG_ERROR, NULL, "fleet: cannot join (%s); serving the plugin directory alone, reloads reach this host only",
               err->message);
        f->id[0] = '\0';
        *err = (ft_error_t){0};
        rc = ft_registry_reload(cfg->registry, NULL, 0, NULL, NULL, err) == FT_EIO ? FT_EIO : FT_OK;
        if (rc != FT_OK)
            ft_fleet_stop(f);
        return rc == FT_OK ? f : NULL;
    }
    ft_log(FT_LOG_INFO, NULL, "fleet: this process is host %s; %zu plugin releases current", f->id, json_array_size(releases));
    pthread_mutex_lock(&f->work_mutex);
    rc = initial_load(f, releases, err);
    ft_fleet_publish(f);
    pthread_mutex_unlock(&f->work_mutex);
    json_decref(releases);
    if (rc != FT_OK) {
        ft_fleet_stop(f);
        return NULL;
    }
    static const char *const channels[] = {FT_FLEET_ROLLOUT_CHANNEL, FT_FLEET_RESULT_CHANNEL, NULL};
    f->listener = ft_listener_start(f->cfg.database_url, channels, on_notify, f);
    f->thread_started = pthread_create(&f->thread, NULL, fleet_main, f) == 0;
    return f;
}

void ft_fleet_stop(ft_fleet_t *f)
{
    if (f == NULL)
        return;
    pthread_mutex_lock(&f->mutex);
    f->stopping = 1;
    pthread_cond_broadcast(&f->kick_cond);
    pthread_cond_broadcast(&f->results_cond);
    pthread_mutex_unlock(&f->mutex);
    if (f->thread_started)
        pthread_join(f->thread, NULL);
    ft_listener_stop(f->listener);
    if (f->id[0] != '\0') {
        ft_error_t err = {0};
        PGconn *conn = ft_db_acquire(f->cfg.db, &err);
        if (conn != NULL) {
            ft_fleet_store_stopped(conn, f->id, &err);
            ft_db_release(f->cfg.db, conn);
        }
    }
    json_decref(f->failed);
    free(f->published);
    free(f->address);
    free((char *)f->cfg.database_url);
    free((char *)f->cfg.version);
    free((char *)f->cfg.commit);
    pthread_mutex_destroy(&f->mutex);
    pthread_mutex_destroy(&f->work_mutex);
    pthread_cond_destroy(&f->kick_cond);
    pthread_cond_destroy(&f->results_cond);
    free(f);
}

void ft_fleet_set_address(ft_fleet_t *f, const char *address)
{
    pthread_mutex_lock(&f->mutex);
    free(f->address);
    f->address = ft_mem_strdup(address);
    f->beat_now = 1; /* the fleet learns it with a heartbeat now, not one period later */
    pthread_cond_signal(&f->kick_cond);
    pthread_mutex_unlock(&f->mutex);
}

const char *ft_fleet_host_id(const ft_fleet_t *f)
{
    return f->id[0] != '\0' ? f->id : NULL;
}
