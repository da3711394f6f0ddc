/*
 * Farutech POS: point of sale for retail shops and restaurants. Registers and receipts, the product
 * catalog with prices and tax rates, stock per store across branches, loyalty and gift cards, table
 * service with a kitchen display, and sales reporting.
 */
#include <farutech/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const ftp_host_api_t *host;

/* ---- catalog ---- */

static const ftp_module_t modules[] = {
    {"sales", "Sales & registers", "Registers, receipts, product catalog, prices, tax rates and payment methods", NULL},
    {"inventory", "Inventory", "Stock per store, adjustments and transfers between branches", (const char *const[]){"sales", NULL}},
    {"loyalty", "Loyalty & gift cards", "Points for returning customers and prepaid gift cards",
     (const char *const[]){"sales", NULL}},
    {"restaurant", "Restaurant", "Table service and a kitchen display for orders", (const char *const[]){"sales", NULL}},
    {"reporting", "Reporting", "Sales reports by day, store, register and payment method", (const char *const[]){"sales", NULL}},
};

static const ftp_feature_t features[] = {
    {"registers", "sales", "Registers and receipts", "Ring up sales, print and email receipts, open and close registers",
     FTP_FEATURE_FLAG, 1, NULL, NULL},
    {"product_catalog", "sales", "Product catalog", "Products, variants, barcodes and prices with tax rates", FTP_FEATURE_FLAG, 1,
     NULL, NULL},
    {"offline_mode", "sales", "Offline mode", "Keep selling without a connection; receipts sync when it returns", FTP_FEATURE_FLAG,
     1, (const char *const[]){"registers", NULL}, NULL},
    {"max_users", "sales", "Users", "Staff accounts that can sign in", FTP_FEATURE_LIMIT, 3, NULL, "users"},
    {"storage_gb", "sales", "Storage", "Space for receipts, product images and exports", FTP_FEATURE_LIMIT, 5, NULL, "GB"},
    {"max_stores", "sales", "Stores", "Stores or branches that can sell", FTP_FEATURE_LIMIT, 1, NULL, "stores"},
    {"max_registers", "sales", "Registers", "Registers across all stores", FTP_FEATURE_LIMIT, 2,
     (const char *const[]){"registers", NULL}, "registers"},
    {"stock_tracking", "inventory", "Stock tracking", "Stock levels per store, adjustments and low-stock alerts", FTP_FEATURE_FLAG,
     1, (const char *const[]){"product_catalog", NULL}, NULL},
    {"stock_transfers", "inventory", "Stock transfers", "Move stock between stores with transfer orders", FTP_FEATURE_FLAG, 1,
     (const char *const[]){"stock_tracking", NULL}, NULL},
    {"loyalty_program", "loyalty", "Loyalty program", "Customers earn and redeem points at the register", FTP_FEATURE_FLAG, 1,
     (const char *const[]){"registers", NULL}, NULL},
    {"gift_cards", "loyalty", "Gift cards", "Sell, top up and redeem gift cards as a payment method", FTP_FEATURE_FLAG, 1,
     (const char *const[]){"registers", NULL}, NULL},
    {"table_service", "restaurant", "Table service", "Floor plans, open tabs per table, split bills and tips", FTP_FEATURE_FLAG, 1,
     (const char *const[]){"registers", "product_catalog", NULL}, NULL},
    {"kitchen_display", "restaurant", "Kitchen display", "Orders routed to kitchen and bar screens with bump times",
     FTP_FEATURE_FLAG, 1, (const char *const[]){"table_service", NULL}, NULL},
    {"sales_reports", "reporting", "Sales reports", "Daily sales by store, register, product and payment method", FTP_FEATURE_FLAG,
     1, (const char *const[]){"registers", NULL}, NULL},
    {"advanced_analytics", "reporting", "Advanced analytics", "Margins, basket size, hourly heatmaps and store comparison",
     FTP_FEATURE_FLAG, 1, (const char *const[]){"sales_reports", NULL}, NULL},
};

static const ftp_plan_feature_t starter_features[] = {
    {"registers", 1},  {"product_catalog", 1}, {"sales_reports", 1}, {"max_users", 3},
    {"storage_gb", 5}, {"max_stores", 1},      {"max_registers", 2},
};

static const ftp_plan_feature_t professional_features[] = {
    {"registers", 1},       {"product_catalog", 1}, {"sales_reports", 1},  {"offline_mode", 1},    {"stock_tracking", 1},
    {"loyalty_program", 1}, {"gift_cards", 1},      {"table_service", 1},  {"kitchen_display", 1}, {"max_users", 25},
    {"storage_gb", 50},     {"max_stores", 5},      {"max_registers", 15},
};

static const ftp_plan_feature_t enterprise_features[] = {
    {"registers", 1},          {"product_catalog", 1}, {"sales_reports", 1}, {"offline_mode", 1},  {"stock_tracking", 1},
    {"stock_transfers", 1},    {"loyalty_program", 1}, {"gift_cards", 1},    {"table_service", 1}, {"kitchen_display", 1},
    {"advanced_analytics", 1}, {"max_users", 500},     {"storage_gb", 500},  {"max_stores", 100},  {"max_registers", 500},
};

static const ftp_plan_t plans[] = {
    {"starter", "Starter", "One shop with a couple of registers", 1, FTP_TABLE(starter_features), 0},
    {"professional", "Professional", "Growing shops and restaurants: stock, loyalty, gift cards, kitchen display", 1,
     FTP_TABLE(professional_features), 14},
    {"enterprise", "Enterprise", "Chains: many stores, stock transfers and advanced analytics", 1, FTP_TABLE(enterprise_features),
     0},
};

static const char settings_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"admin_email\":{\"type\":\"string\",\"format\":\"email\",\"maxLength\":254,\"title\":\"Administrator email\"},"
    "\"admin_name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200,\"title\":\"Administrator name\"},"
    "\"business_name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":120,\"title\":\"Business name\","
    "\"description\":\"Printed on receipts and given to the first store\"},"
    "\"country\":{\"type\":\"string\",\"enum\":[\"CO\",\"MX\",\"ES\",\"PT\",\"GB\",\"DE\",\"FR\",\"IT\"],\"default\":\"CO\","
    "\"title\":\"Country\",\"description\":\"Selects the tax rates, currency and time zone set up at provisioning\"},"
    "\"currency\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{3}$\",\"title\":\"Currency\","
    "\"description\":\"ISO 4217 code; defaults to the country's currency\"},"
    "\"timezone\":{\"type\":\"string\",\"pattern\":\"^[A-Za-z]+(/[A-Za-z0-9_+-]+){0,2}$\",\"maxLength\":64,"
    "\"title\":\"Time zone\",\"description\":\"IANA name such as America/Bogota; defaults to the country's\"}},"
    "\"required\":[\"admin_email\"],\"additionalProperties\":false}";

/* ---- tenant schema ---- */

#define TENANT "current_setting('farutech.tenant_id')::uuid"
#define TENANT_COLUMN "tenant_id uuid NOT NULL DEFAULT " TENANT ","
#define RLS(t)                                                                                                                     \
    "ALTER TABLE " t " ENABLE ROW LEVEL SECURITY;"                                                                                 \
    "ALTER TABLE " t " FORCE ROW LEVEL SECURITY;"                                                                                  \
    "DROP POLICY IF EXISTS tenant_isolation ON " t ";"                                                                             \
    "CREATE POLICY tenant_isolation ON " t " USING (tenant_id = current_setting('farutech.tenant_id', true)::uuid)"                \
    " WITH CHECK (tenant_id = current_setting('farutech.tenant_id', true)::uuid);"

#define PAYMENT_METHODS "('cash', 'card', 'mobile_wallet', 'bank_transfer', 'gift_card', 'voucher', 'store_credit')"

/* One SQL clause a line; the formatter would split the strings around RLS(). */
/* clang-format off */
static const char core_pooled[] =
    "CREATE TABLE IF NOT EXISTS users (" TENANT_COLUMN
    "  email text NOT NULL, name text,"
    "  role text NOT NULL CHECK (role IN ('admin', 'manager', 'cashier', 'waiter', 'kitchen')),"
    "  status text NOT NULL DEFAULT 'invited' CHECK (status IN ('invited', 'active', 'disabled')),"
    "  created_at timestamptz NOT NULL DEFAULT now(),"
    "  PRIMARY KEY (tenant_id, email));" RLS("users")
    "CREATE TABLE IF NOT EXISTS tax_rates (" TENANT_COLUMN
    "  code text NOT NULL, name text NOT NULL,"
    "  rate_percent numeric(6,3) NOT NULL CHECK (rate_percent >= 0 AND rate_percent <= 100),"
    "  is_default boolean NOT NULL DEFAULT false, active boolean NOT NULL DEFAULT true,"
    "  PRIMARY KEY (tenant_id, code));"
    "CREATE UNIQUE INDEX IF NOT EXISTS tax_rates_one_default ON tax_rates (tenant_id) WHERE is_default;" RLS("tax_rates")
    "CREATE TABLE IF NOT EXISTS stores (" TENANT_COLUMN
    "  code text NOT NULL, name text NOT NULL, timezone text NOT NULL, currency char(3) NOT NULL,"
    "  status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),"
    "  created_at timestamptz NOT NULL DEFAULT now(),"
    "  PRIMARY KEY (tenant_id, code));" RLS("stores")
    "CREATE TABLE IF NOT EXISTS products (" TENANT_COLUMN
    "  sku text NOT NULL, name text NOT NULL, barcode text,"
    "  price numeric(12,2) NOT NULL CHECK (price >= 0), tax_code text NOT NULL,"
    "  active boolean NOT NULL DEFAULT true,"
    "  PRIMARY KEY (tenant_id, sku),"
    "  FOREIGN KEY (tenant_id, tax_code) REFERENCES tax_rates (tenant_id, code));"
    "CREATE INDEX IF NOT EXISTS products_barcode_idx ON products (tenant_id, barcode);" RLS("products")
    "CREATE TABLE IF NOT EXISTS stock_levels (" TENANT_COLUMN
    "  store_code text NOT NULL, sku text NOT NULL,"
    "  quantity numeric(12,3) NOT NULL DEFAULT 0, reorder_level numeric(12,3),"
    "  updated_at timestamptz NOT NULL DEFAULT now(),"
    "  PRIMARY KEY (tenant_id, store_code, sku),"
    "  FOREIGN KEY (tenant_id, store_code) REFERENCES stores (tenant_id, code),"
    "  FOREIGN KEY (tenant_id, sku) REFERENCES products (tenant_id, sku));" RLS("stock_levels")
    "CREATE TABLE IF NOT EXISTS registers (" TENANT_COLUMN
    "  store_code text NOT NULL, code text NOT NULL, name text NOT NULL,"
    "  status text NOT NULL DEFAULT 'closed' CHECK (status IN ('open', 'closed')),"
    "  opened_at timestamptz, opening_float numeric(12,2) NOT NULL DEFAULT 0,"
    "  closed_at timestamptz, counted_cash numeric(12,2),"
    "  PRIMARY KEY (tenant_id, store_code, code),"
    "  FOREIGN KEY (tenant_id, store_code) REFERENCES stores (tenant_id, code),"
    "  CHECK (status = 'closed' OR opened_at IS NOT NULL));" RLS("registers")
    "CREATE TABLE IF NOT EXISTS receipts (" TENANT_COLUMN
    "  id uuid NOT NULL DEFAULT gen_random_uuid(),"
    "  store_code text NOT NULL, register_code text NOT NULL, receipt_no text NOT NULL,"
    "  created_at timestamptz NOT NULL DEFAULT now(),"
    "  payment_method text NOT NULL CHECK (payment_method IN " PAYMENT_METHODS "),"
    "  subtotal numeric(12,2) NOT NULL, tax_total numeric(12,2) NOT NULL DEFAULT 0, total numeric(12,2) NOT NULL,"
    "  status text NOT NULL DEFAULT 'completed' CHECK (status IN ('completed', 'voided', 'refunded')),"
    "  lines jsonb NOT NULL DEFAULT '[]',"
    "  PRIMARY KEY (tenant_id, id),"
    "  UNIQUE (tenant_id, store_code, receipt_no),"
    "  FOREIGN KEY (tenant_id, store_code, register_code) REFERENCES registers (tenant_id, store_code, code));"
    "CREATE INDEX IF NOT EXISTS receipts_register_idx ON receipts (tenant_id, store_code, register_code, created_at);"
    RLS("receipts")
    "CREATE TABLE IF NOT EXISTS tenant_state (" TENANT_COLUMN
    "  status text NOT NULL CHECK (status IN ('active', 'suspended')),"
    "  changed_at timestamptz NOT NULL DEFAULT now(),"
    "  PRIMARY KEY (tenant_id));" RLS("tenant_state");

static const char core_siloed[] =
    "CREATE TABLE IF NOT EXISTS users ("
    "  email text PRIMARY KEY, name text,"
    "  role text NOT NULL CHECK (role IN ('admin', 'manager', 'cashier', 'waiter', 'kitchen')),"
    "  status text NOT NULL DEFAULT 'invited' CHECK (status IN ('invited', 'active', 'disabled')),"
    "  created_at timestamptz NOT NULL DEFAULT now());"
    "CREATE TABLE IF NOT EXISTS tax_rates ("
    "  code text PRIMARY KEY, name text NOT NULL,"
    "  rate_percent numeric(6,3) NOT NULL CHECK (rate_percent >= 0 AND rate_percent <= 100),"
    "  is_default boolean NOT NULL DEFAULT false, active boolean NOT NULL DEFAULT true);"
    "CREATE UNIQUE INDEX IF NOT EXISTS tax_rates_one_default ON tax_rates (is_default) WHERE is_default;"
    "CREATE TABLE IF NOT EXISTS stores ("
    "  code text PRIMARY KEY, name text NOT NULL, timezone text NOT NULL, currency char(3) NOT NULL,"
    "  status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),"
    "  created_at timestamptz NOT NULL DEFAULT now());"
    "CREATE TABLE IF NOT EXISTS products ("
    "  sku text PRIMARY KEY, name text NOT NULL, barcode text,"
    "  price numeric(12,2) NOT NULL CHECK (price >= 0), tax_code text NOT NULL REFERENCES tax_rates (code),"
    "  active boolean NOT NULL DEFAULT true);"
    "CREATE INDEX IF NOT EXISTS products_barcode_idx ON products (barcode);"
    "CREATE TABLE IF NOT EXISTS stock_levels ("
    "  store_code text NOT NULL REFERENCES stores (code), sku text NOT NULL REFERENCES products (sku),"
    "  quantity numeric(12,3) NOT NULL DEFAULT 0, reorder_level numeric(12,3),"
    "  updated_at timestamptz NOT NULL DEFAULT now(),"
    "  PRIMARY KEY (store_code, sku));"
    "CREATE TABLE IF NOT EXISTS registers ("
    "  store_code text NOT NULL REFERENCES stores (code), code text NOT NULL, name text NOT NULL,"
    "  status text NOT NULL DEFAULT 'closed' CHECK (status IN ('open', 'closed')),"
    "  opened_at timestamptz, opening_float numeric(12,2) NOT NULL DEFAULT 0,"
    "  closed_at timestamptz, counted_cash numeric(12,2),"
    "  PRIMARY KEY (store_code, code),"
    "  CHECK (status = 'closed' OR opened_at IS NOT NULL));"
    "CREATE TABLE IF NOT EXISTS receipts ("
    "  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
    "  store_code text NOT NULL, register_code text NOT NULL, receipt_no text NOT NULL,"
    "  created_at timestamptz NOT NULL DEFAULT now(),"
    "  payment_method text NOT NULL CHECK (payment_method IN " PAYMENT_METHODS "),"
    "  subtotal numeric(12,2) NOT NULL, tax_total numeric(12,2) NOT NULL DEFAULT 0, total numeric(12,2) NOT NULL,"
    "  status text NOT NULL DEFAULT 'completed' CHECK (status IN ('completed', 'voided', 'refunded')),"
    "  lines jsonb NOT NULL DEFAULT '[]',"
    "  UNIQUE (store_code, receipt_no),"
    "  FOREIGN KEY (store_code, register_code) REFERENCES registers (store_code, code));"
    "CREATE INDEX IF NOT EXISTS receipts_register_idx ON receipts (store_code, register_code, created_at);"
    "CREATE TABLE IF NOT EXISTS tenant_state ("
    "  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),"
    "  status text NOT NULL CHECK (status IN ('active', 'suspended')),"
    "  changed_at timestamptz NOT NULL DEFAULT now());";

/* Version 2: kitchen routing for the kitchen display, table and loyalty points on receipts. */
static const char restaurant_pooled[] = "ALTER TABLE products ADD COLUMN IF NOT EXISTS kitchen_station text;"
                                        "ALTER TABLE receipts ADD COLUMN IF NOT EXISTS table_label text;"
                                        "ALTER TABLE receipts ADD COLUMN IF NOT EXISTS loyalty_points integer NOT NULL DEFAULT 0;"
                                        "CREATE INDEX IF NOT EXISTS receipts_created_idx ON receipts (tenant_id, created_at);";

static const char restaurant_siloed[] = "ALTER TABLE products ADD COLUMN IF NOT EXISTS kitchen_station text;"
                                        "ALTER TABLE receipts ADD COLUMN IF NOT EXISTS table_label text;"
                                        "ALTER TABLE receipts ADD COLUMN IF NOT EXISTS loyalty_points integer NOT NULL DEFAULT 0;"
                                        "CREATE INDEX IF NOT EXISTS receipts_created_idx ON receipts (created_at);";

/* clang-format on */

static const ftp_migration_t migrations[] = {
    {1, "core", core_pooled, core_siloed},
    {2, "restaurant_and_loyalty", restaurant_pooled, restaurant_siloed},
};

/* ---- reference data ---- */

typedef struct {
    const char *country;
    const char *currency;
    const char *timezone;
} country_t;

static const country_t countries[] = {
    {"CO", "COP", "America/Bogota"}, {"MX", "MXN", "America/Mexico_City"}, {"ES", "EUR", "Europe/Madrid"},
    {"PT", "EUR", "Europe/Lisbon"},  {"GB", "GBP", "Europe/London"},       {"DE", "EUR", "Europe/Berlin"},
    {"FR", "EUR", "Europe/Paris"},   {"IT", "EUR", "Europe/Rome"},
};

typedef struct {
    const char *country;
    const char *code;
    const char *name;
    const char *rate;
    const char *is_default;
} tax_rate_t;

static const tax_rate_t tax_rates[] = {
    {"CO", "iva_19", "IVA general 19%", "19", "true"},
    {"CO", "iva_5", "IVA reducido 5%", "5", "false"},
    {"CO", "inc_8", "Impuesto nacional al consumo 8%", "8", "false"},
    {"CO", "exento", "Exento de IVA", "0", "false"},
    {"CO", "excluido", "Excluido de IVA", "0", "false"},
    {"MX", "iva_16", "IVA general 16%", "16", "true"},
    {"MX", "iva_8_frontera", "IVA región fronteriza 8%", "8", "false"},
    {"MX", "iva_0", "IVA tasa 0%", "0", "false"},
    {"MX", "exento", "Exento de IVA", "0", "false"},
    {"ES", "iva_21", "IVA general 21%", "21", "true"},
    {"ES", "iva_10", "IVA reducido 10%", "10", "false"},
    {"ES", "iva_4", "IVA superreducido 4%", "4", "false"},
    {"ES", "exento", "Exento de IVA", "0", "false"},
    {"PT", "iva_23", "IVA taxa normal 23%", "23", "true"},
    {"PT", "iva_13", "IVA taxa intermédia 13%", "13", "false"},
    {"PT", "iva_6", "IVA taxa reduzida 6%", "6", "false"},
    {"PT", "isento", "Isento de IVA", "0", "false"},
    {"GB", "vat_20", "VAT standard rate 20%", "20", "true"},
    {"GB", "vat_5", "VAT reduced rate 5%", "5", "false"},
    {"GB", "vat_0", "VAT zero rate", "0", "false"},
    {"GB", "exempt", "VAT exempt", "0", "false"},
    {"DE", "ust_19", "Umsatzsteuer 19%", "19", "true"},
    {"DE", "ust_7", "Umsatzsteuer ermäßigt 7%", "7", "false"},
    {"DE", "steuerfrei", "Steuerfrei", "0", "false"},
    {"FR", "tva_20", "TVA taux normal 20%", "20", "true"},
    {"FR", "tva_10", "TVA taux intermédiaire 10%", "10", "false"},
    {"FR", "tva_5_5", "TVA taux réduit 5,5%", "5.5", "false"},
    {"FR", "tva_2_1", "TVA taux particulier 2,1%", "2.1", "false"},
    {"FR", "exonere", "Exonéré de TVA", "0", "false"},
    {"IT", "iva_22", "IVA aliquota ordinaria 22%", "22", "true"},
    {"IT", "iva_10", "IVA aliquota ridotta 10%", "10", "false"},
    {"IT", "iva_5", "IVA aliquota ridotta 5%", "5", "false"},
    {"IT", "iva_4", "IVA aliquota minima 4%", "4", "false"},
    {"IT", "esente", "Esente IVA", "0", "false"},
};

static const country_t *instance_country(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    const char *code = api->setting(ctx, "country");
    if (code == NULL)
        code = "CO";
    for (size_t i = 0; i < sizeof(countries) / sizeof(countries[0]); i++)
        if (strcmp(countries[i].country, code) == 0)
            return &countries[i];
    return NULL;
}

/* ---- helpers ---- */

/* The same statement for both tiers: pooled filters on tenant_id, siloed tables have no such column. */
typedef struct {
    const char *pooled;
    const char *siloed;
} tiered_sql_t;

static int exec_tiered(const ftp_host_api_t *api, ftp_ctx_t *ctx, const tiered_sql_t *sql, int nparams, const char *const *params,
                       ftp_result_t **result)
{
    const char *text = api->tier(ctx) == FTP_TIER_STANDARD ? sql->pooled : sql->siloed;
    return api->db_exec(ctx, text, nparams, params, result);
}

static int copy_out(const ftp_host_api_t *api, const char *json, char **output_json)
{
    size_t len = strlen(json) + 1;
    *output_json = api->alloc(len);
    if (*output_json == NULL)
        return FTP_E_NOMEM;
    memcpy(*output_json, json, len);
    return FTP_OK;
}

/* Runs a query returning one JSON text in row 0, column 0, and hands it back as the action's output. */
static int json_query(const ftp_host_api_t *api, ftp_ctx_t *ctx, const tiered_sql_t *sql, int nparams, const char *const *params,
                      char **output_json, int *rows)
{
    ftp_result_t *res = NULL;
    int rc = exec_tiered(api, ctx, sql, nparams, params, &res);
    if (rc != FTP_OK)
        return rc;
    *rows = api->result_rows(res);
    if (*rows > 0)
        rc = copy_out(api, api->result_value(res, 0, 0), output_json);
    api->result_free(res);
    return rc;
}

static int valid_date(const char *s)
{
    static const int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (s == NULL || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return 0;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return 0;
    int y = atoi(s), m = atoi(s + 5), d = atoi(s + 8);
    if (y < 1 || m < 1 || m > 12 || d < 1 || d > days[m - 1])
        return 0;
    return m != 2 || d < 29 || (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0));
}

/* ---- lifecycle ---- */

static int create_schema(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    return api->apply_tenant_migrations(ctx);
}

static int seed_reference_data(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    const country_t *country = instance_country(api, ctx);
    if (country == NULL) {
        api->set_error(ctx, "setting country is not one of the supported countries");
        return FTP_E_INVALID;
    }
    for (size_t i = 0; i < sizeof(tax_rates) / sizeof(tax_rates[0]); i++) {
        const tax_rate_t *t = &tax_rates[i];
        if (strcmp(t->country, country->country) != 0)
            continue;
        const char *params[] = {t->code, t->name, t->rate, t->is_default};
        int rc = api->db_exec(ctx,
                              "INSERT INTO tax_rates (code, name, rate_percent, is_default)"
                              " VALUES ($1, $2, $3::numeric, $4::boolean) ON CONFLICT DO NOTHING",
                              4, params, NULL);
        if (rc != FTP_OK)
            return rc;
    }
    return FTP_OK;
}

/* The first store and its first register, so a new instance can sell right away. */
static int create_main_store(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    const country_t *country = instance_country(api, ctx);
    if (country == NULL) {
        api->set_error(ctx, "setting country is not one of the supported countries");
        return FTP_E_INVALID;
    }
    const char *name = api->setting(ctx, "business_name");
    const char *timezone = api->setting(ctx, "timezone");
    const char *currency = api->setting(ctx, "currency");
    if (name == NULL)
        name = "Main store";
    if (timezone == NULL)
        timezone = country->timezone;
    if (currency == NULL)
        currency = country->currency;

    ftp_result_t *res = NULL;
    const char *tz_params[] = {timezone};
    int rc = api->db_exec(ctx, "SELECT 1 FROM pg_timezone_names WHERE name = $1", 1, tz_params, &res);
    if (rc != FTP_OK)
        return rc;
    int known = api->result_rows(res) > 0;
    api->result_free(res);
    if (!known) {
        api->set_error(ctx, "setting timezone '%s' is not a known IANA time zone", timezone);
        return FTP_E_INVALID;
    }

    const char *params[] = {name, timezone, currency};
    rc = api->db_exec(ctx, "INSERT INTO stores (code, name, timezone, currency) VALUES ('main', $1, $2, $3) ON CONFLICT DO NOTHING",
                      3, params, NULL);
    if (rc != FTP_OK)
        return rc;
    return api->db_exec(ctx,
                        "INSERT INTO registers (store_code, code, name) VALUES ('main', 'R1', 'Register 1') ON CONFLICT DO NOTHING",
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
    /* no password: the POS app emails the invitation */
    return api->db_exec(ctx,
                        "INSERT INTO users (email, name, role, status) VALUES (lower($1), $2, 'admin', 'invited')"
                        " ON CONFLICT DO NOTHING",
                        2, params, NULL);
}

static int init_state(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    return api->db_exec(ctx, "INSERT INTO tenant_state (status) VALUES ('active') ON CONFLICT DO NOTHING", 0, NULL, NULL);
}

static const tiered_sql_t set_state_sql = {
    "INSERT INTO tenant_state (status) VALUES ($1) ON CONFLICT (tenant_id)"
    " DO UPDATE SET status = EXCLUDED.status, changed_at = now() WHERE tenant_state.tenant_id = " TENANT,
    "INSERT INTO tenant_state (status) VALUES ($1) ON CONFLICT (singleton)"
    " DO UPDATE SET status = EXCLUDED.status, changed_at = now()",
};

static int suspend(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    const char *params[] = {"suspended"};
    return exec_tiered(api, ctx, &set_state_sql, 1, params, NULL);
}

static int resume(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    const char *params[] = {"active"};
    return exec_tiered(api, ctx, &set_state_sql, 1, params, NULL);
}

static int delete_tenant_data(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    /* children before parents */
    static const char *const deletes[] = {
        "DELETE FROM receipts WHERE tenant_id = " TENANT,     "DELETE FROM registers WHERE tenant_id = " TENANT,
        "DELETE FROM stock_levels WHERE tenant_id = " TENANT, "DELETE FROM products WHERE tenant_id = " TENANT,
        "DELETE FROM stores WHERE tenant_id = " TENANT,       "DELETE FROM tax_rates WHERE tenant_id = " TENANT,
        "DELETE FROM users WHERE tenant_id = " TENANT,        "DELETE FROM tenant_state WHERE tenant_id = " TENANT,
    };
    if (api->tier(ctx) != FTP_TIER_STANDARD)
        return FTP_OK;
    for (size_t i = 0; i < sizeof(deletes) / sizeof(deletes[0]); i++) {
        int rc = api->db_exec(ctx, deletes[i], 0, NULL, NULL);
        if (rc != FTP_OK)
            return rc;
    }
    return FTP_OK;
}

static const tiered_sql_t init_stock_sql = {
    "INSERT INTO stock_levels (store_code, sku) SELECT s.code, p.sku FROM stores s CROSS JOIN products p"
    " WHERE s.tenant_id = " TENANT " AND p.tenant_id = " TENANT " AND p.active ON CONFLICT DO NOTHING",
    "INSERT INTO stock_levels (store_code, sku) SELECT s.code, p.sku FROM stores s CROSS JOIN products p"
    " WHERE p.active ON CONFLICT DO NOTHING",
};

typedef struct {
    const char *feature;
    const char *what;
    tiered_sql_t count;
} usage_check_t;

static const usage_check_t usage_checks[] = {
    {"max_stores",
     "open stores",
     {"SELECT count(*) FROM stores WHERE tenant_id = " TENANT " AND status = 'open'",
      "SELECT count(*) FROM stores WHERE status = 'open'"}},
    {"max_registers", "registers", {"SELECT count(*) FROM registers WHERE tenant_id = " TENANT, "SELECT count(*) FROM registers"}},
    {"max_users",
     "users",
     {"SELECT count(*) FROM users WHERE tenant_id = " TENANT " AND status <> 'disabled'",
      "SELECT count(*) FROM users WHERE status <> 'disabled'"}},
};

static int apply_features(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    /* stock tracking switched on: every active product gets a zero stock line in every store */
    if (api->feature(ctx, "stock_tracking", NULL)) {
        int rc = exec_tiered(api, ctx, &init_stock_sql, 0, NULL, NULL);
        if (rc != FTP_OK)
            return rc;
    }
    /* a lowered limit never closes stores or disables users; the app blocks new ones and we tell operators */
    for (size_t i = 0; i < sizeof(usage_checks) / sizeof(usage_checks[0]); i++) {
        const usage_check_t *c = &usage_checks[i];
        int64_t limit = 0;
        if (!api->feature(ctx, c->feature, &limit))
            continue;
        ftp_result_t *res = NULL;
        int rc = exec_tiered(api, ctx, &c->count, 0, NULL, &res);
        if (rc != FTP_OK)
            return rc;
        long long used = atoll(api->result_value(res, 0, 0));
        api->result_free(res);
        if (used > limit)
            api->log(ctx, FTP_LOG_WARN, "%lld %s exceed %s = %lld; new ones are refused until some are removed", used, c->what,
                     c->feature, (long long)limit);
    }
    return FTP_OK;
}

static const ftp_step_t steps[] = {
    {FTP_LIFECYCLE_PROVISION, "create_schema", 1, 60000, create_schema, NULL},
    {FTP_LIFECYCLE_PROVISION, "seed_reference_data", 1, 30000, seed_reference_data, NULL},
    {FTP_LIFECYCLE_PROVISION, "create_main_store", 1, 10000, create_main_store, NULL},
    {FTP_LIFECYCLE_PROVISION, "create_admin", 1, 10000, create_admin, NULL},
    {FTP_LIFECYCLE_PROVISION, "init_state", 1, 10000, init_state, NULL},
    {FTP_LIFECYCLE_DEPROVISION, "delete_tenant_data", 1, 60000, delete_tenant_data, NULL},
    {FTP_LIFECYCLE_SUSPEND, "mark_suspended", 1, 10000, suspend, NULL},
    {FTP_LIFECYCLE_RESUME, "mark_active", 1, 10000, resume, NULL},
    {FTP_LIFECYCLE_FEATURES_CHANGED, "apply_features", 1, 30000, apply_features, NULL},
};

/* ---- actions ---- */

#define CODE_SCHEMA "{\"type\":\"string\",\"minLength\":1,\"maxLength\":40,\"pattern\":\"^[A-Za-z0-9_.-]+$\"}"

static const char close_register_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"store_code\":" CODE_SCHEMA ",\"register_code\":" CODE_SCHEMA ","
    "\"counted_cash\":{\"type\":\"number\",\"minimum\":0,\"maximum\":9999999999,"
    "\"description\":\"Cash counted in the drawer at closing\"}},"
    "\"required\":[\"store_code\",\"register_code\",\"counted_cash\"],\"additionalProperties\":false}";

/* Closes an open register: expected cash is the opening float plus completed cash receipts since it opened. */
static const tiered_sql_t close_register_sql = {
    "WITH r AS (SELECT store_code, code, opening_float, opened_at FROM registers"
    "  WHERE tenant_id = " TENANT " AND store_code = $1 AND code = $2 AND status = 'open' FOR UPDATE),"
    " s AS (SELECT count(x.id) AS receipts, coalesce(sum(x.total), 0) AS gross,"
    "  coalesce(sum(x.total) FILTER (WHERE x.payment_method = 'cash'), 0) AS cash"
    "  FROM r LEFT JOIN receipts x ON x.tenant_id = " TENANT " AND x.store_code = r.store_code"
    "  AND x.register_code = r.code AND x.status = 'completed' AND x.created_at >= r.opened_at)"
    " UPDATE registers g SET status = 'closed', closed_at = now(), counted_cash = $3::numeric FROM r, s"
    " WHERE g.tenant_id = " TENANT " AND g.store_code = r.store_code AND g.code = r.code"
    " RETURNING json_build_object('store_code', g.store_code, 'register_code', g.code, 'opened_at', r.opened_at,"
    "  'closed_at', g.closed_at, 'receipts', s.receipts, 'gross_sales', s.gross,"
    "  'expected_cash', r.opening_float + s.cash, 'counted_cash', g.counted_cash,"
    "  'variance', g.counted_cash - (r.opening_float + s.cash))::text",
    "WITH r AS (SELECT store_code, code, opening_float, opened_at FROM registers"
    "  WHERE store_code = $1 AND code = $2 AND status = 'open' FOR UPDATE),"
    " s AS (SELECT count(x.id) AS receipts, coalesce(sum(x.total), 0) AS gross,"
    "  coalesce(sum(x.total) FILTER (WHERE x.payment_method = 'cash'), 0) AS cash"
    "  FROM r LEFT JOIN receipts x ON x.store_code = r.store_code"
    "  AND x.register_code = r.code AND x.status = 'completed' AND x.created_at >= r.opened_at)"
    " UPDATE registers g SET status = 'closed', closed_at = now(), counted_cash = $3::numeric FROM r, s"
    " WHERE g.store_code = r.store_code AND g.code = r.code"
    " RETURNING json_build_object('store_code', g.store_code, 'register_code', g.code, 'opened_at', r.opened_at,"
    "  'closed_at', g.closed_at, 'receipts', s.receipts, 'gross_sales', s.gross,"
    "  'expected_cash', r.opening_float + s.cash, 'counted_cash', g.counted_cash,"
    "  'variance', g.counted_cash - (r.opening_float + s.cash))::text",
};

static const tiered_sql_t register_exists_sql = {
    "SELECT status FROM registers WHERE tenant_id = " TENANT " AND store_code = $1 AND code = $2",
    "SELECT status FROM registers WHERE store_code = $1 AND code = $2",
};

static int close_register(const ftp_host_api_t *api, ftp_ctx_t *ctx, const char *input_json, char **output_json)
{
    const char *params[] = {api->payload_get(ctx, "store_code"), api->payload_get(ctx, "register_code"),
                            api->payload_get(ctx, "counted_cash")};
    if (params[0] == NULL || params[1] == NULL || params[2] == NULL) {
        api->set_error(ctx, "store_code, register_code and counted_cash are required");
        return FTP_E_INVALID;
    }
    int rows = 0;
    int rc = json_query(api, ctx, &close_register_sql, 3, params, output_json, &rows);
    if (rc != FTP_OK)
        return rc;
    if (rows > 0) {
        rc = api->emit_event(ctx, "pos.register.closed.v1", *output_json);
        if (rc != FTP_OK) {
            api->free(*output_json);
            *output_json = NULL;
        }
        return rc;
    }

    ftp_result_t *res = NULL;
    rc = exec_tiered(api, ctx, &register_exists_sql, 2, params, &res);
    if (rc != FTP_OK)
        return rc;
    int exists = api->result_rows(res) > 0;
    api->result_free(res);
    if (!exists) {
        api->set_error(ctx, "register %s in store %s does not exist", params[1], params[0]);
        return FTP_E_NOTFOUND;
    }
    api->set_error(ctx, "register %s in store %s is not open", params[1], params[0]);
    return FTP_E_CONFLICT;
}

#define DATE_SCHEMA "{\"type\":\"string\",\"pattern\":\"^[0-9]{4}-[0-9]{2}-[0-9]{2}$\"}"

static const char sales_summary_schema[] = "{\"type\":\"object\",\"properties\":{"
                                           "\"from\":" DATE_SCHEMA ",\"to\":" DATE_SCHEMA ",\"store_code\":" CODE_SCHEMA "},"
                                           "\"required\":[\"from\",\"to\"],\"additionalProperties\":false}";

/* Completed receipts between two dates inclusive, each dated in its own store's time zone. */
static const tiered_sql_t sales_summary_sql = {
    "WITH x AS (SELECT r.payment_method, r.total, r.tax_total FROM receipts r"
    "  JOIN stores s ON s.tenant_id = r.tenant_id AND s.code = r.store_code"
    "  WHERE r.tenant_id = " TENANT " AND s.tenant_id = " TENANT " AND r.status = 'completed'"
    "  AND ($3::text IS NULL OR r.store_code = $3::text)"
    "  AND (r.created_at AT TIME ZONE s.timezone)::date BETWEEN $1::date AND $2::date),"
    " m AS (SELECT payment_method, count(*) AS receipts, sum(total) AS total FROM x GROUP BY payment_method)"
    " SELECT json_build_object('from', $1::date, 'to', $2::date, 'store_code', $3::text,"
    "  'receipts', (SELECT count(*) FROM x), 'gross_sales', (SELECT coalesce(sum(total), 0) FROM x),"
    "  'tax', (SELECT coalesce(sum(tax_total), 0) FROM x),"
    "  'by_payment_method', (SELECT coalesce(json_object_agg(payment_method,"
    "   json_build_object('receipts', receipts, 'total', total) ORDER BY payment_method), '{}'::json) FROM m))::text",
    "WITH x AS (SELECT r.payment_method, r.total, r.tax_total FROM receipts r"
    "  JOIN stores s ON s.code = r.store_code"
    "  WHERE r.status = 'completed'"
    "  AND ($3::text IS NULL OR r.store_code = $3::text)"
    "  AND (r.created_at AT TIME ZONE s.timezone)::date BETWEEN $1::date AND $2::date),"
    " m AS (SELECT payment_method, count(*) AS receipts, sum(total) AS total FROM x GROUP BY payment_method)"
    " SELECT json_build_object('from', $1::date, 'to', $2::date, 'store_code', $3::text,"
    "  'receipts', (SELECT count(*) FROM x), 'gross_sales', (SELECT coalesce(sum(total), 0) FROM x),"
    "  'tax', (SELECT coalesce(sum(tax_total), 0) FROM x),"
    "  'by_payment_method', (SELECT coalesce(json_object_agg(payment_method,"
    "   json_build_object('receipts', receipts, 'total', total) ORDER BY payment_method), '{}'::json) FROM m))::text",
};

static int sales_summary(const ftp_host_api_t *api, ftp_ctx_t *ctx, const char *input_json, char **output_json)
{
    const char *params[] = {api->payload_get(ctx, "from"), api->payload_get(ctx, "to"), api->payload_get(ctx, "store_code")};
    if (!valid_date(params[0]) || !valid_date(params[1])) {
        api->set_error(ctx, "from and to must be calendar dates (YYYY-MM-DD)");
        return FTP_E_INVALID;
    }
    /* same-length ISO dates compare like strings */
    if (strcmp(params[0], params[1]) > 0) {
        api->set_error(ctx, "from (%s) is after to (%s)", params[0], params[1]);
        return FTP_E_INVALID;
    }
    int rows = 0;
    return json_query(api, ctx, &sales_summary_sql, 3, params, output_json, &rows);
}

static const char adjust_stock_schema[] = "{\"type\":\"object\",\"properties\":{"
                                          "\"store_code\":" CODE_SCHEMA ",\"sku\":" CODE_SCHEMA ","
                                          "\"delta\":{\"type\":\"number\",\"minimum\":-1000000,\"maximum\":1000000,"
                                          "\"description\":\"Units to add (received) or remove (negative: shrinkage, count)\"}},"
                                          "\"required\":[\"store_code\",\"sku\",\"delta\"],\"additionalProperties\":false}";

static const tiered_sql_t stock_refs_sql = {
    "SELECT (SELECT count(*) FROM stores WHERE tenant_id = " TENANT " AND code = $1),"
    " (SELECT count(*) FROM products WHERE tenant_id = " TENANT " AND sku = $2)",
    "SELECT (SELECT count(*) FROM stores WHERE code = $1), (SELECT count(*) FROM products WHERE sku = $2)",
};

static const tiered_sql_t adjust_stock_sql = {
    "INSERT INTO stock_levels (store_code, sku, quantity) VALUES ($1, $2, $3::numeric)"
    " ON CONFLICT (tenant_id, store_code, sku) DO UPDATE SET quantity = stock_levels.quantity + EXCLUDED.quantity,"
    " updated_at = now() WHERE stock_levels.tenant_id = " TENANT
    " RETURNING json_build_object('store_code', store_code, 'sku', sku, 'quantity', quantity)::text",
    "INSERT INTO stock_levels (store_code, sku, quantity) VALUES ($1, $2, $3::numeric)"
    " ON CONFLICT (store_code, sku) DO UPDATE SET quantity = stock_levels.quantity + EXCLUDED.quantity,"
    " updated_at = now()"
    " RETURNING json_build_object('store_code', store_code, 'sku', sku, 'quantity', quantity)::text",
};

static int adjust_stock(const ftp_host_api_t *api, ftp_ctx_t *ctx, const char *input_json, char **output_json)
{
    const char *params[] = {api->payload_get(ctx, "store_code"), api->payload_get(ctx, "sku"), api->payload_get(ctx, "delta")};
    if (params[0] == NULL || params[1] == NULL || params[2] == NULL) {
        api->set_error(ctx, "store_code, sku and delta are required");
        return FTP_E_INVALID;
    }
    ftp_result_t *res = NULL;
    int rc = exec_tiered(api, ctx, &stock_refs_sql, 2, params, &res);
    if (rc != FTP_OK)
        return rc;
    int store_found = atoi(api->result_value(res, 0, 0)) > 0;
    int product_found = atoi(api->result_value(res, 0, 1)) > 0;
    api->result_free(res);
    if (!store_found || !product_found) {
        api->set_error(ctx, "%s %s does not exist", store_found ? "product" : "store", store_found ? params[1] : params[0]);
        return FTP_E_NOTFOUND;
    }
    int rows = 0;
    return json_query(api, ctx, &adjust_stock_sql, 3, params, output_json, &rows);
}

static const ftp_action_t actions[] = {
    {"close-register", "Close an open register and report expected cash, counted cash and the variance", close_register_schema,
     "registers", close_register},
    {"sales-summary", "Completed sales between two dates by payment method, for one store or all", sales_summary_schema,
     "sales_reports", sales_summary},
    {"adjust-stock", "Add or remove units of a product in a store's stock", adjust_stock_schema, "stock_tracking", adjust_stock},
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
    .product_code = "pos",
    .product_name = "Farutech POS",
    .description = "Point of sale for retail and restaurants: registers and receipts, catalog and prices, taxes and "
                   "payment methods, stock per store, offline mode, loyalty, gift cards, kitchen display and sales reports",
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
