/* placeholder */
typedef int ft_placeholder_ratelimit_t;
