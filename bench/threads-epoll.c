/*
 * The raw-epoll echo server of bench-threads (Linux): AF_UNIX stream
 * sockets, one epoll set, N threads in epoll_wait, the listener and every
 * socket registered with EPOLLONESHOT and re-armed with EPOLL_CTL_MOD by
 * the thread that handled the report.  Also the POSIX side of the
 * wineserver figure, which has no wineserver to measure.
 */
#define _GNU_SOURCE /* accept4 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "threads.h"

struct conn {
  int fd;
  size_t fill;
  unsigned char buf[TB_MSG];
};

struct server {
  struct tb_threads th;
  int ep;
  int lfd;
  int nconns; /* slots handed out (atomic) */
  struct conn conns[TB_CONNS * 2];
};

static int fail(const char *what) {
  fprintf(stderr, "%s: raw-epoll: %s: %s\n", bh_cfg.argv0, what,
          strerror(errno));
  return -1;
}

/* (Re-)arms fd for one report of readability with data ptr. */
static int arm(struct server *sv, int op, int fd, void *ptr) {
  struct epoll_event ev;

  memset(&ev, 0, sizeof(ev));
  ev.events = EPOLLIN | EPOLLONESHOT;
  ev.data.ptr = ptr;
  return epoll_ctl(sv->ep, op, fd, &ev) == 0 ? 0 : fail("epoll_ctl");
}

static int on_listener(struct server *sv) {
  int fd, i;

  while ((fd = accept4(sv->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >=
         0) {
    if ((i = bh_add(&sv->nconns, 1) - 1) >= TB_CONNS * 2) {
      close(fd);
      errno = EMFILE;
      return fail("too many connections");
    }
    sv->conns[i].fd = fd;
    if (arm(sv, EPOLL_CTL_ADD, fd, &sv->conns[i]) != 0)
      return -1;
  }
  if (errno != EAGAIN)
    return fail("accept4");
  return arm(sv, EPOLL_CTL_MOD, sv->lfd, NULL);
}

/* Closes c after a read or write returned n (errno set when n < 0);
 * closing also removes it from the set, so no report can follow.  The
 * client closes every socket when its interval ends: the end, a broken
 * pipe and a reset are that, not errors.  Returns 0 or -1. */
static int conn_end(struct conn *c, const char *what, ssize_t n) {
  int bad = n < 0 && errno != EPIPE && errno != ECONNRESET;

  if (bad)
    fail(what);
  close(c->fd);
  c->fd = -1;
  return bad ? -1 : 0;
}

static int on_conn(struct server *sv, struct conn *c) {
  ssize_t n;

  for (;;) {
    n = read(c->fd, c->buf + c->fill, TB_MSG - c->fill);
    if (n < 0 && errno == EAGAIN)
      break;
    if (n <= 0)
      return conn_end(c, "read", n);
    c->fill += (size_t)n;
    if (c->fill < TB_MSG)
      continue;
    c->fill = 0;
    tb_work();
    n = write(c->fd, c->buf, TB_MSG);
    if (n < 0)
      return conn_end(c, "write", n);
    /* 64 bytes into a socket whose peer read the last echo always fit. */
    if (n != TB_MSG) {
      errno = EIO;
      return fail("short write");
    }
    bh_add(&sv->th.echoes, 1);
  }
  return arm(sv, EPOLL_CTL_MOD, c->fd, c);
}

static void serve(void *arg) {
  struct server *sv = arg;
  struct epoll_event ev[TB_BATCH];
  int i, n, rc;

  while (!tb_stopping(&sv->th)) {
    n = epoll_wait(sv->ep, ev, TB_BATCH, TB_TICK_MS);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      fail("epoll_wait");
      bh_add(&sv->th.errors, 1);
      return;
    }
    for (i = 0; i < n; i++) {
      rc = ev[i].data.ptr == NULL ? on_listener(sv)
                                  : on_conn(sv, ev[i].data.ptr);
      if (rc != 0)
        bh_add(&sv->th.errors, 1);
    }
  }
}

/* Creates the listening socket at path and registers it.  Returns 0 or
 * -1. */
static int listen_at(struct server *sv, const char *path) {
  struct sockaddr_un sa;

  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof(sa.sun_path)) {
    errno = ENAMETOOLONG;
    return fail(path);
  }
  strcpy(sa.sun_path, path);
  sv->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (sv->lfd < 0)
    return fail("socket");
  if (bind(sv->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
    return fail("bind");
  if (listen(sv->lfd, TB_CONNS) < 0)
    return fail("listen");
  return arm(sv, EPOLL_CTL_ADD, sv->lfd, NULL);
}

static void *start(const char *name, int nthreads, char *addr, size_t len) {
  struct server *sv = calloc(1, sizeof(*sv));
  char path[200];

  if (sv == NULL)
    return NULL;
  sv->lfd = -1;
  snprintf(path, sizeof(path), "%s/%s", bh_private_dir(), name);
  snprintf(addr, len, "unix:%s", path);
  if ((sv->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
      listen_at(sv, path) != 0) {
    if (sv->ep < 0)
      fail("epoll_create1");
    if (sv->lfd >= 0)
      close(sv->lfd);
    if (sv->ep >= 0)
      close(sv->ep);
    free(sv);
    return NULL;
  }
  tb_threads_start(&sv->th, nthreads, serve, sv);
  return sv;
}

static int stop(void *server, int *echoes) {
  struct server *sv = server;
  int i, rc;

  rc = tb_threads_stop(&sv->th, echoes);
  for (i = 0; i < sv->nconns && i < TB_CONNS * 2; i++)
    if (sv->conns[i].fd >= 0)
      close(sv->conns[i].fd);
  close(sv->lfd);
  close(sv->ep);
  free(sv);
  return rc;
}

const struct tb_family tb_raw = {"raw-epoll", start, stop};

double tb_wineserver_cpu(void) { return bh_nan(); }
