/*
 * Bootstrap commands run from the shell, before any credential exists: the first platform
 * admin, and API keys for automation. They apply pending migrations first.
 */
#ifndef FT_CLI_H
#define FT_CLI_H

#include "app.h"

/* Each returns the process exit status; argv holds the arguments after the command name. */
int ft_cli_create_admin(ft_app_t *app, int argc, char **argv);
int ft_cli_create_api_key(ft_app_t *app, int argc, char **argv);

#endif
