/*
 * Fixture plugins for the ABI and reload tests: one source, one variant per FIXTURE_* macro,
 * each built as its own fixture.so (see CMakeLists.txt). Every variant declares product
 * "fixture" so that each can replace another in place.
 */
#include <farutech/plugin.h>

#include <stddef.h>
#ifdef FIXTURE_HOST_REFUSES
#include <stdlib.h>
#endif

#ifndef FIXTURE_VERSION
#define FIXTURE_VERSION "1.0.0"
#endif

static const ftp_module_t modules[] = {
    {"base", "Base", "The only module", NULL},
};

static const ftp_feature_t features[] = {
    {"alpha", "base", "Alpha", "A flag", FTP_FEATURE_FLAG, 1, NULL, NULL},
    {"seats", "base", "Seats", "A limit", FTP_FEATURE_LIMIT, 3, NULL, "seats"},
#ifndef FIXTURE_DROP_BETA
    {"beta", "base", "Beta", "A flag that requires alpha", FTP_FEATURE_FLAG, 1, (const char *const[]){"alpha", NULL}, NULL},
#endif
#ifdef FIXTURE_INVALID_TABLES
    {"alpha", "base", "Alpha again", "A duplicate code", FTP_FEATURE_FLAG, 1, NULL, NULL},
    {"gamma", "nowhere", "Gamma", "In a module that does not exist", FTP_FEATURE_FLAG, 1,
     (const char *const[]){"delta", NULL}, NULL},
    {"delta", "base", "Delta", "Half of a cycle", FTP_FEATURE_FLAG, 1, (const char *const[]){"gamma", NULL}, NULL},
#endif
};

#ifdef FIXTURE_CHANGE_PLAN
static const ftp_plan_feature_t small_features[] = {{"alpha", 1}, {"seats", 7}};
#else
static const ftp_plan_feature_t small_features[] = {{"alpha", 1}, {"seats", 5}};
#endif

static const ftp_plan_t plans[] = {
    {"small", "Small", "The smallest plan", 1, FTP_TABLE(small_features), 0},
};

static int noop(const ftp_host_api_t *api, ftp_ctx_t *ctx)
{
    return FTP_OK;
}

static const ftp_step_t steps[] = {
    {FTP_LIFECYCLE_PROVISION, "noop", 1, 1000, noop, NULL},
};

__attribute__((unused)) static int init(const ftp_host_api_t *api)
{
#if defined(FIXTURE_INIT_FAILS)
    api->log(NULL, FTP_LOG_ERROR, "fixture init refuses to start");
    return FTP_E_FATAL;
#elif defined(FIXTURE_INIT_REASON)
#if FTP_ABI_MINOR >= 2 /* built against older headers too */
    if (FTP_HAS(api, set_init_error))
        api->set_init_error("the license file %s is missing", "/etc/fixture/license");
#endif
    return FTP_E_UNAVAILABLE;
#elif defined(FIXTURE_HOST_REFUSES)
    /* loads everywhere except on a host started with FIXTURE_REFUSE set: a fleet that splits */
    if (getenv("FIXTURE_REFUSE") != NULL) {
        if (FTP_HAS(api, set_init_error))
            api->set_init_error("this host refuses version %s", FIXTURE_VERSION);
        return FTP_E_UNAVAILABLE;
    }
    return FTP_OK;
#else
    return FTP_OK;
#endif
}

static void fini(void)
{
}

static const ftp_plugin_t plugin = {
#if defined(FIXTURE_OLD_MINOR)
    .header = {FTP_ABI_MAGIC, FTP_ABI_MAJOR, 0, (uint32_t)FTP_PLUGIN_SIZE_1_0, (uint8_t)sizeof(void *), FTP_BYTE_ORDER, 0},
#elif defined(FIXTURE_NEW_MINOR)
    .header = {FTP_ABI_MAGIC, FTP_ABI_MAJOR, FTP_ABI_MINOR + 1, (uint32_t)sizeof(ftp_plugin_t), (uint8_t)sizeof(void *),
               FTP_BYTE_ORDER, 0},
#elif defined(FIXTURE_WRONG_MAJOR)
    .header = {FTP_ABI_MAGIC, FTP_ABI_MAJOR + 1, 0, (uint32_t)sizeof(ftp_plugin_t), (uint8_t)sizeof(void *), FTP_BYTE_ORDER, 0},
#elif defined(FIXTURE_BAD_MAGIC)
    .header = {0xdeadbeefu, FTP_ABI_MAJOR, FTP_ABI_MINOR, (uint32_t)sizeof(ftp_plugin_t), (uint8_t)sizeof(void *), FTP_BYTE_ORDER,
               0},
#else
    .header = FTP_HEADER_INIT,
#endif
    .product_code = "fixture",
    .product_name = "Fixture",
    .description = "A test product",
    .version = FIXTURE_VERSION,
    .modules = FTP_TABLE(modules),
    .features = FTP_TABLE(features),
    .plans = FTP_TABLE(plans),
    .steps = FTP_TABLE(steps),
#ifdef FIXTURE_NULL_INIT
    .init = NULL,
#else
    .init = init,
#endif
    .fini = fini,
    /* ABI 1.1 fields: an old-minor build must not have them read */
    .vendor = "Fixture Vendor",
};

#ifndef FIXTURE_NO_ENTRY
FTP_DEFINE_PLUGIN(plugin)
#else
/* Exported under another name: the host must find no entry point. */
FTP_EXPORT const ftp_plugin_t *fixture_entry(void);
FTP_EXPORT const ftp_plugin_t *fixture_entry(void)
{
    return &plugin;
}
#endif
