/*
 * The "faulty" test product: real steps whose failures the tests control through the
 * instance's settings, to exercise retries, the DLQ, crash recovery and idempotency.
 *   touch             writes one row to effects (ON CONFLICT DO NOTHING: once per tenant) and logs
 *                     "touched"
 *   nap               sleeps sleep_ms in the database (a long step to kill a worker in)
 *   flaky             fails (retryably) while the file fail_while_exists exists
 *   doomed            fails for good when fatal is true
 *   ddl               creates a table itself (which a step may not) when ddl is true
 * Built with FAULTY_FIXED it is the next release (2.0.0): "flaky" is gone and "steady" (writes
 * one row to effects) runs in its place.
 */
#include <farutech/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const ftp_module_t modules[] = {{"core", "Core", "Everything", NULL}};
static const ftp_feature_t features[] = {
    {"work", "core", "Work", "A flag", FTP_FEATURE_FLAG, 1, NULL, NULL},
    {"max_users", "core", "Users", "A limit", FTP_FEATURE_LIMIT, 5, NULL, "users"},
    {"storage_gb", "core", "Storage", "A limit", FTP_FEATURE_LIMIT, 1, NULL, "GB"},
};
static const ftp_plan_feature_t basic_features[] = {{"work", 1}, {"max_users", 5}, {"storage_gb", 1}};
static const ftp_plan_t plans[] = {{"basic", "Basic", "The only plan", 1, FTP_TABLE(basic_features), 0}};

static const char settings_schema[] = "{\"type\":\"object\",\"additionalProperties\":false,\"properties\":{"
                                      "\"admin_email\":{\"type\":\"string\",\"format\":\"email\"},"
                                      "\"sleep_ms\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":60000,\"default\":0},"
                                      "\"fail_while_exists\":{\"type\":\"string\",\"maxLength\":500},"
                                      "\"fatal\":{\"type\":\"boolean\",\"default\":false},"
                                      "\"ddl\":{\"type\":\"boolean\",\"default\":false}}}";

static const ftp_migration_t migrations[] = {
    {1, "effects",
     "CREATE TABLE IF NOT EXISTS effects (tenant_id uuid NOT NULL DEFAULT current_setting('farutech.tenant_id')::uuid,"
     " what text NOT NULL, at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (tenant_id, what));"
     "ALTER TABLE effects ENABLE ROW LEVEL SECURITY; ALTER TABLE effects FORCE ROW LEVEL SECURITY;"
     "DROP POLICY IF EXISTS tenant_isolation ON effects;"
     "CREATE POLICY tenant_isolation ON effects USING (tenant_id = nullif(current_setting('farutech.tenant_id', true), '')::uuid)"
     " WITH CHECK (tenant_id = nullif(current_setting('farutech.tenant_id', true), '')::uuid);",
     "CREATE TABLE IF NOT EXISTS effects (what text PRIMARY KEY, at timestamptz NOT NULL DEFAULT now());"},
};

static int touch(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    int rc = api->db_exec(ctx, "INSERT INTO effects (what) VALUES ('provisioned') ON CONFLICT DO NOTHING", 0, NULL, NULL);
    if (rc == FTP_OK)
        rc = api->emit_event(ctx, "faulty.touched.v1", "{\"what\":\"provisioned\"}");
    if (rc == FTP_OK)
        api->log(ctx, FTP_LOG_INFO, "touched");
    return rc;
}

static int nap(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    const char *ms = api->setting(ctx, "sleep_ms");
    if (ms == NULL || atoi(ms) <= 0)
        return FTP_OK;
    char secs[32];
    snprintf(secs, sizeof(secs), "%.3f", atoi(ms) / 1000.0);
    const char *params[] = {secs};
    return api->db_exec(ctx, "SELECT pg_sleep($1::float8)", 1, params, NULL);
}

static int doomed(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    const char *fatal = api->setting(ctx, "fatal");
    if (fatal != NULL && strcmp(fatal, "true") == 0) {
        api->set_error(ctx, "this instance is configured to fail for good");
        return FTP_E_FATAL;
    }
    return FTP_OK;
}

static int ddl(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    const char *on = api->setting(ctx, "ddl");
    if (on == NULL || strcmp(on, "true") != 0)
        return FTP_OK;
    return api->db_exec(ctx, "  -- a table of its own\n  CREATE TABLE IF NOT EXISTS extra (x int)", 0, NULL, NULL);
}

#ifdef FAULTY_FIXED
static int steady(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    return api->db_exec(ctx, "INSERT INTO effects (what) VALUES ('steady') ON CONFLICT DO NOTHING", 0, NULL, NULL);
}
#else
static int flaky(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    const char *path = api->setting(ctx, "fail_while_exists");
    if (path != NULL && access(path, F_OK) == 0) {
        api->set_error(ctx, "the fault file %s is present", path);
        return FTP_E_RETRY;
    }
    return FTP_OK;
}
#endif

static int remove_rows(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    if (api->tier(ctx) != FTP_TIER_STANDARD)
        return FTP_OK;
    return api->db_exec(ctx, "DELETE FROM effects WHERE tenant_id = current_setting('farutech.tenant_id')::uuid", 0, NULL, NULL);
}

static int noop(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    return FTP_OK;
}

static int create_schema(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    return api->apply_tenant_migrations(ctx);
}

static const ftp_step_t steps[] = {
    {FTP_LIFECYCLE_PROVISION, "create_schema", 1, 30000, create_schema, NULL},
    {FTP_LIFECYCLE_PROVISION, "touch", 1, 10000, touch, NULL},
    {FTP_LIFECYCLE_PROVISION, "nap", 1, 60000, nap, NULL},
#ifdef FAULTY_FIXED
    {FTP_LIFECYCLE_PROVISION, "steady", 1, 10000, steady, NULL},
#else
    {FTP_LIFECYCLE_PROVISION, "flaky", 1, 10000, flaky, NULL},
#endif
    {FTP_LIFECYCLE_PROVISION, "doomed", 1, 10000, doomed, NULL},
    {FTP_LIFECYCLE_PROVISION, "ddl", 1, 10000, ddl, NULL},
    {FTP_LIFECYCLE_DEPROVISION, "remove_rows", 1, 10000, remove_rows, NULL},
    {FTP_LIFECYCLE_SUSPEND, "noop", 1, 1000, noop, NULL},
    {FTP_LIFECYCLE_RESUME, "noop", 1, 1000, noop, NULL},
    {FTP_LIFECYCLE_FEATURES_CHANGED, "noop", 1, 1000, noop, NULL},
};

static int init(const ftp_host_api_t *api)
{
    return FTP_OK;
}

static void fini(void)
{
}

static const ftp_plugin_t plugin = {
    .header = FTP_HEADER_INIT,
    .product_code = "faulty",
    .product_name = "Faulty",
    .description = "A test product whose steps fail on request",
#ifdef FAULTY_FIXED
    .version = "2.0.0",
#else
    .version = "1.0.0",
#endif
    .settings_schema = settings_schema,
    .modules = FTP_TABLE(modules),
    .features = FTP_TABLE(features),
    .plans = FTP_TABLE(plans),
    .migrations = FTP_TABLE(migrations),
    .steps = FTP_TABLE(steps),
    .init = init,
    .fini = fini,
};

FTP_DEFINE_PLUGIN(plugin)
