/* placeholder */
typedef int ft_placeholder_crypto_t;
