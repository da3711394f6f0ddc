/*
 * The port guard: probes a listen address before binding, and afterwards reads the kernel's
 * listening TCP sockets on its port (netlink socket diagnostics, else /proc/net/tcp{,6}) to find
 * any that is not this process's own; the holder is named from /proc/<pid>/fd where readable.
 */
#include "infra/port_guard.h"

#include "core/mem.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IN_USE_HINT "each host needs an address of its own"

/* An address as the kernel routes connections to it; an IPv4-mapped IPv6 address is folded
 * into AF_INET, since it receives the IPv4 connections. */
typedef struct endpoint {
    int family;
    unsigned char addr[16];
    unsigned port;
    int v6only; /* AF_INET6 only: does not receive IPv4 connections */
} endpoint_t;

typedef struct listener {
    endpoint_t ep;
    unsigned long long inode;
    unsigned uid;
} listener_t;

/* The first listener on ours' port that overlaps ours and is not one of own. */
typedef struct search {
    endpoint_t ours;
    const unsigned long long *own;
    size_t nown;
    int found;
    listener_t hit;
} search_t;

static int force_proc;

void ft_port_guard_force_proc(int on)
{
    force_proc = on;
}

static const unsigned char V4_MAPPED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static void endpoint_set(endpoint_t *ep, int family, const void *addr, unsigned port, int v6only)
{
    memset(ep, 0, sizeof(*ep));
    ep->port = port;
    if (family == AF_INET6 && memcmp(addr, V4_MAPPED, sizeof(V4_MAPPED)) == 0) {
        ep->family = AF_INET;
        memcpy(ep->addr, (const unsigned char *)addr + 12, 4);
        return;
    }
    ep->family = family;
    ep->v6only = family == AF_INET6 && v6only;
    memcpy(ep->addr, addr, family == AF_INET6 ? 16 : 4);
}

static void endpoint_from_sockaddr(endpoint_t *ep, const struct sockaddr *sa, int v6only)
{
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        endpoint_set(ep, AF_INET6, &s6->sin6_addr, ntohs(s6->sin6_port), v6only);
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        endpoint_set(ep, AF_INET, &s4->sin_addr, ntohs(s4->sin_port), 0);
    }
}

static int endpoint_is_any(const endpoint_t *ep)
{
    static const unsigned char zero[16];
    return memcmp(ep->addr, zero, ep->family == AF_INET6 ? 16 : 4) == 0;
}

/* Whether connections to a could reach a listener on b, or the reverse (ports aside): the same
 * address, or a wildcard of the same family, or an IPv6 wildcard that also takes IPv4. */
static int endpoints_overlap(const endpoint_t *a, const endpoint_t *b)
{
    if (a->family == b->family)
        return endpoint_is_any(a) || endpoint_is_any(b) || memcmp(a->addr, b->addr, a->family == AF_INET6 ? 16 : 4) == 0;
    const endpoint_t *v6 = a->family == AF_INET6 ? a : b;
    return endpoint_is_any(v6) && !v6->v6only;
}

static void endpoint_format(const endpoint_t *ep, char *buf, size_t size)
{
    char host[INET6_ADDRSTRLEN];
    inet_ntop(ep->family, ep->addr, host, sizeof(host));
    snprintf(buf, size, ep->family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, ep->port);
}

static void consider(search_t *s, const listener_t *l)
{
    if (s->found || l->inode == 0 || l->ep.port != s->ours.port || !endpoints_overlap(&s->ours, &l->ep))
        return;
    for (size_t i = 0; i < s->nown; i++)
        if (s->own[i] == l->inode)
            return;
    s->found = 1;
    s->hit = *l;
}

/* --- the kernel's listening sockets --- */

/* One family's listening TCP sockets through NETLINK_SOCK_DIAG; -1 if the dump fails. */
static int scan_netlink_family(int fd, int family, search_t *s)
{
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 req;
    } msg;
    memset(&msg, 0, sizeof(msg));
    msg.nlh.nlmsg_len = sizeof(msg);
    msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    msg.req.sdiag_family = (unsigned char)family;
    msg.req.sdiag_protocol = IPPROTO_TCP;
    msg.req.idiag_states = 1u << TCP_LISTEN;
    msg.req.id.idiag_sport = htons((unsigned short)s->ours.port); /* the kernel filters listeners by it */
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    if (sendto(fd, &msg, sizeof(msg), 0, (struct sockaddr *)&kernel, sizeof(kernel)) != (ssize_t)sizeof(msg))
        return -1;
    long buf[32768 / sizeof(long)]; /* the kernel fills dump datagrams up to 32 KiB */
    for (;;) {
        ssize_t got = recv(fd, buf, sizeof(buf), MSG_TRUNC);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0 || (size_t)got > sizeof(buf))
            return -1;
        size_t left = (size_t)got;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
            if (h->nlmsg_type == NLMSG_DONE)
                return 0;
            if (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
                return -1;
            const struct inet_diag_msg *m = NLMSG_DATA(h);
            int v6only = 0;
            unsigned rlen = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));
            for (struct rtattr *a = (struct rtattr *)(m + 1); RTA_OK(a, rlen); a = RTA_NEXT(a, rlen))
                if (a->rta_type == INET_DIAG_SKV6ONLY && RTA_PAYLOAD(a) >= 1)
                    v6only = *(const unsigned char *)RTA_DATA(a);
            listener_t l = {.inode = m->idiag_inode, .uid = m->idiag_uid};
            endpoint_set(&l.ep, m->idiag_family, m->id.idiag_src, ntohs(m->id.idiag_sport), v6only);
            consider(s, &l);
        }
    }
}

static int scan_netlink(search_t *s)
{
    int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0)
        return -1;
    int rc = scan_netlink_family(fd, AF_INET, s);
    if (rc == 0)
        rc = scan_netlink_family(fd, AF_INET6, s);
    close(fd);
    return rc;
}

/* /proc/net/tcp or tcp6: addresses are the kernel's 32-bit words in hex, in host byte order.
 * The file does not say whether an IPv6 socket is v6-only: it counts as dual-stack, so an
 * unknown wildcard listener is reported rather than missed. */
static int scan_proc_file(const char *path, int family, search_t *s)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return errno == ENOENT && family == AF_INET6 ? 0 : -1; /* a kernel without IPv6 */
    char line[512], hex[33];
    unsigned port, state, uid;
    unsigned long long inode;
    size_t words = family == AF_INET6 ? 4 : 1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, " %*u: %32[0-9A-Fa-f]:%x %*s %x %*s %*s %*s %u %*d %llu", hex, &port, &state, &uid, &inode) != 5 ||
            state != TCP_LISTEN || strlen(hex) != words * 8)
            continue;
        uint32_t addr[4];
        for (size_t i = 0; i < words; i++) {
            char word[9];
            memcpy(word, hex + i * 8, 8);
            word[8] = '\0';
            addr[i] = (uint32_t)strtoul(word, NULL, 16);
        }
        listener_t l = {.inode = inode, .uid = uid};
        endpoint_set(&l.ep, family, addr, port, 0);
        consider(s, &l);
    }
    fclose(f);
    return 0;
}

/* Runs s over every listening TCP socket in this network namespace; -1 if none can be read. */
static int scan_listeners(search_t *s)
{
    if (!force_proc && scan_netlink(s) == 0)
        return 0;
    s->found = 0;
    if (scan_proc_file("/proc/net/tcp", AF_INET, s) != 0 || scan_proc_file("/proc/net/tcp6", AF_INET6, s) != 0)
        return -1;
    return 0;
}

/* --- naming the holder --- */

/* The process with a descriptor for the socket, from /proc/<pid>/fd; 0 if none is readable. */
static int find_pid(unsigned long long inode)
{
    char want[48];
    snprintf(want, sizeof(want), "socket:[%llu]", inode);
    DIR *proc = opendir("/proc");
    if (proc == NULL)
        return 0;
    int pid = 0;
    struct dirent *p;
    while (pid == 0 && (p = readdir(proc)) != NULL) {
        if (!isdigit((unsigned char)p->d_name[0]))
            continue;
        char path[300];
        snprintf(path, sizeof(path), "/proc/%s/fd", p->d_name);
        DIR *fds = opendir(path);
        if (fds == NULL)
            continue;
        struct dirent *d;
        while ((d = readdir(fds)) != NULL) {
            char link[64];
            ssize_t n = readlinkat(dirfd(fds), d->d_name, link, sizeof(link) - 1);
            if (n > 0 && (link[n] = '\0', strcmp(link, want) == 0)) {
                pid = atoi(p->d_name);
                break;
            }
        }
        closedir(fds);
    }
    closedir(proc);
    return pid;
}

static void read_command(int pid, char *buf, size_t size)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/comm", pid);
    snprintf(buf, size, "?");
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return;
    if (fgets(buf, (int)size, f) != NULL)
        buf[strcspn(buf, "\n")] = '\0';
    fclose(f);
}

/* "<ours> is already in use by pid 1234 (farutech-host) on <theirs>; ..." with what is known. */
static int conflict(const endpoint_t *ours, const listener_t *holder, ft_error_t *err)
{
    char where[64], who[128] = "another process", on[80] = "";
    endpoint_format(ours, where, sizeof(where));
    if (holder != NULL) {
        int pid = find_pid(holder->inode);
        if (pid > 0) {
            char command[32];
            read_command(pid, command, sizeof(command));
            snprintf(who, sizeof(who), "pid %d (%s)", pid, command);
        } else {
            snprintf(who, sizeof(who), "another process (uid %u)", holder->uid);
        }
        char theirs[64];
        endpoint_format(&holder->ep, theirs, sizeof(theirs));
        if (strcmp(theirs, where) != 0)
            snprintf(on, sizeof(on), " listening on %s", theirs);
    }
    return ft_error_set(err, FT_ECONFLICT, "%s is already in use by %s%s; " IN_USE_HINT, where, who, on);
}

/* The socket inodes of fds; the caller frees. -1 if one is not open. */
static int inodes_of(const int *fds, size_t n, unsigned long long **out)
{
    unsigned long long *inodes = ft_mem_calloc(n ? n : 1, sizeof(*inodes));
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (fstat(fds[i], &st) != 0) {
            free(inodes);
            return -1;
        }
        inodes[i] = (unsigned long long)st.st_ino;
    }
    *out = inodes;
    return 0;
}

int ft_port_guard_explain(const struct sockaddr *addr, const int *own, size_t n, ft_error_t *err)
{
    search_t s = {0};
    endpoint_from_sockaddr(&s.ours, addr, 0);
    unsigned long long *inodes = NULL;
    if (inodes_of(own, n, &inodes) != 0)
        return conflict(&s.ours, NULL, err);
    s.own = inodes;
    s.nown = n;
    int known = scan_listeners(&s) == 0 && s.found;
    free(inodes);
    return conflict(&s.ours, known ? &s.hit : NULL, err);
}

int ft_port_guard_probe(const struct sockaddr *addr, socklen_t len, ft_error_t *err)
{
    endpoint_t ep;
    endpoint_from_sockaddr(&ep, addr, 0);
    if (ep.port == 0)
        return FT_OK;
    int rc = FT_OK, on = 1;
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 || bind(fd, addr, len) != 0) {
        int e = errno;
        char where[64];
        endpoint_format(&ep, where, sizeof(where));
        rc = e == EADDRINUSE ? ft_port_guard_explain(addr, NULL, 0, err)
                             : ft_error_set(err, FT_EIO, "cannot listen on %s: %s", where, strerror(e));
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

int ft_port_guard_verify(const int *fds, size_t n, ft_error_t *err)
{
    search_t s = {0};
    unsigned long long *inodes = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int v6only = 0, rc = FT_OK;
    socklen_t ol = sizeof(v6only);
    if (n == 0)
        return FT_OK;
    if (getsockname(fds[0], (struct sockaddr *)&ss, &sl) != 0 || inodes_of(fds, n, &inodes) != 0)
        return ft_error_set(err, FT_EIO, "cannot inspect the listening sockets: %s", strerror(errno));
    if (ss.ss_family == AF_INET6)
        getsockopt(fds[0], IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &ol);
    endpoint_from_sockaddr(&s.ours, (struct sockaddr *)&ss, v6only);
    s.own = inodes;
    s.nown = n;
    if (scan_listeners(&s) != 0) {
        rc = ft_error_set(err, FT_EIO, "cannot read the listening TCP sockets (netlink socket diagnostics, /proc/net/tcp)");
        goto out;
    }
    if (s.found)
        rc = conflict(&s.ours, &s.hit, err);
out:
    free(inodes);
    return rc;
}
