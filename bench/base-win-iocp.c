/*
 * The raw overlapped loop ("raw-iocp") and the emulation of mio's named
 * pipe design ("mio-emu"), for bulk and ping-pong over a pipe or TCP.
 *
 * raw-iocp: each side one completion port and one thread; one read and
 * one write in flight, straight into and out of the application's
 * buffers (reads of bench_read_len bytes).  mio-emu: the same loop with
 * mio's buffering: one 8 KiB read into an internal buffer, copied out to
 * the application when it completes; a write copies the application's
 * whole buffer in and the next write waits for its completion.  Neither
 * uses FILE_SKIP_COMPLETION_PORT_ON_SUCCESS: every operation completes
 * through the port, as in mio.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base-win.h"

struct io_end {
  HANDLE h, port;
  int tcp, mio;
  struct bench_ctl *ctl;
  struct io_end *peer;
  const struct bench_work *w;
  int send, recv, echo, ping; /* roles */
  OVERLAPPED rov, wov;
  int rpend, wpend;
  char *rbuf; /* where reads land: the app's buffer, or mio's own */
  DWORD rsize;
  char *app;       /* mio: the application's read buffer */
  char *wint;      /* mio: the internal write buffer */
  const char *msg; /* what the sender writes */
  char *wb, *q;    /* echo: the buffer being written, bytes waiting */
  size_t qlen, qcap;
  double rbytes, rate, count;
  size_t got;
  int wdone, recorded, err;
};

static const char *family_name(const struct io_end *e) {
  return e->mio ? "mio-emu" : "raw-iocp";
}

static void wake(struct io_end *e) {
  PostQueuedCompletionStatus(e->port, 0, BW_KEY_WAKE, NULL);
}

/* Ends the run early (unless it is already over). */
static void io_fail(struct io_end *e, const char *what) {
  if (bh_load(&e->ctl->stop))
    return;
  bw_fail(family_name(e), what);
  e->err = -1;
  bh_store(&e->ctl->stop, 1);
  wake(e->peer);
}

static void issue_read(struct io_end *e) {
  BOOL ok;

  memset(&e->rov, 0, sizeof(e->rov));
  if (e->tcp) {
    WSABUF b = {e->rsize, e->rbuf};
    DWORD flags = 0;

    ok = WSARecv((SOCKET)e->h, &b, 1, NULL, &flags, &e->rov, NULL) == 0 ||
         WSAGetLastError() == WSA_IO_PENDING;
  } else {
    ok = ReadFile(e->h, e->rbuf, e->rsize, NULL, &e->rov) ||
         GetLastError() == ERROR_IO_PENDING;
  }
  if (ok)
    e->rpend = 1;
  else
    io_fail(e, "read");
}

static void issue_write(struct io_end *e, const char *buf, size_t len) {
  BOOL ok;

  if (e->mio) {
    memcpy(e->wint, buf, len);
    buf = e->wint;
  }
  memset(&e->wov, 0, sizeof(e->wov));
  if (e->tcp) {
    WSABUF b = {(ULONG)len, (char *)buf};

    ok = WSASend((SOCKET)e->h, &b, 1, NULL, 0, &e->wov, NULL) == 0 ||
         WSAGetLastError() == WSA_IO_PENDING;
  } else {
    ok = WriteFile(e->h, buf, (DWORD)len, NULL, &e->wov) ||
         GetLastError() == ERROR_IO_PENDING;
  }
  if (ok)
    e->wpend = 1;
  else
    io_fail(e, "write");
}

/* The echo server writes back what is queued, if no write is in flight:
 * the queue becomes the buffer being written. */
static void echo_flush(struct io_end *e) {
  char *t = e->wb;

  if (e->wpend || e->qlen == 0)
    return;
  e->wb = e->q;
  e->q = t;
  issue_write(e, e->wb, e->qlen);
  e->qlen = 0;
}

/* The echo server got n bytes: queue them for writing back. */
static void echo_bytes(struct io_end *e, const char *data, DWORD n) {
  if (e->qlen + n > e->qcap) {
    io_fail(e, "echo backlog");
    return;
  }
  memcpy(e->q + e->qlen, data, n);
  e->qlen += n;
  echo_flush(e);
}

/* Ping client: the message went out and its echo came back. */
static void ping_step(struct io_end *e) {
  double now;

  if (!e->wdone || e->got < e->w->size)
    return;
  e->count++;
  e->got -= e->w->size;
  e->wdone = 0;
  if ((now = bh_now()) < e->ctl->until) {
    issue_write(e, e->msg, e->w->size);
    return;
  }
  e->rate = e->count / (now - e->ctl->t0);
  bench_ctl_record(e->ctl);
  wake(e->peer);
}

static void on_read(struct io_end *e, DWORD n, int failed) {
  const char *data = e->rbuf;
  double now;

  e->rpend = 0;
  if (failed || n == 0) {
    io_fail(e, "read completion");
    return;
  }
  if (e->mio) {
    /* The application's read: mio copies out of its own buffer. */
    memcpy(e->app, e->rbuf, n);
    data = e->app;
  }
  if (e->echo) {
    echo_bytes(e, data, n);
  } else if (e->ping) {
    e->got += n;
    ping_step(e);
  } else {
    e->rbytes += n;
    if (!e->recorded && (now = bh_now()) >= e->ctl->until) {
      e->rate = e->rbytes / (now - e->ctl->t0);
      e->recorded = 1;
      if (bench_ctl_record(e->ctl))
        wake(e->peer);
    }
  }
  if (!bh_load(&e->ctl->stop))
    issue_read(e);
}

static void on_write(struct io_end *e, int failed) {
  e->wpend = 0;
  if (failed) {
    io_fail(e, "write completion");
    return;
  }
  if (bh_load(&e->ctl->stop))
    return;
  if (e->echo) {
    echo_flush(e);
  } else if (e->ping) {
    e->wdone = 1;
    ping_step(e);
  } else if (e->send) {
    issue_write(e, e->msg, e->w->size);
  }
}

static void dispatch(struct io_end *e, const OVERLAPPED_ENTRY *x) {
  /* GetQueuedCompletionStatusEx gives each entry's status only as the
   * NTSTATUS in Internal: any non-zero value is a failure here. */
  int failed = x->lpOverlapped->Internal != 0;

  if (x->lpOverlapped == &e->rov)
    on_read(e, x->dwNumberOfBytesTransferred, failed);
  else if (x->lpOverlapped == &e->wov)
    on_write(e, failed);
}

/* Waits up to ms and dispatches.  Returns 0 or -1. */
static int pump(struct io_end *e, DWORD ms) {
  OVERLAPPED_ENTRY ents[16];
  ULONG n, i;

  if (!GetQueuedCompletionStatusEx(e->port, ents, 16, &n, ms, FALSE))
    return GetLastError() == WAIT_TIMEOUT ? 0 : -1;
  for (i = 0; i < n; i++)
    if (ents[i].lpCompletionKey == BW_KEY_IO)
      dispatch(e, &ents[i]);
  return 0;
}

/* Cancels what is in flight and waits for it, so that no completion can
 * land in freed memory. */
static void drain(struct io_end *e) {
  double until = bh_now() + 2.0;

  if (e->rpend || e->wpend)
    CancelIoEx(e->h, NULL);
  while ((e->rpend || e->wpend) && bh_now() < until)
    if (pump(e, 100) < 0)
      break;
}

static void io_loop(struct io_end *e) {
  if (e->recv || e->echo)
    issue_read(e);
  if (e->echo)
    bh_store(&e->ctl->go, 1);
  if ((e->send || e->ping) && bh_wait_flag(&e->ctl->go, BENCH_SETUP_S) < 0)
    io_fail(e, "start");
  if (e->ping) {
    bench_ctl_start(e->ctl, e->w->seconds);
    issue_read(e);
  }
  if ((e->send || e->ping) && !bh_load(&e->ctl->stop))
    issue_write(e, e->msg, e->w->size);
  while (!bh_load(&e->ctl->stop)) {
    if (pump(e, 50) < 0)
      io_fail(e, "GetQueuedCompletionStatusEx");
    /* A measuring side ends its run at until (it was set before this
     * loop began); one that has not ended well after that is stuck. */
    if ((e->recv || e->ping) && bh_now() > e->ctl->until + BENCH_SETUP_S)
      io_fail(e, "no progress");
  }
  drain(e);
}

static void io_thread(void *arg) { io_loop(arg); }

/* Allocates e's buffers and port.  Returns 0 or -1. */
static int end_init(struct io_end *e, HANDLE h, struct bw_pair *p,
                    const struct bench_work *w, int mio, char *msg) {
  size_t rlen = bench_read_len(w);

  e->h = h;
  e->tcp = p->tcp;
  e->mio = mio;
  e->w = w;
  e->msg = msg;
  e->rsize = (DWORD)(mio ? BW_MIO_READ : rlen);
  e->qcap = 2 * rlen;
  e->rbuf = malloc(rlen);
  e->app = malloc(rlen);
  e->wint = malloc(w->size);
  e->wb = malloc(e->qcap);
  e->q = malloc(e->qcap);
  e->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
  if (e->rbuf == NULL || e->app == NULL || e->wint == NULL || e->wb == NULL ||
      e->q == NULL || e->port == NULL ||
      CreateIoCompletionPort(h, e->port, BW_KEY_IO, 0) == NULL)
    return bw_fail(family_name(e), "setup");
  return 0;
}

static void end_free(struct io_end *e) {
  free(e->rbuf);
  free(e->app);
  free(e->wint);
  free(e->wb);
  free(e->q);
  if (e->port != NULL)
    CloseHandle(e->port);
}

int bw_iocp_run(const struct bench_work *w, struct bench_result *r, int mio) {
  int duplex = w->kind == BENCH_BULK2, ping = w->kind == BENCH_PING;
  struct bench_ctl ctl = {0, 0, duplex ? 2 : 1, 0, 0, 0};
  struct io_end srv, cli;
  struct bw_pair p;
  char *msg = malloc(w->size);
  bh_thread *t;
  int err = -1;

  memset(&srv, 0, sizeof(srv));
  memset(&cli, 0, sizeof(cli));
  if (msg == NULL || bw_pair_open(&p, w->tcp, 1) < 0) {
    free(msg);
    return -1;
  }
  bench_fill(msg, w->size);
  if (end_init(&srv, p.srv, &p, w, mio, msg) == 0 &&
      end_init(&cli, p.cli, &p, w, mio, msg) == 0) {
    srv.ctl = cli.ctl = &ctl;
    srv.peer = &cli;
    cli.peer = &srv;
    srv.recv = cli.send = !ping;
    srv.send = cli.recv = duplex;
    srv.echo = cli.ping = ping;
    /* Ping-pong: the server echoes on the thread, the client measures;
     * bulk: the client sends on the thread. */
    t = bh_thread_start(io_thread, ping ? (void *)&srv : (void *)&cli);
    if (!ping)
      bench_ctl_start(&ctl, w->seconds);
    io_loop(ping ? &cli : &srv);
    bh_thread_join(t);
    r->v[0] = ping ? cli.rate : srv.rate + (duplex ? cli.rate : 0);
    err = srv.err != 0 || cli.err != 0 ? -1 : 0;
  }
  bw_pair_close(&p);
  end_free(&srv);
  end_free(&cli);
  free(msg);
  return err;
}
