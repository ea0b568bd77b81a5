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

/* Longest sleep between connect attempts while waiting for a server. */
#define WAIT_MAX_MS 32

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

/* The server's backlog is full: waits in connect(2) itself, blocking,
 * for at most wait_ms (< 0: without a limit), so that the kernel lets
 * this client in the moment the server accepts one (a sleep and retry
 * would leave the freed slot idle for the rest of the sleep).  fd is
 * non-blocking again afterwards.  Returns 0 or an errno value: EAGAIN
 * when the wait ran out. */
static int connect_wait(int fd, const struct sockaddr_un *sa, socklen_t len,
                        int64_t wait_ms) {
  struct timeval tv;
  int e;

  /* SO_SNDTIMEO bounds the wait; zero means none. */
  memset(&tv, 0, sizeof(tv));
  if (wait_ms > 0) {
    tv.tv_sec = (time_t)(wait_ms / 1000);
    tv.tv_usec = (suseconds_t)(wait_ms % 1000) * 1000;
  }
  if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
      fcntl(fd, F_SETFL, 0) < 0)
    return errno;
  e = connect_errno(fd, sa, len);
  if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0 && e == 0)
    e = errno;
  return e;
}

/* One connection attempt; when the backlog is full and wait_ms is not 0,
 * waits up to wait_ms (< 0: forever) for room.  Returns 0 with *fd_out,
 * NP_ENOENT when nobody listens, NP_EBUSY when the backlog is (still)
 * full, or another NP_E*. */
static int try_connect(const struct np__address *addr, uint32_t flags,
                       int64_t wait_ms, int *fd_out) {
  char path[NP__SUN_PATH_MAX];
  struct sockaddr_un sa;
  socklen_t len;
  int fd, e, err = np__pipe_path(addr, 0, path);

  if (err != 0)
    return err;
  len = np__pipe_sockaddr(path, &sa);
  fd = socket(AF_UNIX, sock_type(flags) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return np__error_from_errno();
  e = connect_errno(fd, &sa, len);
  /* A failed AF_UNIX connect leaves the socket unconnected: it may try
   * again, this time waiting. */
  if (e == EAGAIN && wait_ms != 0)
    e = connect_wait(fd, &sa, len, wait_ms);
  if (e == 0) {
    *fd_out = fd;
    return 0;
  }
  close(fd);
  switch (e) {
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

static void sleep_ms(uint64_t ms) {
  struct timespec ts;

  ts.tv_sec = (time_t)(ms / 1000);
  ts.tv_nsec = (long)(ms % 1000) * 1000000L;
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
    ;
}

/* Connects, waiting for an absent or busy server as opts allow.  A busy
 * server is waited for inside connect(2); an absent one with a doubling
 * back-off of sleeps up to WAIT_MAX_MS, never past the deadline. */
static int connect_fd(const struct np__address *addr,
                      const struct np__opts *opts, int *fd_out) {
  uint64_t now = np__now_ms(), delay = 1;
  uint64_t deadline =
      opts->timeout_ms < 0 ? UINT64_MAX : now + (uint64_t)opts->timeout_ms;

  for (;;) {
    int64_t wait_ms = 0;
    int err;

    if (opts->flags & NP_OPT_WAIT_BUSY)
      wait_ms = deadline == UINT64_MAX ? -1 : (int64_t)(deadline - now);
    err = try_connect(addr, opts->flags, wait_ms, fd_out);
    if (!(err == NP_ENOENT && (opts->flags & NP_OPT_WAIT_ABSENT)) &&
        !(err == NP_EBUSY && (opts->flags & NP_OPT_WAIT_BUSY)))
      return err;
    now = np__now_ms();
    if (now >= deadline)
      return NP_ETIMEDOUT;
    if (err == NP_ENOENT) {
      sleep_ms(deadline - now < delay ? deadline - now : delay);
      if (delay < WAIT_MAX_MS)
        delay *= 2;
      now = np__now_ms();
    }
  }
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

int np__pipe_connect(np_poll *poll, const struct np__address *addr,
                     const struct np__opts *opts, uint64_t token,
                     uint32_t interest, np_stream **out) {
  int fd = -1, err = connect_fd(addr, opts, &fd);

  if (err == 0 && (err = vet_server(fd, opts->flags)) != 0)
    close(fd);
  if (err != 0)
    return err;
  err = np__fd_stream_new(poll, fd, stream_flags(opts->flags),
                          opts->write_limit, token, interest, out);
  if (err != 0)
    close(fd);
  return err;
}
