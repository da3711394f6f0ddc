/*
 * The action check.
 */
#include "domain/action_rules.h"

#include "core/error.h"
#include "domain/jsonschema.h"

#include <string.h>

ft_action_verdict_t ft_action_check(const ft_generation_t *g, const char *name, const char *instance_status, json_t *input,
                                    ft_action_entitled_fn entitled, void *arg, ft_action_check_t *out)
{
    const ft_product_t *p = g->product;
    memset(out, 0, sizeof(*out));
    size_t ai = 0;
    for (; ai < p->nactions && strcmp(p->actions[ai].name, name) != 0; ai++)
        ;
    if (ai == p->nactions)
        return FT_ACTION_UNKNOWN;
    out->action = &p->actions[ai];
    if (strcmp(instance_status, "active") != 0)
        return FT_ACTION_NOT_ACTIVE;
    if (g->action_schemas != NULL && g->action_schemas[ai] != NULL &&
        ft_schema_validate(g->action_schemas[ai], input, 1, &out->errors) != FT_OK)
        return FT_ACTION_BAD_INPUT;
    const char *needs = out->action->required_feature;
    if (needs == NULL || *needs == '\0')
        return FT_ACTION_ALLOWED;
    int on = entitled(arg, needs);
    if (on < 0)
        return FT_ACTION_LOOKUP_FAILED;
    if (on == 0) {
        out->feature = needs;
        return FT_ACTION_NOT_ENTITLED;
    }
    return FT_ACTION_ALLOWED;
}
