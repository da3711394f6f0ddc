/*
 * farutech login / logout: a session's tokens kept in the config dir.
 */
#include "cli.h"
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* The password from the terminal without echo, else the first line of stdin. Caller frees. */
static char *read_password(void)
{
    char *line = NULL;
    size_t cap = 0;
    FILE *tty = isatty(STDIN_FILENO) ? fopen("/dev/tty", "r+") : NULL;
    FILE *in = tty != NULL ? tty : stdin;
    struct termios old, quiet;
    int restore = 0;
    if (tty != NULL) {
        fputs("Password: ", tty);
        fflush(tty);
        if (tcgetattr(fileno(tty), &old) == 0) {
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            restore = tcsetattr(fileno(tty), TCSAFLUSH, &quiet) == 0;
        }
    }
    ssize_t n = getline(&line, &cap, in);
    if (restore) {
        tcsetattr(fileno(tty), TCSAFLUSH, &old);
        fputc('\n', tty);
    }
    if (tty != NULL)
        fclose(tty);
    if (n < 0) {
        free(line);
        return NULL;
    }
    line[strcspn(line, "\r\n")] = '\0';
    return line;
}

static int login(fc_ctx_t *ctx, const fc_args_t *a)
{
    const char *email = fc_arg(a, "email");
    char *password = NULL;
    json_t *body = NULL;
    fc_response_t resp = {0};
    int rc;
    if (email == NULL || email[0] == '\0')
        return fc_usage_error("login needs --email");
    if (ctx->server == NULL)
        return fc_usage_error("login needs --server URL (or FARUTECH_URL)");
    if ((password = read_password()) == NULL || password[0] == '\0') {
        rc = fc_usage_error("no password given");
        goto out;
    }
    body = json_pack("{s:s, s:s}", "email", email, "password", password);
    if ((rc = fc_http_public(ctx, "POST", "/api/v1/auth/login", body, &resp)) != 0)
        goto out;
    if (resp.status != 200) {
        rc = fc_report(ctx, &resp);
        goto out;
    }
    fc_creds_free(&ctx->creds);
    ctx->creds.server = fc_strdup(ctx->server);
    ctx->creds.email = fc_strdup(email);
    fc_creds_take(ctx, resp.body);
    if (ctx->config_dir == NULL || fc_creds_save(ctx->config_dir, &ctx->creds) != 0) {
        fprintf(stderr, "farutech: cannot save the session (is HOME set?)\n");
        rc = FC_EXIT_ERROR;
        goto out;
    }
    if (ctx->json) {
        json_t *who =
            json_pack("{s:s, s:s, s:O?}", "server", ctx->server, "email", email, "user", json_object_get(resp.body, "user"));
        fc_json_print(who);
        json_decref(who);
    } else {
        printf("signed in to %s as %s\n", ctx->server, email);
    }
out:
    fc_response_free(&resp);
    json_decref(body);
    if (password != NULL) {
        memset(password, 0, strlen(password));
        free(password);
    }
    return rc;
}

static int logout(fc_ctx_t *ctx, const fc_args_t *a)
{
    fc_response_t resp = {0};
    int rc = 0;
    if (!ctx->have_creds) {
        fprintf(stderr, "farutech: not signed in\n");
        return FC_EXIT_OK;
    }
    if (ctx->creds.refresh_token != NULL && ctx->server != NULL) {
        json_t *body = json_pack("{s:s}", "refresh_token", ctx->creds.refresh_token);
        if (fc_http_public(ctx, "POST", "/api/v1/auth/logout", body, &resp) == 0 && resp.status >= 300)
            fprintf(stderr, "farutech: the server did not end the session (%ld); the saved tokens are removed anyway\n",
                    resp.status);
        json_decref(body);
    }
    if (fc_creds_remove(ctx->config_dir) != 0)
        rc = FC_EXIT_ERROR;
    else
        fc_done(ctx, NULL, "signed out");
    fc_response_free(&resp);
    return rc;
}

static const fc_opt_t login_opts[] = {
    {"email", 1, "the user's email; the password is read from the terminal (no echo) or stdin"},
    {NULL, 0, NULL},
};
static const fc_command_t login_cmd[] = {
    {NULL, NULL, "Sign in and keep the session (mode 0600) in the config dir", login_opts, 0, 0, login},
};
static const fc_command_t logout_cmd[] = {
    {NULL, NULL, "End the session on the server and forget its tokens", NULL, 0, 0, logout},
};
const fc_group_t fc_group_login = {"login", "Sign in (--server URL --email E)", login_cmd, 1};
const fc_group_t fc_group_logout = {"logout", "Sign out", logout_cmd, 1};
