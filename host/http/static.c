/*
 * The operator console served at /console/: the files of FT_CONSOLE_DIR, loaded into memory at
 * start (an allow list of extensions, each with its content type and an ETag), answered with a
 * strict Content-Security-Policy. A host without the directory serves everything else and says
 * on the console's paths why there is none.
 */
#include "http/static.h"

#include "app.h"
#include "auth/crypto.h"
#include "core/mem.h"
#include "http/request.h"
#include "infra/log.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_FILES 256
#define MAX_BYTES (8u << 20) /* the whole console; it is a few dozen KiB */
#define MAX_DEPTH 2

/* Scripts and styles from the console's own origin only, no inline code, no eval, no framing;
 * the API is the only place it talks to. */
static const char console_csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                  "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

typedef struct static_file {
    char *path; /* relative to the directory: "js/app.js" */
    const char *content_type;
    char *body;
    size_t len;
    char etag[40];
} static_file_t;

struct ft_static {
    static_file_t files[MAX_FILES];
    size_t count, bytes;
};

static const struct {
    const char *ext;
    const char *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},  {".css", "text/css; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
    {".svg", "image/svg+xml"},              {".png", "image/png"},               {".ico", "image/x-icon"},
    {".json", "application/json"},
};

static const char *type_of(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        size_t e = strlen(types[i].ext);
        if (n > e && strcmp(name + n - e, types[i].ext) == 0)
            return types[i].type;
    }
    return NULL;
}

static int add_file(ft_static_t *s, const char *full, const char *rel, const char *type, ft_error_t *err)
{
    int rc = FT_OK;
    FILE *f = fopen(full, "rb");
    struct stat st;
    if (f == NULL || fstat(fileno(f), &st) != 0) {
        rc = ft_error_set(err, FT_EIO, "%s: cannot be read", full);
        goto out;
    }
    if (s->count == MAX_FILES || s->bytes + (size_t)st.st_size > MAX_BYTES) {
        rc = ft_error_set(err, FT_EINVAL, "%s: the console holds more than %d files or %u bytes", full, MAX_FILES, MAX_BYTES);
        goto out;
    }
    static_file_t *sf = &s->files[s->count];
    sf->len = (size_t)st.st_size;
    sf->body = ft_mem_alloc(sf->len + 1);
    if (fread(sf->body, 1, sf->len, f) != sf->len) {
        free(sf->body);
        rc = ft_error_set(err, FT_EIO, "%s: short read", full);
        goto out;
    }
    sf->path = ft_mem_strdup(rel);
    sf->content_type = type;
    char hash[65];
    ft_sha256_hex(sf->body, sf->len, hash);
    snprintf(sf->etag, sizeof(sf->etag), "\"%.32s\"", hash);
    s->count++;
    s->bytes += sf->len;
out:
    if (f != NULL)
        fclose(f);
    return rc;
}

/* Adds the allowed files under dir/prefix; hidden entries and other kinds of file are passed over. */
static int load_dir(ft_static_t *s, const char *dir, const char *prefix, int depth, ft_error_t *err)
{
    char path[4096], rel[1024];
    snprintf(path, sizeof(path), "%s%s%s", dir, prefix[0] != '\0' ? "/" : "", prefix);
    DIR *d = opendir(path);
    if (d == NULL)
        return ft_error_set(err, FT_ENOTFOUND, "%s: not a readable directory", path);
    int rc = FT_OK;
    struct dirent *e;
    while (rc == FT_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(rel, sizeof(rel), "%s%s%s", prefix, prefix[0] != '\0' ? "/" : "", e->d_name);
        char full[4096];
        snprintf(full, sizeof(full), "%s/%s", dir, rel);
        struct stat st;
        if (stat(full, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth < MAX_DEPTH)
                rc = load_dir(s, dir, rel, depth + 1, err);
        } else if (S_ISREG(st.st_mode) && type_of(e->d_name) != NULL) {
            rc = add_file(s, full, rel, type_of(e->d_name), err);
        }
    }
    closedir(d);
    return rc;
}

static const static_file_t *find_file(const ft_static_t *s, const char *rel, size_t len)
{
    for (size_t i = 0; i < s->count; i++)
        if (strlen(s->files[i].path) == len && memcmp(s->files[i].path, rel, len) == 0)
            return &s->files[i];
    return NULL;
}

ft_static_t *ft_static_load(const char *dir, ft_error_t *err)
{
    if (dir == NULL || dir[0] == '\0') {
        ft_error_set(err, FT_ENOTFOUND, "no console directory set");
        return NULL;
    }
    ft_static_t *s = ft_mem_calloc(1, sizeof(*s));
    if (load_dir(s, dir, "", 0, err) != FT_OK) {
        ft_static_free(s);
        return NULL;
    }
    if (find_file(s, "index.html", strlen("index.html")) == NULL) {
        ft_error_set(err, FT_ENOTFOUND, "%s holds no index.html", dir);
        ft_static_free(s);
        return NULL;
    }
    return s;
}

void ft_static_free(ft_static_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->count; i++) {
        free(s->files[i].path);
        free(s->files[i].body);
    }
    free(s);
}

void ft_static_open_console(ft_app_t *app)
{
    ft_error_t err = {0};
    app->console = ft_static_load(app->config.console_dir, &err);
    if (app->console != NULL)
        ft_log(FT_LOG_INFO, NULL, "console: %zu files, %zu bytes from %s", app->console->count, app->console->bytes,
               app->config.console_dir);
    else
        ft_log(FT_LOG_WARN, NULL, "console not served: %s", err.message);
}

static void keep_file(void *arg)
{
    (void)arg; /* the files live as long as the process serves */
}

static void security_headers(ft_req_t *r)
{
    ft_req_add_header(r, "content-security-policy", console_csp);
    ft_req_add_header(r, "x-content-type-options", "nosniff");
    ft_req_add_header(r, "referrer-policy", "no-referrer");
}

/* Answers the console file at rel (len bytes, not terminated). */
static void serve(ft_req_t *r, const char *rel, size_t len)
{
    const ft_static_t *s = r->app->console;
    security_headers(r);
    if (s == NULL) {
        ft_respond_problem(r, 503, "console-not-installed", "Console not installed", NULL,
                           "The operator console's files are not in FT_CONSOLE_DIR (%s); the API itself is served.",
                           r->app->config.console_dir);
        return;
    }
    const static_file_t *f = find_file(s, rel, len);
    if (f == NULL) {
        ft_respond_problem(r, 404, "not-found", "Not Found", NULL, "The console has no file %.*s.", (int)len, rel);
        return;
    }
    const char *inm = ft_req_header(r, "if-none-match");
    ft_req_add_header(r, "etag", f->etag);
    ft_req_add_header(r, "cache-control", "no-cache");
    if (inm != NULL && strstr(inm, f->etag) != NULL) {
        ft_respond_empty(r, 304);
        return;
    }
    ft_respond_borrowed(r, 200, f->content_type, f->body, f->len, keep_file, NULL);
}

static void get_root(ft_req_t *r)
{
    security_headers(r);
    ft_req_add_header(r, "location", "/console/");
    ft_respond_empty(r, 308);
}

static void get_index(ft_req_t *r)
{
    serve(r, "index.html", strlen("index.html"));
}

/* /console/<rel>: the path after the prefix, as the router matched it (already normalised) */
static void get_file(ft_req_t *r)
{
    const h2o_iovec_t *p = &r->req->path_normalized;
    size_t skip = strlen("/console/");
    serve(r, p->base + skip, p->len - skip);
}

#define FILE_RESPONSES                                                                                                             \
    {200, "{\"type\":\"string\"}", "text/html", "The console's page"},                                                             \
        {200, "{\"type\":\"string\"}", "text/javascript", "One of the console's ES modules"},                                      \
        {200, "{\"type\":\"string\"}", "text/css", "The console's style sheet"},                                                   \
        {200, "{\"type\":\"string\"}", "image/svg+xml", "An image"}, {200, "{\"type\":\"string\"}", "image/png", "An image"},      \
        {200, "{\"type\":\"string\"}", "image/x-icon", "An icon"}, {200, "{}", "application/json", "A JSON file"},                 \
        {304, NULL, NULL, "The file is the one named by If-None-Match."},                                                          \
        {503, "Problem", NULL, "The console is not installed (FT_CONSOLE_DIR)"}, {                                                 \
        0                                                                                                                          \
    }

static const ft_route_doc_t doc_root = {
    .tag = "Console",
    .summary = "The operator console: redirects to /console/ (public; the console signs in through the API)",
    .responses = (const ft_route_response_t[]){{308, NULL, NULL, "Location: /console/"}, {0}},
};
static const ft_route_doc_t doc_index = {
    .tag = "Console",
    .summary = "The operator console's page (public)",
    .flags = FT_DOC_UNLISTED,
    .responses = (const ft_route_response_t[]){FILE_RESPONSES},
};
static const ft_route_doc_t doc_file = {
    .tag = "Console",
    .summary = "One of the operator console's static files (public)",
    .responses = (const ft_route_response_t[]){FILE_RESPONSES},
};

void ft_routes_console(ft_router_t *router)
{
    static const ft_route_t routes[] = {
        {.method = "GET", .pattern = "/console", .handler = get_root, .doc = &doc_root},
        /* an OpenAPI path may not end in a slash: /console/ is the document's /console/index.html */
        {.method = "GET", .pattern = "/console/", .handler = get_index, .doc = &doc_index},
        {.method = "GET", .pattern = "/console/{file}", .handler = get_file, .doc = &doc_file},
        {.method = "GET", .pattern = "/console/{dir}/{file}", .handler = get_file, .doc = &doc_file},
        {.method = "GET", .pattern = "/console/{dir}/{subdir}/{file}", .handler = get_file, .doc = &doc_file},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        ft_router_add(router, &routes[i]);
}
