/*
 * Configuration: defaults, file, environment precedence and the messages for bad values.
 */
#include "ft_test.h"
#include "infra/config.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

static char errors[4096];

static const char *write_file(const char *text)
{
    static char path[] = "/tmp/ft_test_config_XXXXXX";
    strcpy(path, "/tmp/ft_test_config_XXXXXX");
    int fd = mkstemp(path);
    if (write(fd, text, strlen(text)) < 0)
        return NULL;
    close(fd);
    return path;
}

static void clear_env(void)
{
    unsetenv("FT_CONFIG");
    unsetenv("FT_HTTP_LISTEN");
    unsetenv("FT_THREADS");
    unsetenv("FT_ROLES");
    unsetenv("FT_MAX_BODY_BYTES");
    unsetenv("FT_DATABASE_URL");
    unsetenv("FT_NATS_URL");
    unsetenv("FT_VAR_DIR");
    unsetenv("FT_DEV_ROUTES");
    unsetenv("FT_PLACEMENT_POLICY");
    unsetenv("FT_JWT_ALG");
}

TEST(defaults_apply_without_file_or_environment)
{
    clear_env();
    ft_config_t c;
    CHECK_INT(0, ft_config_load(&c, NULL, errors, sizeof(errors)));
    CHECK_STR("127.0.0.1", c.http_host);
    CHECK_INT(8080, c.http_port);
    CHECK_INT(FT_ROLE_API | FT_ROLE_RELAY | FT_ROLE_WORKER, c.roles);
    CHECK_INT(1 << 20, c.max_body_bytes);
    CHECK(c.threads >= 1);
    ft_config_free(&c);
}

TEST(environment_wins_over_file)
{
    clear_env();
    const char *path = write_file("# comment\nFT_HTTP_LISTEN=127.0.0.1:9000\nexport FT_THREADS=3\nFT_ROLES=\"api\"\n");
    setenv("FT_HTTP_LISTEN", "[::1]:9100", 1);
    ft_config_t c;
    CHECK_INT(0, ft_config_load(&c, path, errors, sizeof(errors)));
    CHECK_STR("::1", c.http_host);
    CHECK_INT(9100, c.http_port);
    CHECK_INT(3, c.threads);
    CHECK_INT(FT_ROLE_API, c.roles);
    ft_config_free(&c);
    unlink(path);
    clear_env();
}

TEST(every_bad_value_is_reported_with_its_source)
{
    clear_env();
    const char *path = write_file("FT_THREDS=2\nFT_MAX_BODY_BYTES=12XB\nnot a setting\n");
    setenv("FT_THREADS", "many", 1);
    setenv("FT_ROLES", "api,cron", 1);
    setenv("FT_NATS_URL", "http://localhost:4222", 1);
    ft_config_t c;
    CHECK(ft_config_load(&c, path, errors, sizeof(errors)) < 0);
    CHECK_CONTAINS(errors, ":1: unknown setting FT_THREDS");
    CHECK_CONTAINS(errors, "FT_MAX_BODY_BYTES=12XB (from ");
    CHECK_CONTAINS(errors, ":3: expected KEY=VALUE");
    CHECK_CONTAINS(errors, "FT_THREADS=many (from environment): expected an integer from 0 to 256");
    CHECK_CONTAINS(errors, "FT_ROLES=api,cron (from environment)");
    CHECK_CONTAINS(errors, "FT_NATS_URL=http://localhost:4222 (from environment)");
    ft_config_free(&c);
    unlink(path);
    clear_env();
}

TEST(roles_all_means_every_role)
{
    clear_env();
    ft_config_t c;
    setenv("FT_ROLES", "all", 1);
    CHECK_INT(0, ft_config_load(&c, NULL, errors, sizeof(errors)));
    CHECK_INT(FT_ROLE_API | FT_ROLE_RELAY | FT_ROLE_WORKER, c.roles);
    ft_config_free(&c);
    clear_env();
}

TEST(choices_accept_only_their_values_and_name_them)
{
    clear_env();
    ft_config_t c;
    CHECK_INT(0, ft_config_load(&c, NULL, errors, sizeof(errors)));
    CHECK_STR("least-loaded", c.placement_policy);
    CHECK_INT(5000, c.tenant_database_capacity);
    ft_config_free(&c);
    setenv("FT_PLACEMENT_POLICY", "fill-first", 1);
    CHECK_INT(0, ft_config_load(&c, NULL, errors, sizeof(errors)));
    CHECK_STR("fill-first", c.placement_policy);
    ft_config_free(&c);
    setenv("FT_PLACEMENT_POLICY", "round-robin", 1);
    setenv("FT_JWT_ALG", "HS256", 1);
    CHECK(ft_config_load(&c, NULL, errors, sizeof(errors)) < 0);
    CHECK_CONTAINS(errors, "FT_PLACEMENT_POLICY=round-robin (from environment): expected one of least-loaded, fill-first");
    CHECK_CONTAINS(errors, "FT_JWT_ALG=HS256 (from environment): expected one of RS256, ES256, EdDSA");
    ft_config_free(&c);
    clear_env();
}

TEST(sizes_accept_binary_suffixes)
{
    clear_env();
    ft_config_t c;
    setenv("FT_MAX_BODY_BYTES", "64KiB", 1);
    CHECK_INT(0, ft_config_load(&c, NULL, errors, sizeof(errors)));
    CHECK_INT(65536, c.max_body_bytes);
    ft_config_free(&c);
    setenv("FT_MAX_BODY_BYTES", "2M", 1);
    CHECK_INT(0, ft_config_load(&c, NULL, errors, sizeof(errors)));
    CHECK_INT(2 << 20, c.max_body_bytes);
    ft_config_free(&c);
    setenv("FT_MAX_BODY_BYTES", "0", 1);
    CHECK(ft_config_load(&c, NULL, errors, sizeof(errors)) < 0);
    ft_config_free(&c);
    clear_env();
}

TEST(missing_config_file_is_an_error)
{
    clear_env();
    ft_config_t c;
    CHECK(ft_config_load(&c, "/nonexistent/farutech.env", errors, sizeof(errors)) < 0);
    CHECK_CONTAINS(errors, "config file /nonexistent/farutech.env: No such file or directory");
    ft_config_free(&c);
}

TEST(dump_masks_passwords)
{
    clear_env();
    setenv("FT_DATABASE_URL", "postgresql://farutech:s3cret@127.0.0.1:5432/farutech", 1);
    setenv("FT_NATS_URL", "nats://app:t0ken@127.0.0.1:4222", 1);
    ft_config_t c;
    CHECK_INT(0, ft_config_load(&c, NULL, errors, sizeof(errors)));
    char path[] = "/tmp/ft_test_dump_XXXXXX";
    int fd = mkstemp(path);
    ft_config_dump(&c, fd, 0);
    char buf[4096] = {0};
    lseek(fd, 0, SEEK_SET);
    CHECK(read(fd, buf, sizeof(buf) - 1) > 0);
    close(fd);
    unlink(path);
    CHECK_CONTAINS(buf, "FT_DATABASE_URL=postgresql://farutech:***@127.0.0.1:5432/farutech\n");
    CHECK_CONTAINS(buf, "FT_NATS_URL=nats://app:***@127.0.0.1:4222\n");
    CHECK(strstr(buf, "s3cret") == NULL);
    CHECK(strstr(buf, "t0ken") == NULL);
    ft_config_free(&c);
    clear_env();
}

/* What ft_config_dump writes for c, into buf. */
static void dump(const ft_config_t *c, int all, char *buf, size_t len)
{
    char path[] = "/tmp/ft_test_dump_XXXXXX";
    int fd = mkstemp(path);
    ft_config_dump(c, fd, all);
    memset(buf, 0, len);
    lseek(fd, 0, SEEK_SET);
    CHECK(read(fd, buf, len - 1) > 0);
    close(fd);
    unlink(path);
}

/* Sets key=value in the environment, loads the configuration and returns 0 with what `config`
 * prints in buf, or -1 with the load's errors in `errors`. */
static int dump_with(const char *key, const char *value, char *buf, size_t len)
{
    clear_env();
    setenv(key, value, 1);
    ft_config_t c;
    int rc = ft_config_load(&c, NULL, errors, sizeof(errors)) == 0 ? 0 : -1;
    if (rc == 0)
        dump(&c, 0, buf, len);
    ft_config_free(&c);
    clear_env();
    return rc;
}

TEST(a_nats_cluster_list_is_accepted_and_every_urls_credentials_are_masked)
{
    char buf[4096];
    CHECK_INT(0, dump_with("FT_NATS_URL",
                           "nats://app:pw1@10.0.0.1:4222,nats://app:pw2@10.0.0.2:4222,tls://t0ken@10.0.0.3:4222,10.0.0.4:4222", buf,
                           sizeof(buf)));
    CHECK_CONTAINS(buf, "FT_NATS_URL=nats://app:***@10.0.0.1:4222,nats://app:***@10.0.0.2:4222,tls://***@10.0.0.3:4222,"
                        "10.0.0.4:4222\n");
    CHECK(strstr(buf, "pw1") == NULL && strstr(buf, "pw2") == NULL && strstr(buf, "t0ken") == NULL);
    CHECK_INT(-1, dump_with("FT_NATS_URL", "nats://10.0.0.1:4222, nats://10.0.0.2:4222", buf, sizeof(buf)));
    CHECK_CONTAINS(errors, "comma separated for a cluster");
}

TEST(a_multi_host_postgresql_url_is_accepted_and_its_password_masked)
{
    char buf[4096];
    CHECK_INT(
        0, dump_with("FT_DATABASE_URL",
                     "postgresql://farutech:s3cret@pg-a:5432,pg-b:5432/farutech?target_session_attrs=read-write&connect_timeout=5",
                     buf, sizeof(buf)));
    CHECK_CONTAINS(buf, "FT_DATABASE_URL=postgresql://farutech:***@pg-a:5432,pg-b:5432/farutech"
                        "?target_session_attrs=read-write&connect_timeout=5\n");
    CHECK_INT(0, dump_with("FT_DATABASE_URL",
                           "postgresql://pg-a,pg-b/farutech?user=farutech&password=s3cret&target_session_attrs=read-write", buf,
                           sizeof(buf)));
    CHECK_CONTAINS(buf,
                   "FT_DATABASE_URL=postgresql://pg-a,pg-b/farutech?user=farutech&password=***&target_session_attrs=read-write\n");
    CHECK(strstr(buf, "s3cret") == NULL);
    CHECK_INT(-1, dump_with("FT_DATABASE_URL", "postgresql://pg-a/farutech?target_sessions=read-write", buf, sizeof(buf)));
    CHECK_CONTAINS(errors, "FT_DATABASE_URL (from environment): not a valid PostgreSQL URL");
}

TEST(dump_hides_test_switches_unless_on_or_asked_for_all)
{
    clear_env();
    ft_config_t c;
    char buf[4096];
    CHECK_INT(0, ft_config_load(&c, NULL, errors, sizeof(errors)));
    dump(&c, 0, buf, sizeof(buf));
    CHECK_CONTAINS(buf, "FT_HTTP_LISTEN=127.0.0.1:8080\n");
    CHECK(strstr(buf, "FT_DEV_ROUTES") == NULL);
    CHECK(strstr(buf, "FT_RELAY_CRASH_AFTER_PUBLISH") == NULL);
    dump(&c, 1, buf, sizeof(buf));
    CHECK_CONTAINS(buf, "FT_DEV_ROUTES=false\n");
    CHECK_CONTAINS(buf, "FT_RELAY_CRASH_AFTER_PUBLISH=false\n");
    ft_config_free(&c);

    setenv("FT_DEV_ROUTES", "true", 1);
    CHECK_INT(0, ft_config_load(&c, NULL, errors, sizeof(errors)));
    dump(&c, 0, buf, sizeof(buf));
    CHECK_CONTAINS(buf, "FT_DEV_ROUTES=true\n");
    CHECK(strstr(buf, "FT_RELAY_CRASH_AFTER_PUBLISH") == NULL);
    ft_config_free(&c);
    clear_env();
}

TEST(a_binary_of_the_build_tree_finds_the_local_stack_settings)
{
    clear_env();
    char out[4096], root[4096], want[4200];
    /* this test program lies under the build tree, as farutech-host does */
    CHECK_INT(1, ft_config_local_stack_env(NULL, out, sizeof(out)));
    size_t n = strlen(out), tail = strlen("/var/stack.env");
    CHECK(n > tail && strcmp(out + n - tail, "/var/stack.env") == 0);
    snprintf(root, sizeof(root), "%.*s", (int)(n - tail), out);
    snprintf(want, sizeof(want), "%s/packaging/stack.sh", root);
    CHECK_INT(0, access(want, X_OK));

    setenv("FT_VAR_DIR", "/tmp/elsewhere", 1);
    CHECK_INT(1, ft_config_local_stack_env(NULL, out, sizeof(out)));
    CHECK_STR("/tmp/elsewhere/stack.env", out);
    setenv("FT_VAR_DIR", "stacks/mine", 1); /* relative to the source tree, as stack.sh reads it */
    CHECK_INT(1, ft_config_local_stack_env(NULL, out, sizeof(out)));
    snprintf(want, sizeof(want), "%s/stacks/mine/stack.env", root);
    CHECK_STR(want, out);

    /* an installed binary is not in a checkout */
    CHECK_INT(0, ft_config_local_stack_env("/bin/sh", out, sizeof(out)));
    clear_env();
}

/* A site whose one settings layer is the local stack's file (or, with system set, the system config). */
static ft_config_site_t site_with(const char *file, int system)
{
    ft_config_site_t site = {.plugin_dir = "/build/products", .migrations_dir = "/src/migrations"};
    if (system)
        site.system_config = file;
    else
        site.stack_env = file;
    return site;
}

TEST(local_stack_settings_sit_under_the_environment_and_yield_to_a_file)
{
    clear_env();
    const char *p = write_file("FT_DATABASE_URL=postgresql://farutech:pw@127.0.0.1:5999/farutech\n"
                               "FT_NATS_URL=nats://farutech:pw@127.0.0.1:4999\n"
                               "FT_NATS_MONITOR_URL=http://127.0.0.1:18999\n");
    char stack[64];
    snprintf(stack, sizeof(stack), "%s", p);
    ft_config_site_t site = site_with(stack, 0);
    ft_config_t c;
    char buf[4096];
    CHECK_INT(0, ft_config_load_site(&c, NULL, &site, errors, sizeof(errors)));
    CHECK_STR("postgresql://farutech:pw@127.0.0.1:5999/farutech", c.database_url);
    CHECK_STR("nats://farutech:pw@127.0.0.1:4999", c.nats_url);
    CHECK_STR(stack, c.stack_env);
    dump(&c, 0, buf, sizeof(buf));
    CHECK_CONTAINS(buf, "# settings not given otherwise come from the local stack: ");
    CHECK_CONTAINS(buf, "FT_DATABASE_URL=postgresql://farutech:***@127.0.0.1:5999/farutech\n");
    ft_config_free(&c);

    setenv("FT_NATS_URL", "nats://127.0.0.1:4333", 1);
    CHECK_INT(0, ft_config_load_site(&c, NULL, &site, errors, sizeof(errors)));
    CHECK_STR("postgresql://farutech:pw@127.0.0.1:5999/farutech", c.database_url);
    CHECK_STR("nats://127.0.0.1:4333", c.nats_url);
    ft_config_free(&c);
    clear_env();

    const char *file = write_file("FT_THREADS=3\n");
    CHECK_INT(0, ft_config_load_site(&c, file, &site, errors, sizeof(errors)));
    CHECK_STR("postgresql://farutech@127.0.0.1:55432/farutech", c.database_url);
    CHECK(c.stack_env == NULL);
    ft_config_free(&c);
    unlink(file);

    unlink(stack); /* no stack started: nothing read, no error */
    CHECK_INT(0, ft_config_load_site(&c, NULL, &site, errors, sizeof(errors)));
    CHECK_STR("postgresql://farutech@127.0.0.1:55432/farutech", c.database_url);
    CHECK(c.stack_env == NULL);
    ft_config_free(&c);
}

TEST(a_binary_from_the_checkout_points_into_it_and_an_installed_one_at_the_installed_layout)
{
    clear_env();
    ft_config_site_t site;
    ft_config_t c;
    ft_config_site(NULL, &site); /* this test program lies under the build tree */
    CHECK(site.stack_env != NULL && site.system_config == NULL);
    CHECK_INT(0, access(site.migrations_dir, R_OK));
    CHECK(strstr(site.plugin_dir, "/products") != NULL);
    CHECK_INT(0, ft_config_load_site(&c, NULL, &site, errors, sizeof(errors)));
    CHECK_STR(site.plugin_dir, c.plugin_dir);
    CHECK_STR(site.migrations_dir, c.migrations_dir);
    CHECK_STR(site.docs_dir, c.docs_dir);
    CHECK_CONTAINS(c.docs_dir, "/docs/openapi/");
    CHECK_STR(site.console_dir, c.console_dir);
    CHECK_CONTAINS(c.console_dir, "/console");
    CHECK_INT(0, access(c.console_dir, R_OK));
    ft_config_free(&c);

    ft_config_site("/bin/sh", &site);
    CHECK(site.stack_env == NULL && site.system_config != NULL);
    size_t n = strlen(site.system_config), tail = strlen("/farutech/farutech.conf");
    CHECK(n > tail && strcmp(site.system_config + n - tail, "/farutech/farutech.conf") == 0);
    CHECK_CONTAINS(site.plugin_dir, "/farutech/products");
    CHECK_CONTAINS(site.migrations_dir, "/farutech/migrations");
    CHECK_CONTAINS(site.docs_dir, "/farutech/docs");
    CHECK_CONTAINS(site.console_dir, "/farutech/console");
    /* the plain loader has the installed defaults too */
    CHECK_INT(0, ft_config_load(&c, NULL, errors, sizeof(errors)));
    CHECK_STR(site.plugin_dir, c.plugin_dir);
    CHECK_STR(site.migrations_dir, c.migrations_dir);
    CHECK_STR(site.docs_dir, c.docs_dir);
    ft_config_free(&c);
}

TEST(the_system_config_is_read_when_present_under_the_environment_and_a_named_file_replaces_it)
{
    clear_env();
    char sys[64], buf[4096];
    snprintf(sys, sizeof(sys), "%s", write_file("# comment\nFT_THREADS=3\nFT_ROLES=worker\n"));
    ft_config_site_t site = site_with(sys, 1);
    ft_config_t c;
    CHECK_INT(0, ft_config_load_site(&c, NULL, &site, errors, sizeof(errors)));
    CHECK_INT(3, c.threads);
    CHECK_INT(FT_ROLE_WORKER, c.roles);
    CHECK_STR("/build/products", c.plugin_dir);
    CHECK_STR(sys, c.system_config);
    dump(&c, 0, buf, sizeof(buf));
    CHECK_CONTAINS(buf, "# settings read from ");
    ft_config_free(&c);

    setenv("FT_ROLES", "api", 1);
    CHECK_INT(0, ft_config_load_site(&c, NULL, &site, errors, sizeof(errors)));
    CHECK_INT(3, c.threads);
    CHECK_INT(FT_ROLE_API, c.roles);
    ft_config_free(&c);
    clear_env();

    const char *file = write_file("FT_WORKER_THREADS=4\nFT_WORKER_BATCH=64\n");
    CHECK_INT(0, ft_config_load_site(&c, file, &site, errors, sizeof(errors)));
    CHECK_INT(4, c.worker_threads);
    CHECK_INT(64, c.worker_batch);
    CHECK(c.system_config == NULL);
    ft_config_free(&c);
    unlink(file);

    /* it is the deployment's own file: a key that is not a setting is an error */
    FILE *fp = fopen(sys, "a");
    fputs("FT_NO_SUCH_SETTING=1\n", fp);
    fclose(fp);
    CHECK(ft_config_load_site(&c, NULL, &site, errors, sizeof(errors)) < 0);
    CHECK_CONTAINS(errors, "unknown setting FT_NO_SUCH_SETTING");
    ft_config_free(&c);

    unlink(sys); /* absent: the defaults, no error */
    CHECK_INT(0, ft_config_load_site(&c, NULL, &site, errors, sizeof(errors)));
    CHECK(c.system_config == NULL);
    ft_config_free(&c);
}

RUN_TESTS(TEST_ENTRY(defaults_apply_without_file_or_environment), TEST_ENTRY(environment_wins_over_file),
          TEST_ENTRY(every_bad_value_is_reported_with_its_source), TEST_ENTRY(roles_all_means_every_role),
          TEST_ENTRY(choices_accept_only_their_values_and_name_them), TEST_ENTRY(sizes_accept_binary_suffixes),
          TEST_ENTRY(missing_config_file_is_an_error), TEST_ENTRY(dump_masks_passwords),
          TEST_ENTRY(a_nats_cluster_list_is_accepted_and_every_urls_credentials_are_masked),
          TEST_ENTRY(a_multi_host_postgresql_url_is_accepted_and_its_password_masked),
          TEST_ENTRY(dump_hides_test_switches_unless_on_or_asked_for_all),
          TEST_ENTRY(a_binary_of_the_build_tree_finds_the_local_stack_settings),
          TEST_ENTRY(local_stack_settings_sit_under_the_environment_and_yield_to_a_file),
          TEST_ENTRY(a_binary_from_the_checkout_points_into_it_and_an_installed_one_at_the_installed_layout),
          TEST_ENTRY(the_system_config_is_read_when_present_under_the_environment_and_a_named_file_replaces_it))
