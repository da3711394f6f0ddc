/*
 * JSON Web Tokens in JWS compact form (RFC 7515, RFC 7519), signed RS256, ES256 or EdDSA
 * (Ed25519), checked as RFC 8725 advises: one algorithm per keyring, fixed by the host and never
 * taken from the token; keys only from the keyring, found by "kid"; "exp" required.
 */
#ifndef FT_AUTH_JWT_H
#define FT_AUTH_JWT_H

#include "core/error.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { FT_JWT_RS256, FT_JWT_ES256, FT_JWT_EDDSA } ft_jwt_alg_t;

/* RSA modulus size ft_jwt_key_generate uses; ft_jwt_key_load accepts 2048 to 8192 bits. */
#define FT_JWT_RSA_BITS 2048

/* Token length ft_jwt_verify accepts when its options say 0. */
#define FT_JWT_DEFAULT_MAX_LEN 8192

/* "RS256", "ES256" or "EdDSA", exactly (case matters): FT_OK, else FT_EINVAL. */
int ft_jwt_alg_parse(const char *name, ft_jwt_alg_t *out);
/* The JWS name of alg; a static string ("?" for a value outside the enum). */
const char *ft_jwt_alg_name(ft_jwt_alg_t alg);

/* One key: an OpenSSL key parsed once, with its kid and the algorithm it serves. */
typedef struct ft_jwt_key ft_jwt_key_t;

/*
 * A fresh private key for alg (RSA FT_JWT_RSA_BITS, EC P-256, Ed25519) as a PKCS#8 PEM string in
 * *private_pem, which the caller frees with free() (and should wipe: it is a secret).
 * FT_OK, or FT_EIO when OpenSSL fails (err says why).
 */
int ft_jwt_key_generate(ft_jwt_alg_t alg, char **private_pem, ft_error_t *err);

/*
 * Parses pem once: a private key ("PRIVATE KEY", or the traditional "RSA/EC PRIVATE KEY"; can sign
 * and verify) or a public key ("PUBLIC KEY", SubjectPublicKeyInfo; verify only). Encrypted PEMs
 * are refused, never prompted for. The key type must fit alg: RSA of 2048 to 8192 bits for RS256
 * (not RSA-PSS keys), EC on P-256 for ES256, Ed25519 for EdDSA. kid must be 1 to 128 printable
 * ASCII characters. Returns the key, which the caller frees with ft_jwt_key_free (or hands to
 * ft_jwt_keyring_add), or NULL with err filled (FT_EINVAL).
 */
ft_jwt_key_t *ft_jwt_key_load(ft_jwt_alg_t alg, const char *kid, const char *pem, ft_error_t *err);
void ft_jwt_key_free(ft_jwt_key_t *key);
/* Owned by the key. */
const char *ft_jwt_key_kid(const ft_jwt_key_t *key);
ft_jwt_alg_t ft_jwt_key_alg(const ft_jwt_key_t *key);
/* 1 when the key holds a private key (can sign). */
int ft_jwt_key_can_sign(const ft_jwt_key_t *key);
/*
 * The key's public JWK (RFC 7517, 7518, 8037): kty, kid, use "sig", alg, and n/e (RSA), crv
 * "P-256"/x/y (EC) or crv "Ed25519"/x (OKP). Never a private member. A new object: the caller
 * json_decrefs it.
 */
json_t *ft_jwt_key_jwk(const ft_jwt_key_t *key);

/*
 * A set of keys for one algorithm: at most one signing key and any number of verify-only keys
 * (the previous signing keys during a rotation). Built by one thread, then immutable and shared
 * read-only by any number of threads; refcounted so the host can publish it through an atomic
 * pointer and swap it while requests still use the old one.
 */
typedef struct ft_jwt_keyring ft_jwt_keyring_t;

/* An empty keyring holding one reference; never NULL. */
ft_jwt_keyring_t *ft_jwt_keyring_new(ft_jwt_alg_t alg);
/*
 * Adds key, whose ownership passes to the ring whatever the result (it is freed on failure).
 * signing: 1 to make it the signing key. FT_EINVAL for a NULL argument, a key of another
 * algorithm or a signing key without a private key; FT_ECONFLICT for a kid already in the ring or
 * a second signing key; FT_ESTATE once the ring has been shared (ft_jwt_keyring_ref). err may be NULL.
 */
int ft_jwt_keyring_add(ft_jwt_keyring_t *ring, ft_jwt_key_t *key, int signing, ft_error_t *err);
ft_jwt_alg_t ft_jwt_keyring_alg(const ft_jwt_keyring_t *ring);
/* The key with that kid, owned by the ring, or NULL. */
const ft_jwt_key_t *ft_jwt_keyring_find(const ft_jwt_keyring_t *ring, const char *kid);
/* {"keys":[<public JWK>, ...]} in the order the keys were added; the caller json_decrefs it. */
json_t *ft_jwt_keyring_jwks(const ft_jwt_keyring_t *ring);
/* Takes one more reference (atomic, any thread) and returns ring. */
ft_jwt_keyring_t *ft_jwt_keyring_ref(ft_jwt_keyring_t *ring);
/* Drops one reference (atomic, any thread); the last one frees the ring and its keys. NULL is a no-op. */
void ft_jwt_keyring_unref(ft_jwt_keyring_t *ring);
/* Drops the creator's reference: the same as ft_jwt_keyring_unref. */
void ft_jwt_keyring_free(ft_jwt_keyring_t *ring);

/*
 * Signs claims (a JSON object, serialised compactly) with the ring's signing key under the header
 * {"alg":<ring alg>,"typ":"JWT","kid":<signing kid>}; ES256 signatures are JOSE raw r||s. The
 * token is stored in *token, NUL-terminated; the caller frees it with free(). FT_EINVAL when
 * claims is not an object, FT_ESTATE when the ring has no signing key, FT_EIO when OpenSSL fails.
 * Thread-safe on a shared ring.
 */
int ft_jwt_sign(const ft_jwt_keyring_t *ring, const json_t *claims, char **token, ft_error_t *err);

typedef struct ft_jwt_verify_opts {
    const char *issuer;   /* when set, "iss" must be this string */
    const char *audience; /* when set, "aud" must be this string or an array holding it */
    int64_t now;          /* seconds since the epoch; 0 means time(NULL) */
    unsigned leeway_s;    /* clock skew allowed on exp and nbf */
    size_t max_len;       /* longest token accepted; 0 means FT_JWT_DEFAULT_MAX_LEN */
} ft_jwt_verify_opts_t;

/*
 * Verifies the len bytes of token (no NUL needed) against ring; o may be NULL (all defaults).
 * FT_OK with the payload in *claims (the caller json_decrefs it), or FT_EAUTH with *claims NULL
 * and err->message a short reason that is safe to send in a 401 answer ("signature does not
 * verify", ...). FT_EEXPIRED ("token expired") only for a token that is good in every other checked
 * way so far (header, key, signature) but whose exp has passed: the caller may say "refresh".
 * FT_EINVAL only for a NULL ring or claims. The header's alg
 * must equal the ring's exactly, kid must name a ring key, crit is refused, jku/x5u/jwk/x5c are
 * ignored; exp is required (number), nbf and iat are numbers when present. Thread-safe: any number
 * of threads may verify against one ring at once.
 */
int ft_jwt_verify(const ft_jwt_keyring_t *ring, const char *token, size_t len, const ft_jwt_verify_opts_t *o, json_t **claims,
                  ft_error_t *err);

#endif
