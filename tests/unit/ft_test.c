/*
 * The runner behind RUN_TESTS: runs each case, prints one line per case and a summary.
 */
#include "ft_test.h"

int ft_test_run(const ft_test_case_t *cases, size_t n, int argc, char **argv)
{
    /* volatile: they live across setjmp/longjmp */
    volatile int failures = 0, ran = 0;
    for (volatile size_t i = 0; i < n; i++) {
        if (argc > 1 && strcmp(argv[1], cases[i].name) != 0)
            continue;
        ran++;
        ft_test_failed = 0;
        if (setjmp(ft_test_jump) == 0)
            cases[i].fn();
        printf("%s %s\n", ft_test_failed ? "FAIL" : "ok  ", cases[i].name);
        failures += ft_test_failed;
    }
    if (ran == 0) {
        fprintf(stderr, "no test named %s\n", argc > 1 ? argv[1] : "(any)");
        return 2;
    }
    printf("%d of %d passed\n", ran - failures, ran);
    return failures == 0 ? 0 : 1;
}
