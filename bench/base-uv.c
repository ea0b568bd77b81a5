/*
 * The libuv baseline ("libuv"): uv_pipe_t over a connected AF_UNIX pair,
 * one uv_loop_t per side on its own thread.  The sender issues the next
 * uv_write from the write callback (one in flight); the receiver's
 * alloc_cb hands out the same read buffer size as every other family;
 * the ping-pong server echoes with a fresh uv_write per read.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

#include "bench.h"

struct side {
  uv_loop_t loop;
  uv_pipe_t pipe;
  uv_async_t stop_async;
  uv_write_t wreq;
  struct side *peer;
  struct bench_ctl *ctl;
  const struct bench_work *w;
  int send, recv, echo, ping; /* roles */
  char *wbuf, *rbuf;
  size_t rlen;
  double rbytes, rate, count;
  size_t got; /* ping: bytes of the current reply */
  int fd;
  int *exited; /* sides whose loop has ended */
  int ready, recorded, closing, finished, err;
};

struct echo_req {
  uv_write_t req;
  char data[];
};

static void close_all(struct side *s) {
  if (s->closing)
    return;
  s->closing = 1;
  uv_close((uv_handle_t *)&s->pipe, NULL);
  uv_close((uv_handle_t *)&s->stop_async, NULL);
}

/* Ends the run for both sides (err: it failed).  Waking the peer is safe
 * at any time: no loop is closed before both have ended. */
static void finish(struct side *s, int err) {
  if (s->finished)
    return;
  s->finished = 1;
  if (err && !bh_load(&s->ctl->stop)) {
    fprintf(stderr, "libuv: %s\n", uv_strerror(err));
    s->err = -1;
  }
  bh_store(&s->ctl->stop, 1);
  uv_async_send(&s->peer->stop_async);
  close_all(s);
}

static void on_stop(uv_async_t *a) {
  struct side *s = a->data;

  if (bh_load(&s->ctl->stop))
    close_all(s);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  struct side *s = h->data;

  (void)hint;
  *buf = uv_buf_init(s->rbuf, (unsigned)s->rlen);
}

static void write_next(struct side *s);

static void on_write(uv_write_t *req, int status) {
  struct side *s = req->data;

  if (status < 0 || bh_load(&s->ctl->stop)) {
    if (status < 0 && status != UV_ECANCELED)
      finish(s, status);
    return;
  }
  if (s->send)
    write_next(s);
}

static void write_next(struct side *s) {
  uv_buf_t b = uv_buf_init(s->wbuf, (unsigned)s->w->size);
  int err;

  s->wreq.data = s;
  err = uv_write(&s->wreq, (uv_stream_t *)&s->pipe, &b, 1, on_write);
  if (err < 0)
    finish(s, err);
}

static void on_echo_written(uv_write_t *req, int status) {
  (void)status;
  free(req);
}

static void echo_back(struct side *s, const char *data, size_t n) {
  struct echo_req *e = malloc(sizeof(*e) + n);
  uv_buf_t b;
  int err;

  if (e == NULL) {
    finish(s, UV_ENOMEM);
    return;
  }
  memcpy(e->data, data, n);
  b = uv_buf_init(e->data, (unsigned)n);
  err = uv_write(&e->req, (uv_stream_t *)&s->pipe, &b, 1, on_echo_written);
  if (err < 0) {
    free(e);
    finish(s, err);
  }
}

/* Ping client: a whole reply came back. */
static void on_reply(struct side *s) {
  double now = bh_now();

  s->count++;
  s->got = 0;
  if (now < s->ctl->until) {
    write_next(s);
    return;
  }
  s->rate = s->count / (now - s->ctl->t0);
  s->recorded = 1;
  finish(s, 0);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  struct side *s = st->data;
  double now;

  if (n < 0) {
    finish(s, bh_load(&s->ctl->stop) ? 0 : (int)n);
    return;
  }
  if (s->echo) {
    echo_back(s, buf->base, (size_t)n);
    return;
  }
  if (s->ping) {
    if ((s->got += (size_t)n) >= s->w->size)
      on_reply(s);
    return;
  }
  s->rbytes += (double)n;
  if (!s->recorded && (now = bh_now()) >= s->ctl->until) {
    s->rate = s->rbytes / (now - s->ctl->t0);
    s->recorded = 1;
    if (bench_ctl_record(s->ctl))
      finish(s, 0);
  }
}

static void side_thread(void *arg) {
  struct side *s = arg;
  int err;

  uv_loop_init(&s->loop);
  s->pipe.data = s->stop_async.data = s;
  uv_async_init(&s->loop, &s->stop_async, on_stop);
  uv_pipe_init(&s->loop, &s->pipe, 0);
  err = uv_pipe_open(&s->pipe, s->fd);
  if (err == 0 && (s->recv || s->echo || s->ping))
    err = uv_read_start((uv_stream_t *)&s->pipe, on_alloc, on_read);
  bh_store(&s->ready, 1);
  /* Nothing may wake the peer before its async handle exists. */
  if (err == 0 && bh_wait_flag(&s->peer->ready, BENCH_SETUP_S) < 0)
    err = UV_ETIMEDOUT;
  if (err != 0) {
    finish(s, err);
  } else if (s->send || s->ping) {
    if (bh_wait_flag(&s->ctl->go, BENCH_SETUP_S) < 0)
      finish(s, UV_ETIMEDOUT);
    else
      write_next(s);
  }
  uv_run(&s->loop, UV_RUN_DEFAULT);
  bh_add(s->exited, 1);
  while (bh_load(s->exited) < 2)
    bh_sleep_ms(1);
  uv_loop_close(&s->loop);
}

static void side_init(struct side *s, struct side *peer, int fd,
                      struct bench_ctl *ctl, const struct bench_work *w,
                      char *bufs, int *exited) {
  memset(s, 0, sizeof(*s));
  s->peer = peer;
  s->ctl = ctl;
  s->w = w;
  s->wbuf = bufs;
  s->rlen = bench_read_len(w);
  s->fd = fd;
  s->exited = exited;
}

static int uv_family_run(const struct bench_work *w, struct bench_result *r) {
  int duplex = w->kind == BENCH_BULK2, ping = w->kind == BENCH_PING;
  struct bench_ctl ctl = {0, 0, duplex ? 2 : 1, 0, 0, 0};
  size_t rlen = bench_read_len(w);
  char *bufs = malloc(w->size + 2 * rlen);
  struct side srv, cli;
  bh_thread *ts, *tc;
  int fds[2], exited = 0;

  if (bufs == NULL || socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0) {
    fprintf(stderr, "libuv: socketpair failed\n");
    free(bufs);
    return -1;
  }
  bench_fill(bufs, w->size);
  side_init(&srv, &cli, fds[0], &ctl, w, bufs, &exited);
  side_init(&cli, &srv, fds[1], &ctl, w, bufs, &exited);
  srv.rbuf = bufs + w->size;
  cli.rbuf = bufs + w->size + rlen;
  srv.recv = cli.send = !ping;
  srv.send = cli.recv = duplex;
  srv.echo = cli.ping = ping;
  ts = bh_thread_start(side_thread, &srv);
  tc = bh_thread_start(side_thread, &cli);
  if (bh_wait_flag(&srv.ready, BENCH_SETUP_S) == 0 &&
      bh_wait_flag(&cli.ready, BENCH_SETUP_S) == 0)
    bench_ctl_start(&ctl, w->seconds);
  bh_thread_join(ts);
  bh_thread_join(tc);
  free(bufs);
  r->v[0] = ping ? cli.rate : srv.rate + (duplex ? cli.rate : 0);
  return srv.err != 0 || cli.err != 0 || !bh_load(&ctl.go) ? -1 : 0;
}

static int uv_family_supports(const struct bench_work *w) {
  return !w->tcp && (w->kind == BENCH_BULK || w->kind == BENCH_BULK2 ||
                     w->kind == BENCH_PING);
}

/* Issue 7: npipe's ping-pong at 1.2x libuv's on Linux. */
static int uv_family_target(const struct bench_work *w, double *min) {
  *min = 1.2;
  return w->kind == BENCH_PING;
}

static const struct bench_family libuv_family = {
    "libuv", uv_family_supports, uv_family_run, uv_family_target};

const char bench_suite_name[] = "Linux: npipe vs libuv uv_pipe_t";
const struct bench_family *const bench_baselines[] = {&libuv_family};
const int bench_nbaselines = 1;
