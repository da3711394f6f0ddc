/*
 * Metrics exposition: counters and histograms summed over shards, in Prometheus text format.
 */
#include "ft_test.h"
#include "infra/metrics.h"

#include <stdlib.h>

TEST(observations_from_two_shards_are_summed_by_route_and_status)
{
    ft_metrics_init("1.2.3", "abc123");
    unsigned health = ft_metrics_route("GET", "/health");
    unsigned items = ft_metrics_route("POST", "/api/v1/items");
    CHECK_INT(health, ft_metrics_route("GET", "/health"));
    ft_metrics_shard_t *a = ft_metrics_shard_create(), *b = ft_metrics_shard_create();
    ft_metrics_observe(a, health, 200, 50000);     /* 50 us */
    ft_metrics_observe(b, health, 200, 2000000);   /* 2 ms */
    ft_metrics_observe(b, items, 418, 1000);       /* untracked status: counted as 4xx */
    ft_metrics_observe(a, FT_METRICS_ROUTE_UNMATCHED, 404, 1000);

    char *text = NULL;
    size_t len = 0;
    ft_metrics_render(&text, &len);
    CHECK_CONTAINS(text, "# TYPE ft_http_requests_total counter\n");
    CHECK_CONTAINS(text, "ft_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 2\n");
    CHECK_CONTAINS(text, "ft_http_requests_total{method=\"POST\",route=\"/api/v1/items\",status=\"4xx\"} 1\n");
    CHECK_CONTAINS(text, "ft_http_requests_total{method=\"\",route=\"unmatched\",status=\"404\"} 1\n");
    CHECK_CONTAINS(text, "# TYPE ft_http_request_duration_seconds histogram\n");
    CHECK_CONTAINS(text, "ft_http_request_duration_seconds_bucket{method=\"GET\",route=\"/health\",status=\"200\",le=\"0.0001\"} 1\n");
    CHECK_CONTAINS(text, "ft_http_request_duration_seconds_bucket{method=\"GET\",route=\"/health\",status=\"200\",le=\"0.001\"} 1\n");
    CHECK_CONTAINS(text, "ft_http_request_duration_seconds_bucket{method=\"GET\",route=\"/health\",status=\"200\",le=\"0.0025\"} 2\n");
    CHECK_CONTAINS(text, "ft_http_request_duration_seconds_bucket{method=\"GET\",route=\"/health\",status=\"200\",le=\"+Inf\"} 2\n");
    CHECK_CONTAINS(text, "ft_http_request_duration_seconds_sum{method=\"GET\",route=\"/health\",status=\"200\"} 0.002050000\n");
    CHECK_CONTAINS(text, "ft_http_request_duration_seconds_count{method=\"GET\",route=\"/health\",status=\"200\"} 2\n");
    CHECK_CONTAINS(text, "ft_build_info{version=\"1.2.3\",commit=\"abc123\"} 1\n");
    CHECK_CONTAINS(text, "ft_uptime_seconds ");
    CHECK(strstr(text, "status=\"201\"") == NULL); /* empty series are not rendered */
    CHECK_INT(strlen(text), len);
    free(text);
}

RUN_TESTS(TEST_ENTRY(observations_from_two_shards_are_summed_by_route_and_status))
