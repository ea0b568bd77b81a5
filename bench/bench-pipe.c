/*
 * The npipe family: bulk throughput and ping-pong over a pipe or TCP
 * loopback, through the public API only, as an application would write
 * them: one poller per thread, level-triggered interest, read and write
 * until NP_EAGAIN, then wait.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench-pipe.h"

/* Reads or writes in a row before the loop looks at the clock and the
 * other direction again. */
#define BURST 16

int npb_listen(np_poll *poll, int tcp, uint64_t token, char *addr, size_t len,
               np_listener **out) {
  np_options o;
  char name[64];
  int err, n;

  if (tcp) {
    snprintf(addr, len, "tcp:127.0.0.1:0");
  } else {
    bh_unique_name(name, sizeof(name), "np");
    snprintf(addr, len, "pipe:%s", name);
  }
  memset(&o, 0, sizeof(o));
  o.backlog = BENCH_BACKLOG;
  err = np_listen(poll, addr, &o, token, out);
  if (err != 0 || !tcp)
    return err;
  /* Port 0 picked a free port: the client needs the real one. */
  n = np_listener_address(*out, addr, len);
  if (n < 0) {
    np_listener_close(*out);
    *out = NULL;
    return n;
  }
  return 0;
}

void npb_connect_opts(np_options *o) {
  memset(o, 0, sizeof(*o));
  o->flags = NP_OPT_WAIT_BUSY;
  o->timeout_ms = (int)(BENCH_SETUP_S * 1000);
}

int npb_wait(struct npb_end *e, uint32_t want) {
  np_event ev[8];
  int n;

  if (want != e->interest) {
    int err = np_stream_set_interest(e->s, e->token, want);

    if (err != 0)
      return err;
    e->interest = want;
  }
  n = np_poll_wait(e->poll, ev, 8, NPB_WAIT_MS);
  return n < 0 ? n : 0;
}

int bench_npipe_probe(int tcp) {
  np_listener *l = NULL;
  np_poll *poll;
  char addr[300];
  int err = np_poll_new(&poll);

  if (err != 0)
    return err;
  err = npb_listen(poll, tcp, TOK_LISTENER, addr, sizeof(addr), &l);
  np_listener_close(l);
  np_poll_free(poll);
  return err;
}

/* ---- a connected pair --------------------------------------------------- */

struct npb_pair {
  struct npb_end srv, cli;
};

/* Waits for a TCP client's connect to finish.  Returns 0 or NP_E*. */
static int wait_connected(struct npb_end *c, double until) {
  np_event ev[8];
  int i, n;

  for (;;) {
    n = np_poll_wait(c->poll, ev, 8, NPB_WAIT_MS);
    if (n < 0)
      return n;
    for (i = 0; i < n; i++)
      if (ev[i].token == c->token && ev[i].events != 0)
        return np_stream_error(c->s);
    if (bh_now() > until)
      return NP_ETIMEDOUT;
  }
}

/* Accepts the one connection that l is getting.  Returns 0 or NP_E*. */
static int accept_one(np_listener *l, struct npb_pair *p, double until) {
  np_event ev[8];
  int err;

  for (;;) {
    err = np_accept(l, TOK_SERVER, NP_READABLE, &p->srv.s);
    if (err != NP_EAGAIN)
      return err;
    if (bh_now() > until)
      return NP_ETIMEDOUT;
    err = np_poll_wait(p->srv.poll, ev, 8, 5);
    if (err < 0)
      return err;
    /* The client's poller may have work too (a TCP connect). */
    err = np_poll_wait(p->cli.poll, ev, 8, 0);
    if (err < 0)
      return err;
  }
}

static void pair_close(struct npb_pair *p) {
  np_close(p->srv.s);
  np_close(p->cli.s);
  np_poll_free(p->srv.poll);
  np_poll_free(p->cli.poll);
}

/* Connects a client to a fresh server: srv reads (NP_READABLE), cli is
 * registered NP_WRITABLE.  Returns 0 or NP_E* with nothing left open. */
static int pair_open(struct npb_pair *p, int tcp) {
  double until = bh_now() + BENCH_SETUP_S;
  np_listener *l = NULL;
  np_options o;
  char addr[300];
  int err;

  memset(p, 0, sizeof(*p));
  p->srv.token = TOK_SERVER;
  p->srv.interest = NP_READABLE;
  p->cli.token = TOK_CLIENT;
  p->cli.interest = NP_WRITABLE;
  npb_connect_opts(&o);
  if ((err = np_poll_new(&p->srv.poll)) != 0 ||
      (err = np_poll_new(&p->cli.poll)) != 0 ||
      (err = npb_listen(p->srv.poll, tcp, TOK_LISTENER, addr, sizeof(addr),
                        &l)) != 0 ||
      (err = np_connect(p->cli.poll, addr, tcp ? NULL : &o, TOK_CLIENT,
                        NP_WRITABLE, &p->cli.s)) != 0 ||
      (err = accept_one(l, p, until)) != 0 ||
      (tcp && (err = wait_connected(&p->cli, until)) != 0)) {
    np_listener_close(l);
    pair_close(p);
    return err;
  }
  /* The listener's spare instances would only add noise. */
  np_listener_close(l);
  return 0;
}

/* ---- bulk --------------------------------------------------------------- */

struct pump {
  struct npb_end e;
  struct bench_ctl *ctl;
  np_poll *peer_poll; /* woken when this side ends the run */
  int send, recv;     /* roles; a receiver records a figure */
  const char *wbuf;
  size_t wsize, woff;
  char *rbuf;
  size_t rlen;
  double rbytes, rate;
  int recorded, err;
};

/* Ends the run early with err (unless it is already over). */
static void pump_fail(struct pump *p, int err) {
  if (bh_load(&p->ctl->stop))
    return;
  p->err = err;
  bh_store(&p->ctl->stop, 1);
  np_poll_wake(p->peer_poll);
}

/* Returns non-zero when at least one write was accepted. */
static int pump_write(struct pump *p) {
  int i, moved = 0;

  for (i = 0; i < BURST; i++) {
    ptrdiff_t n = np_write(p->e.s, p->wbuf + p->woff, p->wsize - p->woff);

    if (n < 0) {
      if (n != NP_EAGAIN)
        pump_fail(p, (int)n);
      break;
    }
    p->woff += (size_t)n;
    if (p->woff == p->wsize)
      p->woff = 0;
    moved = 1;
  }
  return moved;
}

/* Returns non-zero when at least one read returned bytes. */
static int pump_read(struct pump *p) {
  int i, moved = 0;

  for (i = 0; i < BURST; i++) {
    ptrdiff_t n = np_read(p->e.s, p->rbuf, p->rlen);

    if (n <= 0) {
      if (n != NP_EAGAIN)
        pump_fail(p, n == NP_EOF || n == 0 ? NP_EPIPE : (int)n);
      break;
    }
    p->rbytes += (double)n;
    moved = 1;
  }
  return moved;
}

static void pump_record(struct pump *p, double now) {
  p->rate = p->rbytes / (now - p->ctl->t0);
  p->recorded = 1;
  if (bench_ctl_record(p->ctl))
    np_poll_wake(p->peer_poll);
}

static void pump_run(struct pump *p) {
  uint32_t want = (p->send ? NP_WRITABLE : 0) | (p->recv ? NP_READABLE : 0);

  if (bh_wait_flag(&p->ctl->go, BENCH_SETUP_S) < 0) {
    pump_fail(p, NP_ETIMEDOUT);
    return;
  }
  while (!bh_load(&p->ctl->stop)) {
    int wrote = p->send && pump_write(p);
    int got = p->recv && pump_read(p);
    double now;
    int err;

    if (p->recv && !p->recorded && (now = bh_now()) >= p->ctl->until)
      pump_record(p, now);
    /* Both directions would block: now the poller has something to
     * wait for. */
    if (!wrote && !got && !bh_load(&p->ctl->stop) &&
        (err = npb_wait(&p->e, want)) != 0)
      pump_fail(p, err);
  }
}

static void pump_thread(void *arg) { pump_run(arg); }

static void pump_init(struct pump *p, struct npb_end *e, np_poll *peer,
                      struct bench_ctl *ctl, const struct bench_work *w) {
  memset(p, 0, sizeof(*p));
  p->e = *e;
  p->ctl = ctl;
  p->peer_poll = peer;
  p->wsize = w->size;
  p->rlen = bench_read_len(w);
}

static int run_bulk(const struct bench_work *w, struct bench_result *r) {
  int duplex = w->kind == BENCH_BULK2;
  struct bench_ctl ctl = {0, 0, duplex ? 2 : 1, 0, 0, 0};
  struct npb_pair pair;
  struct pump srv, cli;
  bh_thread *t;
  char *wbuf, *rbufs;
  int err = 0;

  wbuf = malloc(w->size);
  rbufs = malloc(2 * bench_read_len(w));
  if (wbuf == NULL || rbufs == NULL || (err = pair_open(&pair, w->tcp))) {
    free(wbuf);
    free(rbufs);
    return wbuf == NULL || rbufs == NULL ? NP_ENOMEM : err;
  }
  bench_fill(wbuf, w->size);
  pump_init(&srv, &pair.srv, pair.cli.poll, &ctl, w);
  pump_init(&cli, &pair.cli, pair.srv.poll, &ctl, w);
  srv.recv = cli.send = 1;
  srv.send = cli.recv = duplex;
  srv.wbuf = cli.wbuf = wbuf;
  srv.rbuf = rbufs;
  cli.rbuf = rbufs + bench_read_len(w);
  t = bh_thread_start(pump_thread, &cli);
  bench_ctl_start(&ctl, w->seconds);
  pump_run(&srv);
  bh_thread_join(t);
  pair_close(&pair);
  free(wbuf);
  free(rbufs);
  err = srv.err != 0 ? srv.err : cli.err;
  r->v[0] = srv.rate + (duplex ? cli.rate : 0);
  return err;
}

/* ---- ping-pong ---------------------------------------------------------- */

struct echo {
  struct npb_end e;
  struct bench_ctl *ctl;
  char *buf;
  size_t len;
  int err;
};

/* The server: writes back whatever it reads until the client stops. */
static void echo_thread(void *arg) {
  struct echo *x = arg;
  size_t have = 0, off = 0;

  bh_store(&x->ctl->go, 1);
  while (!bh_load(&x->ctl->stop) && x->err == 0) {
    ptrdiff_t n = have > off ? np_write(x->e.s, x->buf + off, have - off)
                             : np_read(x->e.s, x->buf, x->len);

    if (n > 0 && have > off) {
      off += (size_t)n;
    } else if (n > 0) {
      have = (size_t)n;
      off = 0;
    } else if (n == NP_EAGAIN) {
      x->err = npb_wait(&x->e, have > off ? NP_WRITABLE : NP_READABLE);
    } else if (!bh_load(&x->ctl->stop)) {
      x->err = n == NP_EOF ? NP_EPIPE : (int)n;
    }
  }
}

/* Waits for want, or NP_ETIMEDOUT once the clock passes until. */
static int wait_until(struct npb_end *e, uint32_t want, double until) {
  return bh_now() > until ? NP_ETIMEDOUT : npb_wait(e, want);
}

/* Writes all of buf, waiting when the stream is full.  Returns 0 or
 * NP_E*. */
static int write_all(struct npb_end *e, const char *buf, size_t len,
                     double until) {
  size_t off = 0;
  int err = 0;

  while (off < len && err == 0) {
    ptrdiff_t n = np_write(e->s, buf + off, len - off);

    if (n > 0)
      off += (size_t)n;
    else
      err = n == NP_EAGAIN ? wait_until(e, NP_READABLE | NP_WRITABLE, until)
                           : (int)n;
  }
  return err;
}

/* Reads until len bytes came.  Returns 0 or NP_E*. */
static int read_all(struct npb_end *e, char *buf, size_t cap, size_t len,
                    double until) {
  size_t got = 0;
  int err = 0;

  while (got < len && err == 0) {
    ptrdiff_t n = np_read(e->s, buf, cap);

    if (n > 0)
      got += (size_t)n;
    else if (n == NP_EAGAIN)
      err = wait_until(e, NP_READABLE, until);
    else
      err = n == NP_EOF || n == 0 ? NP_EPIPE : (int)n;
  }
  return err;
}

static int ping_loop(struct npb_end *c, struct bench_ctl *ctl,
                     const struct bench_work *w, char *msg, char *buf,
                     double *rate) {
  double now = 0, count = 0;
  int err = 0;

  if (bh_wait_flag(&ctl->go, BENCH_SETUP_S) < 0)
    return NP_ETIMEDOUT;
  bench_ctl_start(ctl, w->seconds);
  do {
    /* One round trip may not take longer than a set-up. */
    double until = bh_now() + BENCH_SETUP_S;

    if ((err = write_all(c, msg, w->size, until)) != 0 ||
        (err = read_all(c, buf, bench_read_len(w), w->size, until)) != 0)
      break;
    count++;
  } while ((now = bh_now()) < ctl->until);
  if (err == 0)
    *rate = count / (now - ctl->t0);
  return err;
}

static int run_ping(const struct bench_work *w, struct bench_result *r) {
  struct bench_ctl ctl = {0, 0, 1, 0, 0, 0};
  size_t rlen = bench_read_len(w);
  struct npb_pair pair;
  struct echo x;
  bh_thread *t;
  char *bufs;
  int err;

  bufs = malloc(w->size + 2 * rlen);
  if (bufs == NULL)
    return NP_ENOMEM;
  if ((err = pair_open(&pair, w->tcp)) != 0) {
    free(bufs);
    return err;
  }
  bench_fill(bufs, w->size);
  memset(&x, 0, sizeof(x));
  x.e = pair.srv;
  x.ctl = &ctl;
  x.buf = bufs + w->size + rlen;
  x.len = rlen;
  t = bh_thread_start(echo_thread, &x);
  err = ping_loop(&pair.cli, &ctl, w, bufs, bufs + w->size, &r->v[0]);
  bh_store(&ctl.stop, 1);
  np_poll_wake(pair.srv.poll);
  bh_thread_join(t);
  pair_close(&pair);
  free(bufs);
  return err != 0 ? err : x.err;
}

/* ---- the family --------------------------------------------------------- */

static int npipe_supports(const struct bench_work *w) {
  (void)w;
  return 1;
}

static int npipe_run(const struct bench_work *w, struct bench_result *r) {
  switch (w->kind) {
  case BENCH_BULK:
  case BENCH_BULK2:
    return run_bulk(w, r);
  case BENCH_PING:
    return run_ping(w, r);
  case BENCH_CONNECT:
  case BENCH_CONNRR:
    return npb_run_connect(w, r);
  case BENCH_SCALE:
    return npb_run_scale(w, r);
  }
  return NP_EINVAL;
}

const struct bench_family bench_npipe = {"npipe", npipe_supports, npipe_run,
                                         NULL};
