/*
 * Users, sign-in attempts and refresh tokens. SQL only here; passwords arrive already hashed
 * and tokens as their SHA-256, so nothing secret is ever written.
 */
#ifndef FT_USER_STORE_H
#define FT_USER_STORE_H

#include <jansson.h>
#include <libpq-fe.h>

#include "core/error.h"
#include "core/problem.h"
#include "store/scope.h"

/* The parts of a user that sign-in and token issuance need. */
typedef struct ft_user_auth {
    char id[37];
    char email[256];
    char customer_id[37]; /* "" for platform staff */
    char password_hash[160];
    char roles[256]; /* JSON array text, e.g. ["operator"] */
    int active;
} ft_user_auth_t;

/* in: {email, display_name?, customer_id?, roles[]} plus password_hash (already argon2id).
 * A scoped call creates users of its own customer only. *out: the user (caller json_decref). */
int ft_user_create(PGconn *c, const ft_call_t *call, json_t *in, const char *password_hash, json_t **out, ft_problem_t *problem,
                   ft_error_t *err);
int ft_user_get(PGconn *c, const ft_call_t *call, const char *id, json_t **out, ft_problem_t *problem, ft_error_t *err);
/* {"items": [...], "next_cursor": ...}; customer_id filters (staff only), cursor from a previous page. */
int ft_user_list(PGconn *c, const ft_call_t *call, const char *customer_id, const char *cursor, int limit, json_t **out,
                 ft_problem_t *problem, ft_error_t *err);
/* in: {display_name?, roles?, status?}; password_hash replaces the password when not NULL.
 * Disabling a user or changing the password revokes its refresh tokens. */
int ft_user_update(PGconn *c, const ft_call_t *call, const char *id, json_t *in, const char *password_hash, json_t **out,
                   ft_problem_t *problem, ft_error_t *err);
int ft_user_delete(PGconn *c, const ft_call_t *call, const char *id, ft_problem_t *problem, ft_error_t *err);
/* The user's current customer and roles (for grant checks before a change): FT_ENOTFOUND when
 * the caller cannot see it. */
int ft_user_auth_by_id(PGconn *c, const ft_call_t *call, const char *id, ft_user_auth_t *u, ft_error_t *err);

/* Sign-in. FT_ENOTFOUND when no user has that e-mail (compared case-insensitively). */
int ft_user_auth_by_email(PGconn *c, const char *email, ft_user_auth_t *u, ft_error_t *err);
/* Seconds until `email` may try again: its last `max_failures` attempts within `window_s` all
 * failed. 0 when it may try now. */
int ft_login_locked_for(PGconn *c, const char *email, unsigned max_failures, unsigned window_s, long *seconds, ft_error_t *err);
/* Serialises sign-in attempts at one address until the caller's transaction ends. */
int ft_login_serialize(PGconn *c, const char *email, ft_error_t *err);
/* Records an attempt (user_id may be NULL); on success also stamps the user's last_login_at. */
int ft_login_record(PGconn *c, const char *email, const char *user_id, int success, const char *reason, const char *client_ip,
                    ft_error_t *err);

/* Refresh tokens. */
typedef enum {
    FT_REFRESH_OK,      /* rotated: the token is now used and a successor may be issued */
    FT_REFRESH_UNKNOWN, /* no such token */
    FT_REFRESH_EXPIRED,
    FT_REFRESH_REVOKED, /* its family was revoked (logout, reuse, disabled user) */
    FT_REFRESH_REUSED,  /* already rotated once: the whole family is now revoked */
    FT_REFRESH_INACTIVE /* the user is disabled */
} ft_refresh_verdict_t;

/* Stores a new token (hash = SHA-256 of it). family NULL starts a family (its id is the
 * token's id); parent is the token it replaces. */
int ft_refresh_insert(PGconn *c, const char *user_id, const char *family, const char *parent, const unsigned char hash[32],
                      unsigned ttl_s, const char *client_ip, char family_out[37], char id_out[37], ft_error_t *err);
/* Uses the token once. On FT_REFRESH_OK fills *u, family and id. A second use of the same token
 * revokes the family (inside this call) and answers FT_REFRESH_REUSED; so does losing a race
 * with a concurrent use. */
int ft_refresh_use(PGconn *c, const unsigned char hash[32], ft_refresh_verdict_t *verdict, ft_user_auth_t *u,
                   char family_out[37], char id_out[37], ft_error_t *err);
/* Revokes the family of the token with this hash; *user_id receives its user ("" when unknown). */
int ft_refresh_revoke_family(PGconn *c, const unsigned char hash[32], const char *reason, char user_id[37], ft_error_t *err);

#endif
