/*
 * A fleet-wide reload coordinated from this host: reload from FT_PLUGIN_DIR here (which
 * validates the files), record what loaded as the products' releases, announce the rollout to
 * every other live host in the same transaction (NOTIFY is delivered on commit, so a host
 * told about it always sees its rows), then wait, bounded, for their results.
 * Canary mode stops at this host's first failure: no release changes and nobody else is asked.
 */
#include "messaging/fleet_internal.h"

#include "core/mem.h"
#include "infra/log.h"
#include "plugins/loader.h"
#include "store/fleet_store.h"
#include "store/sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Checks again this often while waiting, in case a results notification was missed. */
#define RESULTS_POLL_MS 500

static int is_result(json_t *r, const char *what)
{
    return strcmp(json_string_value(json_object_get(r, "result")), what) == 0;
}

/* This host's rollout results from its registry report. */
static json_t *own_results(ft_fleet_t *f, json_t *report, int *failed)
{
    json_t *out = json_array(), *e;
    size_t i;
    json_array_foreach(report, i, e)
    {
        const char *product = json_string_value(json_object_get(e, "product"));
        unsigned long long number = 0;
        char sha[65] = "", version[64] = "";
        int serving = ft_fleet_serving(f, product, &number, sha, version, sizeof(version));
        json_t *r;
        if (is_result(e, "failed")) {
            *failed = 1;
            r = json_pack("{s:s, s:s, s:O}", "product", product, "result", "failed", "reason", json_object_get(e, "reason"));
            if (serving) {
                json_object_set_new(r, "serving_generation", json_integer((json_int_t)number));
                json_object_set_new(r, "sha256", json_string(sha));
            }
        } else {
            r = json_pack("{s:s, s:s, s:I, s:s, s:s}", "product", product, "result",
                          is_result(e, "unchanged") ? "unchanged" : "loaded", "generation", (json_int_t)number, "version", version,
                          "sha256", sha);
            if (json_object_get(e, "load_ms") != NULL)
                json_object_set(r, "load_ms", json_object_get(e, "load_ms"));
        }
        json_array_append_new(out, r);
    }
    return out;
}

static json_t *current_of(json_t *history, const char *product);

/* Records the release of every product that loaded here (a product already serving its current
 * release keeps it); returns the rollout's items. */
static int record_releases(ft_fleet_t *f, PGconn *conn, json_t *own, json_t *history, const ft_rollout_request_t *req,
                           const char *rollout_id, json_t *items, ft_error_t *err)
{
    json_t *r;
    size_t i;
    json_array_foreach(own, i, r)
    {
        if (is_result(r, "failed"))
            continue;
        const char *product = json_string_value(json_object_get(r, "product"));
        const char *sha = json_string_value(json_object_get(r, "sha256"));
        unsigned char *bytes = NULL;
        size_t len = 0;
        long long release_id = 0;
        char current[65];
        json_t *cur = current_of(history, product);
        int rc = FT_OK;
        ft_error_t ferr = {0};
        if (cur != NULL && strcmp(json_string_value(json_object_get(cur, "sha256")), sha) == 0) {
            release_id = (long long)json_integer_value(json_object_get(cur, "release_id"));
        } else if (ft_fleet_read_plugin(f, product, sha, &bytes, &len, &ferr) != FT_OK) {
            /* the file moved on since it loaded: what serves here is not what the directory holds */
            json_object_set_new(r, "result", json_string("failed"));
            json_object_set_new(r, "reason", json_string(ferr.message));
            continue;
        } else {
            ft_release_t rel = {.product = product,
                                .sha256 = sha,
                                .version = json_string_value(json_object_get(r, "version")),
                                .file = bytes,
                                .len = len,
                                .released_by = req->actor,
                                .host_id = f->id,
                                .rollout_id = rollout_id};
            rc = ft_fleet_store_release(conn, &rel, 0, &release_id, current, err);
            free(bytes);
        }
        if (rc != FT_OK)
            return rc;
        json_array_append_new(items, json_pack("{s:s, s:I, s:s, s:O}", "product", product, "release_id", (json_int_t)release_id,
                                               "sha256", sha, "version", json_object_get(r, "version")));
    }
    return FT_OK;
}

/* The current release in history ([{"product","release_id","sha256"}] newest first) of product. */
static json_t *current_of(json_t *history, const char *product)
{
    size_t i;
    json_t *h;
    json_array_foreach(history, i, h)
    {
        if (strcmp(json_string_value(json_object_get(h, "product")), product) == 0)
            return h;
    }
    return NULL;
}

/* 1 when sha256 was a release of product before the current one. */
static int superseded(json_t *history, const char *product, const char *sha256)
{
    size_t i;
    json_t *h;
    int seen_current = 0;
    json_array_foreach(history, i, h)
    {
        if (strcmp(json_string_value(json_object_get(h, "product")), product) != 0)
            continue;
        if (seen_current++ == 0)
            continue;
        if (strcmp(json_string_value(json_object_get(h, "sha256")), sha256) == 0)
            return 1;
    }
    return 0;
}

/* 1 when the file at path was last written before the release cur was made. */
static int older_than(const char *path, json_t *cur)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    double mtime = (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec / 1e9;
    return mtime < json_number_value(json_object_get(cur, "released_epoch"));
}

/*
 * Products (only, or all) whose file in FT_PLUGIN_DIR is an earlier release that a later one
 * replaced, and that was written before that later release was made: this host's directory is
 * behind the fleet (a deploy that reached some hosts only, a reload sent through a load
 * balancer). Its file would roll the fleet back, so unless the request says rollback the
 * product keeps the current release. An earlier release written anew (a deliberate downgrade)
 * is not behind. NULL-terminated; the caller frees.
 */
static char **behind(ft_fleet_t *f, json_t *history, const char *only)
{
    char **codes = NULL, **out;
    size_t n = 0, k = 0;
    ft_error_t err = {0};
    if (ft_registry_dir_products(f->cfg.registry, &codes, &n, &err) != FT_OK)
        n = 0;
    out = ft_mem_calloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        char *path = ft_mem_asprintf("%s/%s.so", ft_registry_plugin_dir(f->cfg.registry), codes[i]);
        char sha[65];
        json_t *cur = current_of(history, codes[i]);
        if ((only == NULL || strcmp(only, codes[i]) == 0) && cur != NULL && ft_file_sha256(path, sha, &err) == FT_OK &&
            strcmp(sha, json_string_value(json_object_get(cur, "sha256"))) != 0 && superseded(history, codes[i], sha) &&
            older_than(path, cur))
            out[k++] = codes[i];
        else
            free(codes[i]);
        free(path);
    }
    free(codes);
    return out;
}

/* A product left behind by `behind`: this host serves (or, forced, reloads) the current release
 * instead, and its report entry says why. */
static void keep_current(ft_fleet_t *f, json_t *history, const char *product, int force, json_t *report)
{
    json_t *cur = current_of(history, product);
    json_t *r = ft_fleet_apply(f, product, (long long)json_integer_value(json_object_get(cur, "release_id")),
                               json_string_value(json_object_get(cur, "sha256")), force);
    char *note = ft_mem_asprintf("%s/%s.so is an earlier release; the current release stays (rollback=true rolls back to it)",
                                 ft_registry_plugin_dir(f->cfg.registry), product);
    json_object_set_new(r, "note", json_string(note));
    free(note);
    json_array_append_new(report, r);
}

/* The local phase, under work_mutex: reload, releases, the rollout row and its announcement. */
static int start_rollout(ft_fleet_t *f, const ft_rollout_request_t *req, char rollout_id[37], json_t **report, json_t **own,
                         json_t **items, int *stopped, int *rolling, ft_error_t *err)
{
    ft_error_t lerr = {0};
    int failed = 0, rc;
    PGconn *conn = NULL;
    json_t *live = NULL;
    json_t *history = NULL;
    char **kept = NULL;
    pthread_mutex_lock(&f->work_mutex);
    if ((conn = ft_db_acquire(f->cfg.db, err)) == NULL) {
        rc = err->code;
        goto out;
    }
    rc = ft_fleet_store_release_history(conn, &history, err);
    ft_db_release(f->cfg.db, conn);
    conn = NULL;
    if (rc != FT_OK)
        goto out;
    kept = req->rollback ? ft_mem_calloc(1, sizeof(char *)) : behind(f, history, req->product);
    rc = ft_registry_reload(f->cfg.registry, req->product, req->force, (const char *const *)kept, report, &lerr);
    if (rc == FT_ENOTFOUND || rc == FT_EIO) {
        *err = lerr;
        goto out;
    }
    for (char **k = kept; *k != NULL; k++)
        keep_current(f, history, *k, req->force, *report);
    *own = own_results(f, *report, &failed);
    *stopped = req->canary && failed;
    *items = json_array();
    if ((conn = ft_db_acquire(f->cfg.db, err)) == NULL) {
        rc = err->code;
        goto out;
    }
    if ((rc = ft_fleet_store_new_id(conn, rollout_id, err)) != FT_OK || (rc = ft_sql_begin(conn, err)) != FT_OK)
        goto out;
    if ((rc = ft_fleet_store_live_hosts(conn, f->id, &live, err)) == FT_OK && !*stopped)
        rc = record_releases(f, conn, *own, history, req, rollout_id, *items, err);
    *rolling = !*stopped && json_array_size(*items) > 0 && json_array_size(live) > 0;
    ft_rollout_row_t row = {.id = rollout_id,
                            .coordinator = f->id,
                            .actor = req->actor,
                            .mode = req->canary ? "canary" : "all",
                            .product = req->product,
                            .force = req->force,
                            .items = *items,
                            .hosts = live,
                            .state = *stopped   ? "stopped"
                                     : *rolling ? "rolling"
                                                : "done"};
    if (rc == FT_OK)
        rc = ft_fleet_store_rollout_insert(conn, &row, err);
    if (rc == FT_OK)
        rc = ft_fleet_store_results_insert(conn, rollout_id, f->id, *own, err);
    if (rc == FT_OK && *rolling)
        rc = ft_fleet_store_notify(conn, FT_FLEET_ROLLOUT_CHANNEL, rollout_id, err);
    if (rc == FT_OK)
        rc = ft_sql_commit(conn, err);
    else
        ft_sql_rollback(conn);
    ft_fleet_publish(f);
out:
    pthread_mutex_unlock(&f->work_mutex);
    if (conn != NULL)
        ft_db_release(f->cfg.db, conn);
    json_decref(live);
    json_decref(history);
    for (char **k = kept; k != NULL && *k != NULL; k++)
        free(*k);
    free(kept);
    return rc;
}

/* The rollout's hosts; *waiting counts the asked hosts that have not answered. */
static int rollout_hosts(ft_fleet_t *f, const char *rollout_id, json_t **hosts, size_t *waiting, ft_error_t *err)
{
    PGconn *conn = ft_db_acquire(f->cfg.db, err);
    if (conn == NULL)
        return err->code;
    json_decref(*hosts);
    *hosts = NULL;
    int rc = ft_fleet_store_rollout_hosts(conn, rollout_id, hosts, err);
    ft_db_release(f->cfg.db, conn);
    *waiting = 0;
    size_t i;
    json_t *h;
    json_array_foreach(rc == FT_OK ? *hosts : NULL, i, h)
    {
        if (json_array_size(json_object_get(h, "results")) == 0)
            (*waiting)++;
    }
    return rc;
}

/* What a host that did not answer last reported for product. */
static json_t *timeout_result(json_t *host, const char *product, unsigned timeout_ms)
{
    json_t *r = json_pack("{s:s, s:s}", "product", product, "result", "timeout");
    char reason[128];
    snprintf(reason, sizeof(reason), "no answer within %u ms", timeout_ms);
    json_object_set_new(r, "reason", json_string(reason));
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(host, "plugins"), i, p)
    {
        if (strcmp(json_string_value(json_object_get(p, "product")), product) != 0 ||
            json_is_null(json_object_get(p, "generation")))
            continue;
        json_object_set(r, "serving_generation", json_object_get(p, "generation"));
        json_object_set(r, "sha256", json_object_get(p, "sha256"));
        json_object_set(r, "version", json_object_get(p, "version"));
    }
    return r;
}

static json_t *skipped(const char *product, const char *reason)
{
    return json_pack("{s:s, s:s, s:s}", "product", product, "result", "skipped", "reason", reason);
}

/* Fills in what the other hosts did not report: timeouts while rolling, "skipped" products. */
static void complete_hosts(json_t *hosts, json_t *own, json_t *items, int stopped, unsigned timeout_ms)
{
    size_t i, k;
    json_t *h, *r;
    json_array_foreach(hosts, i, h)
    {
        if (json_is_true(json_object_get(h, "coordinator")))
            continue;
        json_t *results = json_object_get(h, "results");
        if (json_array_size(results) == 0) {
            json_array_foreach(items, k, r)
                json_array_append_new(results, timeout_result(h, json_string_value(json_object_get(r, "product")), timeout_ms));
        }
        json_array_foreach(own, k, r)
        {
            const char *product = json_string_value(json_object_get(r, "product"));
            if (stopped)
                json_array_append_new(results, skipped(product, "the canary failed: the rollout stopped"));
            else if (is_result(r, "failed"))
                json_array_append_new(results, skipped(product, "not rolled out: it failed to load on the coordinator"));
        }
    }
    json_array_foreach(hosts, i, h) json_object_del(h, "plugins");
}

/* FT_EINVAL when some host failed a product (err: host, product and reason of each, or the
 * coordinator's own reasons), FT_ETIMEOUT when some host did not answer, else FT_OK. */
static int verdict(json_t *hosts, const char *coordinator_reasons, ft_error_t *err)
{
    char failures[sizeof(err->message)] = "", timeouts[sizeof(err->message)] = "";
    size_t fu = 0, tu = 0, i, k;
    json_t *h, *r;
    json_array_foreach(hosts, i, h)
    {
        const char *name = json_string_value(json_object_get(h, "hostname"));
        const char *id = json_string_value(json_object_get(h, "host_id"));
        json_array_foreach(json_object_get(h, "results"), k, r)
        {
            const char *product = json_string_value(json_object_get(r, "product"));
            if (is_result(r, "failed") && !json_is_true(json_object_get(h, "coordinator")) && fu < sizeof(failures) - 1) {
                int n = snprintf(failures + fu, sizeof(failures) - fu, "%shost %s (%.8s) %s: %s", fu > 0 ? " | " : "", name, id,
                                 product, json_string_value(json_object_get(r, "reason")));
                fu += n > 0 ? (size_t)n : 0;
            } else if (is_result(r, "timeout") && tu < sizeof(timeouts) - 1) {
                int n =
                    snprintf(timeouts + tu, sizeof(timeouts) - tu, "%shost %s (%.8s) %s", tu > 0 ? ", " : "", name, id, product);
                tu += n > 0 ? (size_t)n : 0;
            }
        }
    }
    if (coordinator_reasons[0] != '\0' || failures[0] != '\0')
        return ft_error_set(err, FT_EINVAL, "%s%s%s", coordinator_reasons, coordinator_reasons[0] && failures[0] ? " | " : "",
                            failures);
    if (timeouts[0] != '\0')
        return ft_error_set(err, FT_ETIMEOUT, "no answer in time from %s", timeouts);
    return FT_OK;
}

/* The coordinator's failures as the registry words them (one product: the reason alone). */
static void own_reasons(json_t *own, const char *product, char *out, size_t len)
{
    size_t used = 0, i;
    json_t *r;
    out[0] = '\0';
    json_array_foreach(own, i, r)
    {
        if (!is_result(r, "failed") || used >= len - 1)
            continue;
        const char *reason = json_string_value(json_object_get(r, "reason"));
        int n = product != NULL ? snprintf(out + used, len - used, "%s", reason)
                                : snprintf(out + used, len - used, "%s%s: %s", used > 0 ? " | " : "",
                                           json_string_value(json_object_get(r, "product")), reason);
        used += n > 0 ? (size_t)n : 0;
    }
}

/* A host on its own: its registry's reload, and the answer's fleet members empty. */
static int alone(ft_fleet_t *f, const ft_rollout_request_t *req, json_t **answer, ft_error_t *err)
{
    json_t *report = NULL;
    int rc = ft_registry_reload(f->cfg.registry, req->product, req->force, NULL, &report, err);
    if (rc == FT_OK || rc == FT_EINVAL)
        *answer = json_pack("{s:o, s:n, s:[]}", "results", report, "rollout", "hosts");
    else
        json_decref(report);
    return rc;
}

int ft_fleet_rollout(ft_fleet_t *f, const ft_rollout_request_t *req, json_t **answer, ft_error_t *err)
{
    if (f->id[0] == '\0')
        return alone(f, req, answer, err);
    uint64_t t0 = ft_fleet_now_ns(), deadline = t0 + (uint64_t)f->cfg.rollout_timeout_ms * 1000000u;
    char rollout_id[37] = "", started_at[40] = "", finished_at[40] = "";
    json_t *report = NULL, *own = NULL, *items = NULL, *hosts = NULL;
    int stopped = 0, rolling = 0, timed_out = 0;
    size_t waiting = 0;
    *answer = NULL;
    unsigned long long seen = ft_fleet_results_seen(f);
    int rc = start_rollout(f, req, rollout_id, &report, &own, &items, &stopped, &rolling, err);
    if (rc != FT_OK)
        goto out;
    while ((rc = rollout_hosts(f, rollout_id, &hosts, &waiting, err)) == FT_OK && rolling && waiting > 0) {
        uint64_t now = ft_fleet_now_ns();
        if (now >= deadline) {
            timed_out = 1;
            break;
        }
        uint64_t poll = now + RESULTS_POLL_MS * 1000000ull;
        seen = ft_fleet_wait_results(f, seen, poll < deadline ? poll : deadline);
    }
    PGconn *conn = rc == FT_OK ? ft_db_acquire(f->cfg.db, err) : NULL;
    if (conn != NULL) {
        rc = ft_fleet_store_rollout_finish(conn, rollout_id, timed_out ? "incomplete" : "done", started_at, finished_at, err);
        ft_db_release(f->cfg.db, conn);
    } else if (rc == FT_OK) {
        rc = err->code;
    }
    if (rc != FT_OK)
        goto out;
    complete_hosts(hosts, own, items, stopped, f->cfg.rollout_timeout_ms);
    char reasons[sizeof(err->message)];
    own_reasons(own, req->product, reasons, sizeof(reasons));
    rc = verdict(hosts, reasons, err);
    json_t *rollout =
        json_pack("{s:s, s:s, s:s, s:o, s:b, s:s, s:s, s:s, s:f}", "id", rollout_id, "coordinator", f->id, "mode",
                  req->canary ? "canary" : "all", "product", req->product ? json_string(req->product) : json_null(), "force",
                  req->force, "state",
                  stopped     ? "stopped"
                  : timed_out ? "incomplete"
                              : "done",
                  "started_at", started_at, "finished_at", finished_at, "duration_ms", (double)(ft_fleet_now_ns() - t0) / 1e6);
    *answer = json_pack("{s:O, s:o, s:O}", "results", report, "rollout", rollout, "hosts", hosts);
    ft_log(rc == FT_OK ? FT_LOG_INFO : FT_LOG_WARN, NULL, "fleet: rollout %s (%s%s) by %s: %s in %.1f ms%s%s", rollout_id,
           req->canary ? "canary" : "all", req->force ? ", forced" : "", req->actor,
           stopped     ? "stopped"
           : timed_out ? "incomplete"
                       : "done",
           (double)(ft_fleet_now_ns() - t0) / 1e6, rc != FT_OK ? ": " : "", rc != FT_OK ? err->message : "");
out:
    json_decref(report);
    json_decref(own);
    json_decref(items);
    json_decref(hosts);
    return rc;
}
