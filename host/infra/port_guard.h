/*
 * The port guard: a listen address belongs to one process. The HTTP loop threads share their
 * address through SO_REUSEPORT, which would let any other process of the same user join it and
 * silently take part of the connections; the guard finds such a process, from the kernel's
 * table of listening TCP sockets, so the host can refuse to start instead.
 */
#ifndef FT_PORT_GUARD_H
#define FT_PORT_GUARD_H

#include "core/error.h"

#include <stddef.h>
#include <sys/socket.h>

/* Before binding: binds a throwaway socket to addr without SO_REUSEPORT (with SO_REUSEADDR, so
 * connections left in TIME_WAIT do not count) and closes it. FT_OK if the address is free (port 0
 * always is); FT_ECONFLICT if another socket holds it, with or without SO_REUSEPORT, err naming
 * the holder where it can be found; FT_EIO if it cannot be bound for another reason. */
int ft_port_guard_probe(const struct sockaddr *addr, socklen_t len, ft_error_t *err);

/* After binding: fds are this process's n listening sockets, all on one address. FT_OK if every
 * listening TCP socket on that port whose address overlaps theirs (the same address, or a
 * wildcard covering it) is one of fds; FT_ECONFLICT naming the first foreign one otherwise;
 * FT_EIO if the kernel's socket table cannot be read. */
int ft_port_guard_verify(const int *fds, size_t n, ft_error_t *err);

/* For a bind that failed with EADDRINUSE: fills err with the message naming the holder of addr,
 * leaving out the n sockets of own, and returns FT_ECONFLICT. */
int ft_port_guard_explain(const struct sockaddr *addr, const int *own, size_t n, ft_error_t *err);

/* Tests only: read /proc/net/tcp and /proc/net/tcp6 even where netlink socket diagnostics work
 * (the fallback used where AF_NETLINK is not allowed, as under the systemd unit). */
void ft_port_guard_force_proc(int on);

#endif
