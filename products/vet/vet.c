/*
 * Farutech Vet: veterinary clinic management. Patients and their owners, clinical records,
 * appointments with online booking and SMS reminders, pharmacy, billing and connected care.
 */
#include <farutech/plugin.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const ftp_host_api_t *host;

/* ---- catalog ---- */

static const ftp_module_t modules[] = {
    {"clinic", "Clinic", "Patients, owners, clinical records, staff and branches", NULL},
    {"scheduling", "Scheduling", "Appointments, online booking and SMS reminders", (const char *const[]){"clinic", NULL}},
    {"pharmacy", "Pharmacy", "Drug and supply inventory, dispensing and the controlled drugs register",
     (const char *const[]){"clinic", NULL}},
    {"billing", "Billing", "Invoices, estimates and payments", (const char *const[]){"clinic", NULL}},
    {"connected_care", "Connected care", "Video consultations and reference laboratory integrations",
     (const char *const[]){"clinic", "scheduling", NULL}},
};

static const ftp_feature_t features[] = {
    {"patient_records", "clinic", "Patient records", "Patient and owner files with SOAP clinical notes", FTP_FEATURE_FLAG, 1, NULL,
     NULL},
    {"max_users", "clinic", "Staff users", "Staff accounts that can sign in", FTP_FEATURE_LIMIT, 5, NULL, "users"},
    {"storage_gb", "clinic", "Storage", "Space for attachments, X-rays and lab reports", FTP_FEATURE_LIMIT, 10, NULL, "GB"},
    {"max_branches", "clinic", "Branches", "Clinic locations managed from one account", FTP_FEATURE_LIMIT, 1, NULL, "branches"},
    {"max_patients", "clinic", "Active patients", "Living patients on file", FTP_FEATURE_LIMIT, 2500,
     (const char *const[]){"patient_records", NULL}, "patients"},
    {"appointments", "scheduling", "Appointments", "Staff calendar per veterinarian, room and branch", FTP_FEATURE_FLAG, 1, NULL,
     NULL},
    {"online_booking", "scheduling", "Online booking", "Owners book appointments from the clinic's web page", FTP_FEATURE_FLAG, 1,
     (const char *const[]){"appointments", NULL}, NULL},
    {"sms_reminders", "scheduling", "SMS reminders", "Appointment, vaccination and follow-up reminders by SMS", FTP_FEATURE_FLAG, 1,
     (const char *const[]){"online_booking", NULL}, NULL},
    {"sms_monthly_quota", "scheduling", "SMS per month", "Reminder messages included each month", FTP_FEATURE_LIMIT, 500,
     (const char *const[]){"sms_reminders", NULL}, "messages"},
    {"pharmacy_inventory", "pharmacy", "Pharmacy and inventory", "Stock, batches, expiry dates and reorder points",
     FTP_FEATURE_FLAG, 1, NULL, NULL},
    {"controlled_drugs_log", "pharmacy", "Controlled drugs register", "Witnessed dispensing log for scheduled drugs",
     FTP_FEATURE_FLAG, 1, (const char *const[]){"pharmacy_inventory", NULL}, NULL},
    {"invoicing", "billing", "Invoicing", "Invoices and estimates from treatments and dispensed items", FTP_FEATURE_FLAG, 1, NULL,
     NULL},
    {"online_payments", "billing", "Online payments", "Owners pay invoices and deposits by card online", FTP_FEATURE_FLAG, 1,
     (const char *const[]){"invoicing", NULL}, NULL},
    {"telemedicine", "connected_care", "Telemedicine", "Video consultations booked like appointments", FTP_FEATURE_FLAG, 1,
     (const char *const[]){"appointments", NULL}, NULL},
    {"lab_integrations", "connected_care", "Lab integrations", "Send lab orders and file results into the patient record",
     FTP_FEATURE_FLAG, 1, (const char *const[]){"patient_records", NULL}, NULL},
};

static const ftp_plan_feature_t essentials_features[] = {
    {"patient_records", 1}, {"appointments", 1}, {"invoicing", 1},       {"max_users", 5},
    {"storage_gb", 10},     {"max_branches", 1}, {"max_patients", 2500},
};

static const ftp_plan_feature_t professional_features[] = {
    {"patient_records", 1}, {"appointments", 1},       {"online_booking", 1},       {"sms_reminders", 1}, {"invoicing", 1},
    {"online_payments", 1}, {"pharmacy_inventory", 1}, {"telemedicine", 1},         {"max_users", 25},    {"storage_gb", 100},
    {"max_branches", 3},    {"max_patients", 25000},   {"sms_monthly_quota", 2000},
};

static const ftp_plan_feature_t enterprise_features[] = {
    {"patient_records", 1}, {"appointments", 1},       {"online_booking", 1},        {"sms_reminders", 1},
    {"invoicing", 1},       {"online_payments", 1},    {"pharmacy_inventory", 1},    {"controlled_drugs_log", 1},
    {"telemedicine", 1},    {"lab_integrations", 1},   {"max_users", 500},           {"storage_gb", 2000},
    {"max_branches", 50},   {"max_patients", 1000000}, {"sms_monthly_quota", 25000},
};

static const ftp_plan_t plans[] = {
    {"essentials", "Essentials", "One clinic: records, calendar and invoicing", 1, FTP_TABLE(essentials_features), 0},
    {"professional", "Professional", "Growing practices: online booking, SMS reminders, pharmacy and video consults", 1,
     FTP_TABLE(professional_features), 14},
    {"enterprise", "Enterprise", "Hospital groups: many branches, lab integrations, controlled drugs register", 1,
     FTP_TABLE(enterprise_features), 0},
};

static const char settings_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"admin_email\":{\"type\":\"string\",\"format\":\"email\",\"maxLength\":254,\"title\":\"Administrator e-mail\"},"
    "\"admin_name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200,\"title\":\"Administrator name\"},"
    "\"clinic_name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":120,\"title\":\"Clinic name\","
    "\"description\":\"Shown on invoices, the booking page and SMS reminders\"},"
    "\"timezone\":{\"type\":\"string\",\"pattern\":\"^(UTC|[A-Z][A-Za-z_]+(/[A-Za-z0-9_+-]+){1,2})$\",\"default\":\"UTC\","
    "\"title\":\"Time zone\",\"description\":\"IANA time zone of the main branch, e.g. America/Bogota\"},"
    "\"currency\":{\"type\":\"string\",\"enum\":[\"USD\",\"EUR\",\"GBP\",\"CAD\",\"AUD\",\"MXN\",\"COP\",\"BRL\",\"CLP\",\"PEN\","
    "\"ARS\"],\"default\":\"USD\",\"title\":\"Billing currency\"},"
    "\"reminder_lead_hours\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":168,\"default\":24,"
    "\"title\":\"Reminder lead time\",\"description\":\"Hours before an appointment that its SMS reminder is sent\"}},"
    "\"required\":[\"admin_email\"],\"additionalProperties\":false}";

/* ---- tenant schema ---- */

#define TENANT_ID "current_setting('farutech.tenant_id')::uuid"
#define TENANT_COL "tenant_id uuid NOT NULL DEFAULT " TENANT_ID ","
#define RLS(t)                                                                                                                     \
    "ALTER TABLE " t " ENABLE ROW LEVEL SECURITY;"                                                                                 \
    "ALTER TABLE " t " FORCE ROW LEVEL SECURITY;"                                                                                  \
    "DROP POLICY IF EXISTS tenant_isolation ON " t ";"                                                                             \
    "CREATE POLICY tenant_isolation ON " t " USING (tenant_id = current_setting('farutech.tenant_id', true)::uuid)"                \
    " WITH CHECK (tenant_id = current_setting('farutech.tenant_id', true)::uuid);"

/* Columns shared by both tiers; each list ends with a comma, the keys follow. */
#define USERS_COLS                                                                                                                 \
    "email text NOT NULL CHECK (email = lower(email) AND email LIKE '_%@_%'),"                                                     \
    "name text,"                                                                                                                   \
    "role text NOT NULL CHECK (role IN ('admin', 'veterinarian', 'technician', 'receptionist')),"                                  \
    "status text NOT NULL DEFAULT 'invited' CHECK (status IN ('invited', 'active', 'disabled')),"                                  \
    "created_at timestamptz NOT NULL DEFAULT now(),"
#define SPECIES_COLS                                                                                                               \
    "code text NOT NULL CHECK (code ~ '^[a-z][a-z0-9_]{0,39}$'),"                                                                  \
    "name text NOT NULL,"                                                                                                          \
    "category text NOT NULL CHECK (category IN ('companion', 'small_mammal', 'exotic', 'equine', 'production')),"                  \
    "active boolean NOT NULL DEFAULT true,"
#define OWNERS_COLS                                                                                                                \
    "full_name text NOT NULL CHECK (length(full_name) BETWEEN 1 AND 200),"                                                         \
    "email text CHECK (email = lower(email)),"                                                                                     \
    "phone text CHECK (phone ~ '^[+][1-9][0-9]{6,14}$'),"                                                                          \
    "sms_opt_in boolean NOT NULL DEFAULT false,"                                                                                   \
    "created_at timestamptz NOT NULL DEFAULT now(),"
#define PATIENTS_COLS                                                                                                              \
    "owner_id bigint NOT NULL,"                                                                                                    \
    "species_code text NOT NULL,"                                                                                                  \
    "name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),"                                                                   \
    "breed text,"                                                                                                                  \
    "sex text NOT NULL DEFAULT 'unknown' CHECK (sex IN ('male', 'female', 'male_neutered', 'female_spayed', 'unknown')),"          \
    "birth_date date,"                                                                                                             \
    "weight_kg numeric(7,2) CHECK (weight_kg > 0),"                                                                                \
    "deceased boolean NOT NULL DEFAULT false,"                                                                                     \
    "created_at timestamptz NOT NULL DEFAULT now(),"
#define APPOINTMENTS_COLS                                                                                                          \
    "patient_id bigint NOT NULL,"                                                                                                  \
    "vet_id uuid,"                                                                                                                 \
    "branch text NOT NULL DEFAULT 'main',"                                                                                         \
    "starts_at timestamptz NOT NULL,"                                                                                              \
    "duration_min integer NOT NULL DEFAULT 20 CHECK (duration_min BETWEEN 5 AND 480),"                                             \
    "kind text NOT NULL DEFAULT 'in_person' CHECK (kind IN ('in_person', 'telemedicine', 'house_call')),"                          \
    "source text NOT NULL DEFAULT 'staff' CHECK (source IN ('staff', 'online')),"                                                  \
    "status text NOT NULL DEFAULT 'booked'"                                                                                        \
    " CHECK (status IN ('booked', 'confirmed', 'checked_in', 'completed', 'cancelled', 'no_show')),"                               \
    "reason text,"                                                                                                                 \
    "clinical_notes text,"                                                                                                         \
    "created_at timestamptz NOT NULL DEFAULT now(),"
#define TEMPLATES_COLS                                                                                                             \
    "code text NOT NULL CHECK (code ~ '^[a-z][a-z0-9_]{0,39}$'),"                                                                  \
    "name text NOT NULL,"                                                                                                          \
    "channel text NOT NULL DEFAULT 'sms' CHECK (channel IN ('sms', 'email')),"                                                     \
    "body text NOT NULL CHECK (length(body) <= 480),"                                                                              \
    "lead_hours integer NOT NULL DEFAULT 24 CHECK (lead_hours BETWEEN 0 AND 2160),"                                                \
    "active boolean NOT NULL DEFAULT true,"                                                                                        \
    "created_at timestamptz NOT NULL DEFAULT now(),"
#define STATE_COLS                                                                                                                 \
    "status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),"                                             \
    "changed_at timestamptz NOT NULL DEFAULT now(),"
#define REMINDERS_COLS                                                                                                             \
    "appointment_id bigint NOT NULL,"                                                                                              \
    "patient_id bigint NOT NULL,"                                                                                                  \
    "template_code text NOT NULL,"                                                                                                 \
    "send_at timestamptz NOT NULL,"                                                                                                \
    "status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'cancelled')),"                         \
    "attempts integer NOT NULL DEFAULT 0,"                                                                                         \
    "created_at timestamptz NOT NULL DEFAULT now(),"
#define MICROCHIP_COL "ADD COLUMN IF NOT EXISTS microchip_id text CHECK (microchip_id ~ '^[0-9]{15}$');"

static const char clinic_pooled[] =
    "CREATE TABLE IF NOT EXISTS users (" TENANT_COL "id uuid NOT NULL DEFAULT gen_random_uuid()," USERS_COLS
    " PRIMARY KEY (tenant_id, id), UNIQUE (tenant_id, email));" RLS("users") "CREATE TABLE IF NOT EXISTS species (" TENANT_COL
        SPECIES_COLS " PRIMARY KEY (tenant_id, code));" RLS(
            "species") "CREATE TABLE IF NOT EXISTS owners (" TENANT_COL "id bigint GENERATED ALWAYS AS IDENTITY," OWNERS_COLS
                       " PRIMARY KEY (tenant_id, id));" RLS(
                           "owners") "CREATE INDEX IF NOT EXISTS owners_phone_idx ON owners (tenant_id, phone);"
                                     "CREATE TABLE IF NOT EXISTS patients (" TENANT_COL
                                     "id bigint GENERATED ALWAYS AS IDENTITY," PATIENTS_COLS " PRIMARY KEY (tenant_id, id),"
                                     " FOREIGN KEY (tenant_id, owner_id) REFERENCES owners (tenant_id, id),"
                                     " FOREIGN KEY (tenant_id, species_code) REFERENCES species (tenant_id, code));" RLS(
                                         "patients") "CREATE INDEX IF NOT EXISTS patients_owner_idx ON patients (tenant_id, "
                                                     "owner_id);"
                                                     "CREATE TABLE IF NOT EXISTS appointments (" TENANT_COL
                                                     "id bigint GENERATED ALWAYS AS IDENTITY," APPOINTMENTS_COLS
                                                     " PRIMARY KEY (tenant_id, id),"
                                                     " FOREIGN KEY (tenant_id, patient_id) REFERENCES patients (tenant_id, id),"
                                                     " FOREIGN KEY (tenant_id, vet_id) REFERENCES users (tenant_id, id) ON DELETE "
                                                     "SET NULL (vet_id));" RLS(
                                                         "appointments") "CREATE INDEX IF NOT EXISTS appointments_starts_idx ON "
                                                                         "appointments (tenant_id, starts_at);"
                                                                         "CREATE INDEX IF NOT EXISTS appointments_patient_idx ON "
                                                                         "appointments (tenant_id, patient_id);"
                                                                         "CREATE TABLE IF NOT EXISTS reminder_templates "
                                                                         "(" TENANT_COL TEMPLATES_COLS
                                                                         " PRIMARY KEY (tenant_id, code));" RLS(
                                                                             "reminder_templates") "CREATE TABLE IF NOT EXISTS "
                                                                                                   "tenant_state (" TENANT_COL
                                                                                                       STATE_COLS
                                                                                                   " PRIMARY KEY (tenant_id));" RLS(
                                                                                                       "tenant_state");

static const char clinic_siloed[] =
    "CREATE TABLE IF NOT EXISTS users (id uuid NOT NULL DEFAULT gen_random_uuid()," USERS_COLS " PRIMARY KEY (id), UNIQUE (email));"
    "CREATE TABLE IF NOT EXISTS species (" SPECIES_COLS " PRIMARY KEY (code));"
    "CREATE TABLE IF NOT EXISTS owners (id bigint GENERATED ALWAYS AS IDENTITY," OWNERS_COLS " PRIMARY KEY (id));"
    "CREATE INDEX IF NOT EXISTS owners_phone_idx ON owners (phone);"
    "CREATE TABLE IF NOT EXISTS patients (id bigint GENERATED ALWAYS AS IDENTITY," PATIENTS_COLS " PRIMARY KEY (id),"
    " FOREIGN KEY (owner_id) REFERENCES owners (id), FOREIGN KEY (species_code) REFERENCES species (code));"
    "CREATE INDEX IF NOT EXISTS patients_owner_idx ON patients (owner_id);"
    "CREATE TABLE IF NOT EXISTS appointments (id bigint GENERATED ALWAYS AS IDENTITY," APPOINTMENTS_COLS " PRIMARY KEY (id),"
    " FOREIGN KEY (patient_id) REFERENCES patients (id), FOREIGN KEY (vet_id) REFERENCES users (id) ON DELETE SET NULL);"
    "CREATE INDEX IF NOT EXISTS appointments_starts_idx ON appointments (starts_at);"
    "CREATE INDEX IF NOT EXISTS appointments_patient_idx ON appointments (patient_id);"
    "CREATE TABLE IF NOT EXISTS reminder_templates (" TEMPLATES_COLS " PRIMARY KEY (code));"
    /* one row: the instance owns the database */
    "CREATE TABLE IF NOT EXISTS tenant_state (id boolean NOT NULL DEFAULT true CHECK (id)," STATE_COLS " PRIMARY KEY (id));";

static const char reminders_pooled[] =
    "ALTER TABLE patients " MICROCHIP_COL
    "CREATE UNIQUE INDEX IF NOT EXISTS patients_microchip_key ON patients (tenant_id, microchip_id)"
    " WHERE microchip_id IS NOT NULL;"
    "CREATE TABLE IF NOT EXISTS reminders (" TENANT_COL "id bigint GENERATED ALWAYS AS IDENTITY," REMINDERS_COLS
    " PRIMARY KEY (tenant_id, id), UNIQUE (tenant_id, appointment_id, template_code),"
    " FOREIGN KEY (tenant_id, appointment_id) REFERENCES appointments (tenant_id, id) ON DELETE CASCADE,"
    " FOREIGN KEY (tenant_id, patient_id) REFERENCES patients (tenant_id, id),"
    " FOREIGN KEY (tenant_id, template_code) REFERENCES reminder_templates (tenant_id, code));" RLS(
        "reminders") "CREATE INDEX IF NOT EXISTS reminders_patient_idx ON reminders (tenant_id, patient_id);"
                     "CREATE INDEX IF NOT EXISTS reminders_due_idx ON reminders (send_at) WHERE status = 'pending';";

static const char reminders_siloed[] =
    "ALTER TABLE patients " MICROCHIP_COL
    "CREATE UNIQUE INDEX IF NOT EXISTS patients_microchip_key ON patients (microchip_id) WHERE microchip_id IS NOT NULL;"
    "CREATE TABLE IF NOT EXISTS reminders (id bigint GENERATED ALWAYS AS IDENTITY," REMINDERS_COLS
    " PRIMARY KEY (id), UNIQUE (appointment_id, template_code),"
    " FOREIGN KEY (appointment_id) REFERENCES appointments (id) ON DELETE CASCADE,"
    " FOREIGN KEY (patient_id) REFERENCES patients (id),"
    " FOREIGN KEY (template_code) REFERENCES reminder_templates (code));"
    "CREATE INDEX IF NOT EXISTS reminders_patient_idx ON reminders (patient_id);"
    "CREATE INDEX IF NOT EXISTS reminders_due_idx ON reminders (send_at) WHERE status = 'pending';";

static const ftp_migration_t migrations[] = {
    {1, "clinic_core", clinic_pooled, clinic_siloed},
    {2, "sms_reminders_and_microchips", reminders_pooled, reminders_siloed},
};

/* Every table holding tenant rows, children before parents. */
static const char *const tenant_tables[] = {
    "reminders", "appointments", "patients", "owners", "reminder_templates", "species", "users", "tenant_state",
};

/* ---- helpers ---- */

/* The same statement for both tiers: siloed tables have no tenant_id column. */
static const char *by_tier(const ftp_host_api_t *api, ftp_ctx_t *ctx, const char *pooled, const char *siloed)
{
    return api->tier(ctx) == FTP_TIER_ENTERPRISE ? siloed : pooled;
}

static int exec(const ftp_host_api_t *api, ftp_ctx_t *ctx, const char *sql, int nparams, const char *const *params)
{
    return api->db_exec(ctx, sql, nparams, params, NULL);
}

/* Runs a query and copies the first column of its first row into out; FTP_E_NOTFOUND without rows. */
static int query_value(const ftp_host_api_t *api, ftp_ctx_t *ctx, const char *sql, int nparams, const char *const *params,
                       char *out, size_t outlen)
{
    ftp_result_t *res = NULL;
    int rc = api->db_exec(ctx, sql, nparams, params, &res);
    if (rc != FTP_OK)
        return rc;
    if (api->result_rows(res) < 1) {
        rc = FTP_E_NOTFOUND;
    } else {
        const char *v = api->result_value(res, 0, 0);
        snprintf(out, outlen, "%s", v != NULL ? v : "");
    }
    api->result_free(res);
    return rc;
}

/* Like query_value, but hands the value to the host as an action's output. */
static int query_output(const ftp_host_api_t *api, ftp_ctx_t *ctx, const char *sql, int nparams, const char *const *params,
                        char **output_json)
{
    ftp_result_t *res = NULL;
    int rc = api->db_exec(ctx, sql, nparams, params, &res);
    if (rc != FTP_OK)
        return rc;
    const char *v = api->result_rows(res) > 0 ? api->result_value(res, 0, 0) : NULL;
    if (v == NULL) {
        rc = FTP_E_NOTFOUND;
    } else {
        size_t n = strlen(v) + 1;
        *output_json = api->alloc(n);
        if (*output_json == NULL)
            rc = FTP_E_NOMEM;
        else
            memcpy(*output_json, v, n);
    }
    api->result_free(res);
    return rc;
}

static int two_digits(const char *p, int *v)
{
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
        return 0;
    *v = (p[0] - '0') * 10 + (p[1] - '0');
    return 1;
}

/* A real calendar date at the start of s: YYYY-MM-DD. */
static int valid_date(const char *s)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int c, y, m, d;
    if (!two_digits(s, &c) || !two_digits(s + 2, &y) || s[4] != '-' || !two_digits(s + 5, &m) || s[7] != '-' ||
        !two_digits(s + 8, &d))
        return 0;
    y += c * 100;
    if (y < 1900 || m < 1 || m > 12)
        return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d >= 1 && d <= days[m - 1] + (m == 2 && leap);
}

/* YYYY-MM-DDTHH:MM[:SS] followed by Z or an offset (the input schema checks the shape). */
static int valid_timestamp(const char *s)
{
    int h, mi;
    return valid_date(s) && s[10] == 'T' && two_digits(s + 11, &h) && h < 24 && s[13] == ':' && two_digits(s + 14, &mi) && mi < 60;
}

/* ---- lifecycle ---- */

static int create_schema(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    return api->apply_tenant_migrations(ctx);
}

static int seed_reference_data(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    return exec(api, ctx,
                "INSERT INTO species (code, name, category) VALUES"
                " ('dog', 'Dog', 'companion'), ('cat', 'Cat', 'companion'),"
                " ('rabbit', 'Rabbit', 'small_mammal'), ('ferret', 'Ferret', 'small_mammal'),"
                " ('guinea_pig', 'Guinea pig', 'small_mammal'), ('hamster', 'Hamster', 'small_mammal'),"
                " ('bird', 'Bird', 'exotic'), ('reptile', 'Reptile', 'exotic'), ('horse', 'Horse', 'equine'),"
                " ('cattle', 'Cattle', 'production'), ('sheep', 'Sheep', 'production'), ('goat', 'Goat', 'production')"
                " ON CONFLICT DO NOTHING",
                0, NULL);
}

/* Default SMS templates while sms_reminders is on; the tenant's own edits are never overwritten.
 * Placeholders are filled by the reminder sender. */
static int seed_reminder_templates(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    if (!api->feature(ctx, "sms_reminders", NULL))
        return FTP_OK;
    const char *params[] = {api->setting(ctx, "reminder_lead_hours")};
    int rc = exec(api, ctx,
                  "INSERT INTO reminder_templates (code, name, body, lead_hours) VALUES"
                  " ('appointment_confirmation', 'Booking confirmation',"
                  "  '{{clinic_name}}: {{pet_name}} is booked for {{date}} at {{time}}. Reply C to confirm or call"
                  " {{clinic_phone}} to change it.', 0),"
                  " ('appointment_reminder', 'Appointment reminder',"
                  "  'Reminder from {{clinic_name}}: {{pet_name}} is due on {{date}} at {{time}}. Reply C to confirm,"
                  " R to reschedule.', coalesce($1::integer, 24)),"
                  " ('vaccination_due', 'Vaccination due',"
                  "  '{{clinic_name}}: {{pet_name}} is due for the {{vaccine}} vaccine. Book at {{booking_url}} or call"
                  " {{clinic_phone}}.', 336),"
                  " ('post_op_checkup', 'Post-operative check',"
                  "  '{{clinic_name}}: {{pet_name}} has a post-op check on {{date}} at {{time}}. Call us sooner if you"
                  " notice swelling or pain.', 24)"
                  " ON CONFLICT DO NOTHING",
                  1, params);
    if (rc == FTP_OK && api->feature(ctx, "telemedicine", NULL))
        rc = exec(api, ctx,
                  "INSERT INTO reminder_templates (code, name, body, lead_hours) VALUES"
                  " ('telemedicine_link', 'Video consultation link',"
                  "  '{{clinic_name}}: the video consult for {{pet_name}} starts at {{time}}. Join here: {{video_url}}', 1)"
                  " ON CONFLICT DO NOTHING",
                  0, NULL);
    return rc;
}

static int create_admin(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    const char *email = api->setting(ctx, "admin_email");
    if (email == NULL || email[0] == '\0') {
        api->set_error(ctx, "setting admin_email is required");
        return FTP_E_INVALID;
    }
    const char *params[] = {email, api->setting(ctx, "admin_name")};
    /* no password: the clinic app sends the invitation */
    return exec(api, ctx,
                "INSERT INTO users (email, name, role, status) VALUES (lower($1), $2, 'admin', 'invited')"
                " ON CONFLICT DO NOTHING",
                2, params);
}

static int init_state(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    return exec(api, ctx, "INSERT INTO tenant_state (status) VALUES ('active') ON CONFLICT DO NOTHING", 0, NULL);
}

static int set_state(const ftp_host_api_t *api, ftp_ctx_t *ctx, const char *status)
{
    const char *params[] = {status};
    return exec(api, ctx,
                by_tier(api, ctx,
                        "INSERT INTO tenant_state (status) VALUES ($1) ON CONFLICT (tenant_id) DO UPDATE"
                        " SET status = EXCLUDED.status, changed_at = now()"
                        " WHERE tenant_state.tenant_id = " TENANT_ID " AND tenant_state.status <> EXCLUDED.status",
                        "INSERT INTO tenant_state (status) VALUES ($1) ON CONFLICT (id) DO UPDATE"
                        " SET status = EXCLUDED.status, changed_at = now() WHERE tenant_state.status <> EXCLUDED.status"),
                1, params);
}

static int mark_suspended(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    return set_state(api, ctx, "suspended");
}

static int mark_active(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    return set_state(api, ctx, "active");
}

static int purge_tenant_data(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    /* siloed: the host drops the instance's database afterwards */
    if (api->tier(ctx) != FTP_TIER_STANDARD)
        return FTP_OK;
    char schema[160];
    if (api->db_ident(api->schema(ctx), schema, sizeof(schema)) != FTP_OK) {
        api->set_error(ctx, "cannot quote schema name");
        return FTP_E_FATAL;
    }
    for (size_t i = 0; i < sizeof(tenant_tables) / sizeof(tenant_tables[0]); i++) {
        char name[224], exists[8], sql[320];
        snprintf(name, sizeof(name), "%s.%s", schema, tenant_tables[i]);
        const char *params[] = {name};
        /* a provisioning that failed before create_schema leaves nothing to delete */
        int rc = query_value(api, ctx, "SELECT to_regclass($1) IS NOT NULL", 1, params, exists, sizeof(exists));
        if (rc != FTP_OK)
            return rc;
        if (strcmp(exists, "t") != 0)
            continue;
        snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE tenant_id = " TENANT_ID, name);
        rc = exec(api, ctx, sql, 0, NULL);
        if (rc != FTP_OK)
            return rc;
    }
    return FTP_OK;
}

static const ftp_step_t steps[] = {
    {FTP_LIFECYCLE_PROVISION, "create_schema", 1, 60000, create_schema, NULL},
    {FTP_LIFECYCLE_PROVISION, "seed_reference_data", 1, 10000, seed_reference_data, NULL},
    {FTP_LIFECYCLE_PROVISION, "seed_reminder_templates", 1, 10000, seed_reminder_templates, NULL},
    {FTP_LIFECYCLE_PROVISION, "create_admin", 1, 10000, create_admin, NULL},
    {FTP_LIFECYCLE_PROVISION, "init_state", 1, 10000, init_state, NULL},
    {FTP_LIFECYCLE_DEPROVISION, "purge_tenant_data", 1, 60000, purge_tenant_data, NULL},
    {FTP_LIFECYCLE_SUSPEND, "mark_suspended", 1, 10000, mark_suspended, NULL},
    {FTP_LIFECYCLE_RESUME, "mark_active", 1, 10000, mark_active, NULL},
    {FTP_LIFECYCLE_FEATURES_CHANGED, "seed_reminder_templates", 1, 10000, seed_reminder_templates, NULL},
};

/* ---- actions ---- */

static const char patient_count_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"species\":{\"type\":\"string\",\"pattern\":\"^[a-z][a-z0-9_]{0,39}$\",\"description\":\"Count only this species\"}},"
    "\"additionalProperties\":false}";

static int patient_count(const ftp_host_api_t *api, ftp_ctx_t *ctx, const char *input_json, char **output_json)
{
    int64_t limit = 0;
    char limit_text[24];
    const char *params[] = {api->payload_get(ctx, "species"), NULL};
    if (api->feature(ctx, "max_patients", &limit)) {
        snprintf(limit_text, sizeof(limit_text), "%" PRId64, limit);
        params[1] = limit_text;
    }
#define PATIENT_COUNT_SQL(filter)                                                                                                  \
    "WITH p AS (SELECT species_code, owner_id, deceased FROM patients WHERE " filter " ($1::text IS NULL OR species_code = $1))"   \
    " SELECT json_build_object("                                                                                                   \
    "'patients', (SELECT count(*) FROM p),"                                                                                        \
    "'active', (SELECT count(*) FROM p WHERE NOT deceased),"                                                                       \
    "'owners', (SELECT count(DISTINCT owner_id) FROM p WHERE NOT deceased),"                                                       \
    "'by_species', (SELECT coalesce(json_object_agg(species_code, n ORDER BY species_code), '{}'::json)"                           \
    " FROM (SELECT species_code, count(*) AS n FROM p WHERE NOT deceased GROUP BY species_code) s),"                               \
    "'max_patients', $2::bigint)::text"
    return query_output(api, ctx, by_tier(api, ctx, PATIENT_COUNT_SQL("tenant_id = " TENANT_ID " AND"), PATIENT_COUNT_SQL("")), 2,
                        params, output_json);
#undef PATIENT_COUNT_SQL
}

static const char register_patient_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100},"
    "\"species\":{\"type\":\"string\",\"pattern\":\"^[a-z][a-z0-9_]{0,39}$\"},"
    "\"breed\":{\"type\":\"string\",\"maxLength\":100},"
    "\"sex\":{\"type\":\"string\",\"enum\":[\"male\",\"female\",\"male_neutered\",\"female_spayed\",\"unknown\"],"
    "\"default\":\"unknown\"},"
    "\"birth_date\":{\"type\":\"string\",\"pattern\":\"^[0-9]{4}-[0-9]{2}-[0-9]{2}$\"},"
    "\"weight_kg\":{\"type\":\"number\",\"minimum\":0.01,\"maximum\":2000},"
    "\"microchip_id\":{\"type\":\"string\",\"pattern\":\"^[0-9]{15}$\",\"description\":\"ISO 11784 transponder number\"},"
    "\"owner_id\":{\"type\":\"integer\",\"minimum\":1,\"description\":\"An existing owner; otherwise give owner_name\"},"
    "\"owner_name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200},"
    "\"owner_phone\":{\"type\":\"string\",\"pattern\":\"^[+][1-9][0-9]{6,14}$\",\"description\":\"E.164\"},"
    "\"owner_email\":{\"type\":\"string\",\"format\":\"email\",\"maxLength\":254},"
    "\"sms_opt_in\":{\"type\":\"boolean\",\"default\":false}},"
    "\"required\":[\"name\",\"species\"],\"additionalProperties\":false}";

static int register_patient(const ftp_host_api_t *api, ftp_ctx_t *ctx, const char *input_json, char **output_json)
{
    const char *name = api->payload_get(ctx, "name");
    const char *species = api->payload_get(ctx, "species");
    const char *owner_id = api->payload_get(ctx, "owner_id");
    const char *owner_name = api->payload_get(ctx, "owner_name");
    const char *birth_date = api->payload_get(ctx, "birth_date");
    char state[16], value[48], new_owner_id[32];
    int rc;

    if (name == NULL || species == NULL) {
        api->set_error(ctx, "name and species are required");
        return FTP_E_INVALID;
    }
    if (owner_id == NULL && owner_name == NULL) {
        api->set_error(ctx, "give owner_id for an existing owner or owner_name for a new one");
        return FTP_E_INVALID;
    }
    if (birth_date != NULL && (!valid_date(birth_date) || birth_date[10] != '\0')) {
        api->set_error(ctx, "birth_date is not a valid date");
        return FTP_E_INVALID;
    }

    /* The lock serialises registrations per tenant so the patient limit holds. */
    rc = query_value(api, ctx,
                     by_tier(api, ctx, "SELECT status FROM tenant_state WHERE tenant_id = " TENANT_ID " FOR UPDATE",
                             "SELECT status FROM tenant_state FOR UPDATE"),
                     0, NULL, state, sizeof(state));
    if (rc == FTP_E_NOTFOUND || (rc == FTP_OK && strcmp(state, "active") != 0)) {
        api->set_error(ctx, "the clinic is not active");
        return FTP_E_CONFLICT;
    }
    if (rc != FTP_OK)
        return rc;

    int64_t limit;
    if (api->feature(ctx, "max_patients", &limit)) {
        rc = query_value(api, ctx,
                         by_tier(api, ctx, "SELECT count(*) FROM patients WHERE tenant_id = " TENANT_ID " AND NOT deceased",
                                 "SELECT count(*) FROM patients WHERE NOT deceased"),
                         0, NULL, value, sizeof(value));
        if (rc != FTP_OK)
            return rc;
        if (strtoll(value, NULL, 10) >= limit) {
            api->set_error(ctx, "the plan's limit of %" PRId64 " active patients is reached", limit);
            return FTP_E_CONFLICT;
        }
    }

    const char *species_params[] = {species};
    rc = query_value(api, ctx,
                     by_tier(api, ctx, "SELECT code FROM species WHERE tenant_id = " TENANT_ID " AND code = $1 AND active",
                             "SELECT code FROM species WHERE code = $1 AND active"),
                     1, species_params, value, sizeof(value));
    if (rc == FTP_E_NOTFOUND)
        api->set_error(ctx, "unknown species %s", species);
    if (rc != FTP_OK)
        return rc;

    if (owner_id != NULL) {
        const char *owner_params[] = {owner_id};
        rc = query_value(api, ctx,
                         by_tier(api, ctx, "SELECT id FROM owners WHERE tenant_id = " TENANT_ID " AND id = $1::bigint",
                                 "SELECT id FROM owners WHERE id = $1::bigint"),
                         1, owner_params, new_owner_id, sizeof(new_owner_id));
        if (rc == FTP_E_NOTFOUND)
            api->set_error(ctx, "owner %s not found", owner_id);
    } else {
        const char *owner_params[] = {owner_name, api->payload_get(ctx, "owner_phone"), api->payload_get(ctx, "owner_email"),
                                      api->payload_get(ctx, "sms_opt_in")};
        rc = query_value(api, ctx,
                         "INSERT INTO owners (full_name, phone, email, sms_opt_in)"
                         " VALUES ($1, $2, lower($3), coalesce($4::boolean, false)) RETURNING id",
                         4, owner_params, new_owner_id, sizeof(new_owner_id));
    }
    if (rc != FTP_OK)
        return rc;

    const char *params[] = {new_owner_id,
                            species,
                            name,
                            api->payload_get(ctx, "breed"),
                            api->payload_get(ctx, "sex"),
                            birth_date,
                            api->payload_get(ctx, "weight_kg"),
                            api->payload_get(ctx, "microchip_id"),
                            owner_id == NULL ? "true" : "false"};
    return query_output(api, ctx,
                        "INSERT INTO patients (owner_id, species_code, name, breed, sex, birth_date, weight_kg, microchip_id)"
                        " VALUES ($1::bigint, $2, $3, $4, coalesce($5, 'unknown'), $6::date, $7::numeric, $8)"
                        " RETURNING json_build_object('patient_id', id, 'owner_id', owner_id, 'owner_created', $9::boolean)::text",
                        9, params, output_json);
}

static const char schedule_reminder_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"appointment_id\":{\"type\":\"integer\",\"minimum\":1},"
    "\"template\":{\"type\":\"string\",\"pattern\":\"^[a-z][a-z0-9_]{0,39}$\",\"default\":\"appointment_reminder\"},"
    "\"send_at\":{\"type\":\"string\","
    "\"pattern\":\"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?(Z|[+-][0-9]{2}:[0-9]{2})$\","
    "\"description\":\"When to send; default: the template's lead time before the appointment\"}},"
    "\"required\":[\"appointment_id\"],\"additionalProperties\":false}";

static int schedule_reminder(const ftp_host_api_t *api, ftp_ctx_t *ctx, const char *input_json, char **output_json)
{
    const char *appointment_id = api->payload_get(ctx, "appointment_id");
    const char *template_code = api->payload_get(ctx, "template");
    const char *send_at = api->payload_get(ctx, "send_at");
    int rc;

    if (appointment_id == NULL) {
        api->set_error(ctx, "appointment_id is required");
        return FTP_E_INVALID;
    }
    if (template_code == NULL)
        template_code = "appointment_reminder";
    if (send_at != NULL && !valid_timestamp(send_at)) {
        api->set_error(ctx, "send_at is not a valid timestamp");
        return FTP_E_INVALID;
    }

    int64_t quota;
    if (api->feature(ctx, "sms_monthly_quota", &quota)) {
        char used[32];
        const char *params[] = {appointment_id, template_code};
        /* rescheduling an existing reminder does not use another message */
        rc = query_value(api, ctx,
                         by_tier(api, ctx,
                                 "SELECT count(*) FROM reminders WHERE tenant_id = " TENANT_ID " AND status <> 'cancelled'"
                                 " AND created_at >= date_trunc('month', now())"
                                 " AND NOT (appointment_id = $1::bigint AND template_code = $2::text)",
                                 "SELECT count(*) FROM reminders WHERE status <> 'cancelled'"
                                 " AND created_at >= date_trunc('month', now())"
                                 " AND NOT (appointment_id = $1::bigint AND template_code = $2::text)"),
                         2, params, used, sizeof(used));
        if (rc != FTP_OK)
            return rc;
        if (strtoll(used, NULL, 10) >= quota) {
            api->set_error(ctx, "this month's quota of %" PRId64 " SMS reminders is used up", quota);
            return FTP_E_CONFLICT;
        }
    }

    /* Sent no earlier than now and only before the appointment, to an owner who opted in. */
#define SCHEDULE_SQL(tenant, scope, conflict)                                                                                      \
    "INSERT INTO reminders (appointment_id, patient_id, template_code, send_at)"                                                   \
    " SELECT a.id, a.patient_id, t.code, s.at FROM appointments a"                                                                 \
    " JOIN patients p ON " scope(                                                                                                  \
        "p", "a") " AND p.id = a.patient_id"                                                                                       \
                  " JOIN owners o ON " scope(                                                                                      \
                      "o", "p") " AND o.id = p.owner_id"                                                                           \
                                " JOIN reminder_templates t ON " scope(                                                            \
                                    "t", "a") " AND t.code = $2::text AND t.active"                                                \
                                              " CROSS JOIN LATERAL (SELECT greatest(coalesce($3::timestamptz,"                     \
                                              " a.starts_at - make_interval(hours => t.lead_hours)), now()) AS at) s"              \
                                              " WHERE " tenant                                                                     \
                                              " a.id = $1::bigint AND a.status IN ('booked', 'confirmed') AND s.at < a.starts_at"  \
                                              " AND o.sms_opt_in AND o.phone IS NOT NULL"                                          \
                                              " ON CONFLICT " conflict                                                             \
                                              " DO UPDATE SET send_at = EXCLUDED.send_at, status = 'pending', attempts = 0"        \
                                              " WHERE reminders.status <> 'sent'"                                                  \
                                              " RETURNING json_build_object('reminder_id', id, 'appointment_id', appointment_id, " \
                                              "'template', template_code,"                                                         \
                                              " 'send_at', to_char(send_at AT TIME ZONE 'UTC', "                                   \
                                              "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), 'status', status)::text"
#define SAME_TENANT(a, b) a ".tenant_id = " b ".tenant_id"
#define SILOED_SCOPE(a, b) "true"
    const char *params[] = {appointment_id, template_code, send_at};
    rc = query_output(
        api, ctx,
        by_tier(api, ctx,
                SCHEDULE_SQL("a.tenant_id = " TENANT_ID " AND", SAME_TENANT, "(tenant_id, appointment_id, template_code)"),
                SCHEDULE_SQL("", SILOED_SCOPE, "(appointment_id, template_code)")),
        3, params, output_json);
    if (rc != FTP_E_NOTFOUND)
        return rc;

        /* Nothing scheduled: say why. */
#define WHY_SQL(tenant, scope)                                                                                                     \
    "SELECT CASE"                                                                                                                  \
    " WHEN a.status NOT IN ('booked', 'confirmed') THEN 'the appointment is ' || a.status"                                         \
    " WHEN a.starts_at <= now() THEN 'the appointment has already started'"                                                        \
    " WHEN NOT o.sms_opt_in OR o.phone IS NULL THEN 'the owner has no phone number or did not opt in to SMS'"                      \
    " WHEN t.code IS NULL THEN 'there is no reminder template ' || $2::text"                                                       \
    " WHEN NOT t.active THEN 'the reminder template ' || $2::text || ' is inactive'"                                               \
    " WHEN r.status = 'sent' THEN 'this reminder was already sent'"                                                                \
    " ELSE 'send_at must be before the appointment' END"                                                                           \
    " FROM appointments a"                                                                                                         \
    " JOIN patients p ON " scope(                                                                                                  \
        "p", "a") " AND p.id = a.patient_id"                                                                                       \
                  " JOIN owners o ON " scope(                                                                                      \
                      "o", "p") " AND o.id = p.owner_id"                                                                           \
                                " LEFT JOIN reminder_templates t ON " scope(                                                       \
                                    "t", "a") " AND t.code = $2::text"                                                             \
                                              " LEFT JOIN reminders r ON " scope(                                                  \
                                                  "r", "a") " AND r.appointment_id = a.id AND r.template_code = $2::text"          \
                                                            " WHERE " tenant " a.id = $1::bigint"
    char why[128];
    rc =
        query_value(api, ctx, by_tier(api, ctx, WHY_SQL("a.tenant_id = " TENANT_ID " AND", SAME_TENANT), WHY_SQL("", SILOED_SCOPE)),
                    2, params, why, sizeof(why));
    if (rc == FTP_E_NOTFOUND) {
        api->set_error(ctx, "appointment %s not found", appointment_id);
        return rc;
    }
    if (rc != FTP_OK)
        return rc;
    api->set_error(ctx, "reminder not scheduled: %s", why);
    return FTP_E_CONFLICT;
#undef SCHEDULE_SQL
#undef WHY_SQL
#undef SAME_TENANT
#undef SILOED_SCOPE
}

static const ftp_action_t actions[] = {
    {"patient-count", "Patients on file, living patients by species, and the plan's patient limit", patient_count_schema,
     "patient_records", patient_count},
    {"register-patient", "Register a patient, with a new or existing owner, within the plan's patient limit",
     register_patient_schema, "patient_records", register_patient},
    {"schedule-reminder", "Schedule (or reschedule) an appointment's SMS reminder", schedule_reminder_schema, "sms_reminders",
     schedule_reminder},
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
    .product_code = "vet",
    .product_name = "Farutech Vet",
    .description = "Veterinary clinic management: patients and owners, clinical records, appointments with online booking "
                   "and SMS reminders, pharmacy and inventory, billing, multi-branch clinics, telemedicine and lab "
                   "integrations",
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
