/*
 * Crypto building blocks: base64url against RFC 4648 vectors and its strict rejections, SHA-256
 * known answers, constant-time comparison, random tokens, and argon2id password hashes (our own
 * round trip, the reference implementation's vector, and garbage stored strings).
 */
#include "auth/crypto.h"
#include "ft_test.h"

#include <stdlib.h>
#include <time.h>

static void check_encode(const char *in, size_t len, const char *expected)
{
    char out[512];
    size_t n = ft_base64url_encode(in, len, out, sizeof(out));
    CHECK_STR(expected, out);
    CHECK_INT(strlen(expected), n);
    CHECK_INT(strlen(expected) + 1, FT_BASE64URL_LEN(len));

    unsigned char back[512];
    size_t backlen = 0;
    CHECK_INT(FT_OK, ft_base64url_decode(out, n, back, sizeof(back), &backlen));
    CHECK_INT(len, backlen);
    CHECK(memcmp(back, in, len) == 0);
}

static int decode_rc(const char *in)
{
    unsigned char out[64];
    size_t len = 99;
    int rc = ft_base64url_decode(in, strlen(in), out, sizeof(out), &len);
    if (rc != FT_OK)
        CHECK_INT(0, len);
    return rc;
}

TEST(base64url_rfc4648_vectors)
{
    check_encode("", 0, "");
    check_encode("f", 1, "Zg");
    check_encode("fo", 2, "Zm8");
    check_encode("foo", 3, "Zm9v");
    check_encode("foob", 4, "Zm9vYg");
    check_encode("fooba", 5, "Zm9vYmE");
    check_encode("foobar", 6, "Zm9vYmFy");
}

TEST(base64url_uses_the_url_alphabet)
{
    check_encode("\xfb\xff", 2, "-_8");
    check_encode("\xfb\xef\xbe", 3, "----");
    check_encode("\xff\xff\xff", 3, "____");
    check_encode("\0\0\0\0", 4, "AAAAAA");
}

TEST(base64url_all_byte_values_match_an_independent_encoder)
{
    /* Python's base64.urlsafe_b64encode(bytes(range(256))) with the padding stripped. */
    static const char expected[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0-"
                                   "P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn-"
                                   "AgYKDhIWGh4iJiouMjY6PkJGSk5SVlpeYmZqbnJ2en6ChoqOkpaanqKmqq6ytrq-wsbKztLW2t7i5uru8vb6_"
                                   "wMHCw8TFxsfIycrLzM3Oz9DR0tPU1dbX2Nna29zd3t_g4eLj5OXm5-jp6uvs7e7v8PHy8_T19vf4-fr7_P3-_w";
    char in[256];
    for (int i = 0; i < 256; i++)
        in[i] = (char)i;
    check_encode(in, sizeof(in), expected);
}

TEST(base64url_round_trips_every_length)
{
    unsigned char in[100], back[100];
    char text[FT_BASE64URL_LEN(100)];
    CHECK_INT(FT_OK, ft_random_bytes(in, sizeof(in)));
    for (size_t len = 0; len <= sizeof(in); len++) {
        size_t n = ft_base64url_encode(in, len, text, sizeof(text)), backlen = 0;
        CHECK_INT(FT_BASE64URL_LEN(len) - 1, n);
        CHECK(strchr(text, '=') == NULL && strchr(text, '+') == NULL && strchr(text, '/') == NULL);
        CHECK_INT(FT_OK, ft_base64url_decode(text, n, back, sizeof(back), &backlen));
        CHECK_INT(len, backlen);
        CHECK(memcmp(in, back, len) == 0);
    }
}

TEST(base64url_encode_refuses_a_short_buffer)
{
    char out[16] = "garbage";
    CHECK_INT(0, ft_base64url_encode("foobar", 6, out, 8)); /* needs 9 */
    CHECK_STR("", out);
    CHECK_INT(8, ft_base64url_encode("foobar", 6, out, 9));
    CHECK_STR("Zm9vYmFy", out);
    CHECK_INT(0, ft_base64url_encode("f", 1, NULL, 0));
}

TEST(base64url_decode_rejects_padding)
{
    CHECK_INT(FT_EINVAL, decode_rc("Zg=="));
    CHECK_INT(FT_EINVAL, decode_rc("Zm8="));
    CHECK_INT(FT_EINVAL, decode_rc("Zm9vYg=="));
    CHECK_INT(FT_EINVAL, decode_rc("===="));
}

TEST(base64url_decode_rejects_characters_outside_the_alphabet)
{
    CHECK_INT(FT_EINVAL, decode_rc("Zm+v")); /* standard base64 */
    CHECK_INT(FT_EINVAL, decode_rc("Zm/v"));
    CHECK_INT(FT_EINVAL, decode_rc("Zm9 "));
    CHECK_INT(FT_EINVAL, decode_rc("Zm9v\n"));
    CHECK_INT(FT_EINVAL, decode_rc("Zm.v"));
    CHECK_INT(FT_EINVAL, decode_rc("Zm\xc3\xa9"));
    unsigned char out[8];
    size_t len;
    CHECK_INT(FT_EINVAL, ft_base64url_decode("Zm\0v", 4, out, sizeof(out), &len)); /* NUL inside the length */
}

TEST(base64url_decode_rejects_a_length_of_1_mod_4)
{
    CHECK_INT(FT_EINVAL, decode_rc("Z"));
    CHECK_INT(FT_EINVAL, decode_rc("Zm9vY"));
    CHECK_INT(FT_EINVAL, decode_rc("Zm9vYmFyZ"));
}

TEST(base64url_decode_rejects_non_canonical_trailing_bits)
{
    CHECK_INT(FT_OK, decode_rc("Zg"));
    CHECK_INT(FT_EINVAL, decode_rc("Zh")); /* "f" with a stray bit in the unused low 4 */
    CHECK_INT(FT_EINVAL, decode_rc("Zv"));
    CHECK_INT(FT_OK, decode_rc("Zm8"));
    CHECK_INT(FT_EINVAL, decode_rc("Zm9")); /* "fo" with a stray bit in the unused low 2 */
    CHECK_INT(FT_EINVAL, decode_rc("Zm_"));
    CHECK_INT(FT_EINVAL, decode_rc("-_9"));
    CHECK_INT(FT_OK, decode_rc("-_8"));
}

TEST(base64url_decode_refuses_a_short_buffer)
{
    unsigned char out[6];
    size_t len = 0;
    CHECK_INT(FT_EINVAL, ft_base64url_decode("Zm9vYmFy", 8, out, 5, &len));
    CHECK_INT(FT_OK, ft_base64url_decode("Zm9vYmFy", 8, out, 6, &len));
    CHECK_INT(6, len);
    CHECK(memcmp(out, "foobar", 6) == 0);
    CHECK_INT(FT_OK, ft_base64url_decode("", 0, NULL, 0, &len));
    CHECK_INT(0, len);
}

TEST(sha256_known_answers)
{
    char hex[65];
    ft_sha256_hex("", 0, hex);
    CHECK_STR("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", hex);
    ft_sha256_hex("abc", 3, hex);
    CHECK_STR("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", hex);
    const char *two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    ft_sha256_hex(two_blocks, strlen(two_blocks), hex);
    CHECK_STR("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1", hex);

    char *million = malloc(1000000);
    memset(million, 'a', 1000000);
    ft_sha256_hex(million, 1000000, hex);
    free(million);
    CHECK_STR("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", hex);

    unsigned char raw[32];
    ft_sha256("abc", 3, raw);
    CHECK_INT(0xba, raw[0]);
    CHECK_INT(0xad, raw[31]);
}

TEST(ct_equal_compares_all_bytes)
{
    unsigned char a[32], b[32];
    memset(a, 7, sizeof(a));
    memcpy(b, a, sizeof(b));
    CHECK_INT(1, ft_ct_equal(a, b, sizeof(a)));
    b[31] ^= 1;
    CHECK_INT(0, ft_ct_equal(a, b, sizeof(a)));
    b[31] ^= 1;
    b[0] ^= 0x80;
    CHECK_INT(0, ft_ct_equal(a, b, sizeof(a)));
    CHECK_INT(1, ft_ct_equal(a, b, 0));
}

TEST(random_bytes_differ_between_calls)
{
    unsigned char a[32], b[32];
    CHECK_INT(FT_OK, ft_random_bytes(a, sizeof(a)));
    CHECK_INT(FT_OK, ft_random_bytes(b, sizeof(b)));
    CHECK(memcmp(a, b, sizeof(a)) != 0);
    CHECK_INT(FT_OK, ft_random_bytes(a, 0));
}

TEST(random_token_is_base64url_of_n_bytes)
{
    char a[FT_BASE64URL_LEN(32)], b[FT_BASE64URL_LEN(32)];
    CHECK_INT(FT_OK, ft_random_token(a, sizeof(a), 32));
    CHECK_INT(FT_OK, ft_random_token(b, sizeof(b), 32));
    CHECK_INT(43, strlen(a));
    CHECK(strcmp(a, b) != 0);
    unsigned char raw[32];
    size_t len = 0;
    CHECK_INT(FT_OK, ft_base64url_decode(a, strlen(a), raw, sizeof(raw), &len));
    CHECK_INT(32, len);

    /* longer than one internal batch of 48 bytes */
    char big[FT_BASE64URL_LEN(100)];
    unsigned char bigraw[100];
    CHECK_INT(FT_OK, ft_random_token(big, sizeof(big), 100));
    CHECK_INT(134, strlen(big));
    CHECK_INT(FT_OK, ft_base64url_decode(big, strlen(big), bigraw, sizeof(bigraw), &len));
    CHECK_INT(100, len);
}

TEST(random_token_refuses_a_short_buffer)
{
    char out[43] = "x";
    CHECK_INT(FT_EINVAL, ft_random_token(out, sizeof(out), 32));
    CHECK_STR("", out);
}

TEST(password_hash_round_trip)
{
    char h1[FT_PASSWORD_HASH_MAX], h2[FT_PASSWORD_HASH_MAX];
    ft_error_t err = {0};
    CHECK_INT(FT_OK, ft_password_hash("correct horse battery staple", h1, sizeof(h1), &err));
    CHECK_INT(FT_OK, ft_password_hash("correct horse battery staple", h2, sizeof(h2), &err));
    CHECK(strncmp(h1, "$argon2id$v=19$m=19456,t=2,p=1$", 31) == 0);
    /* 16-byte salt (22 characters) and 32-byte hash (43 characters), unpadded */
    CHECK_INT(31 + 22 + 1 + 43, strlen(h1));
    CHECK(strcmp(h1, h2) != 0); /* fresh salt each time */
    CHECK_INT(1, ft_password_verify(h1, "correct horse battery staple"));
    CHECK_INT(1, ft_password_verify(h2, "correct horse battery staple"));
}

TEST(password_verify_refuses_a_wrong_password)
{
    char h[FT_PASSWORD_HASH_MAX];
    CHECK_INT(FT_OK, ft_password_hash("s3cret", h, sizeof(h), NULL));
    CHECK_INT(0, ft_password_verify(h, "s3cret "));
    CHECK_INT(0, ft_password_verify(h, "S3cret"));
    CHECK_INT(0, ft_password_verify(h, ""));
    CHECK_INT(0, ft_password_verify(h, NULL));
}

TEST(password_empty_is_hashed_like_any_other)
{
    char h[FT_PASSWORD_HASH_MAX];
    CHECK_INT(FT_OK, ft_password_hash("", h, sizeof(h), NULL));
    CHECK_INT(1, ft_password_verify(h, ""));
    CHECK_INT(0, ft_password_verify(h, "x"));
}

TEST(password_verify_accepts_the_reference_implementation_vector)
{
    /* phc-winner-argon2 src/test.c: argon2id, t=2, m=64 MiB, p=1, salt "somesalt". */
    const char *ref = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
    CHECK_INT(1, ft_password_verify(ref, "password"));
    CHECK_INT(0, ft_password_verify(ref, "passwore"));
}

TEST(password_hash_refuses_bad_input)
{
    char h[FT_PASSWORD_HASH_MAX];
    ft_error_t err = {0};
    CHECK_INT(FT_EINVAL, ft_password_hash(NULL, h, sizeof(h), &err));

    char *long_pw = malloc(FT_PASSWORD_MAX_LEN + 2);
    memset(long_pw, 'p', FT_PASSWORD_MAX_LEN + 1);
    long_pw[FT_PASSWORD_MAX_LEN + 1] = '\0';
    CHECK_INT(FT_EINVAL, ft_password_hash(long_pw, h, sizeof(h), &err));
    CHECK_CONTAINS(err.message, "longer than 1024 bytes");
    CHECK_INT(
        0, ft_password_verify("$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", long_pw));
    long_pw[FT_PASSWORD_MAX_LEN] = '\0'; /* exactly the limit is fine */
    CHECK_INT(FT_OK, ft_password_hash(long_pw, h, sizeof(h), &err));
    CHECK_INT(1, ft_password_verify(h, long_pw));
    free(long_pw);

    char small[64];
    CHECK_INT(FT_EINVAL, ft_password_hash("pw", small, sizeof(small), &err));
    CHECK_STR("", small);
}

TEST(password_verify_survives_garbage)
{
    static const char *const garbage[] = {
        "",
        "$",
        "$$$$$$$$$$",
        "$argon2id$",
        "$argon2id$v=19$",
        "$argon2id$v=19$m=65536,t=2,p=1$",
        "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$",
        "$argon2id$v=19$m=65536,t=2,p=1$$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPP",
        "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc$",
        "$argon2id$v=19$m=65536,t=2,p=1$c29t!XNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc=",
        /* other variants and versions, with the right password */
        "$argon2i$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2d$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=16$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        /* costs out of bounds or malformed: refused before anything runs */
        "$argon2id$v=19$m=4294967295,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=99999999999999999999999,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=65536,t=4294967295,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=65536,t=2,p=255$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=065536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=-1,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=0,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=1,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=65536,t=0,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=65536,p=1,t=2$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=65536,t=2,p=1,keyid=abc$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ",
        "$argon2id$v=19$m=65536,t=2,p=1$c2\xff\xfeNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$\x80\x81\x82",
    };
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        if (ft_password_verify(garbage[i], "password") != 0)
            FT_FAIL_("garbage #%zu verified: %s", i, garbage[i]);
    }
    CHECK_INT(0, ft_password_verify(NULL, "password"));

    char *huge = malloc(4096);
    memset(huge, 'A', 4095);
    huge[4095] = '\0';
    memcpy(huge, "$argon2id$v=19$m=19456,t=2,p=1$", 31);
    CHECK_INT(0, ft_password_verify(huge, "password"));
    free(huge);
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

TEST(password_verify_refuses_excessive_costs_without_running_them)
{
    /* Run as asked, each would take seconds to minutes, or gigabytes: refused up front instead. */
    static const char *const costly[] = {
        "$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=262145,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=1024,t=100000,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=65536,t=17,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=65536,t=2,p=64$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
    };
    for (size_t i = 0; i < sizeof(costly) / sizeof(costly[0]); i++) {
        double t0 = seconds_now();
        CHECK_INT(0, ft_password_verify(costly[i], "password"));
        if (seconds_now() - t0 > 0.05)
            FT_FAIL_("%s took %.3f s", costly[i], seconds_now() - t0);
    }
}

TEST(password_verify_refuses_every_single_character_change)
{
    char h[FT_PASSWORD_HASH_MAX], m[FT_PASSWORD_HASH_MAX];
    CHECK_INT(FT_OK, ft_password_hash("hunter2", h, sizeof(h), NULL));
    size_t n = strlen(h);
    /* every 5th position, through the prefix, costs, salt and hash; two substitutes each */
    for (size_t i = 0; i < n; i += 5) {
        static const char subs[] = {'A', '\x01'};
        for (size_t k = 0; k < sizeof(subs); k++) {
            memcpy(m, h, n + 1);
            m[i] = h[i] == subs[k] ? 'B' : subs[k];
            if (ft_password_verify(m, "hunter2") != 0)
                FT_FAIL_("changing position %zu verified: %s", i, m);
        }
    }
    CHECK_INT(1, ft_password_verify(h, "hunter2"));
}

RUN_TESTS(TEST_ENTRY(base64url_rfc4648_vectors), TEST_ENTRY(base64url_uses_the_url_alphabet),
          TEST_ENTRY(base64url_all_byte_values_match_an_independent_encoder), TEST_ENTRY(base64url_round_trips_every_length),
          TEST_ENTRY(base64url_encode_refuses_a_short_buffer), TEST_ENTRY(base64url_decode_rejects_padding),
          TEST_ENTRY(base64url_decode_rejects_characters_outside_the_alphabet),
          TEST_ENTRY(base64url_decode_rejects_a_length_of_1_mod_4),
          TEST_ENTRY(base64url_decode_rejects_non_canonical_trailing_bits), TEST_ENTRY(base64url_decode_refuses_a_short_buffer),
          TEST_ENTRY(sha256_known_answers), TEST_ENTRY(ct_equal_compares_all_bytes), TEST_ENTRY(random_bytes_differ_between_calls),
          TEST_ENTRY(random_token_is_base64url_of_n_bytes), TEST_ENTRY(random_token_refuses_a_short_buffer),
          TEST_ENTRY(password_hash_round_trip), TEST_ENTRY(password_verify_refuses_a_wrong_password),
          TEST_ENTRY(password_empty_is_hashed_like_any_other),
          TEST_ENTRY(password_verify_accepts_the_reference_implementation_vector), TEST_ENTRY(password_hash_refuses_bad_input),
          TEST_ENTRY(password_verify_survives_garbage), TEST_ENTRY(password_verify_refuses_excessive_costs_without_running_them),
          TEST_ENTRY(password_verify_refuses_every_single_character_change))
