#include "ft_test.h"
TEST(placeholder) { CHECK(1); }
RUN_TESTS(TEST_ENTRY(placeholder))
