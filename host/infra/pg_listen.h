/*
 * A PostgreSQL LISTEN loop on a thread of its own. Notifications arrive as callbacks on that
 * thread. After every (re)connect the callback also runs once with channel NULL: notifications
 * may have been missed while disconnected, so the receiver should forget what it cached.
 */
#ifndef FT_PG_LISTEN_H
#define FT_PG_LISTEN_H

typedef void (*ft_listen_fn)(void *arg, const char *channel, const char *payload);

typedef struct ft_listener ft_listener_t;

/* channels: NULL-terminated list of plain identifiers. */
ft_listener_t *ft_listener_start(const char *database_url, const char *const *channels, ft_listen_fn fn, void *arg);
void ft_listener_stop(ft_listener_t *l);
/* 1 while connected and listening. */
int ft_listener_connected(const ft_listener_t *l);

#endif
