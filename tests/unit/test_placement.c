/*
 * Placement of a new Standard instance: least-loaded by placed/capacity with ties by name,
 * fill-first by name, and never a closed or full database.
 */
#include "domain/placement.h"
#include "ft_test.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

TEST(least_loaded_picks_the_lowest_ratio_not_the_fewest_instances)
{
    /* b holds more instances but is the emptier relative to its capacity */
    ft_placement_candidate_t c[] = {{"a", 3, 10, 1}, {"b", 5, 100, 1}};
    CHECK_INT(1, ft_placement_pick(FT_PLACEMENT_LEAST_LOADED, c, N(c)));
}

TEST(least_loaded_breaks_ties_by_name_whatever_the_order)
{
    ft_placement_candidate_t c[] = {{"zeta", 1, 4, 1}, {"alpha", 2, 8, 1}, {"mid", 3, 4, 1}};
    CHECK_INT(1, ft_placement_pick(FT_PLACEMENT_LEAST_LOADED, c, N(c)));
}

TEST(least_loaded_spreads_by_capacity)
{
    /* capacities 2 and 4: six placements in a row fill both, b taking two for each of a's */
    ft_placement_candidate_t c[] = {{"a", 0, 2, 1}, {"b", 0, 4, 1}};
    char order[8] = "";
    for (int i = 0; i < 6; i++) {
        long k = ft_placement_pick(FT_PLACEMENT_LEAST_LOADED, c, N(c));
        CHECK(k >= 0);
        order[i] = c[k].name[0];
        c[k].placed++;
    }
    CHECK_STR("abbabb", order);
    CHECK_INT(-1, ft_placement_pick(FT_PLACEMENT_LEAST_LOADED, c, N(c)));
}

TEST(fill_first_takes_the_first_by_name_with_room)
{
    ft_placement_candidate_t c[] = {{"b", 0, 5, 1}, {"a", 2, 3, 1}};
    CHECK_INT(1, ft_placement_pick(FT_PLACEMENT_FILL_FIRST, c, N(c)));
    c[1].placed = 3;
    CHECK_INT(0, ft_placement_pick(FT_PLACEMENT_FILL_FIRST, c, N(c)));
}

TEST(a_full_database_is_skipped_and_all_full_is_none)
{
    ft_placement_candidate_t c[] = {{"a", 4, 4, 1}, {"b", 9, 10, 1}};
    CHECK_INT(1, ft_placement_pick(FT_PLACEMENT_LEAST_LOADED, c, N(c)));
    c[1].placed = 10;
    CHECK_INT(-1, ft_placement_pick(FT_PLACEMENT_LEAST_LOADED, c, N(c)));
    CHECK_INT(-1, ft_placement_pick(FT_PLACEMENT_FILL_FIRST, c, N(c)));
    /* over capacity (lowered below its placements before a restart) counts as full */
    c[0].placed = 7;
    CHECK_INT(-1, ft_placement_pick(FT_PLACEMENT_FILL_FIRST, c, N(c)));
}

TEST(a_closed_database_gets_nothing_even_when_empty)
{
    ft_placement_candidate_t c[] = {{"a", 0, 100, 0}, {"b", 5, 10, 1}};
    CHECK_INT(1, ft_placement_pick(FT_PLACEMENT_LEAST_LOADED, c, N(c)));
    CHECK_INT(1, ft_placement_pick(FT_PLACEMENT_FILL_FIRST, c, N(c)));
    c[1].open = 0;
    CHECK_INT(-1, ft_placement_pick(FT_PLACEMENT_LEAST_LOADED, c, N(c)));
}

TEST(no_candidates_is_none)
{
    CHECK_INT(-1, ft_placement_pick(FT_PLACEMENT_LEAST_LOADED, NULL, 0));
}

TEST(policy_names_parse_both_ways)
{
    ft_placement_policy_t p = FT_PLACEMENT_LEAST_LOADED;
    CHECK_INT(0, ft_placement_policy_parse("fill-first", &p));
    CHECK_INT(FT_PLACEMENT_FILL_FIRST, p);
    CHECK_STR("fill-first", ft_placement_policy_name(p));
    CHECK_INT(0, ft_placement_policy_parse("least-loaded", &p));
    CHECK_STR("least-loaded", ft_placement_policy_name(p));
    CHECK_INT(-1, ft_placement_policy_parse("round-robin", &p));
    CHECK_INT(-1, ft_placement_policy_parse(NULL, &p));
}

RUN_TESTS(TEST_ENTRY(least_loaded_picks_the_lowest_ratio_not_the_fewest_instances),
          TEST_ENTRY(least_loaded_breaks_ties_by_name_whatever_the_order), TEST_ENTRY(least_loaded_spreads_by_capacity),
          TEST_ENTRY(fill_first_takes_the_first_by_name_with_room), TEST_ENTRY(a_full_database_is_skipped_and_all_full_is_none),
          TEST_ENTRY(a_closed_database_gets_nothing_even_when_empty), TEST_ENTRY(no_candidates_is_none),
          TEST_ENTRY(policy_names_parse_both_ways))
