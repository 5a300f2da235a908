/* The listening socket: --listen HOST:PORT (IPv4, or IPv6 in brackets),
 * opened here rather than by libmicrohttpd so that a bad or taken address
 * is reported with its reason.
 *
 * Invariants:
 * - Only numeric addresses are accepted (no name lookups): IPv4 dotted
 *   quads bare, IPv6 in brackets in HOST:PORT (bare as --host).
 * - A socket returned is bound and listening, close-on-exec; an IPv6
 *   socket is IPv6 only (IPV6_V6ONLY), so "[::]" and "0.0.0.0" are two
 *   different listeners, the same on every system.
 * - On failure nothing stays open. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int is_v6(const char *host) {
    struct in6_addr a;
    return inet_pton(AF_INET6, host, &a) == 1;
}

static int is_v4(const char *host) {
    struct in_addr a;
    return inet_pton(AF_INET, host, &a) == 1;
}

int listen_split(const char *s, char *host, size_t cap, unsigned *port,
                 char *err, size_t errcap) {
    const char *h = s, *hend, *p;
    if (*s == '[') {
        hend = strchr(s, ']');
        if (!hend || hend[1] != ':') {
            snprintf(err, errcap, "%s: expected [IPv6]:PORT", s);
            return -1;
        }
        h = s + 1;
        p = hend + 2;
    } else {
        hend = strrchr(s, ':');
        if (!hend) {
            snprintf(err, errcap, "%s: expected HOST:PORT", s);
            return -1;
        }
        p = hend + 1;
        if (memchr(s, ':', (size_t)(hend - s))) {
            snprintf(err, errcap, "%s: an IPv6 address goes in brackets, "
                     "as in [::1]:8080", s);
            return -1;
        }
    }
    size_t n = (size_t)(hend - h);
    if (n >= cap) {
        snprintf(err, errcap, "%s: address too long", s);
        return -1;
    }
    memcpy(host, h, n);
    host[n] = '\0';
    if (*s == '[' ? !is_v6(host) : !is_v4(host)) {
        snprintf(err, errcap, "%s: %s is not a numeric %s address", s, host,
                 *s == '[' ? "IPv6" : "IPv4");
        return -1;
    }
    char *end;
    unsigned long v = strtoul(p, &end, 10);
    if (!*p || *end || *p == '-' || *p == '+' || v > 65535) {
        snprintf(err, errcap, "%s: the port must be 0 to 65535", s);
        return -1;
    }
    *port = (unsigned)v;
    return 0;
}

int listen_open(const char *host, unsigned port, unsigned *bound_port,
                char *err, size_t errcap) {
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    if (is_v4(host)) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        inet_pton(AF_INET, host, &a->sin_addr);
        len = sizeof *a;
    } else if (is_v6(host)) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        inet_pton(AF_INET6, host, &a->sin6_addr);
        len = sizeof *a;
    } else {
        snprintf(err, errcap, "%s is not a numeric IPv4 or IPv6 address", host);
        return -1;
    }
    if (port > 65535) {
        snprintf(err, errcap, "port %u: must be 0 to 65535", port);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errcap, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    /* a restart reuses the port while old connections are in TIME_WAIT */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0) {
        int e = errno;
        close(fd);
        snprintf(err, errcap, "%s", e == EADDRINUSE ? "address already in use"
                                  : e == EADDRNOTAVAIL
                                      ? "address not available on this machine"
                                      : strerror(e));
        return -1;
    }
    if (listen(fd, 512) != 0) {
        int e = errno;
        close(fd);
        snprintf(err, errcap, "listen: %s", strerror(e));
        return -1;
    }
    struct sockaddr_storage got;
    socklen_t gl = sizeof got;
    if (getsockname(fd, (struct sockaddr *)&got, &gl) != 0) {
        int e = errno;
        close(fd);
        snprintf(err, errcap, "getsockname: %s", strerror(e));
        return -1;
    }
    *bound_port = ntohs(got.ss_family == AF_INET6
                            ? ((struct sockaddr_in6 *)&got)->sin6_port
                            : ((struct sockaddr_in *)&got)->sin_port);
    return fd;
}

void listen_origin(const char *host, unsigned port, char *out, size_t cap) {
    if (is_v6(host))
        snprintf(out, cap, "http://[%s]:%u", host, port);
    else
        snprintf(out, cap, "http://%s:%u", host, port);
}
