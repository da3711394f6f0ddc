/* placeholder */
typedef int ft_placeholder_jwt_t;
