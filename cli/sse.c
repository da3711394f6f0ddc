/*
 * A small text/event-stream reader over libcurl's write callback: lines are split as they
 * arrive, fields gathered, and each event handed to the caller at its blank line.
 */
#include "cli.h"
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fc_sse_parser {
    char *line;
    size_t line_len;
    char *data, *event, *id;
    int stopped;
    fc_sse_cb cb;
    void *arg;
};

fc_sse_parser_t *fc_sse_parser_new(fc_sse_cb cb, void *arg)
{
    fc_sse_parser_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        abort();
    p->cb = cb;
    p->arg = arg;
    return p;
}

void fc_sse_parser_free(fc_sse_parser_t *p)
{
    if (p == NULL)
        return;
    free(p->line);
    free(p->data);
    free(p->event);
    free(p->id);
    free(p);
}

static void set_field(char **field, const char *value)
{
    free(*field);
    *field = fc_strdup(value);
}

static void dispatch(fc_sse_parser_t *p)
{
    if (p->data != NULL && !p->stopped)
        p->stopped = p->cb(p->event != NULL ? p->event : "message", p->id, p->data, p->arg);
    free(p->data);
    free(p->event);
    p->data = p->event = NULL;
}

static void on_line(fc_sse_parser_t *p, char *line)
{
    if (line[0] == '\0') {
        dispatch(p);
        return;
    }
    if (line[0] == ':')
        return;
    char *colon = strchr(line, ':'), *value = (char *)"";
    if (colon != NULL) {
        *colon = '\0';
        value = colon + 1 + (colon[1] == ' ');
    }
    if (strcmp(line, "data") == 0) {
        char *next = p->data != NULL ? fc_sprintf("%s\n%s", p->data, value) : fc_strdup(value);
        free(p->data);
        p->data = next;
    } else if (strcmp(line, "event") == 0) {
        set_field(&p->event, value);
    } else if (strcmp(line, "id") == 0) {
        set_field(&p->id, value);
    }
}

int fc_sse_feed(fc_sse_parser_t *p, const char *bytes, size_t len)
{
    for (size_t i = 0; i < len && !p->stopped; i++) {
        char c = bytes[i];
        if (c == '\n') {
            if (p->line_len > 0 && p->line[p->line_len - 1] == '\r')
                p->line_len--;
            if (p->line == NULL)
                p->line = fc_strdup("");
            p->line[p->line_len] = '\0';
            on_line(p, p->line);
            p->line_len = 0;
            continue;
        }
        char *next = realloc(p->line, p->line_len + 2);
        if (next == NULL)
            abort();
        p->line = next;
        p->line[p->line_len++] = c;
    }
    return p->stopped;
}

typedef struct transfer {
    CURL *curl;
    int checked, is_stream;
    fc_sse_parser_t *parser;
} transfer_t;

static size_t on_bytes(char *ptr, size_t size, size_t n, void *arg)
{
    transfer_t *t = arg;
    if (!t->checked) {
        char *ctype = NULL;
        curl_easy_getinfo(t->curl, CURLINFO_CONTENT_TYPE, &ctype);
        t->checked = 1;
        t->is_stream = ctype != NULL && strncmp(ctype, "text/event-stream", 17) == 0;
    }
    if (!t->is_stream)
        return 0; /* stops the transfer */
    return fc_sse_feed(t->parser, ptr, size * n) ? 0 : size * n;
}

int fc_sse_read(fc_ctx_t *ctx, const char *path, const char *last_event_id, fc_sse_cb cb, void *arg, long *status)
{
    char *auth = NULL, *url = NULL, *last = NULL, errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = NULL;
    transfer_t s = {.parser = fc_sse_parser_new(cb, arg)};
    int rc = fc_auth_header(ctx, 0, &auth);
    if (rc != 0)
        goto out;
    url = fc_sprintf("%s%s", ctx->server, path);
    if ((s.curl = curl_easy_init()) == NULL) {
        rc = FC_EXIT_ERROR;
        goto out;
    }
    headers = curl_slist_append(headers, "Accept: text/event-stream");
    headers = curl_slist_append(headers, auth);
    if (last_event_id != NULL) {
        last = fc_sprintf("Last-Event-ID: %s", last_event_id);
        headers = curl_slist_append(headers, last);
    }
    fc_curl_setup(s.curl, url, "GET", headers, errbuf);
    curl_easy_setopt(s.curl, CURLOPT_WRITEFUNCTION, on_bytes);
    curl_easy_setopt(s.curl, CURLOPT_WRITEDATA, &s);
    CURLcode code = curl_easy_perform(s.curl);
    *status = 0;
    curl_easy_getinfo(s.curl, CURLINFO_RESPONSE_CODE, status);
    if (s.checked && !s.is_stream)
        rc = 1;
    else if (!s.checked && code == CURLE_OK)
        rc = *status == 200 ? 0 : 1;
    else if (code != CURLE_OK && !(code == CURLE_WRITE_ERROR && fc_sse_feed(s.parser, "", 0)))
        rc = fc_curl_exit(code, url, errbuf);
out:
    if (s.curl != NULL)
        curl_easy_cleanup(s.curl);
    curl_slist_free_all(headers);
    fc_sse_parser_free(s.parser);
    free(last);
    free(url);
    free(auth);
    return rc;
}
