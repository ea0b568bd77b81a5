/*
 * The npipe echo server of bench-threads: one np_poll, N threads each in
 * np_poll_wait, the listener and every stream registered with NP_ONESHOT
 * and re-armed by the thread that handled the report.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npipe.h"

#include "threads.h"

#define TOK_LISTENER 0

struct conn {
  np_stream *s;
  size_t fill;
  int closed;
  unsigned char buf[TB_MSG];
};

struct server {
  struct tb_threads th;
  np_poll *poll;
  np_listener *l;
  int nconns; /* slots handed out (atomic) */
  struct conn conns[TB_CONNS * 2];
};

static int fail(const char *what, int err) {
  fprintf(stderr, "%s: npipe: %s: %s\n", bh_cfg.argv0, what, np_strerror(err));
  return -1;
}

/* Accepts every waiting connection, then re-arms the listener. */
static int on_listener(struct server *sv) {
  uint32_t arm = NP_READABLE | NP_ONESHOT;
  np_stream *s;
  int err, i;

  for (;;) {
    /* Registered silent first: another thread may get the stream's first
     * report as soon as it is armed, and must find conn->s set. */
    err = np_accept(sv->l, 0, 0, &s);
    if (err == NP_EAGAIN)
      break;
    if (err != 0)
      return fail("np_accept", err);
    if ((i = bh_add(&sv->nconns, 1) - 1) >= TB_CONNS * 2) {
      np_close(s);
      return fail("too many connections", NP_EINVAL);
    }
    sv->conns[i].s = s;
    if ((err = np_stream_set_interest(s, (uint64_t)(i + 1), arm)) != 0)
      return fail("np_stream_set_interest", err);
  }
  err = np_listener_set_interest(sv->l, TOK_LISTENER, arm);
  return err == 0 ? 0 : fail("np_listener_set_interest", err);
}

/* Closes c after a read or write returned n.  The client closes every
 * stream when its interval ends: the end of the stream, a broken pipe
 * and a reset are that, not errors.  Returns 0 or -1. */
static int conn_end(struct conn *c, const char *what, ptrdiff_t n) {
  np_close(c->s);
  c->closed = 1;
  if (n == NP_EOF || n == NP_EPIPE || n == NP_ECONNRESET)
    return 0;
  return fail(what, (int)n);
}

/* Reads until NP_EAGAIN, echoing each whole message after its work; then
 * re-arms the stream, or closes it at its end. */
static int on_stream(struct server *sv, struct conn *c, uint64_t tok) {
  ptrdiff_t n;
  int err;

  for (;;) {
    n = np_read(c->s, c->buf + c->fill, TB_MSG - c->fill);
    if (n == NP_EAGAIN)
      break;
    if (n <= 0)
      return conn_end(c, "np_read", n);
    c->fill += (size_t)n;
    if (c->fill < TB_MSG)
      continue;
    c->fill = 0;
    tb_work();
    if ((n = np_write(c->s, c->buf, TB_MSG)) != TB_MSG)
      return conn_end(c, "np_write", n < 0 ? n : NP_EIO);
    bh_add(&sv->th.echoes, 1);
  }
  err = np_stream_set_interest(c->s, tok, NP_READABLE | NP_ONESHOT);
  return err == 0 ? 0 : fail("np_stream_set_interest", err);
}

static void serve(void *arg) {
  struct server *sv = arg;
  np_event ev[TB_BATCH];
  int i, n, rc;

  while (!tb_stopping(&sv->th)) {
    n = np_poll_wait(sv->poll, ev, TB_BATCH, TB_TICK_MS);
    if (n < 0) {
      fail("np_poll_wait", n);
      bh_add(&sv->th.errors, 1);
      return;
    }
    for (i = 0; i < n; i++) {
      rc = ev[i].token == TOK_LISTENER
               ? on_listener(sv)
               : on_stream(sv, &sv->conns[ev[i].token - 1], ev[i].token);
      if (rc != 0)
        bh_add(&sv->th.errors, 1);
    }
  }
}

static void *start(const char *name, int nthreads, char *addr, size_t len) {
  struct server *sv = calloc(1, sizeof(*sv));
  np_options o;
  int err;

  if (sv == NULL)
    return NULL;
  snprintf(addr, len, "pipe:%s", name);
  memset(&o, 0, sizeof(o));
  o.backlog = TB_CONNS;
  if ((err = np_poll_new(&sv->poll)) != 0) {
    free(sv);
    fail("np_poll_new", err);
    return NULL;
  }
  err = np_listen(sv->poll, addr, &o, TOK_LISTENER, &sv->l);
  if (err == 0)
    err = np_listener_set_interest(sv->l, TOK_LISTENER,
                                   NP_READABLE | NP_ONESHOT);
  if (err != 0) {
    np_poll_free(sv->poll);
    free(sv);
    fail("np_listen", err);
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
    if (!sv->conns[i].closed)
      np_close(sv->conns[i].s);
  np_listener_close(sv->l);
  np_poll_free(sv->poll);
  free(sv);
  return rc;
}

const struct tb_family tb_npipe = {"npipe", start, stop};
