/*
 * Configuration: defaults, file, environment precedence and the messages for bad values.
 */
#include "ft_test.h"
#include "infra/config.h"

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
    ft_config_dump(&c, fd);
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

RUN_TESTS(TEST_ENTRY(defaults_apply_without_file_or_environment), TEST_ENTRY(environment_wins_over_file),
          TEST_ENTRY(every_bad_value_is_reported_with_its_source), TEST_ENTRY(roles_all_means_every_role),
          TEST_ENTRY(sizes_accept_binary_suffixes), TEST_ENTRY(missing_config_file_is_an_error), TEST_ENTRY(dump_masks_passwords))
