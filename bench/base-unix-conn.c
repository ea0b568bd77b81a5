/*
 * The raw Linux baseline, continued: ping-pong, connection rates over a
 * path-bound AF_UNIX socket (blocking client, epoll server) and the scale
 * case (socket pairs in one epoll set).
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

#include "base-unix.h"

#define MAX_FD 65536

/* ---- ping-pong ---------------------------------------------------------- */

struct echo {
  struct bu_end e;
  struct bench_ctl *ctl;
  char *buf;
  size_t len;
  int err;
};

/* Sends all of buf on a non-blocking socket.  Returns 0 or -1. */
static int send_all(struct bu_end *e, const char *buf, size_t len,
                    const int *stop) {
  size_t off = 0;

  while (off < len) {
    ssize_t n = send(e->fd, buf + off, len - off, MSG_NOSIGNAL);

    if (n > 0)
      off += (size_t)n;
    else if (errno != EAGAIN && errno != EINTR)
      return bh_load(stop) ? -1 : bu_fail("send");
    else if (bu_end_wait(e) < 0 || bh_load(stop))
      return -1;
  }
  return 0;
}

static void echo_thread(void *arg) {
  struct echo *x = arg;

  bh_store(&x->ctl->go, 1);
  while (!bh_load(&x->ctl->stop)) {
    ssize_t n = read(x->e.fd, x->buf, x->len);

    if (n > 0) {
      if (send_all(&x->e, x->buf, (size_t)n, &x->ctl->stop) < 0)
        x->err = !bh_load(&x->ctl->stop);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (bu_end_wait(&x->e) < 0)
        x->err = 1;
    } else {
      x->err = !bh_load(&x->ctl->stop);
      break;
    }
  }
}

static int ping_loop(struct bu_end *c, struct bench_ctl *ctl,
                     const struct bench_work *w, const char *msg, char *buf,
                     double *rate) {
  size_t rlen = bench_read_len(w);
  double now = 0, count = 0;

  if (bh_wait_flag(&ctl->go, BENCH_SETUP_S) < 0)
    return -1;
  bench_ctl_start(ctl, w->seconds);
  do {
    size_t got = 0;

    double until = bh_now() + BENCH_SETUP_S;

    if (send_all(c, msg, w->size, &ctl->stop) < 0)
      return -1;
    while (got < w->size) {
      ssize_t n = read(c->fd, buf, rlen);

      if (n > 0)
        got += (size_t)n;
      else if (n == 0 || (errno != EAGAIN && errno != EINTR))
        return bu_fail("read");
      else if (bu_end_wait(c) < 0 || bh_now() > until)
        return -1;
    }
    count++;
  } while ((now = bh_now()) < ctl->until);
  *rate = count / (now - ctl->t0);
  return 0;
}

int bu_run_ping(const struct bench_work *w, struct bench_result *r) {
  struct bench_ctl ctl = {0, 0, 1, 0, 0, 0};
  size_t rlen = bench_read_len(w);
  char *bufs = malloc(w->size + 2 * rlen);
  struct bu_end c = {-1, -1, -1};
  struct echo x;
  bh_thread *t;
  int fds[2], err;

  memset(&x, 0, sizeof(x));
  x.e = c;
  if (bufs == NULL || bu_pair(w->tcp, fds) < 0 ||
      bu_end_open(&x.e, fds[0], EPOLLIN) < 0 ||
      bu_end_open(&c, fds[1], EPOLLIN) < 0) {
    bu_end_close(&x.e);
    bu_end_close(&c);
    free(bufs);
    return -1;
  }
  bench_fill(bufs, w->size);
  x.ctl = &ctl;
  x.buf = bufs + w->size + rlen;
  x.len = rlen;
  t = bh_thread_start(echo_thread, &x);
  err = ping_loop(&c, &ctl, w, bufs, bufs + w->size, &r->v[0]);
  bh_store(&ctl.stop, 1);
  bu_end_wake(&x.e);
  bh_thread_join(t);
  bu_end_close(&x.e);
  bu_end_close(&c);
  free(bufs);
  return err != 0 || x.err != 0 ? -1 : 0;
}

/* ---- connection rates --------------------------------------------------- */

struct conn_server {
  struct bu_end e; /* e.fd: the listening socket */
  struct bench_ctl *ctl;
  int reply;
  int err;
  unsigned char open[MAX_FD]; /* connections still open, by fd */
};

static void accept_all(struct conn_server *sv) {
  struct epoll_event ev = {.events = EPOLLIN};
  int c;

  while ((c = accept4(sv->e.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >=
         0) {
    if (!sv->reply || c >= MAX_FD) {
      close(c);
      continue;
    }
    ev.data.fd = c;
    if (epoll_ctl(sv->e.ep, EPOLL_CTL_ADD, c, &ev) < 0)
      sv->err = bu_fail("epoll_ctl");
    sv->open[c] = 1;
  }
  if (errno != EAGAIN && errno != EINTR)
    sv->err = bu_fail("accept4");
}

static void serve(struct conn_server *sv, int fd) {
  char buf[16];
  ssize_t n;

  while ((n = read(fd, buf, sizeof(buf))) > 0)
    if (send(fd, "y", 1, MSG_NOSIGNAL) != 1)
      sv->err = bu_fail("send");
  if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
    close(fd);
    sv->open[fd] = 0;
  }
}

static void conn_server_thread(void *arg) {
  struct conn_server *sv = arg;
  struct epoll_event ev[64];
  int i, n;

  while (!bh_load(&sv->ctl->stop) && sv->err == 0) {
    n = epoll_wait(sv->e.ep, ev, 64, 50);
    for (i = 0; i < n; i++) {
      /* The listener and the wake-up eventfd carry data.u64 1 and 0 from
       * bu_end_open; connections carry their fd, always above both. */
      if (ev[i].data.u64 == 1)
        accept_all(sv);
      else if (ev[i].data.u64 > 1)
        serve(sv, ev[i].data.fd);
    }
  }
  for (i = 0; i < MAX_FD; i++)
    if (sv->open[i])
      close(i);
}

static int client_once(const struct sockaddr_un *a, int reply) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  char b;
  int err = 0;

  if (fd < 0)
    return bu_fail("socket");
  if (connect(fd, (const struct sockaddr *)a, sizeof(*a)) < 0)
    err = bu_fail("connect");
  else if (reply &&
           (send(fd, "x", 1, MSG_NOSIGNAL) != 1 || read(fd, &b, 1) != 1))
    err = bu_fail("request");
  close(fd);
  return err;
}

int bu_run_connect(const struct bench_work *w, struct bench_result *r) {
  struct bench_ctl ctl = {0, 0, 1, 0, 0, 0};
  struct conn_server *sv = calloc(1, sizeof(*sv));
  struct sockaddr_un a;
  double now, count = 0;
  char name[64];
  bh_thread *t;
  int lfd, err = 0;

  if (sv == NULL)
    return -1;
  memset(&a, 0, sizeof(a));
  a.sun_family = AF_UNIX;
  bh_unique_name(name, sizeof(name), "raw");
  snprintf(a.sun_path, sizeof(a.sun_path), "%s/%s", bh_private_dir(), name);
  sv->ctl = &ctl;
  sv->reply = w->kind == BENCH_CONNRR;
  sv->e.ep = sv->e.wake = -1;
  lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
      listen(lfd, BENCH_BACKLOG) < 0 || bu_end_open(&sv->e, lfd, EPOLLIN)) {
    err = bu_fail("listen");
    if (lfd >= 0)
      close(lfd);
    free(sv);
    return err;
  }
  t = bh_thread_start(conn_server_thread, sv);
  bench_ctl_start(&ctl, w->seconds);
  do {
    if ((err = client_once(&a, sv->reply)) != 0)
      break;
    count++;
  } while ((now = bh_now()) < ctl.until);
  bh_store(&ctl.stop, 1);
  bu_end_wake(&sv->e);
  bh_thread_join(t);
  bu_end_close(&sv->e);
  unlink(a.sun_path);
  err = err != 0 || sv->err != 0 ? -1 : 0;
  free(sv);
  if (err == 0)
    r->v[0] = count / (now - ctl.t0);
  return err;
}

/* ---- scale -------------------------------------------------------------- */

/* Microseconds per write + epoll_wait + read (+ the EAGAIN read) on
 * pair 0 (fds[0] is read, fds[1] written), every other pair idle: the
 * same cycle as the npipe family's. */
static int wait_cycles(int ep, const int *fds, double seconds, double *us) {
  double t0 = bh_now(), now, count = 0;
  struct epoll_event ev[64];
  char buf[16];

  do {
    int n, j, seen = 0;

    if (write(fds[1], "x", 1) != 1)
      return bu_fail("write");
    while (!seen) {
      if ((n = epoll_wait(ep, ev, 64, 1000)) <= 0)
        return bu_fail("epoll_wait");
      for (j = 0; j < n; j++)
        seen |= ev[j].data.u64 == 0;
    }
    if (read(fds[0], buf, sizeof(buf)) != 1 ||
        read(fds[0], buf, sizeof(buf)) != -1)
      return bu_fail("read");
    count++;
  } while ((now = bh_now()) < t0 + seconds);
  *us = (now - t0) / count * 1e6;
  return 0;
}

static int add_pair(int ep, int *fds, int i) {
  struct epoll_event ev = {.events = EPOLLIN};
  int k;

  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                 fds + 2 * i) < 0)
    return bu_fail("socketpair");
  for (k = 0; k < 2; k++) {
    ev.data.u64 = 2 * (uint64_t)i + (uint64_t)k;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[2 * i + k], &ev) < 0)
      return bu_fail("epoll_ctl");
  }
  return 0;
}

int bu_run_scale(const struct bench_work *w, struct bench_result *r) {
  enum { FEW = 5 };
  int pairs = w->ends / 2, ep, i;
  int *fds = malloc(sizeof(int) * 2 * (size_t)pairs);
  int64_t c0, r0, c1, r1;
  double t0;

  bh_raise_nofile();
  if (fds == NULL || (ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
    return -1;
  memset(fds, 0xff, sizeof(int) * 2 * (size_t)pairs);
  for (i = 0; i < FEW; i++)
    if (add_pair(ep, fds, i) < 0)
      return -1;
  /* The first cycles warm caches up: not measured. */
  if (wait_cycles(ep, fds, w->seconds / 4, &r->v[SCALE_WAIT10]) < 0 ||
      wait_cycles(ep, fds, w->seconds, &r->v[SCALE_WAIT10]) < 0)
    return -1;
  bh_process_memory(&c0, &r0);
  t0 = bh_now();
  for (i = FEW; i < pairs; i++)
    if (add_pair(ep, fds, i) < 0)
      return -1;
  r->v[SCALE_CREATE] = (bh_now() - t0) / (pairs - FEW) * 1e6;
  bh_process_memory(&c1, &r1);
  r->v[SCALE_COMMIT] = (double)(c1 - c0) / (2.0 * (pairs - FEW));
  r->v[SCALE_RSS] = (double)(r1 - r0) / (2.0 * (pairs - FEW));
  /* A child process: the fds go with it. */
  return wait_cycles(ep, fds, w->seconds, &r->v[SCALE_WAITN]);
}
