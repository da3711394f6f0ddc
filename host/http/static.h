/*
 * The operator console's files (FT_CONSOLE_DIR), read into memory once at start and served at
 * /console/ with their security headers. The console is plain static files calling the public
 * API from the browser: nothing here renders or answers on the console's behalf.
 */
#ifndef FT_STATIC_H
#define FT_STATIC_H

#include "core/error.h"
#include "http/router.h"

typedef struct ft_static ft_static_t;

/*
 * Reads the files under `dir` (two levels of subdirectories at most) whose extension is on the
 * allow list (html, css, js, svg, png, ico, json); others are passed over. Returns NULL with err
 * filled when dir cannot be read or holds no index.html: the host then serves without a console.
 * The caller frees the result with ft_static_free.
 */
ft_static_t *ft_static_load(const char *dir, ft_error_t *err);
void ft_static_free(ft_static_t *files);
/* Loads FT_CONSOLE_DIR into app->console for serving, logging what it loaded or why there is no
 * console: optional, so a host without the files serves the API and /console says why. */
struct ft_app;
void ft_static_open_console(struct ft_app *app);

/* Registers GET /console, /console/ and the console's file paths; their handlers read app->console. */
void ft_routes_console(ft_router_t *router);

#endif
