/*
 * Metrics exposition: request counters and histograms summed over shards, and declared
 * families (counters, gauges, callback gauges, histograms) in Prometheus text format.
 */
#include "ft_test.h"
#include "infra/metrics.h"

#include <pthread.h>
#include <stdlib.h>

static const double test_bounds[] = {0.25, 1, 10};

FT_COUNTER(test_jobs, "ft_test_jobs_total", "Jobs that ended, by kind and outcome.", FT_LABELS("kind", "outcome"));
FT_COUNTER(test_plain, "ft_test_plain_total", "A counter with no labels.", FT_NO_LABELS);
FT_GAUGE(test_level, "ft_test_level", "A gauge\\with a backslash and\na line feed in its help.", FT_LABELS("scope"));
FT_GAUGE(test_read, "ft_test_read", "A gauge read at scrape time.", FT_NO_LABELS);
FT_HISTOGRAM(test_seconds, "ft_test_duration_seconds", "Durations.", test_bounds, FT_LABELS("kind"));
FT_HISTOGRAM(test_plain_seconds, "ft_test_plain_seconds", "Durations with no labels.", test_bounds, FT_NO_LABELS);

/* Not inlined: GCC 12 at -O2 and above then takes `text` for the local whose address is passed
 * and reports every later use of the rendered buffer as a dangling pointer. */
__attribute__((noinline)) static char *render(void)
{
    char *text = NULL;
    size_t len = 0;
    ft_metrics_render(&text, &len);
    return text;
}

/* How often needle occurs in haystack. */
static int occurrences(const char *haystack, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(haystack, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

TEST(observations_from_two_shards_are_summed_by_route_and_status)
{
    ft_metrics_init("1.2.3", "abc123");
    unsigned health = ft_metrics_route("GET", "/health");
    unsigned items = ft_metrics_route("POST", "/api/v1/items");
    CHECK_INT(health, ft_metrics_route("GET", "/health"));
    ft_metrics_shard_t *a = ft_metrics_shard_create(), *b = ft_metrics_shard_create();
    ft_metrics_observe(a, health, 200, 50000);   /* 50 us */
    ft_metrics_observe(b, health, 200, 2000000); /* 2 ms */
    ft_metrics_observe(b, items, 418, 1000);     /* untracked status: counted as 4xx */
    ft_metrics_observe(a, FT_METRICS_ROUTE_UNMATCHED, 404, 1000);

    char *text = NULL;
    size_t len = 0;
    ft_metrics_render(&text, &len);
    CHECK_CONTAINS(text, "# TYPE ft_http_requests_total counter\n");
    CHECK_CONTAINS(text, "ft_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 2\n");
    CHECK_CONTAINS(text, "ft_http_requests_total{method=\"POST\",route=\"/api/v1/items\",status=\"4xx\"} 1\n");
    CHECK_CONTAINS(text, "ft_http_requests_total{method=\"\",route=\"unmatched\",status=\"404\"} 1\n");
    CHECK_CONTAINS(text, "# TYPE ft_http_request_duration_seconds histogram\n");
    CHECK_CONTAINS(text,
                   "ft_http_request_duration_seconds_bucket{method=\"GET\",route=\"/health\",status=\"200\",le=\"0.0001\"} 1\n");
    CHECK_CONTAINS(text,
                   "ft_http_request_duration_seconds_bucket{method=\"GET\",route=\"/health\",status=\"200\",le=\"0.001\"} 1\n");
    CHECK_CONTAINS(text,
                   "ft_http_request_duration_seconds_bucket{method=\"GET\",route=\"/health\",status=\"200\",le=\"0.0025\"} 2\n");
    CHECK_CONTAINS(text,
                   "ft_http_request_duration_seconds_bucket{method=\"GET\",route=\"/health\",status=\"200\",le=\"+Inf\"} 2\n");
    CHECK_CONTAINS(text, "ft_http_request_duration_seconds_sum{method=\"GET\",route=\"/health\",status=\"200\"} 0.002050000\n");
    CHECK_CONTAINS(text, "ft_http_request_duration_seconds_count{method=\"GET\",route=\"/health\",status=\"200\"} 2\n");
    CHECK_CONTAINS(text, "ft_build_info{version=\"1.2.3\",commit=\"abc123\"} 1\n");
    CHECK_CONTAINS(text, "ft_uptime_seconds ");
    CHECK(strstr(text, "status=\"201\"") == NULL); /* empty series are not rendered */
    CHECK_INT(strlen(text), len);
    free(text);
}

TEST(a_labelled_counter_has_help_and_type_once_and_one_series_per_label_set)
{
    ft_counter_inc(ft_metric_series(&test_jobs, "provision", "succeeded"));
    ft_counter_add(ft_metric_series(&test_jobs, "provision", "succeeded"), 2);
    ft_counter_inc(ft_metric_series(&test_jobs, "deprovision", "failed"));
    CHECK(ft_metric_series(&test_jobs, "provision", "succeeded") == ft_metric_series(&test_jobs, "provision", "succeeded"));
    CHECK_INT(3, ft_series_value(ft_metric_series(&test_jobs, "provision", "succeeded")));
    char *text = render();
    CHECK_INT(1, occurrences(text, "# HELP ft_test_jobs_total "));
    CHECK_INT(1, occurrences(text, "# TYPE ft_test_jobs_total counter\n"));
    CHECK_CONTAINS(text, "# HELP ft_test_jobs_total Jobs that ended, by kind and outcome.\n");
    CHECK_CONTAINS(text, "ft_test_jobs_total{kind=\"provision\",outcome=\"succeeded\"} 3\n");
    CHECK_CONTAINS(text, "ft_test_jobs_total{kind=\"deprovision\",outcome=\"failed\"} 1\n");
    free(text);
}

TEST(an_unlabelled_family_shows_zero_before_its_first_update)
{
    char *text = render();
    CHECK_CONTAINS(text, "# TYPE ft_test_plain_total counter\nft_test_plain_total 0\n");
    CHECK_CONTAINS(text, "ft_test_plain_seconds_bucket{le=\"+Inf\"} 0\n");
    CHECK_CONTAINS(text, "ft_test_plain_seconds_count 0\n");
    free(text);
}

TEST(label_values_and_help_are_escaped)
{
    const char *odd = "a\"quote\\back\nline";
    ft_gauge_set(ft_metric_series(&test_level, odd), 2.5);
    CHECK(ft_metric_series(&test_level, odd) == ft_metric_series(&test_level, odd));
    CHECK(ft_metric_series(&test_level, "a\"quote\\back\nlin") != ft_metric_series(&test_level, odd));
    char *text = render();
    CHECK_CONTAINS(text, "ft_test_level{scope=\"a\\\"quote\\\\back\\nline\"} 2.5\n");
    CHECK_CONTAINS(text, "# HELP ft_test_level A gauge\\\\with a backslash and\\na line feed in its help.\n");
    free(text);
}

TEST(gauges_go_up_and_down)
{
    ft_series_t *s = ft_metric_series(&test_level, "pool");
    ft_gauge_set(s, 10);
    ft_gauge_add(s, 3);
    ft_gauge_add(s, -5.5);
    CHECK(ft_series_value(s) == 7.5);
    char *text = render();
    CHECK_CONTAINS(text, "ft_test_level{scope=\"pool\"} 7.5\n");
    free(text);
}

static double read_seven(void *arg)
{
    return *(double *)arg;
}

TEST(a_callback_gauge_is_read_at_each_scrape_until_unbound)
{
    double v = 7;
    ft_gauge_bind(&test_read, read_seven, &v);
    char *text = render();
    CHECK_CONTAINS(text, "# TYPE ft_test_read gauge\nft_test_read 7\n");
    free(text);
    v = 8;
    text = render();
    CHECK_CONTAINS(text, "ft_test_read 8\n");
    free(text);
    ft_gauge_bind(&test_read, NULL, NULL);
    text = render();
    CHECK_CONTAINS(text, "ft_test_read 0\n");
    free(text);
}

TEST(a_histogram_has_cumulative_buckets_an_inf_bucket_a_sum_and_a_count)
{
    ft_series_t *s = ft_metric_series(&test_seconds, "provision");
    ft_histogram_observe(s, 0.125);
    ft_histogram_observe(s, 0.25); /* a bound is inclusive */
    ft_histogram_observe(s, 5);
    ft_histogram_observe(s, 50); /* past the last bound: +Inf only */
    char *text = render();
    CHECK_INT(1, occurrences(text, "# TYPE ft_test_duration_seconds histogram\n"));
    CHECK_CONTAINS(text, "ft_test_duration_seconds_bucket{kind=\"provision\",le=\"0.25\"} 2\n"
                         "ft_test_duration_seconds_bucket{kind=\"provision\",le=\"1\"} 2\n"
                         "ft_test_duration_seconds_bucket{kind=\"provision\",le=\"10\"} 3\n"
                         "ft_test_duration_seconds_bucket{kind=\"provision\",le=\"+Inf\"} 4\n"
                         "ft_test_duration_seconds_sum{kind=\"provision\"} 55.375\n"
                         "ft_test_duration_seconds_count{kind=\"provision\"} 4\n");
    free(text);
}

TEST(families_render_in_name_order)
{
    char *text = render();
    const char *a = strstr(text, "# HELP ft_test_duration_seconds "), *b = strstr(text, "# HELP ft_test_jobs_total "),
               *c = strstr(text, "# HELP ft_test_level ");
    CHECK(a != NULL && b != NULL && c != NULL);
    CHECK(a < b && b < c);
    free(text);
}

TEST(series_past_the_bound_are_counted_nowhere)
{
    char name[32];
    for (int i = 0; i < FT_METRIC_MAX_SERIES + 10; i++) {
        snprintf(name, sizeof(name), "k%d", i);
        ft_histogram_observe(ft_metric_series(&test_seconds, name), 1);
    }
    char *text = render();
    CHECK_CONTAINS(text, "kind=\"k0\"");
    CHECK(strstr(text, "kind=\"k260\"") == NULL);
    free(text);
}

#define THREADS 4
#define PER_THREAD 20000

static void *hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        ft_counter_inc(ft_metric_series(&test_jobs, "concurrent", i % 2 ? "a" : "b"));
        ft_histogram_observe(ft_metric_series(&test_plain_seconds), 0.5);
    }
    return NULL;
}

TEST(updates_from_many_threads_are_all_counted)
{
    pthread_t t[THREADS];
    double before = ft_series_value(ft_metric_series(&test_plain_seconds));
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, hammer, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    CHECK_INT(THREADS * PER_THREAD / 2, ft_series_value(ft_metric_series(&test_jobs, "concurrent", "a")));
    CHECK_INT(THREADS * PER_THREAD / 2, ft_series_value(ft_metric_series(&test_jobs, "concurrent", "b")));
    CHECK_INT(before + THREADS * PER_THREAD, ft_series_value(ft_metric_series(&test_plain_seconds)));
}

RUN_TESTS(TEST_ENTRY(observations_from_two_shards_are_summed_by_route_and_status),
          TEST_ENTRY(a_labelled_counter_has_help_and_type_once_and_one_series_per_label_set),
          TEST_ENTRY(an_unlabelled_family_shows_zero_before_its_first_update), TEST_ENTRY(label_values_and_help_are_escaped),
          TEST_ENTRY(gauges_go_up_and_down), TEST_ENTRY(a_callback_gauge_is_read_at_each_scrape_until_unbound),
          TEST_ENTRY(a_histogram_has_cumulative_buckets_an_inf_bucket_a_sum_and_a_count), TEST_ENTRY(families_render_in_name_order),
          TEST_ENTRY(series_past_the_bound_are_counted_nowhere), TEST_ENTRY(updates_from_many_threads_are_all_counted))
