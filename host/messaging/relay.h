/*
 * The outbox relay (role relay): publishes committed outbox rows to JetStream, Nats-Msg-Id set
 * to the event id, in batches of asynchronous publishes, and marks them published once
 * JetStream acknowledged them. Woken by NOTIFY ft_outbox, with a slow fallback poll. Rows are
 * claimed by partition (a hash of the aggregate) under the partition's advisory lock, so several
 * relays can run and each aggregate's events go out in commit order.
 */
#ifndef FT_RELAY_H
#define FT_RELAY_H

#include <stdint.h>

#include "infra/nats.h"

typedef struct ft_relay_config {
    const char *database_url;
    ft_nats_t *nats;
    unsigned batch;           /* rows per batch */
    unsigned lanes;           /* batches in flight at once, each on its own connection */
    unsigned poll_ms;         /* fallback poll when no notification arrives */
    int crash_after_publish;  /* test fault injection: _exit after publishing, before marking */
} ft_relay_config_t;

typedef struct ft_relay ft_relay_t;

ft_relay_t *ft_relay_start(const ft_relay_config_t *cfg);
void ft_relay_stop(ft_relay_t *r);
uint64_t ft_relay_published(const ft_relay_t *r);

#endif
