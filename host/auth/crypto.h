/*
 * Small cryptographic building blocks for the authentication layer: random bytes and tokens,
 * base64url (RFC 4648 §5, unpadded), SHA-256, constant-time comparison and argon2id password
 * hashes. Everything is a thin layer over OpenSSL and libargon2; all functions are thread-safe.
 */
#ifndef FT_AUTH_CRYPTO_H
#define FT_AUTH_CRYPTO_H

#include "core/error.h"

#include <stddef.h>

/* Buffer size, NUL included, that ft_base64url_encode needs for n input bytes (evaluates n twice). */
#define FT_BASE64URL_LEN(n) (((n) / 3) * 4 + (((n) % 3) * 4 + 2) / 3 + 1)

/* Buffer size, NUL included, that always holds an ft_password_hash result. */
#define FT_PASSWORD_HASH_MAX 128

/* Longest password ft_password_hash accepts, in bytes: bounds the CPU one request can cost. */
#define FT_PASSWORD_MAX_LEN 1024

/* Fills buf with len bytes from OpenSSL's CSPRNG. FT_OK, or FT_EIO when the generator fails. */
int ft_random_bytes(void *buf, size_t len);

/*
 * Encodes len bytes as unpadded base64url into out and NUL-terminates it. Returns the encoded
 * length (without the NUL). When outcap < FT_BASE64URL_LEN(len) nothing is encoded: out[0] is
 * set to NUL (if outcap > 0) and 0 is returned.
 */
size_t ft_base64url_encode(const void *in, size_t len, char *out, size_t outcap);

/*
 * Decodes exactly len characters of unpadded base64url into out and stores the byte count in
 * *outlen. Strict: '=' padding, any character outside [A-Za-z0-9_-], a length of 1 mod 4 and
 * non-zero unused trailing bits (a non-canonical encoding) all give FT_EINVAL, as does an outcap
 * smaller than the decoded size (len / 4 * 3 + 2 always suffices). out is unspecified on error.
 */
int ft_base64url_decode(const char *in, size_t len, void *out, size_t outcap, size_t *outlen);

void ft_sha256(const void *data, size_t len, unsigned char out[32]);
/* SHA-256 as 64 lowercase hex digits and a NUL. */
void ft_sha256_hex(const void *data, size_t len, char out[65]);

/* 1 when the len bytes at a and b are equal, else 0; the time taken depends on len only. */
int ft_ct_equal(const void *a, const void *b, size_t len);

/*
 * nbytes random bytes, base64url-encoded into out (FT_BASE64URL_LEN(nbytes) bytes needed).
 * FT_OK, FT_EINVAL when out is too small, FT_EIO when the generator fails.
 */
int ft_random_token(char *out, size_t outcap, size_t nbytes);

/*
 * Hashes password with argon2id (m=19456 KiB, t=2, p=1, 16-byte random salt, 32-byte hash) and
 * writes the PHC string "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>" into out, which needs
 * FT_PASSWORD_HASH_MAX bytes. FT_EINVAL for a NULL password, one longer than
 * FT_PASSWORD_MAX_LEN or a too small out; FT_EIO when the generator or argon2 fails. Takes tens
 * of milliseconds and 19 MiB: call it from a worker thread, never an HTTP loop thread.
 */
int ft_password_hash(const char *password, char *out, size_t outcap, ft_error_t *err);

/*
 * 1 when password matches the argon2id PHC string encoded, else 0: also for NULL arguments, a
 * malformed string, another argon2 variant or version than argon2id v=19, and costs beyond the
 * host's bounds (m > 256 MiB, t > 16, p > 16), so a stored string cannot make one call arbitrarily
 * expensive. The comparison is constant-time. Same cost as ft_password_hash: not on a loop thread.
 */
int ft_password_verify(const char *encoded, const char *password);

#endif
