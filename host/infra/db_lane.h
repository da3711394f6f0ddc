/*
 * A lane: a few threads of its own, each with its own PostgreSQL connection, fed by one bounded
 * queue, for short reads that must not wait behind the request pool's other work (cold
 * entitlement reads). A unit of work completes on the loop that submitted it, through that
 * loop's port (a uv_async_t and a list of finished work).
 */
#ifndef FT_DB_LANE_H
#define FT_DB_LANE_H

#include <pthread.h>
#include <uv.h>

#include "infra/db_pool.h"

typedef struct ft_db_lane ft_db_lane_t;
typedef struct ft_db_lane_job ft_db_lane_job_t;

/* One per loop that submits: finished work waits here until the loop runs its done. */
typedef struct ft_db_lane_port {
    uv_async_t async;
    pthread_mutex_t mutex;
    ft_db_lane_job_t *head, *tail;
} ft_db_lane_port_t;

/* Starts `threads` threads (each connects on its first unit of work, and again after losing
 * its connection); at most queue_max units wait. Never fails for an unreachable server. */
ft_db_lane_t *ft_db_lane_start(const char *url, unsigned threads, unsigned queue_max);
/* Lets the queued work run, then stops the threads and closes their connections. */
void ft_db_lane_stop(ft_db_lane_t *lane);

/* On the port's loop thread, before the first submit. */
void ft_db_lane_port_init(ft_db_lane_port_t *port, uv_loop_t *loop);

/* Runs `work` on one of the lane's threads with its connection; `done` always runs, on the
 * port's loop thread (at once, with FT_EUNAVAILABLE, when the queue is full). */
void ft_db_lane_run(ft_db_lane_t *lane, ft_db_lane_port_t *port, ft_db_work_fn work, ft_db_done_fn done, void *arg);

#endif
