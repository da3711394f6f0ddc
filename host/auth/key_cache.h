/*
 * The API key cache: what each key prefix's row in ft_api_keys said when it was last read,
 * and when to read it again. Sharded, one mutex per shard held for a few lines.
 *
 * A key in use is read again before it expires, in the background: each entry has a refresh
 * time drawn between 20 and 30 s after its read (so the keys read together in one burst do not
 * come due together), and the first request that finds it due is told to start the read while
 * the cached row keeps answering; a client that calls at least every 30 s never waits for one.
 * An entry still expires FT_KEY_CACHE_TTL_NS after its read, refreshed or not: that bound on how
 * long a row is believed does not change.
 */
#ifndef FT_KEY_CACHE_H
#define FT_KEY_CACHE_H

#include <stdint.h>

#include "auth/identity.h"

#define FT_KEY_CACHE_TTL_NS (60ull * 1000000000ull)           /* a row is believed for a minute at most */
#define FT_KEY_CACHE_MISSING_TTL_NS (5ull * 1000000000ull)    /* an unknown prefix is asked for again after 5 s */
#define FT_KEY_CACHE_REFRESH_MIN_NS (20ull * 1000000000ull)   /* a refresh is due 20 s after the read ... */
#define FT_KEY_CACHE_REFRESH_SPREAD_NS (10ull * 1000000000ull) /* ... plus up to 10 s, drawn per entry */
/* a refresh not back after 5 s is handed out again (a second try before the expiry) */
#define FT_KEY_CACHE_REFRESH_RETRY_NS (5ull * 1000000000ull)

typedef struct ft_key_cache ft_key_cache_t;

ft_key_cache_t *ft_key_cache_new(void);
void ft_key_cache_free(ft_key_cache_t *c);

/* The verdict on a presented secret's SHA-256 against a row and what it grants (worked out by the
 * caller when it learned the row; row NULL: no key has this prefix). On FT_KEY_INVALID err says why, in words fit for the client. */
ft_key_check_t ft_key_judge(const ft_api_key_row_t *row, const ft_credential_t *grants, const unsigned char digest[32],
                            ft_credential_t *out, ft_error_t *err);

/* Checks a presented secret's digest against the cached row of prefix at now_ns (monotonic):
 * FT_KEY_UNKNOWN_HERE when the database must be asked (nothing cached, or expired). On a
 * verdict from the cache, *refresh is set to 1 when this caller is the one to read the row again
 * in the background (ft_key_cache_epoch, the read, then ft_key_cache_learn); else 0. */
ft_key_check_t ft_key_cache_check(ft_key_cache_t *c, const char *prefix, const unsigned char digest[32], uint64_t now_ns,
                                  ft_credential_t *out, int *refresh, ft_error_t *err);

/* A number that changes whenever a row is forgotten. Taken before a read from the database and
 * given back to ft_key_cache_learn, it keeps a row read before a revocation out of the cache when
 * the revocation's forget came in while the read was on its way. */
uint64_t ft_key_cache_epoch(ft_key_cache_t *c);

/* Caches a row read at now_ns (row NULL: no key has this prefix) unless a forget came in since
 * epoch; returns 1 when cached. grants is ignored for a NULL row. */
int ft_key_cache_learn(ft_key_cache_t *c, const char *prefix, const ft_api_key_row_t *row, const ft_credential_t *grants,
                       uint64_t now_ns, uint64_t epoch);

/* Drops one prefix, or every entry (changes may have been missed). */
void ft_key_cache_forget(ft_key_cache_t *c, const char *prefix);
void ft_key_cache_forget_all(ft_key_cache_t *c);

#endif
