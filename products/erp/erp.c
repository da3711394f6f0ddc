/*
 * Farutech ERP: general ledger, sales, purchasing, inventory across warehouses and payroll for
 * small and mid-size companies, with several companies and currencies per instance. This file is
 * the whole plugin: catalog, tenant schema, lifecycle steps and the ledger actions.
 */
#include <farutech/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const ftp_host_api_t *host;

#define CODES(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- catalog ---- */

static const ftp_module_t modules[] = {
    {"finance", "Finance", "General ledger, chart of accounts, bank reconciliation, companies and currencies", NULL},
    {"sales", "Sales", "Quotes, sales orders and customer invoices posted to receivables", CODES("finance")},
    {"supply_chain", "Supply chain", "Purchasing, goods receipts and stock across warehouses", CODES("finance")},
    {"payroll", "Payroll and HR", "Employees, contracts, pay runs and payslips posted to the ledger", CODES("finance")},
    {"analytics", "Analytics", "Financial statements, period comparisons and consolidated reports", CODES("finance")},
};

static const ftp_feature_t features[] = {
    {"general_ledger", "finance", "General ledger", "Chart of accounts and double-entry journal postings", FTP_FEATURE_FLAG, 1,
     NULL, NULL},
    {"max_users", "finance", "Users", "Users who can sign in", FTP_FEATURE_LIMIT, 5, NULL, "users"},
    {"storage_gb", "finance", "Document storage", "Storage for attachments, scanned bills and exports", FTP_FEATURE_LIMIT, 10, NULL,
     "GB"},
    {"bank_reconciliation", "finance", "Bank reconciliation", "Import bank statements and match them to ledger entries",
     FTP_FEATURE_FLAG, 1, CODES("general_ledger"), NULL},
    {"multi_currency", "finance", "Multi-currency", "Post and invoice in foreign currencies with exchange rates", FTP_FEATURE_FLAG,
     1, CODES("general_ledger"), NULL},
    {"multi_company", "finance", "Multi-company", "Several legal entities in one instance, with inter-company postings",
     FTP_FEATURE_FLAG, 1, CODES("general_ledger"), NULL},
    {"max_companies", "finance", "Companies", "Legal entities the instance can hold", FTP_FEATURE_LIMIT, 3, CODES("multi_company"),
     "companies"},
    {"invoicing", "sales", "Invoicing", "Customer invoices and credit notes posted to receivables", FTP_FEATURE_FLAG, 1,
     CODES("general_ledger"), NULL},
    {"recurring_invoices", "sales", "Recurring invoices", "Contract and subscription billing on a schedule", FTP_FEATURE_FLAG, 1,
     CODES("invoicing"), NULL},
    {"inventory", "supply_chain", "Inventory", "Items, stock levels, transfers and valuation", FTP_FEATURE_FLAG, 1,
     CODES("general_ledger"), NULL},
    {"max_warehouses", "supply_chain", "Warehouses", "Warehouses stock can be kept in", FTP_FEATURE_LIMIT, 1, CODES("inventory"),
     "warehouses"},
    {"purchase_orders", "supply_chain", "Purchase orders", "Purchase orders, goods receipts and supplier bills", FTP_FEATURE_FLAG,
     1, CODES("inventory"), NULL},
    {"payroll", "payroll", "Payroll", "Employees, pay runs and payslips posted to the ledger", FTP_FEATURE_FLAG, 1,
     CODES("general_ledger"), NULL},
    {"max_employees", "payroll", "Employees on payroll", "Employees who can be paid", FTP_FEATURE_LIMIT, 25, CODES("payroll"),
     "employees"},
    {"advanced_reporting", "analytics", "Advanced reporting", "Income statement, period comparisons and consolidation",
     FTP_FEATURE_FLAG, 1, CODES("general_ledger"), NULL},
};

static const ftp_plan_feature_t essentials_features[] = {
    {"general_ledger", 1}, {"max_users", 5}, {"storage_gb", 10}, {"invoicing", 1}, {"inventory", 1}, {"max_warehouses", 1},
};

static const ftp_plan_feature_t professional_features[] = {
    {"general_ledger", 1}, {"max_users", 25},         {"storage_gb", 100}, {"bank_reconciliation", 1}, {"multi_currency", 1},
    {"invoicing", 1},      {"recurring_invoices", 1}, {"inventory", 1},    {"max_warehouses", 5},      {"purchase_orders", 1},
    {"payroll", 1},        {"max_employees", 100},
};

static const ftp_plan_feature_t enterprise_features[] = {
    {"general_ledger", 1},  {"max_users", 250},     {"storage_gb", 1000}, {"bank_reconciliation", 1}, {"multi_currency", 1},
    {"multi_company", 1},   {"max_companies", 10},  {"invoicing", 1},     {"recurring_invoices", 1},  {"inventory", 1},
    {"max_warehouses", 50}, {"purchase_orders", 1}, {"payroll", 1},       {"max_employees", 2000},    {"advanced_reporting", 1},
};

static const ftp_plan_t plans[] = {
    {"essentials", "Essentials", "Ledger, invoicing and one warehouse for a small business", 1, FTP_TABLE(essentials_features), 0},
    {"professional", "Professional", "Purchasing, payroll, several warehouses and foreign currencies", 1,
     FTP_TABLE(professional_features), 14},
    {"enterprise", "Enterprise", "Several companies, consolidated reporting and large teams", 1, FTP_TABLE(enterprise_features), 0},
};

#define DATE_PATTERN "\"pattern\":\"^[0-9]{4}-[0-9]{2}-[0-9]{2}$\""
#define COMPANY_PROPERTY "\"company\":{\"type\":\"string\",\"pattern\":\"^[A-Z0-9_]{1,16}$\",\"default\":\"MAIN\"}"
#define CURRENCY_ENUM "[\"USD\",\"EUR\",\"GBP\",\"CAD\",\"AUD\",\"JPY\",\"CHF\",\"MXN\",\"BRL\",\"COP\",\"CLP\",\"PEN\"]"

static const char settings_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"admin_email\":{\"type\":\"string\",\"format\":\"email\",\"maxLength\":254,\"title\":\"Administrator email\"},"
    "\"admin_name\":{\"type\":\"string\",\"maxLength\":200,\"title\":\"Administrator name\"},"
    "\"company_name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200,\"title\":\"Company name\","
    "\"description\":\"Legal name of the first company\"},"
    "\"base_currency\":{\"type\":\"string\",\"enum\":" CURRENCY_ENUM ",\"default\":\"USD\",\"title\":\"Base currency\"},"
    "\"fiscal_year_start_month\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":12,\"default\":1,"
    "\"title\":\"First month of the fiscal year\"},"
    "\"inventory_costing\":{\"type\":\"string\",\"enum\":[\"fifo\",\"weighted_average\",\"standard\"],"
    "\"default\":\"weighted_average\",\"title\":\"Inventory costing method\"}},"
    "\"required\":[\"admin_email\"],\"additionalProperties\":false}";

/* ---- tenant schema ---- */

/* clang-format off */
#define TENANT_ID "tenant_id uuid NOT NULL DEFAULT current_setting('farutech.tenant_id')::uuid,"
#define ISOLATE(t)                                                                                                            \
    "ALTER TABLE " t " ENABLE ROW LEVEL SECURITY;"                                                                             \
    "ALTER TABLE " t " FORCE ROW LEVEL SECURITY;"                                                                              \
    "DROP POLICY IF EXISTS tenant_isolation ON " t ";"                                                                         \
    "CREATE POLICY tenant_isolation ON " t " USING (tenant_id = current_setting('farutech.tenant_id', true)::uuid)"            \
    " WITH CHECK (tenant_id = current_setting('farutech.tenant_id', true)::uuid);"

#define USER_COLUMNS                                                                                                          \
    "email text NOT NULL,"                                                                                                     \
    "name text,"                                                                                                               \
    "role text NOT NULL CHECK (role IN ('admin', 'accountant', 'sales', 'purchasing', 'warehouse', 'hr', 'viewer')),"          \
    "status text NOT NULL DEFAULT 'invited' CHECK (status IN ('invited', 'active', 'disabled')),"                              \
    "created_at timestamptz NOT NULL DEFAULT now(),"
#define CURRENCY_COLUMNS                                                                                                      \
    "code text NOT NULL CHECK (code ~ '^[A-Z]{3}$'),"                                                                          \
    "name text NOT NULL,"                                                                                                      \
    "symbol text NOT NULL,"                                                                                                    \
    "decimals smallint NOT NULL DEFAULT 2 CHECK (decimals BETWEEN 0 AND 4),"                                                   \
    "active boolean NOT NULL DEFAULT true,"
#define COMPANY_COLUMNS                                                                                                       \
    "code text NOT NULL,"                                                                                                      \
    "name text NOT NULL,"                                                                                                      \
    "base_currency text NOT NULL,"                                                                                             \
    "fiscal_year_start_month smallint NOT NULL DEFAULT 1 CHECK (fiscal_year_start_month BETWEEN 1 AND 12),"                   \
    "inventory_costing text NOT NULL DEFAULT 'weighted_average'"                                                               \
    " CHECK (inventory_costing IN ('fifo', 'weighted_average', 'standard')),"                                                  \
    "created_at timestamptz NOT NULL DEFAULT now(),"
#define ACCOUNT_COLUMNS                                                                                                       \
    "code text NOT NULL,"                                                                                                      \
    "name text NOT NULL,"                                                                                                      \
    "type text NOT NULL CHECK (type IN ('asset', 'liability', 'equity', 'revenue', 'expense')),"                               \
    "parent_code text,"                                                                                                        \
    "is_postable boolean NOT NULL DEFAULT true,"
#define ENTRY_COLUMNS                                                                                                         \
    "company_code text NOT NULL,"                                                                                              \
    "entry_date date NOT NULL,"                                                                                                \
    "reference text NOT NULL,"                                                                                                 \
    "memo text,"                                                                                                               \
    "currency text NOT NULL,"                                                                                                  \
    "exchange_rate numeric(18, 8) NOT NULL DEFAULT 1 CHECK (exchange_rate > 0),"                                               \
    "status text NOT NULL DEFAULT 'posted' CHECK (status IN ('draft', 'posted', 'reversed')),"                                 \
    "created_at timestamptz NOT NULL DEFAULT now(),"
#define LINE_COLUMNS                                                                                                          \
    "entry_id bigint NOT NULL,"                                                                                                \
    "line_no integer NOT NULL,"                                                                                                \
    "account_code text NOT NULL,"                                                                                              \
    "description text,"                                                                                                        \
    "debit numeric(18, 2) NOT NULL DEFAULT 0 CHECK (debit >= 0),"                                                              \
    "credit numeric(18, 2) NOT NULL DEFAULT 0 CHECK (credit >= 0),"                                                            \
    "CHECK ((debit > 0) <> (credit > 0)),"
#define WAREHOUSE_COLUMNS                                                                                                     \
    "code text NOT NULL,"                                                                                                      \
    "company_code text NOT NULL,"                                                                                              \
    "name text NOT NULL,"                                                                                                      \
    "address text,"                                                                                                            \
    "active boolean NOT NULL DEFAULT true,"

static const char pooled_v1[] =
    "CREATE TABLE IF NOT EXISTS tenant_state (" TENANT_ID
    "status text NOT NULL CHECK (status IN ('active', 'suspended')),"
    "updated_at timestamptz NOT NULL DEFAULT now(),"
    "PRIMARY KEY (tenant_id));" ISOLATE("tenant_state")
    "CREATE TABLE IF NOT EXISTS users (" TENANT_ID "id bigint GENERATED ALWAYS AS IDENTITY," USER_COLUMNS
    "PRIMARY KEY (tenant_id, id),"
    "UNIQUE (tenant_id, email));" ISOLATE("users")
    "CREATE TABLE IF NOT EXISTS currencies (" TENANT_ID CURRENCY_COLUMNS
    "PRIMARY KEY (tenant_id, code));" ISOLATE("currencies")
    "CREATE TABLE IF NOT EXISTS companies (" TENANT_ID COMPANY_COLUMNS
    "PRIMARY KEY (tenant_id, code),"
    "FOREIGN KEY (tenant_id, base_currency) REFERENCES currencies (tenant_id, code));" ISOLATE("companies")
    "CREATE TABLE IF NOT EXISTS accounts (" TENANT_ID ACCOUNT_COLUMNS
    "PRIMARY KEY (tenant_id, code),"
    "FOREIGN KEY (tenant_id, parent_code) REFERENCES accounts (tenant_id, code));" ISOLATE("accounts")
    "CREATE TABLE IF NOT EXISTS journal_entries (" TENANT_ID "id bigint GENERATED ALWAYS AS IDENTITY," ENTRY_COLUMNS
    "PRIMARY KEY (tenant_id, id),"
    "UNIQUE (tenant_id, company_code, reference),"
    "FOREIGN KEY (tenant_id, company_code) REFERENCES companies (tenant_id, code),"
    "FOREIGN KEY (tenant_id, currency) REFERENCES currencies (tenant_id, code));" ISOLATE("journal_entries")
    "CREATE INDEX IF NOT EXISTS journal_entries_by_date ON journal_entries (tenant_id, company_code, entry_date);"
    "CREATE TABLE IF NOT EXISTS journal_lines (" TENANT_ID LINE_COLUMNS
    "PRIMARY KEY (tenant_id, entry_id, line_no),"
    "FOREIGN KEY (tenant_id, entry_id) REFERENCES journal_entries (tenant_id, id),"
    "FOREIGN KEY (tenant_id, account_code) REFERENCES accounts (tenant_id, code));" ISOLATE("journal_lines")
    "CREATE INDEX IF NOT EXISTS journal_lines_by_account ON journal_lines (tenant_id, account_code);";

static const char siloed_v1[] =
    "CREATE TABLE IF NOT EXISTS tenant_state ("
    "singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),"
    "status text NOT NULL CHECK (status IN ('active', 'suspended')),"
    "updated_at timestamptz NOT NULL DEFAULT now());"
    "CREATE TABLE IF NOT EXISTS users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY," USER_COLUMNS
    "UNIQUE (email));"
    "CREATE TABLE IF NOT EXISTS currencies (" CURRENCY_COLUMNS "PRIMARY KEY (code));"
    "CREATE TABLE IF NOT EXISTS companies (" COMPANY_COLUMNS
    "PRIMARY KEY (code),"
    "FOREIGN KEY (base_currency) REFERENCES currencies (code));"
    "CREATE TABLE IF NOT EXISTS accounts (" ACCOUNT_COLUMNS
    "PRIMARY KEY (code),"
    "FOREIGN KEY (parent_code) REFERENCES accounts (code));"
    "CREATE TABLE IF NOT EXISTS journal_entries (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY," ENTRY_COLUMNS
    "UNIQUE (company_code, reference),"
    "FOREIGN KEY (company_code) REFERENCES companies (code),"
    "FOREIGN KEY (currency) REFERENCES currencies (code));"
    "CREATE INDEX IF NOT EXISTS journal_entries_by_date ON journal_entries (company_code, entry_date);"
    "CREATE TABLE IF NOT EXISTS journal_lines (" LINE_COLUMNS
    "PRIMARY KEY (entry_id, line_no),"
    "FOREIGN KEY (entry_id) REFERENCES journal_entries (id),"
    "FOREIGN KEY (account_code) REFERENCES accounts (code));"
    "CREATE INDEX IF NOT EXISTS journal_lines_by_account ON journal_lines (account_code);";

/* v2: stock locations, and where each journal entry came from (manual, api, sales, payroll...) */
static const char pooled_v2[] =
    "CREATE TABLE IF NOT EXISTS warehouses (" TENANT_ID WAREHOUSE_COLUMNS
    "PRIMARY KEY (tenant_id, code),"
    "FOREIGN KEY (tenant_id, company_code) REFERENCES companies (tenant_id, code));" ISOLATE("warehouses")
    "ALTER TABLE journal_entries ADD COLUMN IF NOT EXISTS source text NOT NULL DEFAULT 'manual';";

static const char siloed_v2[] =
    "CREATE TABLE IF NOT EXISTS warehouses (" WAREHOUSE_COLUMNS
    "PRIMARY KEY (code),"
    "FOREIGN KEY (company_code) REFERENCES companies (code));"
    "ALTER TABLE journal_entries ADD COLUMN IF NOT EXISTS source text NOT NULL DEFAULT 'manual';";

static const ftp_migration_t migrations[] = {
    {1, "ledger", pooled_v1, siloed_v1},
    {2, "warehouses_and_entry_source", pooled_v2, siloed_v2},
};

/* Every tenant table, children before parents. */
static const char *const tenant_tables[] = {
    "journal_lines", "journal_entries", "warehouses", "accounts", "companies", "currencies", "users", "tenant_state",
};

/* ---- SQL that differs by tier ----
 * Pooled statements that read, update or delete rows also filter on the tenant explicitly, on
 * top of row-level security. A query macro takes F and calls F("alias.") where the filter goes. */

typedef struct {
    const char *pooled;
    const char *siloed;
} tiered_sql_t;

#define TENANT_ROWS(alias) " AND " alias "tenant_id = current_setting('farutech.tenant_id')::uuid"
#define ANY_ROWS(alias) ""
#define TIERED(query) {query(TENANT_ROWS), query(ANY_ROWS)}

static int exec_tiered(const ftp_host_api_t *api, ftp_ctx_t *ctx, const tiered_sql_t *q, int nparams,
                       const char *const *params, ftp_result_t **result)
{
    const char *sql = api->tier(ctx) == FTP_TIER_STANDARD ? q->pooled : q->siloed;
    return api->db_exec(ctx, sql, nparams, params, result);
}

static const tiered_sql_t q_set_state = {
    "INSERT INTO tenant_state (status) VALUES ($1) ON CONFLICT (tenant_id) DO UPDATE SET status = EXCLUDED.status,"
    " updated_at = now() WHERE tenant_state.tenant_id = current_setting('farutech.tenant_id')::uuid",
    "INSERT INTO tenant_state (status) VALUES ($1) ON CONFLICT (singleton) DO UPDATE SET status = EXCLUDED.status,"
    " updated_at = now()",
};

#define Q_CURRENCY(F) "SELECT code FROM currencies WHERE code = $1 AND active" F("")
static const tiered_sql_t q_currency = TIERED(Q_CURRENCY);

#define Q_COMPANY(F) "SELECT base_currency FROM companies WHERE code = $1" F("")
static const tiered_sql_t q_company = TIERED(Q_COMPANY);

#define Q_MAIN_WAREHOUSE(F)                                                                                                   \
    "INSERT INTO warehouses (code, company_code, name) SELECT 'MAIN', c.code, 'Main warehouse' FROM companies c"              \
    " WHERE c.code = 'MAIN'" F("c.") " ON CONFLICT DO NOTHING"
static const tiered_sql_t q_main_warehouse = TIERED(Q_MAIN_WAREHOUSE);

#define Q_SEATED_USERS(F) "SELECT count(*) FROM users WHERE status <> 'disabled'" F("")
static const tiered_sql_t q_seated_users = TIERED(Q_SEATED_USERS);

/* One row: lines that are not one-sided positive amounts in cents, the first account that is
 * unknown or a header, and whether debits equal credits. Amounts are rounded to cents, so the
 * noise of a binary floating-point number (1260504.2000000000931) passes but 100.001 does not. */
#define Q_CHECK_LINES(F)                                                                                                      \
    "WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(account text, debit numeric, credit numeric)),"              \
    " l AS (SELECT account, coalesce(debit, 0) AS given_debit, coalesce(credit, 0) AS given_credit,"                          \
    " round(coalesce(debit, 0), 2) AS debit, round(coalesce(credit, 0), 2) AS credit FROM x)"                                 \
    " SELECT (SELECT count(*) FROM l WHERE (debit > 0) = (credit > 0) OR debit < 0 OR credit < 0"                             \
    " OR abs(given_debit - debit) >= 0.0005 OR abs(given_credit - credit) >= 0.0005),"                                        \
    " (SELECT min(l.account) FROM l LEFT JOIN accounts a ON a.code = l.account" F("a.")                                       \
    " WHERE a.code IS NULL OR NOT a.is_postable),"                                                                            \
    " (SELECT coalesce(sum(debit), 0) = coalesce(sum(credit), 0) FROM l)"
static const tiered_sql_t q_check_lines = TIERED(Q_CHECK_LINES);

#define Q_TRIAL_BALANCE(F)                                                                                                    \
    "SELECT json_build_object('company', $1::text, 'as_of', coalesce($2::date, current_date), 'currency', $3::text,"         \
    " 'accounts', coalesce(json_agg(json_build_object('code', t.code, 'name', t.name, 'type', t.type, 'debit', t.debit,"     \
    " 'credit', t.credit, 'balance', t.debit - t.credit) ORDER BY t.code), '[]'::json),"                                      \
    " 'total_debit', coalesce(sum(t.debit), 0), 'total_credit', coalesce(sum(t.credit), 0))::text"                           \
    " FROM (SELECT a.code, a.name, a.type, sum(round(l.debit * e.exchange_rate, 2)) AS debit,"                                \
    " sum(round(l.credit * e.exchange_rate, 2)) AS credit"                                                                    \
    " FROM journal_lines l JOIN journal_entries e ON e.id = l.entry_id JOIN accounts a ON a.code = l.account_code"           \
    " WHERE e.company_code = $1 AND e.status = 'posted' AND e.entry_date <= coalesce($2::date, current_date)"                \
    F("e.") F("l.") F("a.") " GROUP BY a.code, a.name, a.type) AS t"
static const tiered_sql_t q_trial_balance = TIERED(Q_TRIAL_BALANCE);

#define Q_INCOME_STATEMENT(F)                                                                                                 \
    "SELECT json_build_object('company', $1::text, 'from', $2::date, 'to', $3::date, 'currency', $4::text,"                  \
    " 'revenue', coalesce(json_agg(json_build_object('code', t.code, 'name', t.name, 'amount', t.amount) ORDER BY t.code)"    \
    " FILTER (WHERE t.type = 'revenue'), '[]'::json),"                                                                        \
    " 'expenses', coalesce(json_agg(json_build_object('code', t.code, 'name', t.name, 'amount', t.amount) ORDER BY t.code)"   \
    " FILTER (WHERE t.type = 'expense'), '[]'::json),"                                                                        \
    " 'total_revenue', coalesce(sum(t.amount) FILTER (WHERE t.type = 'revenue'), 0),"                                         \
    " 'total_expenses', coalesce(sum(t.amount) FILTER (WHERE t.type = 'expense'), 0),"                                        \
    " 'net_income', coalesce(sum(CASE WHEN t.type = 'revenue' THEN t.amount ELSE -t.amount END), 0))::text"                  \
    " FROM (SELECT a.code, a.name, a.type, sum(CASE WHEN a.type = 'revenue'"                                                 \
    " THEN round((l.credit - l.debit) * e.exchange_rate, 2) ELSE round((l.debit - l.credit) * e.exchange_rate, 2) END)"      \
    " AS amount"                                                                                                              \
    " FROM journal_lines l JOIN journal_entries e ON e.id = l.entry_id JOIN accounts a ON a.code = l.account_code"           \
    " WHERE a.type IN ('revenue', 'expense') AND e.company_code = $1 AND e.status = 'posted'"                                \
    " AND e.entry_date BETWEEN $2::date AND $3::date" F("e.") F("l.") F("a.") " GROUP BY a.code, a.name, a.type) AS t"
static const tiered_sql_t q_income_statement = TIERED(Q_INCOME_STATEMENT);

/* ---- SQL shared by both tiers (inserts only: tenant_id comes from its default) ---- */

#define CURRENCY_ROWS                                                                                                         \
    "('USD', 'US dollar', '$', 2), ('EUR', 'Euro', '€', 2), ('GBP', 'Pound sterling', '£', 2),"                                \
    " ('CAD', 'Canadian dollar', 'CA$', 2), ('AUD', 'Australian dollar', 'A$', 2), ('JPY', 'Japanese yen', '¥', 0),"         \
    " ('CHF', 'Swiss franc', 'CHF', 2), ('MXN', 'Mexican peso', 'MX$', 2), ('BRL', 'Brazilian real', 'R$', 2),"              \
    " ('COP', 'Colombian peso', 'COL$', 2), ('CLP', 'Chilean peso', 'CLP$', 0), ('PEN', 'Peruvian sol', 'S/', 2)"

/* $1: one currency code, or NULL for the whole list */
static const char sql_seed_currencies[] =
    "INSERT INTO currencies (code, name, symbol, decimals)"
    " SELECT v.code, v.name, v.symbol, v.decimals FROM (VALUES " CURRENCY_ROWS ") AS v(code, name, symbol, decimals)"
    " WHERE $1::text IS NULL OR v.code = $1 ON CONFLICT DO NOTHING";

static const char sql_seed_company[] =
    "INSERT INTO companies (code, name, base_currency, fiscal_year_start_month, inventory_costing)"
    " VALUES ('MAIN', $1, $2, coalesce($3::smallint, 1), coalesce($4, 'weighted_average')) ON CONFLICT DO NOTHING";

static const char sql_seed_accounts[] =
    "INSERT INTO accounts (code, name, type, parent_code, is_postable) VALUES"
    " ('1000', 'Assets', 'asset', NULL, false),"
    " ('1100', 'Cash and bank', 'asset', '1000', true),"
    " ('1200', 'Accounts receivable', 'asset', '1000', true),"
    " ('1300', 'Inventory', 'asset', '1000', true),"
    " ('2000', 'Liabilities', 'liability', NULL, false),"
    " ('2100', 'Accounts payable', 'liability', '2000', true),"
    " ('2200', 'Sales tax payable', 'liability', '2000', true),"
    " ('2300', 'Payroll liabilities', 'liability', '2000', true),"
    " ('3000', 'Equity', 'equity', NULL, false),"
    " ('3100', 'Retained earnings', 'equity', '3000', true),"
    " ('4000', 'Revenue', 'revenue', NULL, false),"
    " ('4100', 'Sales revenue', 'revenue', '4000', true),"
    " ('5000', 'Cost of goods sold', 'expense', NULL, true),"
    " ('6000', 'Operating expenses', 'expense', NULL, false),"
    " ('6100', 'Salaries and wages', 'expense', '6000', true)"
    " ON CONFLICT DO NOTHING";

static const char sql_post_entry[] =
    "WITH e AS (INSERT INTO journal_entries (company_code, entry_date, reference, memo, currency, exchange_rate, source)"
    " VALUES ($1, $2::date, $3, $4, $5, coalesce($6::numeric, 1), 'api')"
    " RETURNING id, company_code, entry_date, reference, currency, exchange_rate),"
    " l AS (INSERT INTO journal_lines (entry_id, line_no, account_code, description, debit, credit)"
    " SELECT e.id, x.ord, x.account, x.description, round(coalesce(x.debit, 0), 2), round(coalesce(x.credit, 0), 2)"
    " FROM e, ROWS FROM (jsonb_to_recordset($7::jsonb) AS (account text, description text, debit numeric, credit numeric))"
    " WITH ORDINALITY AS x(account, description, debit, credit, ord) RETURNING debit)"
    " SELECT json_build_object('entry_id', e.id, 'company', e.company_code, 'entry_date', e.entry_date,"
    " 'reference', e.reference, 'currency', e.currency, 'exchange_rate', e.exchange_rate,"
    " 'lines', (SELECT count(*) FROM l), 'total', (SELECT sum(debit) FROM l))::text FROM e";
static const tiered_sql_t q_post_entry = {sql_post_entry, sql_post_entry};
/* clang-format on */

/* ---- helpers ---- */

/* Runs a query and copies the first column of its first row into buf ("" for NULL); *found
 * tells whether there was a row. */
static int query_value(const ftp_host_api_t *api, ftp_ctx_t *ctx, const tiered_sql_t *q, int nparams, const char *const *params,
                       char *buf, size_t buflen, int *found)
{
    ftp_result_t *res = NULL;
    int rc = exec_tiered(api, ctx, q, nparams, params, &res);
    if (rc != FTP_OK)
        return rc;
    *found = api->result_rows(res) > 0;
    const char *v = *found ? api->result_value(res, 0, 0) : NULL;
    snprintf(buf, buflen, "%s", v != NULL ? v : "");
    api->result_free(res);
    return FTP_OK;
}

/* Runs a query returning one JSON text and hands it over as the action's output. */
static int query_json(const ftp_host_api_t *api, ftp_ctx_t *ctx, const tiered_sql_t *q, int nparams, const char *const *params,
                      char **output_json)
{
    ftp_result_t *res = NULL;
    int rc = exec_tiered(api, ctx, q, nparams, params, &res);
    if (rc != FTP_OK)
        return rc;
    const char *json = api->result_rows(res) > 0 ? api->result_value(res, 0, 0) : NULL;
    if (json == NULL) {
        api->result_free(res);
        api->set_error(ctx, "the query returned no result");
        return FTP_E_FATAL;
    }
    size_t len = strlen(json) + 1;
    *output_json = api->alloc(len);
    if (*output_json != NULL)
        memcpy(*output_json, json, len);
    api->result_free(res);
    return *output_json != NULL ? FTP_OK : FTP_E_NOMEM;
}

/* YYYY-MM-DD naming a real calendar day. */
static int valid_date(const char *s)
{
    static const int days_in_month[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (s == NULL || strlen(s) != 10)
        return 0;
    for (int i = 0; i < 10; i++) {
        if ((i == 4 || i == 7) ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
            return 0;
    }
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0');
    int d = (s[8] - '0') * 10 + (s[9] - '0');
    if (y < 1 || m < 1 || m > 12 || d < 1)
        return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= days_in_month[m - 1] + (m == 2 && leap);
}

/* Looks up a company's base currency; FTP_E_NOTFOUND when there is no such company. */
static int company_currency(const ftp_host_api_t *api, ftp_ctx_t *ctx, const char *company, char *currency, size_t len)
{
    const char *params[] = {company};
    int found = 0;
    int rc = query_value(api, ctx, &q_company, 1, params, currency, len, &found);
    if (rc == FTP_OK && !found) {
        api->set_error(ctx, "company %s does not exist", company);
        rc = FTP_E_NOTFOUND;
    }
    return rc;
}

static int seed_currencies_if_enabled(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    if (!api->feature(ctx, "multi_currency", NULL))
        return FTP_OK;
    const char *params[] = {NULL};
    return api->db_exec(ctx, sql_seed_currencies, 1, params, NULL);
}

static int seed_warehouse_if_enabled(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    if (!api->feature(ctx, "inventory", NULL))
        return FTP_OK;
    return exec_tiered(api, ctx, &q_main_warehouse, 0, NULL, NULL);
}

static int set_state(const ftp_host_api_t *api, ftp_ctx_t *ctx, const char *status)
{
    const char *params[] = {status};
    return exec_tiered(api, ctx, &q_set_state, 1, params, NULL);
}

/* ---- lifecycle ---- */

static int create_schema(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    return api->apply_tenant_migrations(ctx);
}

/* The base currency, the first company, the chart of accounts; the full currency list and the
 * main warehouse when the plan already includes multi_currency or inventory. */
static int seed_reference_data(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    const char *currency = api->setting(ctx, "base_currency");
    if (currency == NULL)
        currency = "USD";
    const char *currency_params[] = {currency};
    int rc = api->db_exec(ctx, sql_seed_currencies, 1, currency_params, NULL);
    if (rc != FTP_OK)
        return rc;
    char found_code[8];
    int found = 0;
    rc = query_value(api, ctx, &q_currency, 1, currency_params, found_code, sizeof(found_code), &found);
    if (rc != FTP_OK)
        return rc;
    if (!found) {
        api->set_error(ctx, "base_currency %s is not a supported currency", currency);
        return FTP_E_INVALID;
    }

    const char *name = api->setting(ctx, "company_name");
    if (name == NULL)
        name = api->instance_code(ctx) != NULL ? api->instance_code(ctx) : "Main company";
    const char *company_params[] = {
        name,
        currency,
        api->setting(ctx, "fiscal_year_start_month"),
        api->setting(ctx, "inventory_costing"),
    };
    rc = api->db_exec(ctx, sql_seed_company, 4, company_params, NULL);
    if (rc == FTP_OK)
        rc = api->db_exec(ctx, sql_seed_accounts, 0, NULL, NULL);
    if (rc == FTP_OK)
        rc = seed_currencies_if_enabled(api, ctx);
    if (rc == FTP_OK)
        rc = seed_warehouse_if_enabled(api, ctx);
    return rc;
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
    /* no password: the ERP itself sends the invitation */
    return api->db_exec(ctx,
                        "INSERT INTO users (email, name, role, status) VALUES (lower($1), $2, 'admin', 'invited')"
                        " ON CONFLICT DO NOTHING",
                        2, params, NULL);
}

static int init_state(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    return api->db_exec(ctx, "INSERT INTO tenant_state (status) VALUES ('active') ON CONFLICT DO NOTHING", 0, NULL, NULL);
}

static int drop_tenant_data(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    /* siloed: the host drops the instance's database afterwards */
    if (api->tier(ctx) != FTP_TIER_STANDARD)
        return FTP_OK;
    char schema[160] = "";
    const char *s = api->schema(ctx);
    if (s != NULL && api->db_ident(s, schema, sizeof(schema)) != FTP_OK) {
        api->set_error(ctx, "cannot quote schema name %s", s);
        return FTP_E_FATAL;
    }
    for (size_t i = 0; i < sizeof(tenant_tables) / sizeof(tenant_tables[0]); i++) {
        /* a tenant whose provisioning never got as far as the migrations has nothing to delete */
        char name[256], sql[192];
        snprintf(name, sizeof(name), "%s%s%s", schema, schema[0] != '\0' ? "." : "", tenant_tables[i]);
        const char *params[] = {name};
        ftp_result_t *res = NULL;
        int rc = api->db_exec(ctx, "SELECT to_regclass($1)", 1, params, &res);
        if (rc != FTP_OK)
            return rc;
        int exists = api->result_rows(res) > 0 && api->result_value(res, 0, 0) != NULL;
        api->result_free(res);
        if (!exists)
            continue;
        snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE tenant_id = current_setting('farutech.tenant_id')::uuid",
                 tenant_tables[i]);
        rc = api->db_exec(ctx, sql, 0, NULL, NULL);
        if (rc != FTP_OK)
            return rc;
    }
    return FTP_OK;
}

static int suspend(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    return set_state(api, ctx, "suspended");
}

static int resume(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    return set_state(api, ctx, "active");
}

/* Turning multi_currency off keeps the currencies: posted entries still refer to them. */
static int seed_currencies(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    return seed_currencies_if_enabled(api, ctx);
}

static int ensure_main_warehouse(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    return seed_warehouse_if_enabled(api, ctx);
}

/* A lower max_users never disables anyone here (the ERP blocks new sign-ins); operators are told. */
static int check_user_limit(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    int64_t limit = 0;
    if (!api->feature(ctx, "max_users", &limit))
        return FTP_OK;
    char count[32];
    int found = 0;
    int rc = query_value(api, ctx, &q_seated_users, 0, NULL, count, sizeof(count), &found);
    if (rc == FTP_OK && found && strtoll(count, NULL, 10) > limit)
        api->log(ctx, FTP_LOG_WARN, "%s users hold a seat but max_users is now %lld", count, (long long)limit);
    return rc;
}

static const ftp_step_t steps[] = {
    {FTP_LIFECYCLE_PROVISION, "create_schema", 1, 60000, create_schema, NULL},
    {FTP_LIFECYCLE_PROVISION, "seed_reference_data", 1, 30000, seed_reference_data, NULL},
    {FTP_LIFECYCLE_PROVISION, "create_admin", 1, 10000, create_admin, NULL},
    {FTP_LIFECYCLE_PROVISION, "init_state", 1, 10000, init_state, NULL},
    {FTP_LIFECYCLE_DEPROVISION, "drop_tenant_data", 1, 60000, drop_tenant_data, NULL},
    {FTP_LIFECYCLE_SUSPEND, "mark_suspended", 1, 10000, suspend, NULL},
    {FTP_LIFECYCLE_RESUME, "mark_active", 1, 10000, resume, NULL},
    {FTP_LIFECYCLE_FEATURES_CHANGED, "seed_currencies", 1, 10000, seed_currencies, NULL},
    {FTP_LIFECYCLE_FEATURES_CHANGED, "ensure_main_warehouse", 1, 10000, ensure_main_warehouse, NULL},
    {FTP_LIFECYCLE_FEATURES_CHANGED, "check_user_limit", 1, 10000, check_user_limit, NULL},
};

/* ---- actions ---- */

static int post_journal_entry(const ftp_host_api_t *api, ftp_ctx_t *ctx, const char *input_json, char **output_json)
{
    const char *company = api->payload_get(ctx, "company");
    const char *date = api->payload_get(ctx, "entry_date");
    const char *reference = api->payload_get(ctx, "reference");
    const char *currency = api->payload_get(ctx, "currency");
    const char *rate = api->payload_get(ctx, "exchange_rate");
    const char *lines = api->payload_get(ctx, "lines");
    if (company == NULL)
        company = "MAIN";
    if (!valid_date(date)) {
        api->set_error(ctx, "entry_date must be a calendar date (YYYY-MM-DD)");
        return FTP_E_INVALID;
    }
    if (reference == NULL || lines == NULL) {
        api->set_error(ctx, "reference and lines are required");
        return FTP_E_INVALID;
    }

    char base[16];
    int rc = company_currency(api, ctx, company, base, sizeof(base));
    if (rc != FTP_OK)
        return rc;
    if (currency == NULL || strcmp(currency, base) == 0) {
        currency = base;
        rate = NULL;
    } else if (!api->feature(ctx, "multi_currency", NULL)) {
        api->set_error(ctx, "posting in %s needs the multi_currency feature", currency);
        return FTP_E_INVALID;
    } else if (rate == NULL) {
        api->set_error(ctx, "exchange_rate to %s is required for an entry in %s", base, currency);
        return FTP_E_INVALID;
    }
    char code[16];
    int found = 0;
    const char *currency_params[] = {currency};
    rc = query_value(api, ctx, &q_currency, 1, currency_params, code, sizeof(code), &found);
    if (rc != FTP_OK)
        return rc;
    if (!found) {
        api->set_error(ctx, "currency %s is not set up", currency);
        return FTP_E_NOTFOUND;
    }

    ftp_result_t *res = NULL;
    const char *line_params[] = {lines};
    rc = exec_tiered(api, ctx, &q_check_lines, 1, line_params, &res);
    if (rc != FTP_OK)
        return rc;
    const char *bad_lines = api->result_value(res, 0, 0);
    const char *bad_account = api->result_value(res, 0, 1);
    const char *balanced = api->result_value(res, 0, 2);
    if (bad_lines != NULL && strcmp(bad_lines, "0") != 0) {
        api->set_error(ctx, "%s line(s) need exactly one of debit or credit, positive, with at most 2 decimals", bad_lines);
        rc = FTP_E_INVALID;
    } else if (bad_account != NULL) {
        api->set_error(ctx, "account %s does not exist or is a header account", bad_account);
        rc = FTP_E_INVALID;
    } else if (balanced == NULL || strcmp(balanced, "t") != 0) {
        api->set_error(ctx, "debits and credits do not balance");
        rc = FTP_E_INVALID;
    }
    api->result_free(res);
    if (rc != FTP_OK)
        return rc;

    const char *params[] = {company, date, reference, api->payload_get(ctx, "memo"), currency, rate, lines};
    rc = query_json(api, ctx, &q_post_entry, 7, params, output_json);
    if (rc == FTP_E_CONFLICT)
        api->set_error(ctx, "reference %s is already posted in company %s", reference, company);
    if (rc != FTP_OK)
        return rc;
    rc = api->emit_event(ctx, "erp.journal_entry.posted.v1", *output_json);
    if (rc != FTP_OK) {
        api->free(*output_json);
        *output_json = NULL;
    }
    return rc;
}

static int trial_balance(const ftp_host_api_t *api, ftp_ctx_t *ctx, const char *input_json, char **output_json)
{
    const char *company = api->payload_get(ctx, "company");
    const char *as_of = api->payload_get(ctx, "as_of");
    if (company == NULL)
        company = "MAIN";
    if (as_of != NULL && !valid_date(as_of)) {
        api->set_error(ctx, "as_of must be a calendar date (YYYY-MM-DD)");
        return FTP_E_INVALID;
    }
    char base[16];
    int rc = company_currency(api, ctx, company, base, sizeof(base));
    if (rc != FTP_OK)
        return rc;
    const char *params[] = {company, as_of, base};
    return query_json(api, ctx, &q_trial_balance, 3, params, output_json);
}

static int income_statement(const ftp_host_api_t *api, ftp_ctx_t *ctx, const char *input_json, char **output_json)
{
    const char *company = api->payload_get(ctx, "company");
    const char *from = api->payload_get(ctx, "from");
    const char *to = api->payload_get(ctx, "to");
    if (company == NULL)
        company = "MAIN";
    if (!valid_date(from) || !valid_date(to) || strcmp(from, to) > 0) {
        api->set_error(ctx, "from and to must be calendar dates (YYYY-MM-DD), from not after to");
        return FTP_E_INVALID;
    }
    char base[16];
    int rc = company_currency(api, ctx, company, base, sizeof(base));
    if (rc != FTP_OK)
        return rc;
    const char *params[] = {company, from, to, base};
    return query_json(api, ctx, &q_income_statement, 4, params, output_json);
}

static const char post_journal_entry_schema[] =
    "{\"type\":\"object\",\"properties\":{" COMPANY_PROPERTY ","
    "\"entry_date\":{\"type\":\"string\"," DATE_PATTERN "},"
    "\"reference\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":64,\"description\":\"Unique within the company\"},"
    "\"memo\":{\"type\":\"string\",\"maxLength\":500},"
    "\"currency\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{3}$\",\"description\":\"Defaults to the company's base currency\"},"
    "\"exchange_rate\":{\"type\":\"number\",\"minimum\":0.000001,\"description\":\"Base currency per unit of currency\"},"
    "\"lines\":{\"type\":\"array\",\"minItems\":2,\"maxItems\":500,\"items\":{\"type\":\"object\",\"properties\":{"
    "\"account\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":20},"
    "\"description\":{\"type\":\"string\",\"maxLength\":200},"
    "\"debit\":{\"type\":\"number\",\"minimum\":0},"
    "\"credit\":{\"type\":\"number\",\"minimum\":0}},"
    "\"required\":[\"account\"],\"additionalProperties\":false}}},"
    "\"required\":[\"entry_date\",\"reference\",\"lines\"],\"additionalProperties\":false}";

static const char trial_balance_schema[] = "{\"type\":\"object\",\"properties\":{" COMPANY_PROPERTY ","
                                           "\"as_of\":{\"type\":\"string\"," DATE_PATTERN "}},"
                                           "\"additionalProperties\":false}";

static const char income_statement_schema[] = "{\"type\":\"object\",\"properties\":{" COMPANY_PROPERTY ","
                                              "\"from\":{\"type\":\"string\"," DATE_PATTERN "},"
                                              "\"to\":{\"type\":\"string\"," DATE_PATTERN "}},"
                                              "\"required\":[\"from\",\"to\"],\"additionalProperties\":false}";

static const ftp_action_t actions[] = {
    {"post-journal-entry", "Post a balanced journal entry to the general ledger", post_journal_entry_schema, "general_ledger",
     post_journal_entry},
    {"trial-balance", "Debit and credit totals per account up to a date, in the company's base currency", trial_balance_schema,
     "general_ledger", trial_balance},
    {"income-statement", "Revenue, expenses and net income for a period", income_statement_schema, "advanced_reporting",
     income_statement},
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
    .product_code = "erp",
    .product_name = "Farutech ERP",
    .description = "Accounting, sales, purchasing, inventory and payroll for small and mid-size companies, "
                   "with several companies and currencies in one instance",
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
