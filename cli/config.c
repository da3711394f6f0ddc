/*
 * Where the CLI keeps its sign-in: $XDG_CONFIG_HOME/farutech (else ~/.config/farutech), a
 * credentials.json readable by its owner only, replaced atomically (temp file + rename).
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CREDS_FILE "credentials.json"

char *fc_config_dir(void)
{
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    if (xdg != NULL && xdg[0] == '/')
        return fc_sprintf("%s/farutech", xdg);
    if (home != NULL && home[0] != '\0')
        return fc_sprintf("%s/.config/farutech", home);
    return NULL;
}

static char *dup_member(const json_t *o, const char *name)
{
    const char *s = json_string_value(json_object_get(o, name));
    return s != NULL ? fc_strdup(s) : NULL;
}

int fc_creds_load(const char *dir, fc_creds_t *out)
{
    char *path = fc_sprintf("%s/" CREDS_FILE, dir);
    json_t *j = json_load_file(path, 0, NULL);
    int rc = -1;
    if (!json_is_object(j))
        goto out;
    out->server = dup_member(j, "server");
    out->email = dup_member(j, "email");
    out->access_token = dup_member(j, "access_token");
    out->refresh_token = dup_member(j, "refresh_token");
    out->access_expires_at = json_integer_value(json_object_get(j, "access_expires_at"));
    rc = out->access_token != NULL || out->refresh_token != NULL ? 0 : -1;
out:
    json_decref(j);
    free(path);
    return rc;
}

/* mkdir -p for the config dir, mode 0700 for what it makes. */
static int make_dirs(const char *dir)
{
    char *p = fc_strdup(dir);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "farutech: cannot create %s: %s\n", p, strerror(errno));
            rc = -1;
            goto out;
        }
        *s = c;
        if (c == '\0')
            break;
    }
out:
    free(p);
    return rc;
}

int fc_creds_save(const char *dir, const fc_creds_t *c)
{
    char *path = fc_sprintf("%s/" CREDS_FILE, dir), *tmp = fc_sprintf("%s/.%s.%ld", dir, CREDS_FILE, (long)getpid());
    json_t *j = json_pack("{s:s?, s:s?, s:s?, s:s?, s:I}", "server", c->server, "email", c->email, "access_token", c->access_token,
                          "refresh_token", c->refresh_token, "access_expires_at", (json_int_t)c->access_expires_at);
    char *text = json_dumps(j, JSON_INDENT(2));
    int rc = -1, fd = -1;
    if (make_dirs(dir) != 0)
        goto out;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || fchmod(fd, 0600) != 0) {
        fprintf(stderr, "farutech: cannot write %s: %s\n", tmp, strerror(errno));
        goto out;
    }
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "farutech: cannot write %s: %s\n", tmp, strerror(errno));
            goto out;
        }
        off += (size_t)n;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        fprintf(stderr, "farutech: cannot write %s: %s\n", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        fprintf(stderr, "farutech: cannot replace %s: %s\n", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        unlink(tmp);
    free(text);
    json_decref(j);
    free(tmp);
    free(path);
    return rc;
}

int fc_creds_remove(const char *dir)
{
    char *path = fc_sprintf("%s/" CREDS_FILE, dir);
    int rc = unlink(path) == 0 || errno == ENOENT ? 0 : -1;
    if (rc != 0)
        fprintf(stderr, "farutech: cannot remove %s: %s\n", path, strerror(errno));
    free(path);
    return rc;
}

void fc_creds_free(fc_creds_t *c)
{
    free(c->server);
    free(c->email);
    free(c->access_token);
    free(c->refresh_token);
    memset(c, 0, sizeof(*c));
}
