/*
 * A minimal test harness: TEST(name) defines a case, the CHECK_* macros report the expected
 * and actual values with file and line, and RUN_TESTS runs all cases or the one named on the
 * command line. A failed check marks the case failed and continues with the next case.
 */
#ifndef FT_TEST_H
#define FT_TEST_H

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

typedef struct ft_test_case {
    const char *name;
    void (*fn)(void);
} ft_test_case_t;

extern jmp_buf ft_test_jump;
extern int ft_test_failed;

#define TEST(name) static void test_##name(void)
#define TEST_ENTRY(name) {#name, test_##name}

#define FT_FAIL_(...)                                                                                                          \
    do {                                                                                                                       \
        fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);                                                                      \
        fprintf(stderr, __VA_ARGS__);                                                                                          \
        fputc('\n', stderr);                                                                                                   \
        ft_test_failed = 1;                                                                                                    \
        longjmp(ft_test_jump, 1);                                                                                              \
    } while (0)

#define CHECK(cond)                                                                                                            \
    do {                                                                                                                       \
        if (!(cond))                                                                                                           \
            FT_FAIL_("expected %s", #cond);                                                                                    \
    } while (0)

#define CHECK_INT(expected, actual)                                                                                            \
    do {                                                                                                                       \
        long long e_ = (long long)(expected), a_ = (long long)(actual);                                                        \
        if (e_ != a_)                                                                                                          \
            FT_FAIL_("%s: expected %lld, got %lld", #actual, e_, a_);                                                          \
    } while (0)

#define CHECK_STR(expected, actual)                                                                                            \
    do {                                                                                                                       \
        const char *e_ = (expected), *a_ = (actual);                                                                           \
        if (e_ == NULL || a_ == NULL ? e_ != a_ : strcmp(e_, a_) != 0)                                                         \
            FT_FAIL_("%s: expected \"%s\", got \"%s\"", #actual, e_ ? e_ : "(null)", a_ ? a_ : "(null)");                     \
    } while (0)

#define CHECK_CONTAINS(haystack, needle)                                                                                       \
    do {                                                                                                                       \
        const char *h_ = (haystack), *n_ = (needle);                                                                           \
        if (h_ == NULL || strstr(h_, n_) == NULL)                                                                              \
            FT_FAIL_("%s: expected to contain \"%s\", got \"%s\"", #haystack, n_, h_ ? h_ : "(null)");                         \
    } while (0)

int ft_test_run(const ft_test_case_t *cases, size_t n, int argc, char **argv);

#define RUN_TESTS(...)                                                                                                         \
    jmp_buf ft_test_jump;                                                                                                      \
    int ft_test_failed;                                                                                                        \
    int main(int argc, char **argv)                                                                                            \
    {                                                                                                                          \
        static const ft_test_case_t cases_[] = {__VA_ARGS__};                                                                  \
        return ft_test_run(cases_, sizeof(cases_) / sizeof(cases_[0]), argc, argv);                                            \
    }

#endif
