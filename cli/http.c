/*
 * Requests to the server with libcurl: the credential header (an API key from the environment,
 * or the saved session, refreshed when its access token expired and the request retried once),
 * the answer's JSON, and the mapping of statuses and transport errors to exit codes.
 */
#include "cli.h"
#include "http.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXPIRY_MARGIN_S 5

char *fc_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p == NULL)
        abort();
    return memcpy(p, s, n);
}

char *fc_sprintf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        abort();
    va_end(ap);
    return s;
}

void fc_query_add(char **path, const char *name, const char *value)
{
    if (value == NULL)
        return;
    char *escaped = curl_easy_escape(NULL, value, 0);
    if (escaped == NULL)
        abort();
    char *next = fc_sprintf("%s%c%s=%s", *path, strchr(*path, '?') ? '&' : '?', name, escaped);
    curl_free(escaped);
    free(*path);
    *path = next;
}

const char *fc_problem_type(const json_t *problem)
{
    const char *type = json_string_value(json_object_get(problem, "type"));
    const char *slash = type != NULL ? strrchr(type, '/') : NULL;
    return slash != NULL ? slash + 1 : type != NULL ? type : "";
}

int fc_exit_for_status(long status)
{
    if (status >= 200 && status < 300)
        return FC_EXIT_OK;
    if (status == 401 || status == 403)
        return FC_EXIT_AUTH;
    if (status == 404 || status == 410)
        return FC_EXIT_NOT_FOUND;
    if (status == 400 || status == 409 || status == 422)
        return FC_EXIT_INVALID;
    if (status >= 500)
        return FC_EXIT_UNAVAILABLE;
    return FC_EXIT_ERROR;
}

int fc_curl_exit(CURLcode code, const char *url, const char *detail)
{
    const char *what = detail != NULL && detail[0] != '\0' ? detail : curl_easy_strerror(code);
    fprintf(stderr, "farutech: %s: %s\n", url, what);
    switch (code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_SSL_CONNECT_ERROR:
        return FC_EXIT_UNAVAILABLE;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return FC_EXIT_USAGE;
    default:
        return FC_EXIT_ERROR;
    }
}

void fc_response_free(fc_response_t *resp)
{
    json_decref(resp->body);
    free(resp->raw);
    memset(resp, 0, sizeof(*resp));
}

typedef struct buffer {
    char *data;
    size_t len;
} buffer_t;

static size_t on_body(char *ptr, size_t size, size_t n, void *arg)
{
    buffer_t *b = arg;
    size_t add = size * n;
    char *next = realloc(b->data, b->len + add + 1);
    if (next == NULL)
        abort();
    b->data = next;
    memcpy(b->data + b->len, ptr, add);
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

void fc_curl_setup(CURL *curl, const char *url, const char *method, struct curl_slist *headers, char *errbuf)
{
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "farutech-cli");
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
}

/* One request, no credential logic: auth is the whole Authorization header or NULL. */
static int perform(fc_ctx_t *ctx, const char *method, const char *path, json_t *body, const char *auth, fc_response_t *resp)
{
    char *url = fc_sprintf("%s%s", ctx->server, path), *text = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    buffer_t b = {0};
    struct curl_slist *headers = NULL;
    CURL *curl = curl_easy_init();
    int rc = FC_EXIT_ERROR;
    if (curl == NULL)
        goto out;
    headers = curl_slist_append(headers, "Accept: application/json");
    if (auth != NULL)
        headers = curl_slist_append(headers, auth);
    fc_curl_setup(curl, url, method, headers, errbuf);
    if (body != NULL) {
        text = json_dumps(body, JSON_COMPACT);
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, text);
    }
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 600L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    CURLcode code = curl_easy_perform(curl);
    if (code != CURLE_OK) {
        rc = fc_curl_exit(code, url, errbuf);
        goto out;
    }
    char *ctype = NULL;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
    curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ctype);
    resp->problem = ctype != NULL && strncmp(ctype, "application/problem+json", 24) == 0;
    resp->raw = b.data != NULL ? b.data : fc_strdup("");
    b.data = NULL;
    resp->body = resp->raw[0] != '\0' ? json_loads(resp->raw, JSON_DECODE_ANY, NULL) : NULL;
    rc = 0;
out:
    free(b.data);
    free(text);
    curl_slist_free_all(headers);
    if (curl != NULL)
        curl_easy_cleanup(curl);
    free(url);
    return rc;
}

static int need_server(const fc_ctx_t *ctx)
{
    if (ctx->server != NULL)
        return 0;
    fprintf(stderr, "farutech: no server: pass --server URL, set FARUTECH_URL, or sign in with farutech login\n");
    return FC_EXIT_USAGE;
}

int fc_http_public(fc_ctx_t *ctx, const char *method, const char *path, json_t *body, fc_response_t *resp)
{
    int rc = need_server(ctx);
    return rc != 0 ? rc : perform(ctx, method, path, body, NULL, resp);
}

/* Stores a sign-in or refresh answer ({access_token, expires_in, refresh_token}) in ctx->creds. */
void fc_creds_take(fc_ctx_t *ctx, const json_t *answer)
{
    const char *access = json_string_value(json_object_get(answer, "access_token"));
    const char *refresh = json_string_value(json_object_get(answer, "refresh_token"));
    if (access != NULL) {
        free(ctx->creds.access_token);
        ctx->creds.access_token = fc_strdup(access);
    }
    if (refresh != NULL) {
        free(ctx->creds.refresh_token);
        ctx->creds.refresh_token = fc_strdup(refresh);
    }
    json_int_t ttl = json_integer_value(json_object_get(answer, "expires_in"));
    ctx->creds.access_expires_at = ttl > 0 ? (long long)time(NULL) + ttl : 0;
}

/* Trades the refresh token for new tokens and saves them. */
static int refresh(fc_ctx_t *ctx)
{
    fc_response_t resp = {0};
    json_t *body = json_pack("{s:s}", "refresh_token", ctx->creds.refresh_token ? ctx->creds.refresh_token : "");
    int rc = perform(ctx, "POST", "/api/v1/auth/refresh", body, NULL, &resp);
    if (rc != 0)
        goto out;
    if (resp.status != 200 || !json_is_object(resp.body)) {
        fprintf(stderr, "farutech: the session ended (%s): sign in again with farutech login\n",
                json_string_value(json_object_get(resp.body, "title")) ? json_string_value(json_object_get(resp.body, "title"))
                                                                       : "refresh refused");
        rc = resp.status >= 500 ? FC_EXIT_UNAVAILABLE : FC_EXIT_AUTH;
        goto out;
    }
    fc_creds_take(ctx, resp.body);
    if (fc_creds_save(ctx->config_dir, &ctx->creds) != 0)
        rc = FC_EXIT_ERROR;
out:
    fc_response_free(&resp);
    json_decref(body);
    return rc;
}

int fc_auth_header(fc_ctx_t *ctx, int force_refresh, char **header)
{
    int rc = 0;
    *header = NULL;
    if (ctx->api_key != NULL) {
        *header = fc_sprintf("Authorization: Bearer %s", ctx->api_key);
        return 0;
    }
    if (!ctx->have_creds) {
        fprintf(stderr, "farutech: not signed in: run farutech login, or set FARUTECH_API_KEY\n");
        return FC_EXIT_AUTH;
    }
    if ((rc = need_server(ctx)) != 0)
        return rc;
    long long now = (long long)time(NULL);
    if (force_refresh || ctx->creds.access_token == NULL ||
        (ctx->creds.access_expires_at != 0 && now >= ctx->creds.access_expires_at - EXPIRY_MARGIN_S))
        rc = refresh(ctx);
    if (rc == 0)
        *header = fc_sprintf("Authorization: Bearer %s", ctx->creds.access_token);
    return rc;
}

int fc_http(fc_ctx_t *ctx, const char *method, const char *path, json_t *body, fc_response_t *resp)
{
    char *auth = NULL;
    int rc = fc_auth_header(ctx, 0, &auth);
    if (rc == 0)
        rc = need_server(ctx);
    if (rc != 0)
        goto out;
    if ((rc = perform(ctx, method, path, body, auth, resp)) != 0)
        goto out;
    if (resp->status == 401 && ctx->api_key == NULL && strcmp(fc_problem_type(resp->body), "token-expired") == 0) {
        fc_response_free(resp);
        free(auth);
        if ((rc = fc_auth_header(ctx, 1, &auth)) == 0)
            rc = perform(ctx, method, path, body, auth, resp);
    }
out:
    free(auth);
    return rc;
}

int fc_report(const fc_ctx_t *ctx, const fc_response_t *resp)
{
    int code = fc_exit_for_status(resp->status);
    if (code == FC_EXIT_OK)
        code = FC_EXIT_ERROR;
    if (ctx->json && resp->raw != NULL && resp->raw[0] != '\0') {
        fputs(resp->raw, stdout);
        fputc('\n', stdout);
        return code;
    }
    const char *title = json_string_value(json_object_get(resp->body, "title"));
    const char *detail = json_string_value(json_object_get(resp->body, "detail"));
    if (title != NULL)
        fprintf(stderr, "error: %s%s%s\n", title, detail ? ": " : "", detail ? detail : "");
    else
        fprintf(stderr, "error: the server answered %ld\n", resp->status);
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(resp->body, "errors"), i, e)
    {
        const char *where = json_string_value(json_object_get(e, "pointer"));
        if (where == NULL)
            where = json_string_value(json_object_get(e, "parameter"));
        if (where == NULL)
            where = json_string_value(json_object_get(e, "field"));
        const char *what = json_string_value(json_object_get(e, "detail"));
        fprintf(stderr, "  %s: %s\n", where ? where : "-", what ? what : "invalid");
    }
    return code;
}

int fc_call(fc_ctx_t *ctx, const char *method, const char *path, json_t *body, json_t **out)
{
    fc_response_t resp = {0};
    int rc = fc_http(ctx, method, path, body, &resp);
    *out = NULL;
    if (rc != 0)
        goto out;
    if (resp.status < 200 || resp.status >= 300) {
        rc = fc_report(ctx, &resp);
        goto out;
    }
    *out = resp.body;
    resp.body = NULL;
out:
    fc_response_free(&resp);
    return rc;
}
