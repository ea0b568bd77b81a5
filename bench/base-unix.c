/*
 * The raw Linux baseline ("raw-epoll"): AF_UNIX stream sockets (TCP
 * loopback for the TCP cases), non-blocking read/write until EAGAIN and
 * an edge-triggered epoll set per thread, registered only for what each
 * role needs.  This is the ceiling any readiness layer over AF_UNIX can
 * reach.  The same protocol as bench-pipe.c.
 */
#define _GNU_SOURCE /* accept4 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base-unix.h"

#define WAIT_MS 50

int bu_fail(const char *what) {
  fprintf(stderr, "raw-epoll: %s: %s\n", what, strerror(errno));
  return -1;
}

/* ---- ends and pairs ----------------------------------------------------- */

int bu_end_open(struct bu_end *e, int fd, uint32_t events) {
  struct epoll_event ev = {.events = events | EPOLLET, .data.u64 = 1};
  struct epoll_event wk = {.events = EPOLLIN, .data.u64 = 0};

  e->fd = fd;
  e->ep = epoll_create1(EPOLL_CLOEXEC);
  e->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (e->ep < 0 || e->wake < 0 ||
      epoll_ctl(e->ep, EPOLL_CTL_ADD, fd, &ev) < 0 ||
      epoll_ctl(e->ep, EPOLL_CTL_ADD, e->wake, &wk) < 0)
    return bu_fail("epoll");
  return 0;
}

void bu_end_close(struct bu_end *e) {
  if (e->fd >= 0)
    close(e->fd);
  if (e->ep >= 0)
    close(e->ep);
  if (e->wake >= 0)
    close(e->wake);
  e->fd = e->ep = e->wake = -1;
}

int bu_end_wait(struct bu_end *e) {
  struct epoll_event ev[4];

  if (epoll_wait(e->ep, ev, 4, WAIT_MS) < 0 && errno != EINTR)
    return bu_fail("epoll_wait");
  return 0;
}

void bu_end_wake(struct bu_end *e) {
  uint64_t one = 1;

  if (write(e->wake, &one, sizeof(one)) < 0 && errno != EAGAIN)
    bu_fail("eventfd");
}

static int set_nodelay(int fd) {
  int one = 1;

  return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* A connected TCP pair on 127.0.0.1, both non-blocking, no Nagle. */
static int tcp_pair(int fds[2]) {
  struct sockaddr_in a;
  socklen_t alen = sizeof(a);
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  fds[0] = fds[1] = -1;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 ||
      listen(l, BENCH_BACKLOG) < 0 ||
      getsockname(l, (struct sockaddr *)&a, &alen) < 0 ||
      (fds[1] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
      connect(fds[1], (struct sockaddr *)&a, sizeof(a)) < 0 ||
      (fds[0] = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0 ||
      set_nodelay(fds[0]) < 0 || set_nodelay(fds[1]) < 0) {
    int err = bu_fail("tcp pair");

    if (l >= 0)
      close(l);
    return err;
  }
  close(l);
  /* Connected blocking, so the connect needs no poll; now non-blocking. */
  if (fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK) < 0)
    return bu_fail("fcntl");
  return 0;
}

int bu_pair(int tcp, int fds[2]) {
  if (tcp)
    return tcp_pair(fds);
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) <
      0)
    return bu_fail("socketpair");
  return 0;
}

/* ---- bulk --------------------------------------------------------------- */

struct pump {
  struct bu_end e;
  struct bu_end *peer;
  struct bench_ctl *ctl;
  int send, recv;
  const char *wbuf;
  size_t wsize, woff;
  char *rbuf;
  size_t rlen;
  double rbytes, rate;
  int recorded, err;
};

static void pump_fail(struct pump *p) {
  if (bh_load(&p->ctl->stop))
    return;
  p->err = -1;
  bh_store(&p->ctl->stop, 1);
  bu_end_wake(p->peer);
}

/* Writes until EAGAIN (or a burst); returns non-zero if bytes moved. */
static int pump_write(struct pump *p) {
  int i, moved = 0;

  for (i = 0; i < 16; i++) {
    ssize_t n =
        send(p->e.fd, p->wbuf + p->woff, p->wsize - p->woff, MSG_NOSIGNAL);

    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR && !bh_load(&p->ctl->stop)) {
        bu_fail("send");
        pump_fail(p);
      }
      break;
    }
    p->woff += (size_t)n;
    if (p->woff == p->wsize)
      p->woff = 0;
    moved = 1;
  }
  return moved;
}

static int pump_read(struct pump *p) {
  int i, moved = 0;

  for (i = 0; i < 16; i++) {
    ssize_t n = read(p->e.fd, p->rbuf, p->rlen);

    if (n <= 0) {
      if ((n == 0 || (errno != EAGAIN && errno != EINTR)) &&
          !bh_load(&p->ctl->stop)) {
        fprintf(stderr, "raw-epoll: read: early end\n");
        pump_fail(p);
      }
      break;
    }
    p->rbytes += (double)n;
    moved = 1;
  }
  return moved;
}

static void pump_run(struct pump *p) {
  if (bh_wait_flag(&p->ctl->go, BENCH_SETUP_S) < 0) {
    pump_fail(p);
    return;
  }
  while (!bh_load(&p->ctl->stop)) {
    int wrote = p->send && pump_write(p);
    int got = p->recv && pump_read(p);
    double now;

    if (p->recv && !p->recorded && (now = bh_now()) >= p->ctl->until) {
      p->rate = p->rbytes / (now - p->ctl->t0);
      p->recorded = 1;
      if (bench_ctl_record(p->ctl))
        bu_end_wake(p->peer);
    }
    if (!wrote && !got && !bh_load(&p->ctl->stop) && bu_end_wait(&p->e) < 0)
      pump_fail(p);
  }
}

static void pump_thread(void *arg) { pump_run(arg); }

static int run_bulk(const struct bench_work *w, struct bench_result *r) {
  int duplex = w->kind == BENCH_BULK2;
  uint32_t both = EPOLLIN | EPOLLOUT;
  struct bench_ctl ctl = {0, 0, duplex ? 2 : 1, 0, 0, 0};
  size_t rlen = bench_read_len(w);
  struct pump srv, cli;
  char *bufs = malloc(w->size + 2 * rlen);
  bh_thread *t;
  int fds[2];

  memset(&srv, 0, sizeof(srv));
  memset(&cli, 0, sizeof(cli));
  srv.e.fd = srv.e.ep = srv.e.wake = cli.e.fd = cli.e.ep = cli.e.wake = -1;
  if (bufs == NULL || bu_pair(w->tcp, fds) < 0 ||
      bu_end_open(&srv.e, fds[0], duplex ? both : EPOLLIN) < 0 ||
      bu_end_open(&cli.e, fds[1], duplex ? both : EPOLLOUT) < 0) {
    bu_end_close(&srv.e);
    bu_end_close(&cli.e);
    free(bufs);
    return -1;
  }
  bench_fill(bufs, w->size);
  srv.ctl = cli.ctl = &ctl;
  srv.peer = &cli.e;
  cli.peer = &srv.e;
  srv.wbuf = cli.wbuf = bufs;
  srv.wsize = cli.wsize = w->size;
  srv.rbuf = bufs + w->size;
  cli.rbuf = bufs + w->size + rlen;
  srv.rlen = cli.rlen = rlen;
  srv.recv = cli.send = 1;
  srv.send = cli.recv = duplex;
  t = bh_thread_start(pump_thread, &cli);
  bench_ctl_start(&ctl, w->seconds);
  pump_run(&srv);
  bh_thread_join(t);
  bu_end_close(&srv.e);
  bu_end_close(&cli.e);
  free(bufs);
  r->v[0] = srv.rate + (duplex ? cli.rate : 0);
  return srv.err != 0 || cli.err != 0 ? -1 : 0;
}

/* ---- the family --------------------------------------------------------- */

static int raw_supports(const struct bench_work *w) {
  (void)w;
  return 1;
}

static int raw_run(const struct bench_work *w, struct bench_result *r) {
  switch (w->kind) {
  case BENCH_BULK:
  case BENCH_BULK2:
    return run_bulk(w, r);
  case BENCH_PING:
    return bu_run_ping(w, r);
  case BENCH_CONNECT:
  case BENCH_CONNRR:
    return bu_run_connect(w, r);
  case BENCH_SCALE:
    return bu_run_scale(w, r);
  }
  return -1;
}

/* Issue 7's Linux targets: bulk and ping-pong at 0.95x of this loop. */
static int raw_target(const struct bench_work *w, double *min) {
  *min = 0.95;
  return !w->tcp && (w->kind == BENCH_BULK || w->kind == BENCH_BULK2 ||
                     w->kind == BENCH_PING);
}

static const struct bench_family raw_epoll = {"raw-epoll", raw_supports,
                                              raw_run, raw_target};

const char bench_suite_name[] = "Linux: npipe vs raw AF_UNIX + epoll";
const struct bench_family *const bench_baselines[] = {&raw_epoll};
const int bench_nbaselines = 1;
