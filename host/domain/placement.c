/*
 * Placement policies. least-loaded spreads instances by how full each database is relative to
 * its own capacity, so a small database is not filled as fast as a large one; fill-first packs
 * databases one after the other (by name), so a new one stays empty until the older are full.
 */
#include "domain/placement.h"

#include <string.h>

static const char *const names[] = {[FT_PLACEMENT_LEAST_LOADED] = "least-loaded", [FT_PLACEMENT_FILL_FIRST] = "fill-first"};

int ft_placement_policy_parse(const char *s, ft_placement_policy_t *out)
{
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (s != NULL && strcmp(s, names[i]) == 0) {
            *out = (ft_placement_policy_t)i;
            return 0;
        }
    return -1;
}

const char *ft_placement_policy_name(ft_placement_policy_t p)
{
    return (size_t)p < sizeof(names) / sizeof(names[0]) ? names[p] : "least-loaded";
}

/* a before b: a's load placed/capacity is lower (compared exactly: a.placed * b.capacity <
 * b.placed * a.capacity), or equal and its name sorts first. fill-first compares names only. */
static int before(ft_placement_policy_t policy, const ft_placement_candidate_t *a, const ft_placement_candidate_t *b)
{
    if (policy == FT_PLACEMENT_LEAST_LOADED) {
        long long l = a->placed * b->capacity, r = b->placed * a->capacity;
        if (l != r)
            return l < r;
    }
    return strcmp(a->name, b->name) < 0;
}

long ft_placement_pick(ft_placement_policy_t policy, const ft_placement_candidate_t *c, size_t n)
{
    long best = -1;
    for (size_t i = 0; i < n; i++) {
        if (!c[i].open || c[i].capacity <= 0 || c[i].placed >= c[i].capacity)
            continue;
        if (best < 0 || before(policy, &c[i], &c[best]))
            best = (long)i;
    }
    return best;
}
