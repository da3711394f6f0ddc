/*
 * An instance's settings checked against its product's settings schema, the same for every
 * route that creates an instance.
 */
#ifndef FT_SETTINGS_H
#define FT_SETTINGS_H

#include <jansson.h>

#include "core/problem.h"
#include "plugins/registry.h"

/* Validates settings against g's schema, filling defaults in. FT_OK, or FT_EINVAL with a 422
 * "invalid-settings" problem whose errors point into the request body (#/settings/...). */
int ft_settings_check(const ft_generation_t *g, json_t *settings, ft_problem_t *problem);

#endif
