/*
 * TCP for the POSIX backend: name resolution, sockets and connects.  The
 * streams and listeners are the generic socket ones (fd-stream.c,
 * fd-listener.c), so TCP reads, writes, closes and reports readiness
 * exactly as AF_UNIX pipes do, minus peer credentials.
 */
#define _GNU_SOURCE /* NI_MAXHOST, SOCK_NONBLOCK */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "unix.h"

struct tcp_listener {
  struct np__fd_listener fl;
};

/* getaddrinfo's own codes; EAI_SYSTEM carries an errno.  A resolver that
 * cannot answer now (EAI_AGAIN) is NP_EIO, as on Windows. */
static int resolver_error(int rc) {
  switch (rc) {
  case EAI_NONAME:
#ifdef EAI_NODATA
  case EAI_NODATA:
#endif
    return NP_ENOENT;
  case EAI_MEMORY:
    return NP_ENOMEM;
  case EAI_FAMILY:
  case EAI_SERVICE:
  case EAI_SOCKTYPE:
  case EAI_BADFLAGS:
    return NP_EINVAL;
  case EAI_SYSTEM:
    return np__error_from_errno();
  default:
    return NP_EIO;
  }
}

static int resolve(const struct np__address *addr, int passive,
                   struct addrinfo **out) {
  struct addrinfo hints;
  char port[8];
  int rc;

  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  snprintf(port, sizeof(port), "%u", addr->port);
  rc = getaddrinfo(addr->host, port, &hints, out);
  return rc != 0 ? resolver_error(rc) : 0;
}

static int tcp_socket(const struct addrinfo *ai) {
  return socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                ai->ai_protocol);
}

/* Small writes leave at once, on both backends; a failure only costs
 * latency. */
static void tune(int fd) {
  int on = 1;

  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

/* ---- connect ------------------------------------------------------------ */

/* Starts a connect to ai.  Returns the socket with *in_progress set when
 * the outcome is still to come, or NP_E* when it failed at once. */
static int connect_start(const struct addrinfo *ai, int *in_progress) {
  int fd = tcp_socket(ai);
  int e;

  if (fd < 0)
    return np__error_from_errno();
  tune(fd);
  *in_progress = 0;
  /* An interrupted connect may or may not have started: asking again
   * starts it, or says EALREADY while it runs and EISCONN once done. */
  do {
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
      return fd;
    e = errno;
  } while (e == EINTR);
  if (e == EISCONN)
    return fd;
  if (e == EINPROGRESS || e == EALREADY) {
    *in_progress = 1;
    return fd;
  }
  close(fd);
  return np__error_from_os(e);
}

int np__tcp_connect(np_poll *poll, const struct np__address *addr,
                    const struct np__opts *opts, uint64_t token,
                    uint32_t interest, np_stream **out) {
  struct addrinfo *list, *ai;
  int err, fd = NP_EADDRNOTAVAIL, in_progress = 0;

  if ((err = resolve(addr, 0, &list)) != 0)
    return err;
  /* Addresses that fail at once (another family missing, say) give way to
   * the next; an asynchronous failure is the stream's error. */
  for (ai = list; ai != NULL; ai = ai->ai_next)
    if ((fd = connect_start(ai, &in_progress)) >= 0)
      break;
  freeaddrinfo(list);
  if (fd < 0)
    return fd;
  err = np__fd_stream_new(poll, fd, in_progress ? NP__FD_CONNECTING : 0,
                          opts->write_limit, token, interest, out);
  if (err != 0)
    close(fd);
  return err;
}

/* ---- listen ------------------------------------------------------------- */

static int listener_vet(struct np__fd_listener *l, int fd) {
  NP__UNUSED(l);
  tune(fd);
  return 0;
}

static int listener_address(struct np__fd_listener *l, char *buf, size_t len) {
  struct sockaddr_storage ss;
  socklen_t sslen = sizeof(ss);
  char host[NI_MAXHOST], port[NI_MAXSERV];
  int n;

  if (getsockname(l->watch.fd, (struct sockaddr *)&ss, &sslen) < 0)
    return np__error_from_errno();
  n = getnameinfo((struct sockaddr *)&ss, sslen, host, sizeof(host), port,
                  sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV);
  if (n != 0)
    return resolver_error(n);
  n = snprintf(buf, len,
               ss.ss_family == AF_INET6 ? "tcp:[%s]:%s" : "tcp:%s:%s", host,
               port);
  if (n < 0)
    return NP_EINVAL;
  return (size_t)n < len ? n : NP_ENAMETOOLONG;
}

static void listener_release(struct np__fd_listener *l) {
  free(NP__CONTAINER_OF(l, struct tcp_listener, fl));
}

static const struct np__fd_listener_class listener_class = {
    listener_vet, listener_address, listener_release};

/* SO_REUSEADDR lets a restarted server bind while old connections linger
 * in TIME_WAIT; Linux still refuses a second live listener.  IPv6
 * sockets take only IPv6, as on Windows. */
static int listen_options(int fd, int family) {
  int on = 1;

  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0)
    return -1;
  if (family == AF_INET6 &&
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0)
    return -1;
  return 0;
}

/* A listening socket on the first address that binds.  Returns the fd or
 * NP_E*. */
static int listen_socket(const struct addrinfo *ai, int backlog) {
  int err = NP_EADDRNOTAVAIL;

  for (; ai != NULL; ai = ai->ai_next) {
    int fd = tcp_socket(ai);

    if (fd < 0) {
      err = np__error_from_errno();
      continue;
    }
    if (listen_options(fd, ai->ai_family) == 0 &&
        bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, backlog) == 0)
      return fd;
    err = np__error_from_errno();
    close(fd);
  }
  return err;
}

int np__tcp_listen(np_poll *poll, const struct np__address *addr,
                   const struct np__opts *opts, uint64_t token,
                   np_listener **out) {
  struct tcp_listener *l;
  struct addrinfo *ai;
  int fd, err;

  if ((err = resolve(addr, 1, &ai)) != 0)
    return err;
  fd = listen_socket(ai, opts->backlog);
  freeaddrinfo(ai);
  if (fd < 0)
    return fd;
  if ((l = calloc(1, sizeof(*l))) == NULL) {
    close(fd);
    return NP_ENOMEM;
  }
  err = np__fd_listener_start(&l->fl, poll, fd, &listener_class, 0,
                              opts->write_limit, token);
  if (err != 0) {
    close(fd);
    free(l);
    return err;
  }
  *out = &l->fl.pub;
  return 0;
}
