/*
 * traceparent: the valid forms, every invalid one W3C Trace Context Level 1 names, later
 * versions read leniently, and spans started in the caller's trace or in a new one.
 */
#include "domain/trace.h"
#include "ft_test.h"

#include <pthread.h>

#define TRACE "4bf92f3577b34da6a3ce929d0e0e4736"
#define PARENT "00f067aa0ba902b7"

static int parse(const char *s, char trace[33], char parent[17], unsigned *flags)
{
    return ft_traceparent_parse(s, strlen(s), trace, parent, flags);
}

static int valid(const char *s)
{
    char trace[33], parent[17];
    unsigned flags;
    return parse(s, trace, parent, &flags) == 0;
}

/* 00-<32 lowercase hex>-<16 lowercase hex>-<2 lowercase hex>, readable by the parser */
static void check_shape(const char *tp)
{
    CHECK_INT(FT_TRACEPARENT_LEN, strlen(tp));
    char trace[33], parent[17];
    unsigned flags;
    CHECK_INT(0, parse(tp, trace, parent, &flags));
    CHECK(strncmp(tp, "00-", 3) == 0);
}

TEST(version_00_is_read_into_its_fields)
{
    char trace[33], parent[17];
    unsigned flags = 99;
    CHECK_INT(0, parse("00-" TRACE "-" PARENT "-01", trace, parent, &flags));
    CHECK_STR(TRACE, trace);
    CHECK_STR(PARENT, parent);
    CHECK_INT(1, flags);
    CHECK_INT(0, parse("00-" TRACE "-" PARENT "-00", trace, parent, &flags));
    CHECK_INT(0, flags);
}

TEST(the_value_need_not_be_terminated)
{
    char buf[] = "00-" TRACE "-" PARENT "-01XYZ";
    char trace[33], parent[17];
    unsigned flags;
    CHECK_INT(0, ft_traceparent_parse(buf, FT_TRACEPARENT_LEN, trace, parent, &flags));
    CHECK_STR(PARENT, parent);
}

TEST(all_zero_trace_id_or_parent_id_is_invalid)
{
    CHECK(!valid("00-00000000000000000000000000000000-" PARENT "-01"));
    CHECK(!valid("00-" TRACE "-0000000000000000-01"));
}

TEST(uppercase_hex_is_invalid_in_every_field)
{
    CHECK(!valid("00-4BF92F3577B34DA6A3CE929D0E0E4736-" PARENT "-01"));
    CHECK(!valid("00-" TRACE "-00F067AA0BA902B7-01"));
    CHECK(!valid("00-" TRACE "-" PARENT "-0A"));
    CHECK(!valid("0A-" TRACE "-" PARENT "-01"));
}

TEST(non_hex_digits_and_misplaced_dashes_are_invalid)
{
    CHECK(!valid("00-4bf92f3577b34da6a3ce929d0e0e473g-" PARENT "-01"));
    CHECK(!valid("00-" TRACE "-" PARENT "-0g"));
    CHECK(!valid("00_" TRACE "-" PARENT "-01"));
    CHECK(!valid("00-" TRACE "_" PARENT "-01"));
    CHECK(!valid("00-" TRACE "-" PARENT "_01"));
    CHECK(!valid(" 00-" TRACE "-" PARENT "-0"));
}

TEST(version_ff_is_invalid)
{
    CHECK(!valid("ff-" TRACE "-" PARENT "-01"));
}

TEST(version_00_of_another_length_is_invalid)
{
    CHECK(!valid(""));
    CHECK(!valid("00-" TRACE "-" PARENT "-0"));
    CHECK(!valid("00-" TRACE "-" PARENT "-01-"));
    CHECK(!valid("00-" TRACE "-" PARENT "-01-extra"));
    CHECK(!valid("00-" TRACE "-" PARENT "-011"));
}

TEST(a_later_version_is_read_by_its_first_four_fields)
{
    char trace[33], parent[17];
    unsigned flags;
    CHECK_INT(0, parse("01-" TRACE "-" PARENT "-01", trace, parent, &flags));
    CHECK_INT(0, parse("cc-" TRACE "-" PARENT "-09-what-the-future-adds", trace, parent, &flags));
    CHECK_STR(TRACE, trace);
    CHECK_STR(PARENT, parent);
    CHECK_INT(9, flags);
    /* a field that does not end at a dash, or is too short, is still invalid */
    CHECK(!valid("cc-" TRACE "-" PARENT "-09what"));
    CHECK(!valid("cc-" TRACE "-" PARENT "-0"));
    CHECK(!valid("cc-00000000000000000000000000000000-" PARENT "-01"));
}

TEST(a_span_in_the_callers_trace_keeps_the_trace_and_the_flags_with_a_new_span_id)
{
    ft_trace_t t;
    const char *in = "00-" TRACE "-" PARENT "-01";
    ft_trace_begin(&t, in, strlen(in));
    check_shape(t.traceparent);
    CHECK_STR(TRACE, t.trace_id);
    CHECK(strncmp(t.traceparent + 3, TRACE, 32) == 0);
    CHECK(strncmp(t.traceparent + 36, PARENT, 16) != 0);
    CHECK_STR("01", t.traceparent + 53);

    const char *unsampled = "00-" TRACE "-" PARENT "-00";
    ft_trace_begin(&t, unsampled, strlen(unsampled));
    CHECK_STR("00", t.traceparent + 53);
}

TEST(flags_version_00_does_not_define_are_passed_on_as_zero)
{
    ft_trace_t t;
    const char *in = "00-" TRACE "-" PARENT "-ff";
    ft_trace_begin(&t, in, strlen(in));
    CHECK_STR("01", t.traceparent + 53);
    const char *later = "42-" TRACE "-" PARENT "-fe-more";
    ft_trace_begin(&t, later, strlen(later));
    check_shape(t.traceparent);
    CHECK_STR("00", t.traceparent + 53);
}

TEST(no_or_an_invalid_parent_starts_a_new_sampled_trace)
{
    const char *bad[] = {NULL, "", "ff-" TRACE "-" PARENT "-01", "00-00000000000000000000000000000000-" PARENT "-01",
                         "00-4BF92F3577B34DA6A3CE929D0E0E4736-" PARENT "-01"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ft_trace_t t;
        ft_trace_begin(&t, bad[i], bad[i] != NULL ? strlen(bad[i]) : 0);
        check_shape(t.traceparent);
        CHECK(strcmp(t.trace_id, TRACE) != 0);
        CHECK(strncmp(t.traceparent + 3, t.trace_id, 32) == 0);
        CHECK_STR("01", t.traceparent + 53);
    }
}

TEST(new_traces_and_spans_differ)
{
    ft_trace_t a, b;
    ft_trace_begin(&a, NULL, 0);
    ft_trace_begin(&b, NULL, 0);
    CHECK(strcmp(a.trace_id, b.trace_id) != 0);
    ft_trace_t c, d;
    ft_trace_begin(&c, a.traceparent, strlen(a.traceparent));
    ft_trace_begin(&d, a.traceparent, strlen(a.traceparent));
    CHECK_STR(a.trace_id, c.trace_id);
    CHECK(strcmp(c.traceparent, d.traceparent) != 0);
    CHECK(strncmp(c.traceparent + 36, a.traceparent + 36, 16) != 0);
}

/* Each thread draws from a generator of its own, seeded on its first id: ids started in other
 * threads differ from each other and from this thread's. */
static void *begin_in_thread(void *arg)
{
    ft_trace_begin(arg, NULL, 0);
    return NULL;
}

TEST(new_traces_in_other_threads_differ)
{
    enum { N = 8 };
    ft_trace_t t[N + 1];
    pthread_t th[N];
    for (int i = 0; i < N; i++)
        CHECK(pthread_create(&th[i], NULL, begin_in_thread, &t[i]) == 0);
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    ft_trace_begin(&t[N], NULL, 0);
    for (int i = 0; i <= N; i++) {
        check_shape(t[i].traceparent);
        for (int j = 0; j < i; j++) {
            CHECK(strcmp(t[i].trace_id, t[j].trace_id) != 0);
            CHECK(strncmp(t[i].traceparent + 36, t[j].traceparent + 36, 16) != 0);
        }
    }
}

RUN_TESTS(TEST_ENTRY(version_00_is_read_into_its_fields), TEST_ENTRY(the_value_need_not_be_terminated),
          TEST_ENTRY(all_zero_trace_id_or_parent_id_is_invalid), TEST_ENTRY(uppercase_hex_is_invalid_in_every_field),
          TEST_ENTRY(non_hex_digits_and_misplaced_dashes_are_invalid), TEST_ENTRY(version_ff_is_invalid),
          TEST_ENTRY(version_00_of_another_length_is_invalid), TEST_ENTRY(a_later_version_is_read_by_its_first_four_fields),
          TEST_ENTRY(a_span_in_the_callers_trace_keeps_the_trace_and_the_flags_with_a_new_span_id),
          TEST_ENTRY(flags_version_00_does_not_define_are_passed_on_as_zero),
          TEST_ENTRY(no_or_an_invalid_parent_starts_a_new_sampled_trace), TEST_ENTRY(new_traces_and_spans_differ),
          TEST_ENTRY(new_traces_in_other_threads_differ))
