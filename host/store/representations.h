/*
 * SQL fragments that build the JSON representations shared by more than one store, so each
 * shape is defined once. Each expects its table under the alias the comment names.
 */
#ifndef FT_REPRESENTATIONS_H
#define FT_REPRESENTATIONS_H

/* A subscription (alias s), as json. */
#define FT_SUBSCRIPTION_JSON                                                                                                  \
    "json_build_object('id', s.id, 'instance_id', s.instance_id, 'customer_id', s.customer_id, 'product', s.product_code,"   \
    " 'plan', json_build_object('code', s.plan_code, 'version', s.plan_version),"                                             \
    " 'status', s.status, 'trial_ends_at', s.trial_ends_at, 'current_period_start', s.current_period_start,"                 \
    " 'current_period_end', s.current_period_end,"                                                                          \
    " 'pending_change', CASE WHEN s.pending_plan_code IS NULL THEN NULL ELSE json_build_object('plan', s.pending_plan_code,"  \
    "   'version', s.pending_plan_version, 'effective_at', s.current_period_end) END,"                                        \
    " 'cancel_at_period_end', s.cancel_at_period_end, 'canceled_at', s.canceled_at,"                                        \
    " 'created_at', s.created_at, 'updated_at', s.updated_at)"

#endif
