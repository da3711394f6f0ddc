/*
 * The port guard against real sockets on loopback: the probe before binding (free, held with and
 * without SO_REUSEPORT, TIME_WAIT leftovers), the check after binding (our own SO_REUSEPORT
 * sockets, a foreign one joining them, overlapping wildcards), through netlink and /proc.
 */
#include "infra/port_guard.h"
#include "ft_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#define NOWN 4

static socklen_t make_addr(const char *ip, unsigned port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        CHECK_INT(1, inet_pton(AF_INET6, ip, &a->sin6_addr));
        return sizeof(*a);
    }
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    CHECK_INT(1, inet_pton(AF_INET, ip, &a->sin_addr));
    return sizeof(*a);
}

/* A listening socket on ip:port (port 0: the kernel picks); v6only: -1 leaves the default. */
static int listen_on(const char *ip, unsigned port, int reuseport, int v6only)
{
    struct sockaddr_storage ss;
    socklen_t len = make_addr(ip, port, &ss);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1;
    CHECK(fd >= 0);
    CHECK_INT(0, setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)));
    if (reuseport)
        CHECK_INT(0, setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)));
    if (v6only >= 0)
        CHECK_INT(0, setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)));
    CHECK_INT(0, bind(fd, (struct sockaddr *)&ss, len));
    CHECK_INT(0, listen(fd, 16));
    return fd;
}

static unsigned port_of(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    CHECK_INT(0, getsockname(fd, (struct sockaddr *)&ss, &len));
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
}

static int probe(const char *ip, unsigned port, ft_error_t *err)
{
    struct sockaddr_storage ss;
    socklen_t len = make_addr(ip, port, &ss);
    return ft_port_guard_probe((struct sockaddr *)&ss, len, err);
}

/* NOWN SO_REUSEPORT sockets on one address, as the loop threads open them. */
static void open_own(const char *ip, int fds[NOWN])
{
    fds[0] = listen_on(ip, 0, 1, -1);
    for (int i = 1; i < NOWN; i++)
        fds[i] = listen_on(ip, port_of(fds[0]), 1, -1);
}

static void close_all(int *fds, int n)
{
    for (int i = 0; i < n; i++)
        close(fds[i]);
}

/* The message names the address and this process, which holds the foreign socket too. */
static void check_names_us(const ft_error_t *err, const char *where)
{
    char who[64];
    snprintf(who, sizeof(who), "is already in use by pid %d (", (int)getpid());
    CHECK_CONTAINS(err->message, where);
    CHECK_CONTAINS(err->message, who);
    CHECK_CONTAINS(err->message, "each host needs an address of its own");
}

TEST(free_port_passes_the_probe)
{
    int fd = listen_on("127.0.0.1", 0, 0, -1);
    unsigned port = port_of(fd);
    close(fd); /* never accepted a connection: nothing stays behind */
    ft_error_t err = {0};
    CHECK_INT(FT_OK, probe("127.0.0.1", port, &err));
}

TEST(port_zero_passes_the_probe)
{
    ft_error_t err = {0};
    CHECK_INT(FT_OK, probe("127.0.0.1", 0, &err));
}

/* A socket holding 127.0.0.1:port, with or without SO_REUSEPORT: the probe names it. */
static void held_port_is_refused(int reuseport)
{
    int fd = listen_on("127.0.0.1", 0, reuseport, -1);
    char where[32];
    snprintf(where, sizeof(where), "127.0.0.1:%u ", port_of(fd));
    ft_error_t err = {0};
    int rc = probe("127.0.0.1", port_of(fd), &err);
    close(fd);
    CHECK_INT(FT_ECONFLICT, rc);
    check_names_us(&err, where);
}

TEST(port_held_with_reuseport_is_refused_by_the_probe)
{
    held_port_is_refused(1);
}

TEST(port_held_without_reuseport_is_refused_by_the_probe)
{
    held_port_is_refused(0);
}

TEST(wildcard_listener_refuses_a_specific_address_in_the_probe)
{
    int fd = listen_on("0.0.0.0", 0, 1, -1);
    char on[48];
    snprintf(on, sizeof(on), "listening on 0.0.0.0:%u;", port_of(fd));
    ft_error_t err = {0};
    CHECK_INT(FT_ECONFLICT, probe("127.0.0.1", port_of(fd), &err));
    CHECK_CONTAINS(err.message, on);
    close(fd);
}

TEST(time_wait_leftovers_do_not_count)
{
    int lfd = listen_on("127.0.0.1", 0, 0, -1);
    unsigned port = port_of(lfd);
    struct sockaddr_storage ss;
    socklen_t len = make_addr("127.0.0.1", port, &ss);
    int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_INT(0, connect(client, (struct sockaddr *)&ss, len));
    int served = accept(lfd, NULL, NULL);
    CHECK(served >= 0);
    close(served); /* the server side closes first: its end of the connection enters TIME_WAIT */
    char c;
    CHECK_INT(0, read(client, &c, 1));
    close(client);
    close(lfd);
    /* a bind without SO_REUSEADDR proves the TIME_WAIT is there */
    int plain = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int bound = bind(plain, (struct sockaddr *)&ss, len);
    close(plain);
    CHECK_INT(-1, bound);
    ft_error_t err = {0};
    CHECK_INT(FT_OK, probe("127.0.0.1", port, &err));
}

TEST(address_that_cannot_be_bound_keeps_its_own_error)
{
    ft_error_t err = {0};
    CHECK_INT(FT_EIO, probe("192.0.2.1", 8080, &err)); /* TEST-NET-1: on no interface here */
    CHECK_CONTAINS(err.message, "cannot listen on 192.0.2.1:8080: ");
}

static void own_sockets_pass(int use_proc)
{
    ft_port_guard_force_proc(use_proc);
    int fds[NOWN];
    open_own("127.0.0.1", fds);
    ft_error_t err = {0};
    int rc = ft_port_guard_verify(fds, NOWN, &err);
    close_all(fds, NOWN);
    ft_port_guard_force_proc(0);
    CHECK_STR("", err.message);
    CHECK_INT(FT_OK, rc);
}

static void foreign_listener_is_found(int use_proc)
{
    ft_port_guard_force_proc(use_proc);
    int fds[NOWN];
    open_own("127.0.0.1", fds);
    int foreign = listen_on("127.0.0.1", port_of(fds[0]), 1, -1);
    char where[32];
    snprintf(where, sizeof(where), "127.0.0.1:%u ", port_of(fds[0]));
    ft_error_t err = {0};
    int rc = ft_port_guard_verify(fds, NOWN, &err);
    close_all(fds, NOWN);
    close(foreign);
    ft_port_guard_force_proc(0);
    CHECK_INT(FT_ECONFLICT, rc);
    check_names_us(&err, where);
}

TEST(own_reuseport_sockets_pass_the_check)
{
    own_sockets_pass(0);
}

TEST(own_reuseport_sockets_pass_the_check_read_from_proc)
{
    own_sockets_pass(1);
}

TEST(foreign_reuseport_listener_added_after_ours_is_found)
{
    foreign_listener_is_found(0);
}

TEST(foreign_reuseport_listener_added_after_ours_is_found_from_proc)
{
    foreign_listener_is_found(1);
}

TEST(foreign_wildcard_listener_on_the_port_is_found)
{
    int fds[NOWN];
    open_own("127.0.0.1", fds);
    int foreign = listen_on("0.0.0.0", port_of(fds[0]), 1, -1);
    ft_error_t err = {0};
    int rc = ft_port_guard_verify(fds, NOWN, &err);
    close_all(fds, NOWN);
    close(foreign);
    CHECK_INT(FT_ECONFLICT, rc);
    CHECK_CONTAINS(err.message, "listening on 0.0.0.0:");
}

TEST(listeners_on_other_addresses_or_ports_do_not_count)
{
    int fds[NOWN];
    open_own("127.0.0.1", fds);
    int other_addr = listen_on("127.0.0.2", port_of(fds[0]), 1, -1);
    int other_port = listen_on("127.0.0.1", 0, 1, -1);
    ft_error_t err = {0};
    int rc = ft_port_guard_verify(fds, NOWN, &err);
    close_all(fds, NOWN);
    close(other_addr);
    close(other_port);
    CHECK_STR("", err.message);
    CHECK_INT(FT_OK, rc);
}

TEST(ipv6_wildcard_counts_for_ipv4_unless_v6only)
{
    int fds[NOWN];
    open_own("127.0.0.1", fds);
    ft_error_t err = {0};
    int v6only = listen_on("::", port_of(fds[0]), 1, 1);
    CHECK_INT(FT_OK, ft_port_guard_verify(fds, NOWN, &err));
    close(v6only);
    int dual = listen_on("::", port_of(fds[0]), 1, 0);
    int rc = ft_port_guard_verify(fds, NOWN, &err);
    close(dual);
    close_all(fds, NOWN);
    CHECK_INT(FT_ECONFLICT, rc);
    CHECK_CONTAINS(err.message, "listening on [::]:");
}

TEST(ipv6_own_sockets_pass_and_a_foreign_one_is_found)
{
    int fds[NOWN];
    open_own("::1", fds);
    ft_error_t err = {0};
    CHECK_INT(FT_OK, ft_port_guard_verify(fds, NOWN, &err));
    int foreign = listen_on("::1", port_of(fds[0]), 1, -1);
    char where[32];
    snprintf(where, sizeof(where), "[::1]:%u ", port_of(fds[0]));
    int rc = ft_port_guard_verify(fds, NOWN, &err);
    close(foreign);
    close_all(fds, NOWN);
    CHECK_INT(FT_ECONFLICT, rc);
    check_names_us(&err, where);
}

TEST(explain_leaves_out_our_own_sockets)
{
    int fds[NOWN];
    open_own("127.0.0.1", fds);
    struct sockaddr_storage ss;
    socklen_t len = make_addr("127.0.0.1", port_of(fds[0]), &ss);
    (void)len;
    ft_error_t err = {0};
    CHECK_INT(FT_ECONFLICT, ft_port_guard_explain((struct sockaddr *)&ss, fds, NOWN, &err));
    close_all(fds, NOWN);
    CHECK_CONTAINS(err.message, "is already in use by another process; ");
}

RUN_TESTS(TEST_ENTRY(free_port_passes_the_probe), TEST_ENTRY(port_zero_passes_the_probe),
          TEST_ENTRY(port_held_with_reuseport_is_refused_by_the_probe),
          TEST_ENTRY(port_held_without_reuseport_is_refused_by_the_probe),
          TEST_ENTRY(wildcard_listener_refuses_a_specific_address_in_the_probe), TEST_ENTRY(time_wait_leftovers_do_not_count),
          TEST_ENTRY(address_that_cannot_be_bound_keeps_its_own_error), TEST_ENTRY(own_reuseport_sockets_pass_the_check),
          TEST_ENTRY(own_reuseport_sockets_pass_the_check_read_from_proc),
          TEST_ENTRY(foreign_reuseport_listener_added_after_ours_is_found),
          TEST_ENTRY(foreign_reuseport_listener_added_after_ours_is_found_from_proc),
          TEST_ENTRY(foreign_wildcard_listener_on_the_port_is_found),
          TEST_ENTRY(listeners_on_other_addresses_or_ports_do_not_count), TEST_ENTRY(ipv6_wildcard_counts_for_ipv4_unless_v6only),
          TEST_ENTRY(ipv6_own_sockets_pass_and_a_foreign_one_is_found), TEST_ENTRY(explain_leaves_out_our_own_sockets))
