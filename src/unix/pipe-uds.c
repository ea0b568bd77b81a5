/*
 * Named pipes on POSIX: Unix domain sockets, SOCK_STREAM in byte mode and
 * SOCK_SEQPACKET in message mode, served by the generic socket stream and
 * listener (fd-stream.c, fd-listener.c).
 *
 * Listeners vet every connection with SO_PEERCRED before a byte is read:
 * by default only this effective user gets through (NP_OPT_ANY_USER lets
 * everyone in, NP_OPT_ALLOW_UID one more uid); a refused client is closed
 * and np_accept moves on to the next.  Clients vet the server the same
 * way once connected: it must be this user or root.
 */
#define _GNU_SOURCE /* struct ucred */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "pipe-uds.h"

struct pipe_listener {
  struct np__fd_listener base;
  struct np__pipe_files files;
  uint32_t flags;     /* NP_OPT_ANY_USER, NP_OPT_ALLOW_UID */
  uint32_t allow_uid; /* with NP_OPT_ALLOW_UID */
  uid_t euid;         /* the server's user, at np_listen */
  char address[NP__PIPE_NAME_MAX + NP__SUN_PATH_MAX + 8];
};

static struct pipe_listener *from_base(struct np__fd_listener *l) {
  return NP__CONTAINER_OF(l, struct pipe_listener, base);
}

static int sock_type(uint32_t flags) {
  return (flags & NP_OPT_MESSAGE) ? SOCK_SEQPACKET : SOCK_STREAM;
}

static unsigned stream_flags(uint32_t flags) {
  return NP__FD_PIPE | ((flags & NP_OPT_MESSAGE) ? NP__FD_MESSAGE : 0u);
}

static int vet_peer(struct np__fd_listener *l, int fd) {
  struct pipe_listener *pl = from_base(l);
  struct ucred uc;
  socklen_t len = sizeof(uc);

  if (pl->flags & NP_OPT_ANY_USER)
    return 0;
  /* A connection whose credentials cannot be read is not trusted. */
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
    return NP__FD_REFUSE;
  if (uc.uid == pl->euid ||
      ((pl->flags & NP_OPT_ALLOW_UID) && uc.uid == (uid_t)pl->allow_uid))
    return 0;
  return NP__FD_REFUSE;
}

static int listener_address(struct np__fd_listener *l, char *buf, size_t len) {
  const char *a = from_base(l)->address;
  size_t n = strlen(a);

  if (n >= len)
    return NP_ENAMETOOLONG;
  memcpy(buf, a, n + 1);
  return (int)n;
}

static void listener_release(struct np__fd_listener *l) {
  struct pipe_listener *pl = from_base(l);

  np__pipe_unbind(&pl->files);
  free(pl);
}

static const struct np__fd_listener_class pipe_class = {
    vet_peer, listener_address, listener_release};

/* The canonical address: "pipe:NAME" however the name was spelled.  The
 * name fits: np__pipe_path accepted it. */
static void format_address(struct pipe_listener *pl,
                           const struct np__address *addr) {
  const char *prefix = addr->kind == NP__ADDR_UNIX ? "unix:" : "pipe:";
  size_t plen = strlen(prefix), nlen = strlen(addr->name);

  if (plen + nlen >= sizeof(pl->address))
    nlen = 0;
  memcpy(pl->address, prefix, plen);
  memcpy(pl->address + plen, addr->name, nlen);
  pl->address[plen + nlen] = '\0';
}

/* A bound, listening socket for path in fd.  Returns 0 or NP_E* with
 * nothing left behind. */
static int open_listener(const char *path, const struct np__opts *opts,
                         struct pipe_listener *pl, int *fd_out) {
  int fd = socket(AF_UNIX,
                  sock_type(opts->flags) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int err;

  if (fd < 0)
    return np__error_from_errno();
  err = np__pipe_bind(fd, path, opts->mode, &pl->files);
  if (err != 0) {
    close(fd);
    return err;
  }
  if (listen(fd, opts->backlog) < 0) {
    err = np__error_from_errno();
    close(fd);
    np__pipe_unbind(&pl->files);
    return err;
  }
  *fd_out = fd;
  return 0;
}

int np__pipe_listen(np_poll *poll, const struct np__address *addr,
                    const struct np__opts *opts, uint64_t token,
                    np_listener **out) {
  char path[NP__SUN_PATH_MAX];
  struct pipe_listener *pl;
  int fd = -1, err = np__pipe_path(addr, 1, path);

  if (err != 0)
    return err;
  pl = calloc(1, sizeof(*pl));
  if (pl == NULL)
    return NP_ENOMEM;
  pl->flags = opts->flags;
  pl->allow_uid = opts->allow_uid;
  pl->euid = geteuid();
  format_address(pl, addr);
  err = open_listener(path, opts, pl, &fd);
  if (err == 0) {
    err = np__fd_listener_start(&pl->base, poll, fd, &pipe_class,
                                stream_flags(opts->flags), opts->write_limit,
                                token);
    if (err == 0) {
      *out = &pl->base.pub;
      return 0;
    }
    close(fd);
    np__pipe_unbind(&pl->files);
  }
  free(pl);
  return err;
}

/* connect(2) on fd, past EINTR.  Returns 0 or an errno value. */
static int connect_errno(int fd, const struct sockaddr_un *sa, socklen_t len) {
  int e;

  do
    e = connect(fd, (const struct sockaddr *)sa, len) == 0 ? 0 : errno;
  while (e == EINTR);
  return e;
}

/* The client's check of the server, on the connected socket itself: a
 * race that swapped the directory or the socket file between the path
 * checks and connect(2) can only end here, in a refusal.  The server
 * must run as this user or as root unless NP_OPT_ANY_SERVER.  Returns 0
 * or NP_EACCES. */
static int vet_server(int fd, uint32_t flags) {
  struct ucred uc;
  socklen_t len = sizeof(uc);

  if (flags & NP_OPT_ANY_SERVER)
    return 0;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
    return NP_EACCES;
  return uc.uid == geteuid() || uc.uid == 0 ? 0 : NP_EACCES;
}

/* One connection attempt of fd, never blocking (a failed AF_UNIX
 * connect leaves the socket unconnected, so fd may try again).  The path
 * is found again each time: the private directory may appear later.
 * Returns 0 once connected to a server this client accepts, NP_ENOENT
 * when nobody listens, NP_EBUSY when the backlog is full, or another
 * NP_E*. */
static int connect_once(const struct np__address *addr, uint32_t flags,
                        int fd) {
  char path[NP__SUN_PATH_MAX];
  struct sockaddr_un sa;
  int e, err = np__pipe_path(addr, 0, path);

  if (err != 0)
    return err;
  e = connect_errno(fd, &sa, np__pipe_sockaddr(path, &sa));
  switch (e) {
  case 0:
    return vet_server(fd, flags);
  case ENOENT:
  case ECONNREFUSED: /* a socket file that nobody listens on */
    return NP_ENOENT;
  case EAGAIN:
    return NP_EBUSY;
  case EPROTOTYPE: /* byte mode against message mode, or the reverse */
    return NP_EINVAL;
  default:
    return np__error_from_os(e);
  }
}

/* Non-zero when flags ask to wait out err. */
static int waitable(int err, uint32_t flags) {
  return (err == NP_ENOENT && (flags & NP_OPT_WAIT_ABSENT)) ||
         (err == NP_EBUSY && (flags & NP_OPT_WAIT_BUSY));
}

/* A connect that waits: what its retries need. */
struct pipe_dial {
  struct np__fd_dial base;
  struct np__address addr;
  uint32_t flags;
};

static int dial_attempt(struct np__fd_dial *d, int fd) {
  struct pipe_dial *pd = NP__CONTAINER_OF(d, struct pipe_dial, base);
  int err = connect_once(&pd->addr, pd->flags, fd);

  return waitable(err, pd->flags) ? NP_EAGAIN : err;
}

static void dial_release(struct np__fd_dial *d) {
  free(NP__CONTAINER_OF(d, struct pipe_dial, base));
}

/* Hands fd, whose first attempt found the server absent or busy, to a
 * stream that retries on the poller's timers.  Returns 0 or NP_E*; fd
 * stays the caller's on failure. */
static int start_dial(np_poll *poll, const struct np__address *addr,
                      const struct np__opts *opts, int fd, uint64_t token,
                      uint32_t interest, np_stream **out) {
  struct pipe_dial *pd = malloc(sizeof(*pd));
  uint64_t deadline = opts->timeout_ms < 0
                          ? UINT64_MAX
                          : np__now_ms() + (uint64_t)opts->timeout_ms;
  int err;

  if (pd == NULL)
    return NP_ENOMEM;
  pd->base.attempt = dial_attempt;
  pd->base.release = dial_release;
  pd->addr = *addr;
  pd->flags = opts->flags;
  err = np__fd_stream_dial(poll, fd, stream_flags(opts->flags),
                           opts->write_limit, token, interest, &pd->base,
                           deadline, out);
  if (err != 0)
    free(pd);
  return err;
}

int np__pipe_connect(np_poll *poll, const struct np__address *addr,
                     const struct np__opts *opts, uint64_t token,
                     uint32_t interest, np_stream **out) {
  int err, fd = socket(
               AF_UNIX, sock_type(opts->flags) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

  if (fd < 0)
    return np__error_from_errno();
  err = connect_once(addr, opts->flags, fd);
  if (err == 0)
    err = np__fd_stream_new(poll, fd, stream_flags(opts->flags),
                            opts->write_limit, token, interest, out);
  else if (waitable(err, opts->flags))
    err = opts->timeout_ms == 0 ? NP_ETIMEDOUT
                                : start_dial(poll, addr, opts, fd, token,
                                             interest, out);
  if (err != 0)
    close(fd);
  return err;
}
