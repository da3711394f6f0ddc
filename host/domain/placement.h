/*
 * Where a new Standard instance goes: one of the pooled tenant databases, chosen by a policy.
 * Plain C over the candidates the caller read (and locked); no SQL here.
 */
#ifndef FT_PLACEMENT_H
#define FT_PLACEMENT_H

#include <stddef.h>

typedef enum {
    FT_PLACEMENT_LEAST_LOADED, /* lowest placed/capacity, ties by name */
    FT_PLACEMENT_FILL_FIRST,   /* the first database by name that has room */
} ft_placement_policy_t;

typedef struct ft_placement_candidate {
    const char *name;
    long long placed;   /* live instances placed there */
    long long capacity; /* > 0 */
    int open;           /* 0: closed, takes no new instance */
} ft_placement_candidate_t;

/* The policy named s ("least-loaded", "fill-first"): 0, or -1 when s names none. */
int ft_placement_policy_parse(const char *s, ft_placement_policy_t *out);
const char *ft_placement_policy_name(ft_placement_policy_t p);

/* The index of the candidate the policy picks among the open ones with room (placed <
 * capacity), or -1 when there is none. The candidates may come in any order. */
long ft_placement_pick(ft_placement_policy_t policy, const ft_placement_candidate_t *c, size_t n);

#endif
