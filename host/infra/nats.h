/*
 * The host's NATS connection (reconnecting forever) and the JetStream streams it needs.
 * Connection state is tracked from cnats callbacks into atomics, so any thread can read it
 * without a cnats call. Stream administration blocks: never call it on an HTTP loop thread.
 */
#ifndef FT_NATS_H
#define FT_NATS_H

#include <nats/nats.h>

#include "core/error.h"

/* Streams the control plane owns. Subjects are ft.<stream>.> */
#define FT_STREAM_EVENTS "FT_EVENTS" /* CloudEvents, limits retention */
#define FT_STREAM_JOBS "FT_JOBS"     /* provisioning work, work-queue retention */
#define FT_STREAM_DLQ "FT_DLQ"       /* jobs that used up their attempts */

typedef struct ft_nats ft_nats_t;

/* Starts connecting to url, one NATS URL or a comma separated list of a cluster's nodes; returns at
 * once even if no server is up (cnats keeps retrying, and fails over between the nodes). */
int ft_nats_open(ft_nats_t **out, const char *url, unsigned replicas, ft_error_t *err);
void ft_nats_close(ft_nats_t *n);

int ft_nats_connected(const ft_nats_t *n);
/* True once after every (re)connect: the caller should ensure the streams again. */
int ft_nats_take_reconnected(ft_nats_t *n);

/* Creates or updates every stream (idempotent). Blocking. */
int ft_nats_ensure_streams(ft_nats_t *n, ft_error_t *err);

/* Unsubscribes sub and frees it once the connection's reader can no longer be delivering to it.
 * libnats before 3.6 looks a subscription up under the connection's lock and locks it after
 * letting go (nats.c issue 637), so freeing a subscription while a message for it arrives (a
 * pull request's timeout, at shutdown) crashed the reader. Waits for a round trip to the server
 * first (bounded): the reader handles the PONG only after any message it was holding. */
void ft_nats_sub_destroy(ft_nats_t *n, natsSubscription *sub);

natsConnection *ft_nats_connection(ft_nats_t *n);
jsCtx *ft_nats_jetstream(ft_nats_t *n);

#endif
