/*
 * Human output: aligned tables of list items, "key: value" blocks for one resource, and the
 * list/show/write helpers every command group uses (JSON instead with --json).
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const json_t *fc_get_path(const json_t *obj, const char *path)
{
    const json_t *v = obj;
    const char *p = path;
    while (v != NULL && *p != '\0') {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        char key[128];
        snprintf(key, sizeof(key), "%.*s", (int)len, p);
        v = json_is_object(v) ? json_object_get(v, key) : NULL;
        p += len + (dot != NULL);
    }
    return v;
}

char *fc_value_text(const json_t *v)
{
    if (v == NULL || json_is_null(v))
        return fc_strdup("-");
    if (json_is_string(v))
        return fc_strdup(json_string_value(v));
    if (json_is_array(v) && json_array_size(v) > 0 && json_is_string(json_array_get(v, 0))) {
        char *s = fc_strdup("");
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e)
        {
            char *t = fc_value_text(e), *next = fc_sprintf("%s%s%s", s, i ? "," : "", t);
            free(t);
            free(s);
            s = next;
        }
        return s;
    }
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

void fc_json_print(const json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);
    puts(s != NULL ? s : "null");
    free(s);
}

void fc_table_print(const json_t *rows, const fc_column_t *cols, size_t ncols)
{
    size_t nrows = json_array_size(rows), width[32] = {0};
    char **cells = calloc((nrows + 1) * ncols, sizeof(*cells));
    if (cells == NULL || ncols > 32)
        abort();
    for (size_t c = 0; c < ncols; c++) {
        cells[c] = fc_strdup(cols[c].header);
        width[c] = strlen(cols[c].header);
    }
    for (size_t r = 0; r < nrows; r++)
        for (size_t c = 0; c < ncols; c++) {
            char *t = fc_value_text(fc_get_path(json_array_get(rows, r), cols[c].path));
            for (char *p = t; *p; p++)
                if (*p == '\n' || *p == '\t')
                    *p = ' ';
            cells[(r + 1) * ncols + c] = t;
            if (strlen(t) > width[c])
                width[c] = strlen(t);
        }
    for (size_t r = 0; r <= nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            const char *t = cells[r * ncols + c];
            if (c + 1 < ncols)
                printf("%-*s  ", (int)width[c], t);
            else
                printf("%s\n", t);
        }
    }
    for (size_t i = 0; i < (nrows + 1) * ncols; i++)
        free(cells[i]);
    free(cells);
}

void fc_object_print(const json_t *obj)
{
    const char *key;
    const json_t *v;
    size_t w = 0;
    json_object_foreach((json_t *)obj, key, v)
    {
        if (strlen(key) > w)
            w = strlen(key);
    }
    json_object_foreach((json_t *)obj, key, v)
    {
        char *t = fc_value_text(v);
        printf("%-*s  %s\n", (int)w + 1, key, t);
        free(t);
    }
}

int fc_done(const fc_ctx_t *ctx, const json_t *answer, const char *message)
{
    if (ctx->json && answer != NULL) {
        fc_json_print(answer);
    } else if (ctx->json) {
        json_t *empty = json_object();
        fc_json_print(empty);
        json_decref(empty);
    } else if (message != NULL)
        puts(message);
    return FC_EXIT_OK;
}

int fc_show(fc_ctx_t *ctx, const char *collection, const char *id)
{
    json_t *out = NULL;
    char *path = fc_sprintf("%s/%s", collection, id);
    int rc = fc_call(ctx, "GET", path, NULL, &out);
    free(path);
    if (rc == 0 && ctx->json)
        fc_json_print(out);
    else if (rc == 0)
        fc_object_print(out);
    json_decref(out);
    return rc;
}

int fc_list(fc_ctx_t *ctx, const char *path, const fc_column_t *cols, size_t ncols)
{
    json_t *items = json_array(), *page = NULL;
    char *cursor = ctx->cursor != NULL ? fc_strdup(ctx->cursor) : NULL;
    int rc = 0;
    for (;;) {
        char *p = fc_strdup(path);
        fc_query_add(&p, "limit", ctx->limit);
        fc_query_add(&p, "cursor", cursor);
        json_decref(page);
        rc = fc_call(ctx, "GET", p, NULL, &page);
        free(p);
        if (rc != 0)
            goto out;
        json_array_extend(items, json_object_get(page, "items"));
        const char *next = json_string_value(json_object_get(page, "next_cursor"));
        free(cursor);
        cursor = next != NULL ? fc_strdup(next) : NULL;
        if (!ctx->all || cursor == NULL)
            break;
    }
    if (ctx->json && !ctx->all) {
        fc_json_print(page);
    } else if (ctx->json) {
        json_t *all = json_pack("{s:O, s:n}", "items", items, "next_cursor");
        fc_json_print(all);
        json_decref(all);
    } else {
        fc_table_print(items, cols, ncols);
        if (cursor != NULL)
            fprintf(stderr, "(more: --all for every page, or --cursor %s for the next)\n", cursor);
    }
out:
    free(cursor);
    json_decref(page);
    json_decref(items);
    return rc;
}

int fc_write(fc_ctx_t *ctx, const char *method, const char *path, json_t *body, const char *message)
{
    json_t *out = NULL;
    int rc = fc_call(ctx, method, path, body, &out);
    if (rc == 0)
        fc_done(ctx, out, message);
    json_decref(out);
    return rc;
}

int fc_act(fc_ctx_t *ctx, const char *method, const char *path_fmt, const char *id, const char *message_fmt)
{
    char *path = fc_sprintf(path_fmt, id), *msg = fc_sprintf(message_fmt, id);
    int rc = fc_write(ctx, method, path, NULL, msg);
    free(msg);
    free(path);
    return rc;
}
