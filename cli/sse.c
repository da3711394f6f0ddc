/*
 * A small text/event-stream reader over libcurl's write callback: lines are split as they
 * arrive, fields gathered, and each event handed to the caller at its blank line.
 */
#include "cli.h"
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sse_state {
    CURL *curl;
    int checked, is_stream, stopped;
    char *line;
    size_t line_len;
    char *data, *event, *id;
    fc_sse_cb cb;
    void *arg;
} sse_state_t;

static void set_field(char **field, const char *value)
{
    free(*field);
    *field = fc_strdup(value);
}

static void dispatch(sse_state_t *s)
{
    if (s->data != NULL && !s->stopped)
        s->stopped = s->cb(s->event != NULL ? s->event : "message", s->id, s->data, s->arg);
    free(s->data);
    free(s->event);
    s->data = s->event = NULL;
}

static void on_line(sse_state_t *s, char *line)
{
    if (line[0] == '\0') {
        dispatch(s);
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
        char *next = s->data != NULL ? fc_sprintf("%s\n%s", s->data, value) : fc_strdup(value);
        free(s->data);
        s->data = next;
    } else if (strcmp(line, "event") == 0) {
        set_field(&s->event, value);
    } else if (strcmp(line, "id") == 0) {
        set_field(&s->id, value);
    }
}

static size_t on_bytes(char *ptr, size_t size, size_t n, void *arg)
{
    sse_state_t *s = arg;
    size_t len = size * n;
    if (!s->checked) {
        char *ctype = NULL;
        curl_easy_getinfo(s->curl, CURLINFO_CONTENT_TYPE, &ctype);
        s->checked = 1;
        s->is_stream = ctype != NULL && strncmp(ctype, "text/event-stream", 17) == 0;
    }
    if (!s->is_stream || s->stopped)
        return 0; /* stops the transfer */
    for (size_t i = 0; i < len && !s->stopped; i++) {
        char c = ptr[i];
        if (c == '\n') {
            if (s->line_len > 0 && s->line[s->line_len - 1] == '\r')
                s->line_len--;
            s->line[s->line_len] = '\0';
            on_line(s, s->line);
            s->line_len = 0;
            continue;
        }
        char *next = realloc(s->line, s->line_len + 2);
        if (next == NULL)
            abort();
        s->line = next;
        s->line[s->line_len++] = c;
    }
    return s->stopped ? 0 : len;
}

int fc_sse_read(fc_ctx_t *ctx, const char *path, const char *last_event_id, fc_sse_cb cb, void *arg, long *status)
{
    char *auth = NULL, *url = NULL, *last = NULL, errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = NULL;
    sse_state_t s = {.cb = cb, .arg = arg};
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
    else if (code != CURLE_OK && !(code == CURLE_WRITE_ERROR && s.stopped))
        rc = fc_curl_exit(code, url, errbuf);
out:
    if (s.curl != NULL)
        curl_easy_cleanup(s.curl);
    curl_slist_free_all(headers);
    free(s.line);
    free(s.data);
    free(s.event);
    free(s.id);
    free(last);
    free(url);
    free(auth);
    return rc;
}
