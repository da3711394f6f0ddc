/*
 * The fleet's skew: a fleet that agrees has none; differing SHA-256s, a host serving nothing and
 * a fleet that agrees on something other than the release each show; stale hosts do not count.
 */
#include "domain/fleet_view.h"
#include "ft_test.h"

#include <stdlib.h>

/* The skew of hosts and releases given as JSON text, as compact JSON (static buffer). */
static const char *skew(const char *hosts, const char *releases)
{
    static char out[1024];
    json_t *h = json_loads(hosts, 0, NULL), *r = json_loads(releases, 0, NULL);
    json_t *s = ft_fleet_skew(h, r);
    char *text = json_dumps(s, JSON_COMPACT | JSON_SORT_KEYS);
    snprintf(out, sizeof(out), "%s", text);
    free(text);
    json_decref(s);
    json_decref(h);
    json_decref(r);
    return out;
}

#define RELEASE "[{\"product\":\"vet\",\"sha256\":\"aa\"}]"

TEST(a_fleet_serving_the_release_everywhere_has_no_skew)
{
    CHECK_STR("[]",
              skew("[{\"id\":\"h1\",\"status\":\"live\",\"plugins\":[{\"product\":\"vet\",\"generation\":1,\"sha256\":\"aa\"}]},"
                   " {\"id\":\"h2\",\"status\":\"live\",\"plugins\":[{\"product\":\"vet\",\"generation\":4,\"sha256\":\"aa\"}]}]",
                   RELEASE));
}

TEST(hosts_serving_different_files_are_grouped_by_sha256)
{
    CHECK_STR("[{\"hosts_by_sha256\":{\"aa\":[\"h1\"],\"bb\":[\"h2\"]},\"product\":\"vet\",\"release_sha256\":\"aa\"}]",
              skew("[{\"id\":\"h1\",\"status\":\"live\",\"plugins\":[{\"product\":\"vet\",\"generation\":1,\"sha256\":\"aa\"}]},"
                   " {\"id\":\"h2\",\"status\":\"live\",\"plugins\":[{\"product\":\"vet\",\"generation\":1,\"sha256\":\"bb\"}]}]",
                   RELEASE));
}

TEST(a_host_serving_no_generation_counts_as_none)
{
    CHECK_STR("[{\"hosts_by_sha256\":{\"aa\":[\"h1\"],\"none\":[\"h2\",\"h3\"]},\"product\":\"vet\",\"release_sha256\":\"aa\"}]",
              skew("[{\"id\":\"h1\",\"status\":\"live\",\"plugins\":[{\"product\":\"vet\",\"generation\":1,\"sha256\":\"aa\"}]},"
                   " {\"id\":\"h2\",\"status\":\"live\",\"plugins\":[{\"product\":\"vet\",\"generation\":null,\"sha256\":null}]},"
                   " {\"id\":\"h3\",\"status\":\"live\",\"plugins\":[]}]",
                   RELEASE));
}

TEST(a_fleet_that_agrees_on_another_file_than_the_release_is_skewed)
{
    CHECK_STR("[{\"hosts_by_sha256\":{\"bb\":[\"h1\"]},\"product\":\"vet\",\"release_sha256\":\"aa\"}]",
              skew("[{\"id\":\"h1\",\"status\":\"live\",\"plugins\":[{\"product\":\"vet\",\"generation\":2,\"sha256\":\"bb\"}]}]",
                   RELEASE));
}

TEST(stale_and_stopped_hosts_do_not_count)
{
    CHECK_STR(
        "[]",
        skew("[{\"id\":\"h1\",\"status\":\"live\",\"plugins\":[{\"product\":\"vet\",\"generation\":1,\"sha256\":\"aa\"}]},"
             " {\"id\":\"h2\",\"status\":\"stale\",\"plugins\":[{\"product\":\"vet\",\"generation\":1,\"sha256\":\"bb\"}]},"
             " {\"id\":\"h3\",\"status\":\"stopped\",\"plugins\":[{\"product\":\"crm\",\"generation\":1,\"sha256\":\"cc\"}]}]",
             RELEASE));
}

TEST(a_product_with_no_release_is_skewed_only_when_hosts_differ)
{
    CHECK_STR(
        "[]",
        skew("[{\"id\":\"h1\",\"status\":\"live\",\"plugins\":[{\"product\":\"erp\",\"generation\":1,\"sha256\":\"ee\"}]}]", "[]"));
    CHECK_STR("[{\"hosts_by_sha256\":{\"ee\":[\"h1\"],\"ff\":[\"h2\"]},\"product\":\"erp\",\"release_sha256\":null}]",
              skew("[{\"id\":\"h1\",\"status\":\"live\",\"plugins\":[{\"product\":\"erp\",\"generation\":1,\"sha256\":\"ee\"}]},"
                   " {\"id\":\"h2\",\"status\":\"live\",\"plugins\":[{\"product\":\"erp\",\"generation\":1,\"sha256\":\"ff\"}]}]",
                   "[]"));
}

RUN_TESTS(TEST_ENTRY(a_fleet_serving_the_release_everywhere_has_no_skew),
          TEST_ENTRY(hosts_serving_different_files_are_grouped_by_sha256), TEST_ENTRY(a_host_serving_no_generation_counts_as_none),
          TEST_ENTRY(a_fleet_that_agrees_on_another_file_than_the_release_is_skewed),
          TEST_ENTRY(stale_and_stopped_hosts_do_not_count), TEST_ENTRY(a_product_with_no_release_is_skewed_only_when_hosts_differ))
