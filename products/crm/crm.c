/*
 * Farutech CRM: contacts and companies, a sales pipeline of deals and stages, activities and tasks,
 * email campaigns with marketing automation, customer support tickets, custom fields and API access.
 * Contacts and companies share one table (kind 'person' or 'company'), as in a party model.
 */
#include <farutech/plugin.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const ftp_host_api_t *host;

/* ---- catalog ---- */

static const ftp_module_t modules[] = {
    {"core", "CRM Core", "Contacts, companies, activities and tasks, users and custom fields", NULL},
    {"sales", "Sales Pipeline", "Deals moving through pipeline stages, with forecasting", (const char *const[]){"core", NULL}},
    {"marketing", "Marketing", "Email campaigns to contact segments and automated journeys", (const char *const[]){"core", NULL}},
    {"support", "Customer Support", "A ticket queue linked to contacts, with SLA targets", (const char *const[]){"core", NULL}},
    {"integrations", "Integrations", "REST API access and outbound webhooks", (const char *const[]){"core", NULL}},
};

static const ftp_feature_t features[] = {
    {"contacts", "core", "Contacts & companies", "Manage people and the companies they work for", FTP_FEATURE_FLAG, 1, NULL, NULL},
    {"activities", "core", "Activities & tasks", "Log calls, emails and meetings; assign tasks with due dates", FTP_FEATURE_FLAG, 1,
     (const char *const[]){"contacts", NULL}, NULL},
    {"max_users", "core", "Users", "Team members who can sign in", FTP_FEATURE_LIMIT, 3, NULL, "users"},
    {"storage_gb", "core", "Storage", "Space for attachments and email assets", FTP_FEATURE_LIMIT, 5, NULL, "GB"},
    {"max_contacts", "core", "Contacts", "People stored in the CRM (companies are not counted)", FTP_FEATURE_LIMIT, 2500,
     (const char *const[]){"contacts", NULL}, "contacts"},
    {"max_custom_fields", "core", "Custom fields", "Custom fields per record type", FTP_FEATURE_LIMIT, 10,
     (const char *const[]){"contacts", NULL}, "fields"},
    {"deals", "sales", "Deals & pipeline", "Track deals through pipeline stages", FTP_FEATURE_FLAG, 1,
     (const char *const[]){"contacts", NULL}, NULL},
    {"max_pipelines", "sales", "Pipelines", "Separate sales pipelines, each with its own stages", FTP_FEATURE_LIMIT, 1,
     (const char *const[]){"deals", NULL}, "pipelines"},
    {"sales_forecasting", "sales", "Sales forecasting", "Probability-weighted revenue forecast per pipeline", FTP_FEATURE_FLAG, 1,
     (const char *const[]){"deals", NULL}, NULL},
    {"email_campaigns", "marketing", "Email campaigns", "Design, schedule and send email campaigns to contacts", FTP_FEATURE_FLAG,
     1, (const char *const[]){"contacts", NULL}, NULL},
    {"max_emails_per_month", "marketing", "Marketing emails", "Campaign emails sent per calendar month", FTP_FEATURE_LIMIT, 10000,
     (const char *const[]){"email_campaigns", NULL}, "emails/month"},
    {"marketing_automation", "marketing", "Marketing automation", "Triggered email journeys: welcome series, win-back",
     FTP_FEATURE_FLAG, 1, (const char *const[]){"email_campaigns", NULL}, NULL},
    {"support_tickets", "support", "Support tickets", "A shared inbox of customer tickets linked to contacts", FTP_FEATURE_FLAG, 1,
     (const char *const[]){"contacts", NULL}, NULL},
    {"sla_policies", "support", "SLA policies", "Resolution targets by ticket priority", FTP_FEATURE_FLAG, 1,
     (const char *const[]){"support_tickets", NULL}, NULL},
    {"api_access", "integrations", "API access", "REST API keys for custom integrations", FTP_FEATURE_FLAG, 1, NULL, NULL},
    {"webhooks", "integrations", "Webhooks", "Push contact, deal and ticket changes to external URLs", FTP_FEATURE_FLAG, 1,
     (const char *const[]){"api_access", NULL}, NULL},
};

static const ftp_plan_feature_t starter_features[] = {
    {"contacts", 1},        {"activities", 1},         {"deals", 1},         {"max_users", 3}, {"storage_gb", 5},
    {"max_contacts", 2500}, {"max_custom_fields", 10}, {"max_pipelines", 1},
};

static const ftp_plan_feature_t professional_features[] = {
    {"contacts", 1},
    {"activities", 1},
    {"deals", 1},
    {"sales_forecasting", 1},
    {"email_campaigns", 1},
    {"support_tickets", 1},
    {"api_access", 1},
    {"max_users", 25},
    {"storage_gb", 50},
    {"max_contacts", 50000},
    {"max_custom_fields", 50},
    {"max_pipelines", 5},
    {"max_emails_per_month", 25000},
};

static const ftp_plan_feature_t enterprise_features[] = {
    {"contacts", 1},
    {"activities", 1},
    {"deals", 1},
    {"sales_forecasting", 1},
    {"email_campaigns", 1},
    {"marketing_automation", 1},
    {"support_tickets", 1},
    {"sla_policies", 1},
    {"api_access", 1},
    {"webhooks", 1},
    {"max_users", 500},
    {"storage_gb", 1000},
    {"max_contacts", 1000000},
    {"max_custom_fields", 500},
    {"max_pipelines", 50},
    {"max_emails_per_month", 1000000},
};

static const ftp_plan_t plans[] = {
    {"starter", "Starter", "Contact management and one sales pipeline for small teams", 1, FTP_TABLE(starter_features), 0},
    {"professional", "Professional", "Sales, email marketing and support for growing teams", 1, FTP_TABLE(professional_features),
     14},
    {"enterprise", "Enterprise", "Automation, SLAs, webhooks and high limits for large organisations", 1,
     FTP_TABLE(enterprise_features), 0},
};

static const char settings_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"admin_email\":{\"type\":\"string\",\"format\":\"email\",\"maxLength\":254,\"title\":\"Administrator email\"},"
    "\"admin_name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200,\"title\":\"Administrator name\"},"
    "\"company_name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200,\"title\":\"Company name\","
    "\"description\":\"Sender name of campaign emails and name shown on the support portal\"},"
    "\"default_currency\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{3}$\",\"default\":\"USD\","
    "\"description\":\"ISO 4217 code used for new deals\"},"
    "\"timezone\":{\"type\":\"string\",\"maxLength\":64,\"pattern\":\"^[A-Za-z_]+(/[A-Za-z0-9_+-]+){0,2}$\","
    "\"default\":\"UTC\",\"description\":\"IANA time zone for due dates and reports\"},"
    "\"fiscal_year_start_month\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":12,\"default\":1,"
    "\"description\":\"First month of the fiscal year, for sales reports\"}},"
    "\"required\":[\"admin_email\"],\"additionalProperties\":false}";

/* ---- tenant schema ---- */

#define TENANT_COL "tenant_id uuid NOT NULL DEFAULT current_setting('farutech.tenant_id')::uuid,"
#define MINE "tenant_id = current_setting('farutech.tenant_id')::uuid"
#define RLS(t)                                                                                                                     \
    "ALTER TABLE " t " ENABLE ROW LEVEL SECURITY;"                                                                                 \
    "ALTER TABLE " t " FORCE ROW LEVEL SECURITY;"                                                                                  \
    "DROP POLICY IF EXISTS tenant_isolation ON " t ";"                                                                             \
    "CREATE POLICY tenant_isolation ON " t " USING (tenant_id = current_setting('farutech.tenant_id', true)::uuid)"                \
    " WITH CHECK (tenant_id = current_setting('farutech.tenant_id', true)::uuid);"

/* Column lists shared by both tiers; the pooled tables prepend TENANT_COL and key on tenant_id. */
#define USERS_COLS                                                                                                                 \
    "email text NOT NULL CHECK (email = lower(email) AND position('@' in email) > 1),"                                             \
    "name text,"                                                                                                                   \
    "role text NOT NULL DEFAULT 'sales' CHECK (role IN ('admin','manager','sales','marketing','support','viewer')),"               \
    "status text NOT NULL DEFAULT 'invited' CHECK (status IN ('invited','active','disabled')),"                                    \
    "created_at timestamptz NOT NULL DEFAULT now(),"
#define STATE_COLS                                                                                                                 \
    "status text NOT NULL DEFAULT 'active' CHECK (status IN ('active','suspended')),"                                              \
    "updated_at timestamptz NOT NULL DEFAULT now(),"
#define STAGES_COLS                                                                                                                \
    "pipeline text NOT NULL DEFAULT 'sales',"                                                                                      \
    "code text NOT NULL,"                                                                                                          \
    "name text NOT NULL,"                                                                                                          \
    "position integer NOT NULL,"                                                                                                   \
    "probability integer NOT NULL CHECK (probability BETWEEN 0 AND 100),"                                                          \
    "is_closed boolean NOT NULL DEFAULT false,"                                                                                    \
    "is_won boolean NOT NULL DEFAULT false,"                                                                                       \
    "CHECK (is_closed OR NOT is_won),"
#define CONTACTS_COLS                                                                                                              \
    "kind text NOT NULL DEFAULT 'person' CHECK (kind IN ('person','company')),"                                                    \
    "name text NOT NULL,"                                                                                                          \
    "first_name text, last_name text, email text, phone text, website text, industry text,"                                        \
    "company_id bigint, owner_id bigint,"                                                                                          \
    "lifecycle_stage text NOT NULL DEFAULT 'lead' CHECK (lifecycle_stage IN ('subscriber','lead','marketing_qualified',"           \
    "'sales_qualified','opportunity','customer','evangelist','other')),"                                                           \
    "source text,"                                                                                                                 \
    "custom_fields jsonb NOT NULL DEFAULT '{}',"                                                                                   \
    "created_at timestamptz NOT NULL DEFAULT now(),"                                                                               \
    "updated_at timestamptz NOT NULL DEFAULT now(),"
#define DEALS_COLS                                                                                                                 \
    "title text NOT NULL,"                                                                                                         \
    "pipeline text NOT NULL DEFAULT 'sales',"                                                                                      \
    "stage text NOT NULL DEFAULT 'lead',"                                                                                          \
    "amount numeric(14,2) NOT NULL DEFAULT 0 CHECK (amount >= 0),"                                                                 \
    "currency text NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),"                                                        \
    "contact_id bigint, company_id bigint, owner_id bigint,"                                                                       \
    "expected_close date,"                                                                                                         \
    "closed_at timestamptz,"                                                                                                       \
    "custom_fields jsonb NOT NULL DEFAULT '{}',"                                                                                   \
    "created_at timestamptz NOT NULL DEFAULT now(),"                                                                               \
    "updated_at timestamptz NOT NULL DEFAULT now(),"
#define ACTIVITIES_COLS                                                                                                            \
    "type text NOT NULL CHECK (type IN ('call','email','meeting','task','note')),"                                                 \
    "subject text NOT NULL,"                                                                                                       \
    "body text,"                                                                                                                   \
    "due_at timestamptz, completed_at timestamptz,"                                                                                \
    "contact_id bigint, deal_id bigint, owner_id bigint,"                                                                          \
    "created_at timestamptz NOT NULL DEFAULT now(),"
#define CAMPAIGNS_COLS                                                                                                             \
    "name text NOT NULL,"                                                                                                          \
    "kind text NOT NULL DEFAULT 'broadcast' CHECK (kind IN ('broadcast','automation')),"                                           \
    "status text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft','scheduled','sending','sent','active','paused',"               \
    "'archived')),"                                                                                                                \
    "trigger_event text CHECK (trigger_event IN ('contact_created','deal_won','contact_inactive_90d','ticket_solved')),"           \
    "subject text, from_name text, from_email text, body_text text,"                                                               \
    "template_key text,"                                                                                                           \
    "scheduled_at timestamptz, sent_at timestamptz,"                                                                               \
    "recipients integer NOT NULL DEFAULT 0, opens integer NOT NULL DEFAULT 0, clicks integer NOT NULL DEFAULT 0,"                  \
    "unsubscribes integer NOT NULL DEFAULT 0,"                                                                                     \
    "created_at timestamptz NOT NULL DEFAULT now(),"                                                                               \
    "updated_at timestamptz NOT NULL DEFAULT now(),"                                                                               \
    "CHECK ((kind = 'automation') = (trigger_event IS NOT NULL)),"
#define TICKETS_COLS                                                                                                               \
    "subject text NOT NULL,"                                                                                                       \
    "description text,"                                                                                                            \
    "contact_id bigint, assignee_id bigint,"                                                                                       \
    "status text NOT NULL DEFAULT 'new' CHECK (status IN ('new','open','pending','on_hold','solved','closed')),"                   \
    "priority text NOT NULL DEFAULT 'normal' CHECK (priority IN ('low','normal','high','urgent')),"                                \
    "channel text NOT NULL DEFAULT 'email' CHECK (channel IN ('email','web','phone','chat','api')),"                               \
    "due_at timestamptz, first_response_at timestamptz, solved_at timestamptz,"                                                    \
    "created_at timestamptz NOT NULL DEFAULT now(),"                                                                               \
    "updated_at timestamptz NOT NULL DEFAULT now(),"

/* The formatter cannot lay out string concatenations broken by RLS() calls. */
/* clang-format off */
static const char core_pooled[] =
    "CREATE TABLE IF NOT EXISTS users (" TENANT_COL "id bigint GENERATED ALWAYS AS IDENTITY," USERS_COLS
    "PRIMARY KEY (tenant_id, id), UNIQUE (tenant_id, email));"
    RLS("users")
    "CREATE TABLE IF NOT EXISTS tenant_state (" TENANT_COL STATE_COLS "PRIMARY KEY (tenant_id));"
    RLS("tenant_state")
    "CREATE TABLE IF NOT EXISTS pipeline_stages (" TENANT_COL STAGES_COLS "PRIMARY KEY (tenant_id, pipeline, code));"
    RLS("pipeline_stages")
    "CREATE TABLE IF NOT EXISTS contacts (" TENANT_COL "id bigint GENERATED ALWAYS AS IDENTITY," CONTACTS_COLS
    "PRIMARY KEY (tenant_id, id),"
    "FOREIGN KEY (tenant_id, company_id) REFERENCES contacts (tenant_id, id),"
    "FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id));"
    RLS("contacts")
    "CREATE UNIQUE INDEX IF NOT EXISTS contacts_person_email_key ON contacts (tenant_id, lower(email))"
    " WHERE kind = 'person' AND email IS NOT NULL;"
    "CREATE UNIQUE INDEX IF NOT EXISTS contacts_company_name_key ON contacts (tenant_id, lower(name)) WHERE kind = 'company';"
    "CREATE INDEX IF NOT EXISTS contacts_company_idx ON contacts (tenant_id, company_id) WHERE company_id IS NOT NULL;"
    "CREATE TABLE IF NOT EXISTS deals (" TENANT_COL "id bigint GENERATED ALWAYS AS IDENTITY," DEALS_COLS
    "PRIMARY KEY (tenant_id, id),"
    "FOREIGN KEY (tenant_id, pipeline, stage) REFERENCES pipeline_stages (tenant_id, pipeline, code),"
    "FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id),"
    "FOREIGN KEY (tenant_id, company_id) REFERENCES contacts (tenant_id, id),"
    "FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id));"
    RLS("deals")
    "CREATE INDEX IF NOT EXISTS deals_stage_idx ON deals (tenant_id, pipeline, stage);"
    "CREATE INDEX IF NOT EXISTS deals_contact_idx ON deals (tenant_id, contact_id);"
    "CREATE TABLE IF NOT EXISTS activities (" TENANT_COL "id bigint GENERATED ALWAYS AS IDENTITY," ACTIVITIES_COLS
    "PRIMARY KEY (tenant_id, id),"
    "FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id),"
    "FOREIGN KEY (tenant_id, deal_id) REFERENCES deals (tenant_id, id),"
    "FOREIGN KEY (tenant_id, owner_id) REFERENCES users (tenant_id, id));"
    RLS("activities")
    "CREATE INDEX IF NOT EXISTS activities_open_idx ON activities (tenant_id, owner_id, due_at) WHERE completed_at IS NULL;"
    "CREATE INDEX IF NOT EXISTS activities_contact_idx ON activities (tenant_id, contact_id);";

static const char core_siloed[] =
    "CREATE TABLE IF NOT EXISTS users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY," USERS_COLS "UNIQUE (email));"
    "CREATE TABLE IF NOT EXISTS tenant_state (" STATE_COLS "singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton));"
    "CREATE TABLE IF NOT EXISTS pipeline_stages (" STAGES_COLS "PRIMARY KEY (pipeline, code));"
    "CREATE TABLE IF NOT EXISTS contacts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY," CONTACTS_COLS
    "FOREIGN KEY (company_id) REFERENCES contacts (id),"
    "FOREIGN KEY (owner_id) REFERENCES users (id));"
    "CREATE UNIQUE INDEX IF NOT EXISTS contacts_person_email_key ON contacts (lower(email))"
    " WHERE kind = 'person' AND email IS NOT NULL;"
    "CREATE UNIQUE INDEX IF NOT EXISTS contacts_company_name_key ON contacts (lower(name)) WHERE kind = 'company';"
    "CREATE INDEX IF NOT EXISTS contacts_company_idx ON contacts (company_id) WHERE company_id IS NOT NULL;"
    "CREATE TABLE IF NOT EXISTS deals (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY," DEALS_COLS
    "FOREIGN KEY (pipeline, stage) REFERENCES pipeline_stages (pipeline, code),"
    "FOREIGN KEY (contact_id) REFERENCES contacts (id),"
    "FOREIGN KEY (company_id) REFERENCES contacts (id),"
    "FOREIGN KEY (owner_id) REFERENCES users (id));"
    "CREATE INDEX IF NOT EXISTS deals_stage_idx ON deals (pipeline, stage);"
    "CREATE INDEX IF NOT EXISTS deals_contact_idx ON deals (contact_id);"
    "CREATE TABLE IF NOT EXISTS activities (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY," ACTIVITIES_COLS
    "FOREIGN KEY (contact_id) REFERENCES contacts (id),"
    "FOREIGN KEY (deal_id) REFERENCES deals (id),"
    "FOREIGN KEY (owner_id) REFERENCES users (id));"
    "CREATE INDEX IF NOT EXISTS activities_open_idx ON activities (owner_id, due_at) WHERE completed_at IS NULL;"
    "CREATE INDEX IF NOT EXISTS activities_contact_idx ON activities (contact_id);";

/* Version 2 adds the marketing and support tables and the contact opt-out campaigns must honour. */
static const char engage_pooled[] =
    "ALTER TABLE contacts ADD COLUMN IF NOT EXISTS email_opt_out boolean NOT NULL DEFAULT false,"
    " ADD COLUMN IF NOT EXISTS opted_out_at timestamptz;"
    "CREATE TABLE IF NOT EXISTS campaigns (" TENANT_COL "id bigint GENERATED ALWAYS AS IDENTITY," CAMPAIGNS_COLS
    "PRIMARY KEY (tenant_id, id), UNIQUE (tenant_id, template_key));"
    RLS("campaigns")
    "CREATE TABLE IF NOT EXISTS tickets (" TENANT_COL "id bigint GENERATED ALWAYS AS IDENTITY," TICKETS_COLS
    "PRIMARY KEY (tenant_id, id),"
    "FOREIGN KEY (tenant_id, contact_id) REFERENCES contacts (tenant_id, id),"
    "FOREIGN KEY (tenant_id, assignee_id) REFERENCES users (tenant_id, id));"
    RLS("tickets")
    "CREATE INDEX IF NOT EXISTS tickets_queue_idx ON tickets (tenant_id, status, priority) WHERE status NOT IN ('solved','closed');"
    "CREATE INDEX IF NOT EXISTS tickets_contact_idx ON tickets (tenant_id, contact_id);";

static const char engage_siloed[] =
    "ALTER TABLE contacts ADD COLUMN IF NOT EXISTS email_opt_out boolean NOT NULL DEFAULT false,"
    " ADD COLUMN IF NOT EXISTS opted_out_at timestamptz;"
    "CREATE TABLE IF NOT EXISTS campaigns (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY," CAMPAIGNS_COLS
    "UNIQUE (template_key));"
    "CREATE TABLE IF NOT EXISTS tickets (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY," TICKETS_COLS
    "FOREIGN KEY (contact_id) REFERENCES contacts (id),"
    "FOREIGN KEY (assignee_id) REFERENCES users (id));"
    "CREATE INDEX IF NOT EXISTS tickets_queue_idx ON tickets (status, priority) WHERE status NOT IN ('solved','closed');"
    "CREATE INDEX IF NOT EXISTS tickets_contact_idx ON tickets (contact_id);";

/* clang-format on */

static const ftp_migration_t migrations[] = {
    {1, "contacts_pipeline_activities", core_pooled, core_siloed},
    {2, "campaigns_and_tickets", engage_pooled, engage_siloed},
};

/* ---- helpers ---- */

static int pooled(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    return api->tier(ctx) == FTP_TIER_STANDARD;
}

/* Runs the pooled or the siloed spelling of a statement, by the invocation's tier. */
static int exec_tier(const ftp_host_api_t *api, ftp_ctx_t *ctx, const char *pooled_sql, const char *siloed_sql, int nparams,
                     const char *const *params, ftp_result_t **result)
{
    return api->db_exec(ctx, pooled(api, ctx) ? pooled_sql : siloed_sql, nparams, params, result);
}

/* Copies the first cell of res (a JSON object built by the database) into host memory. */
static int reply(const ftp_host_api_t *api, const ftp_result_t *res, char **output_json)
{
    const char *json = api->result_value(res, 0, 0);
    if (json == NULL)
        json = "{}";
    size_t len = strlen(json) + 1;
    char *out = api->alloc(len);
    if (out == NULL)
        return FTP_E_NOMEM;
    memcpy(out, json, len);
    *output_json = out;
    return FTP_OK;
}

/* ---- lifecycle ---- */

static int create_schema(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    return api->apply_tenant_migrations(ctx);
}

/* The default sales pipeline, with the win probability forecasts use. */
static int seed_reference_data(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    return api->db_exec(ctx,
                        "INSERT INTO pipeline_stages (pipeline, code, name, position, probability, is_closed, is_won) VALUES"
                        " ('sales', 'lead', 'Lead', 1, 10, false, false),"
                        " ('sales', 'qualified', 'Qualified', 2, 25, false, false),"
                        " ('sales', 'meeting', 'Meeting / Demo', 3, 40, false, false),"
                        " ('sales', 'proposal', 'Proposal Sent', 4, 60, false, false),"
                        " ('sales', 'negotiation', 'Negotiation', 5, 80, false, false),"
                        " ('sales', 'won', 'Closed Won', 6, 100, true, true),"
                        " ('sales', 'lost', 'Closed Lost', 7, 0, true, false)"
                        " ON CONFLICT DO NOTHING",
                        0, NULL, NULL);
}

static int create_admin(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    const char *email = api->setting(ctx, "admin_email");
    const char *name = api->setting(ctx, "admin_name");
    if (email == NULL || email[0] == '\0') {
        api->set_error(ctx, "setting admin_email is required");
        return FTP_E_INVALID;
    }
    const char *params[] = {email, name};
    /* invited without a password: the CRM app sends the invitation */
    return api->db_exec(ctx,
                        "INSERT INTO users (email, name, role, status)"
                        " VALUES (lower(btrim($1::text)), coalesce($2::text, split_part(btrim($1::text), '@', 1)), 'admin',"
                        " 'invited') ON CONFLICT DO NOTHING",
                        2, params, NULL);
}

static int init_state(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    return api->db_exec(ctx, "INSERT INTO tenant_state (status) VALUES ('active') ON CONFLICT DO NOTHING", 0, NULL, NULL);
}

static int set_state(const ftp_host_api_t *api, ftp_ctx_t *ctx, const char *status)
{
    const char *params[] = {status};
    return exec_tier(api, ctx,
                     "INSERT INTO tenant_state (status) VALUES ($1::text) ON CONFLICT (tenant_id) DO UPDATE"
                     " SET status = EXCLUDED.status, updated_at = now() WHERE tenant_state." MINE,
                     "INSERT INTO tenant_state (status) VALUES ($1::text) ON CONFLICT (singleton) DO UPDATE"
                     " SET status = EXCLUDED.status, updated_at = now()",
                     1, params, NULL);
}

static int mark_suspended(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    return set_state(api, ctx, "suspended");
}

static int mark_active(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    return set_state(api, ctx, "active");
}

static int delete_tenant_data(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    /* children before parents; the Enterprise database is dropped whole by the host */
    static const char *const deletes[] = {
        "DELETE FROM activities WHERE " MINE, "DELETE FROM tickets WHERE " MINE,      "DELETE FROM deals WHERE " MINE,
        "DELETE FROM campaigns WHERE " MINE,  "DELETE FROM contacts WHERE " MINE,     "DELETE FROM pipeline_stages WHERE " MINE,
        "DELETE FROM users WHERE " MINE,      "DELETE FROM tenant_state WHERE " MINE,
    };
    if (!pooled(api, ctx))
        return FTP_OK;
    for (size_t i = 0; i < sizeof(deletes) / sizeof(deletes[0]); i++) {
        int rc = api->db_exec(ctx, deletes[i], 0, NULL, NULL);
        if (rc != FTP_OK)
            return rc;
    }
    return FTP_OK;
}

/* Automated journeys start paused, so nothing is mailed before someone reviews them. */
static int seed_automation_templates(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    if (!api->feature(ctx, "marketing_automation", NULL))
        return FTP_OK;
    const char *params[] = {api->setting(ctx, "admin_email"), api->setting(ctx, "company_name")};
    return api->db_exec(
        ctx,
        "INSERT INTO campaigns (template_key, name, kind, status, trigger_event, subject, from_name, from_email, body_text)"
        " VALUES"
        " ('welcome_series', 'Welcome series', 'automation', 'paused', 'contact_created', 'Welcome aboard, {{first_name}}',"
        "  $2::text, $1::text, 'Hi {{first_name}}, thanks for getting in touch. Here is how we can help.'),"
        " ('deal_won_thanks', 'Thank you for your business', 'automation', 'paused', 'deal_won',"
        "  'Thank you, {{first_name}}', $2::text, $1::text, 'Welcome as a customer. Your onboarding starts now.'),"
        " ('win_back_90d', 'Win-back after 90 days', 'automation', 'paused', 'contact_inactive_90d', 'We miss you',"
        "  $2::text, $1::text, 'It has been a while, {{first_name}}. Here is what is new.'),"
        " ('ticket_feedback', 'Support satisfaction survey', 'automation', 'paused', 'ticket_solved',"
        "  'How did we do?', $2::text, $1::text, 'Your ticket was solved. Rate our support in one click.')"
        " ON CONFLICT DO NOTHING",
        2, params, NULL);
}

/* Resolution targets by priority, for open tickets that have none yet */
#define SLA_UPDATE                                                                                                                 \
    "UPDATE tickets SET due_at = created_at + CASE priority WHEN 'urgent' THEN interval '4 hours'"                                 \
    " WHEN 'high' THEN interval '8 hours' WHEN 'normal' THEN interval '24 hours' ELSE interval '72 hours' END,"                    \
    " updated_at = now() WHERE due_at IS NULL AND status NOT IN ('solved','closed')"
static const char sla_update_pooled[] = SLA_UPDATE " AND " MINE;
static const char sla_update_siloed[] = SLA_UPDATE;

/* Existing targets are kept, and switching SLA policies off leaves them in place. */
static int apply_sla_targets(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    if (!api->feature(ctx, "sla_policies", NULL))
        return FTP_OK;
    return exec_tier(api, ctx, sla_update_pooled, sla_update_siloed, 0, NULL, NULL);
}

/* A lowered seat limit never disables anyone: operators are warned and an event lets billing follow up. */
static int check_user_limit(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    int64_t limit = 0;
    if (!api->feature(ctx, "max_users", &limit))
        return FTP_OK;
    ftp_result_t *res = NULL;
    int rc = exec_tier(api, ctx, "SELECT count(*) FROM users WHERE status <> 'disabled' AND " MINE,
                       "SELECT count(*) FROM users WHERE status <> 'disabled'", 0, NULL, &res);
    if (rc != FTP_OK)
        return rc;
    long long users = strtoll(api->result_value(res, 0, 0), NULL, 10);
    api->result_free(res);
    if (users <= limit)
        return FTP_OK;
    api->log(ctx, FTP_LOG_WARN, "%lld users are enabled but the plan allows %" PRId64, users, limit);
    char data[96];
    snprintf(data, sizeof(data), "{\"users\":%lld,\"max_users\":%" PRId64 "}", users, limit);
    return api->emit_event(ctx, "crm.users.over_limit.v1", data);
}

static const ftp_step_t steps[] = {
    {FTP_LIFECYCLE_PROVISION, "create_schema", 1, 60000, create_schema, NULL},
    {FTP_LIFECYCLE_PROVISION, "seed_reference_data", 1, 10000, seed_reference_data, NULL},
    {FTP_LIFECYCLE_PROVISION, "create_admin", 1, 10000, create_admin, NULL},
    {FTP_LIFECYCLE_PROVISION, "init_state", 1, 10000, init_state, NULL},
    {FTP_LIFECYCLE_DEPROVISION, "delete_tenant_data", 1, 60000, delete_tenant_data, NULL},
    {FTP_LIFECYCLE_SUSPEND, "mark_suspended", 1, 10000, mark_suspended, NULL},
    {FTP_LIFECYCLE_RESUME, "mark_active", 1, 10000, mark_active, NULL},
    {FTP_LIFECYCLE_FEATURES_CHANGED, "seed_automation_templates", 1, 10000, seed_automation_templates, NULL},
    {FTP_LIFECYCLE_FEATURES_CHANGED, "apply_sla_targets", 1, 30000, apply_sla_targets, NULL},
    {FTP_LIFECYCLE_FEATURES_CHANGED, "check_user_limit", 1, 10000, check_user_limit, NULL},
};

/* ---- actions ---- */

static const char import_contact_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"email\":{\"type\":\"string\",\"format\":\"email\",\"maxLength\":254},"
    "\"first_name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100},"
    "\"last_name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100},"
    "\"phone\":{\"type\":\"string\",\"pattern\":\"^[0-9+() .-]{3,40}$\"},"
    "\"company\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200,\"description\":\"Created when no company has this name\"},"
    "\"lifecycle_stage\":{\"type\":\"string\",\"enum\":[\"subscriber\",\"lead\",\"marketing_qualified\",\"sales_qualified\","
    "\"opportunity\",\"customer\",\"evangelist\",\"other\"]},"
    "\"source\":{\"type\":\"string\",\"maxLength\":100,\"description\":\"Where the contact came from: web_form, event, csv\"}},"
    "\"required\":[\"email\"],\"additionalProperties\":false}";

/* $1 email: how many people there are, and whether this one is among them */
#define COUNT_PEOPLE                                                                                                               \
    "SELECT count(*) FILTER (WHERE kind = 'person'),"                                                                              \
    " coalesce(bool_or(kind = 'person' AND lower(email) = lower(btrim($1::text))), false) FROM contacts"
static const char count_people_pooled[] = COUNT_PEOPLE " WHERE " MINE;
static const char count_people_siloed[] = COUNT_PEOPLE;

/* $1 company name; the no-op update makes RETURNING yield an existing company's id */
#define COMPANY_INSERT "INSERT INTO contacts (kind, name) VALUES ('company', btrim($1::text))"
static const char company_upsert_pooled[] =
    COMPANY_INSERT " ON CONFLICT (tenant_id, lower(name)) WHERE kind = 'company'"
                   " DO UPDATE SET updated_at = contacts.updated_at WHERE contacts." MINE " RETURNING id";
static const char company_upsert_siloed[] = COMPANY_INSERT " ON CONFLICT (lower(name)) WHERE kind = 'company'"
                                                           " DO UPDATE SET updated_at = contacts.updated_at RETURNING id";

/* $1 email, $2 first_name, $3 last_name, $4 phone, $5 company_id, $6 lifecycle_stage, $7 source: given values win,
 * except the first source a contact was seen from */
#define PERSON_INSERT                                                                                                              \
    "INSERT INTO contacts (kind, email, first_name, last_name, name, phone, company_id, lifecycle_stage, source)"                  \
    " VALUES ('person', lower(btrim($1::text)), $2::text, $3::text,"                                                               \
    " coalesce(nullif(btrim(concat_ws(' ', $2::text, $3::text)), ''), lower(btrim($1::text))),"                                    \
    " $4::text, $5::bigint, coalesce($6::text, 'lead'), $7::text)"
#define PERSON_UPDATE                                                                                                              \
    " DO UPDATE SET first_name = coalesce(EXCLUDED.first_name, contacts.first_name),"                                              \
    " last_name = coalesce(EXCLUDED.last_name, contacts.last_name),"                                                               \
    " name = CASE WHEN $2::text IS NULL AND $3::text IS NULL THEN contacts.name ELSE EXCLUDED.name END,"                           \
    " phone = coalesce(EXCLUDED.phone, contacts.phone),"                                                                           \
    " company_id = coalesce(EXCLUDED.company_id, contacts.company_id),"                                                            \
    " lifecycle_stage = coalesce($6::text, contacts.lifecycle_stage),"                                                             \
    " source = coalesce(contacts.source, EXCLUDED.source), updated_at = now()"
#define PERSON_RETURNING                                                                                                           \
    " RETURNING json_build_object('contact_id', id, 'company_id', company_id, 'created', xmax = 0)::text, xmax = 0"
static const char person_upsert_pooled[] =
    PERSON_INSERT " ON CONFLICT (tenant_id, lower(email)) WHERE kind = 'person' AND email IS NOT NULL" PERSON_UPDATE
                  " WHERE contacts." MINE PERSON_RETURNING;
static const char person_upsert_siloed[] =
    PERSON_INSERT " ON CONFLICT (lower(email)) WHERE kind = 'person' AND email IS NOT NULL" PERSON_UPDATE PERSON_RETURNING;

/* Creates or updates a person by email, linking (and if needed creating) the company by name. */
static int import_contact(const ftp_host_api_t *api, ftp_ctx_t *ctx, const char *input_json, char **output_json)
{
    const char *email = api->payload_get(ctx, "email");
    const char *company = api->payload_get(ctx, "company");
    if (email == NULL) {
        api->set_error(ctx, "email is required");
        return FTP_E_INVALID;
    }
    ftp_result_t *res = NULL;
    int rc;
    int64_t limit = 0;
    /* without a max_contacts entitlement the plan sets no cap */
    if (api->feature(ctx, "max_contacts", &limit)) {
        const char *p[] = {email};
        rc = exec_tier(api, ctx, count_people_pooled, count_people_siloed, 1, p, &res);
        if (rc != FTP_OK)
            return rc;
        long long people = strtoll(api->result_value(res, 0, 0), NULL, 10);
        int exists = strcmp(api->result_value(res, 0, 1), "t") == 0;
        api->result_free(res);
        if (!exists && people >= limit) {
            api->set_error(ctx, "the plan's limit of %" PRId64 " contacts is reached", limit);
            return FTP_E_CONFLICT;
        }
    }

    char company_id[24] = "";
    if (company != NULL) {
        const char *p[] = {company};
        rc = exec_tier(api, ctx, company_upsert_pooled, company_upsert_siloed, 1, p, &res);
        if (rc != FTP_OK)
            return rc;
        snprintf(company_id, sizeof(company_id), "%s", api->result_value(res, 0, 0));
        api->result_free(res);
    }

    const char *p[] = {email,
                       api->payload_get(ctx, "first_name"),
                       api->payload_get(ctx, "last_name"),
                       api->payload_get(ctx, "phone"),
                       company_id[0] != '\0' ? company_id : NULL,
                       api->payload_get(ctx, "lifecycle_stage"),
                       api->payload_get(ctx, "source")};
    rc = exec_tier(api, ctx, person_upsert_pooled, person_upsert_siloed, 7, p, &res);
    if (rc != FTP_OK)
        return rc;
    if (strcmp(api->result_value(res, 0, 1), "t") == 0)
        rc = api->emit_event(ctx, "crm.contact.created.v1", api->result_value(res, 0, 0));
    if (rc == FTP_OK)
        rc = reply(api, res, output_json);
    api->result_free(res);
    return rc;
}

static const char move_deal_schema[] = "{\"type\":\"object\",\"properties\":{"
                                       "\"deal_id\":{\"type\":\"integer\",\"minimum\":1},"
                                       "\"stage\":{\"type\":\"string\",\"pattern\":\"^[a-z][a-z0-9_]{0,62}$\","
                                       "\"description\":\"A stage code of the deal's pipeline, e.g. proposal or won\"}},"
                                       "\"required\":[\"deal_id\",\"stage\"],\"additionalProperties\":false}";

/* $1 deal id, $2 stage code. prev is the deal as it was before the statement: it tells a real change from a repeat. */
#define MOVE_SET                                                                                                                   \
    "UPDATE deals d SET stage = s.code, closed_at = CASE WHEN s.is_closed THEN coalesce(d.closed_at, now()) END,"                  \
    " updated_at = now() FROM pipeline_stages s, deals prev"
#define MOVE_RETURNING                                                                                                             \
    " RETURNING json_build_object('deal_id', d.id, 'pipeline', d.pipeline, 'stage', s.code, 'previous_stage', prev.stage,"         \
    " 'probability', s.probability, 'won', s.is_won, 'closed', s.is_closed, 'amount', d.amount, 'currency', d.currency)::text,"    \
    " s.is_won AND prev.stage <> s.code"
static const char move_deal_pooled[] = MOVE_SET " WHERE d." MINE " AND d.id = $1::bigint"
                                                " AND prev.tenant_id = d.tenant_id AND prev.id = d.id AND s.tenant_id = d.tenant_id"
                                                " AND s.pipeline = d.pipeline AND s.code = $2::text" MOVE_RETURNING;
static const char move_deal_siloed[] = MOVE_SET " WHERE d.id = $1::bigint AND prev.id = d.id"
                                                " AND s.pipeline = d.pipeline AND s.code = $2::text" MOVE_RETURNING;

/* Moves a deal to another stage of its pipeline; closing stamps closed_at, reopening clears it. */
static int move_deal_stage(const ftp_host_api_t *api, ftp_ctx_t *ctx, const char *input_json, char **output_json)
{
    const char *deal_id = api->payload_get(ctx, "deal_id");
    const char *stage = api->payload_get(ctx, "stage");
    if (deal_id == NULL || stage == NULL) {
        api->set_error(ctx, "deal_id and stage are required");
        return FTP_E_INVALID;
    }
    const char *p[] = {deal_id, stage};
    ftp_result_t *res = NULL;
    int rc = exec_tier(api, ctx, move_deal_pooled, move_deal_siloed, 2, p, &res);
    if (rc != FTP_OK)
        return rc;
    if (api->result_rows(res) == 0) {
        api->result_free(res);
        api->set_error(ctx, "deal %s not found, or its pipeline has no stage '%s'", deal_id, stage);
        return FTP_E_NOTFOUND;
    }
    if (strcmp(api->result_value(res, 0, 1), "t") == 0)
        rc = api->emit_event(ctx, "crm.deal.won.v1", api->result_value(res, 0, 0));
    if (rc == FTP_OK)
        rc = reply(api, res, output_json);
    api->result_free(res);
    return rc;
}

static const char forecast_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"pipeline\":{\"type\":\"string\",\"pattern\":\"^[a-z][a-z0-9_]{0,62}$\",\"default\":\"sales\"},"
    "\"currency\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{3}$\",\"description\":\"Only deals in this currency;"
    " defaults to the instance's default_currency\"}},\"additionalProperties\":false}";

/* $1 pipeline, $2 currency; the second column counts the pipeline's stages */
#define FORECAST_SELECT                                                                                                            \
    "SELECT json_build_object('pipeline', $1::text, 'currency', $2::text, 'stages', json_agg(json_build_object("                   \
    " 'stage', s.code, 'name', s.name, 'probability', s.probability, 'deals', x.deals, 'amount', x.amount,"                        \
    " 'weighted', round(x.amount * s.probability / 100.0, 2)) ORDER BY s.position),"                                               \
    " 'open_weighted', coalesce(sum(round(x.amount * s.probability / 100.0, 2)) FILTER (WHERE NOT s.is_closed), 0),"               \
    " 'won', coalesce(sum(x.amount) FILTER (WHERE s.is_won), 0))::text, count(*)"                                                  \
    " FROM pipeline_stages s CROSS JOIN LATERAL (SELECT count(*) AS deals, coalesce(sum(d.amount), 0) AS amount"                   \
    " FROM deals d WHERE d.pipeline = s.pipeline AND d.stage = s.code AND d.currency = $2::text"
static const char forecast_pooled[] =
    FORECAST_SELECT " AND d.tenant_id = s.tenant_id) x WHERE s." MINE " AND s.pipeline = $1::text";
static const char forecast_siloed[] = FORECAST_SELECT ") x WHERE s.pipeline = $1::text";

/* Per stage: deal count, amount and probability-weighted amount in one currency, plus the weighted total of open deals. */
static int pipeline_forecast(const ftp_host_api_t *api, ftp_ctx_t *ctx, const char *input_json, char **output_json)
{
    const char *pipeline = api->payload_get(ctx, "pipeline");
    const char *currency = api->payload_get(ctx, "currency");
    if (currency == NULL)
        currency = api->setting(ctx, "default_currency");
    const char *p[] = {pipeline != NULL ? pipeline : "sales", currency != NULL ? currency : "USD"};
    ftp_result_t *res = NULL;
    int rc = exec_tier(api, ctx, forecast_pooled, forecast_siloed, 2, p, &res);
    if (rc != FTP_OK)
        return rc;
    if (strcmp(api->result_value(res, 0, 1), "0") == 0) {
        api->result_free(res);
        api->set_error(ctx, "pipeline '%s' has no stages", p[0]);
        return FTP_E_NOTFOUND;
    }
    rc = reply(api, res, output_json);
    api->result_free(res);
    return rc;
}

static const ftp_action_t actions[] = {
    {"import-contact", "Create or update a contact by email, linking its company by name", import_contact_schema, "contacts",
     import_contact},
    {"move-deal-stage", "Move a deal to another stage of its pipeline", move_deal_schema, "deals", move_deal_stage},
    {"pipeline-forecast", "Deal count, amount and weighted forecast per stage of a pipeline, in one currency", forecast_schema,
     "sales_forecasting", pipeline_forecast},
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
    .product_code = "crm",
    .product_name = "Farutech CRM",
    .description = "Contacts and companies, sales pipeline, activities, email marketing and automation, and support tickets",
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
