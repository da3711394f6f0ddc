/*
 * The template product: the smallest complete plugin, and the starting point for a new
 * product team. Copy this directory, rename the product code, and fill the tables.
 *
 * It shows every part of the ABI once: modules, flag and limit features with a dependency,
 * plans, a settings schema, tenant-schema migrations for both tiers, idempotent provision
 * and deprovision steps, and one action.
 */
#include <farutech/plugin.h>

#include <stdio.h>
#include <string.h>

static const ftp_host_api_t *host;

/* ---- catalog ---- */

static const ftp_module_t modules[] = {
    {"core", "Core", "Notes and users", NULL},
    {"sharing", "Sharing", "Share notes outside the team", (const char *const[]){"core", NULL}},
};

static const ftp_feature_t features[] = {
    {"notes", "core", "Notes", "Create and edit notes", FTP_FEATURE_FLAG, 1, NULL, NULL},
    {"max_users", "core", "Users", "Users who can sign in", FTP_FEATURE_LIMIT, 5, NULL, "users"},
    {"public_links", "sharing", "Public links", "Share a note by link", FTP_FEATURE_FLAG, 1,
     (const char *const[]){"notes", NULL}, NULL},
};

static const ftp_plan_feature_t free_features[] = {{"notes", 1}, {"max_users", 3}};
static const ftp_plan_feature_t team_features[] = {{"notes", 1}, {"max_users", 25}, {"public_links", 1}};

static const ftp_plan_t plans[] = {
    {"free", "Free", "For trying it out", 1, FTP_TABLE(free_features), 0},
    {"team", "Team", "For small teams", 1, FTP_TABLE(team_features), 14},
};

static const char settings_schema[] = "{\"type\":\"object\",\"properties\":{"
                                      "\"admin_email\":{\"type\":\"string\",\"format\":\"email\"},"
                                      "\"admin_name\":{\"type\":\"string\",\"maxLength\":200}},"
                                      "\"required\":[\"admin_email\"],\"additionalProperties\":false}";

/* ---- tenant schema ---- */

static const ftp_migration_t migrations[] = {
    {1, "notes",
     /* pooled: one table for every tenant, isolated by row-level security */
     "CREATE TABLE IF NOT EXISTS notes ("
     "  tenant_id uuid NOT NULL DEFAULT current_setting('farutech.tenant_id')::uuid,"
     "  id bigint GENERATED ALWAYS AS IDENTITY,"
     "  title text NOT NULL,"
     "  PRIMARY KEY (tenant_id, id));"
     "ALTER TABLE notes ENABLE ROW LEVEL SECURITY;"
     "ALTER TABLE notes FORCE ROW LEVEL SECURITY;"
     "DROP POLICY IF EXISTS tenant_isolation ON notes;"
     "CREATE POLICY tenant_isolation ON notes USING (tenant_id = nullif(current_setting('farutech.tenant_id', true), '')::uuid)"
     " WITH CHECK (tenant_id = nullif(current_setting('farutech.tenant_id', true), '')::uuid);"
     "CREATE TABLE IF NOT EXISTS users ("
     "  tenant_id uuid NOT NULL DEFAULT current_setting('farutech.tenant_id')::uuid,"
     "  email text NOT NULL, name text, role text NOT NULL,"
     "  PRIMARY KEY (tenant_id, email));"
     "ALTER TABLE users ENABLE ROW LEVEL SECURITY;"
     "ALTER TABLE users FORCE ROW LEVEL SECURITY;"
     "DROP POLICY IF EXISTS tenant_isolation ON users;"
     "CREATE POLICY tenant_isolation ON users USING (tenant_id = nullif(current_setting('farutech.tenant_id', true), '')::uuid)"
     " WITH CHECK (tenant_id = nullif(current_setting('farutech.tenant_id', true), '')::uuid);",
     /* siloed: the instance owns the database, no tenant column needed */
     "CREATE TABLE IF NOT EXISTS notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title text NOT NULL);"
     "CREATE TABLE IF NOT EXISTS users (email text PRIMARY KEY, name text, role text NOT NULL);"},
};

/* ---- lifecycle ---- */

static int create_schema(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    return api->apply_tenant_migrations(ctx);
}

static int create_admin(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    const char *email = api->setting(ctx, "admin_email");
    const char *name = api->setting(ctx, "admin_name");
    if (email == NULL) {
        api->set_error(ctx, "setting admin_email is required");
        return FTP_E_INVALID;
    }
    const char *params[] = {email, name};
    /* ON CONFLICT keeps the step idempotent */
    return api->db_exec(ctx, "INSERT INTO users (email, name, role) VALUES ($1, $2, 'admin') ON CONFLICT DO NOTHING", 2,
                        params, NULL);
}

static int drop_tenant_data(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    /* pooled: delete this tenant's rows (row-level security limits the statements to them, and
     * the explicit filter says so in the SQL too); siloed: the host drops the whole database
     * after the steps, nothing to do here */
    if (api->tier(ctx) != FTP_TIER_STANDARD)
        return FTP_OK;
    int rc = api->db_exec(ctx, "DELETE FROM notes WHERE tenant_id = current_setting('farutech.tenant_id')::uuid", 0, NULL, NULL);
    if (rc == FTP_OK)
        rc = api->db_exec(ctx, "DELETE FROM users WHERE tenant_id = current_setting('farutech.tenant_id')::uuid", 0, NULL, NULL);
    return rc;
}

static const ftp_step_t steps[] = {
    {FTP_LIFECYCLE_PROVISION, "create_schema", 1, 30000, create_schema, NULL},
    {FTP_LIFECYCLE_PROVISION, "create_admin", 1, 10000, create_admin, NULL},
    {FTP_LIFECYCLE_DEPROVISION, "drop_tenant_data", 1, 30000, drop_tenant_data, NULL},
};

/* ---- actions ---- */

static int count_notes(const ftp_host_api_t *api, ftp_ctx_t *ctx, const char *input_json, char **output_json)
{
    ftp_result_t *res = NULL;
    int rc = api->db_exec(ctx, "SELECT count(*) FROM notes", 0, NULL, &res);
    if (rc != FTP_OK)
        return rc;
    char buf[64];
    snprintf(buf, sizeof(buf), "{\"notes\":%s}", api->result_value(res, 0, 0));
    api->result_free(res);
    *output_json = api->alloc(strlen(buf) + 1);
    if (*output_json == NULL)
        return FTP_E_NOMEM;
    memcpy(*output_json, buf, strlen(buf) + 1);
    return FTP_OK;
}

static const ftp_action_t actions[] = {
    {"count-notes", "How many notes the instance holds", NULL, "notes", count_notes},
};

/* ---- descriptor ---- */

static int init(const ftp_host_api_t *api)
{
    host = api;
    return FTP_OK;
}

static void fini(void)
{
    host = NULL;
}

static const ftp_plugin_t plugin = {
    .header = FTP_HEADER_INIT,
    .product_code = "template",
    .product_name = "Template",
    .description = "A minimal product to copy from",
    .version = "1.0.0",
    .settings_schema = settings_schema,
    .modules = FTP_TABLE(modules),
    .features = FTP_TABLE(features),
    .plans = FTP_TABLE(plans),
    .migrations = FTP_TABLE(migrations),
    .steps = FTP_TABLE(steps),
    .actions = FTP_TABLE(actions),
    .init = init,
    .fini = fini,
    .vendor = "Farutech",
    .support_url = NULL,
};

FTP_DEFINE_PLUGIN(plugin)
