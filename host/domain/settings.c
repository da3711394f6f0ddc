/*
 * Settings validation.
 */
#include "domain/settings.h"

#include "core/error.h"
#include "domain/jsonschema.h"

#include <stdio.h>

int ft_settings_check(const ft_generation_t *g, json_t *settings, ft_problem_t *problem)
{
    if (g->settings_schema == NULL)
        return FT_OK;
    json_t *errors = NULL;
    if (ft_schema_validate(g->settings_schema, settings, 1, &errors) == FT_OK)
        return FT_OK;
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e)
    {
        const char *p = json_string_value(json_object_get(e, "pointer"));
        char full[256];
        snprintf(full, sizeof(full), "#/settings%s", p != NULL && p[0] == '#' ? p + 1 : "");
        json_object_set_new(e, "pointer", json_string(full));
    }
    size_t n = json_array_size(errors);
    return ft_problem(problem, FT_EINVAL, 422, "invalid-settings", "Invalid settings", json_pack("{s:o}", "errors", errors),
                      "The settings do not satisfy product %s's settings schema (%zu problem%s).", g->product_code, n,
                      n == 1 ? "" : "s");
}
