/*
 * The Windows baselines: pipe and socket pairs, the plain blocking
 * ReadFile/WriteFile pair ("blocking", two threads), and the three
 * families this program compares npipe with.  Runs under Wine.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base-win.h"

#include <ws2tcpip.h>

int bw_fail(const char *name, const char *what) {
  fprintf(stderr, "%s: %s: error %lu\n", name, what,
          (unsigned long)GetLastError());
  return -1;
}

void bw_pipe_name(char *buf, size_t len) {
  char name[64];

  bh_unique_name(name, sizeof(name), "raw");
  snprintf(buf, len, "\\\\.\\pipe\\%s", name);
}

HANDLE bw_pipe_instance(const char *name, int overlapped) {
  DWORD open = PIPE_ACCESS_DUPLEX | (overlapped ? FILE_FLAG_OVERLAPPED : 0);
  DWORD mode = PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT |
               PIPE_REJECT_REMOTE_CLIENTS;

  return CreateNamedPipeA(name, open, mode, PIPE_UNLIMITED_INSTANCES,
                          BW_PIPE_BUF, BW_PIPE_BUF, 0, NULL);
}

/* Completes the server side of a pipe whose client is already there. */
static int pipe_accept(HANDLE srv, int overlapped) {
  OVERLAPPED ov;
  DWORD n, err;
  int rc = 0;

  memset(&ov, 0, sizeof(ov));
  ov.hEvent = overlapped ? CreateEventA(NULL, TRUE, FALSE, NULL) : NULL;
  if (ConnectNamedPipe(srv, overlapped ? &ov : NULL))
    rc = 0;
  else if ((err = GetLastError()) == ERROR_IO_PENDING)
    rc = GetOverlappedResult(srv, &ov, &n, TRUE) ? 0 : -1;
  else if (err != ERROR_PIPE_CONNECTED)
    rc = -1;
  if (ov.hEvent != NULL)
    CloseHandle(ov.hEvent);
  return rc < 0 ? bw_fail("raw", "ConnectNamedPipe") : 0;
}

static int pipe_pair(struct bw_pair *p, int overlapped) {
  char name[128];

  bw_pipe_name(name, sizeof(name));
  p->srv = bw_pipe_instance(name, overlapped);
  if (p->srv == INVALID_HANDLE_VALUE)
    return bw_fail("raw", "CreateNamedPipe");
  p->cli =
      CreateFileA(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                  overlapped ? FILE_FLAG_OVERLAPPED : 0, NULL);
  if (p->cli == INVALID_HANDLE_VALUE)
    return bw_fail("raw", "CreateFile");
  return pipe_accept(p->srv, overlapped);
}

static int set_nodelay(SOCKET s) {
  BOOL one = TRUE;

  return setsockopt(s, IPPROTO_TCP, TCP_NODELAY, (const char *)&one,
                    sizeof(one));
}

static int tcp_pair(struct bw_pair *p) {
  static int started;
  struct sockaddr_in a;
  int alen = sizeof(a);
  SOCKET l, s = INVALID_SOCKET, c = INVALID_SOCKET;
  WSADATA wd;

  if (!started++ && WSAStartup(MAKEWORD(2, 2), &wd) != 0)
    return bw_fail("raw", "WSAStartup");
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  l = WSASocketA(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0,
                 WSA_FLAG_OVERLAPPED);
  if (l == INVALID_SOCKET || bind(l, (struct sockaddr *)&a, sizeof(a)) ||
      listen(l, BENCH_BACKLOG) ||
      getsockname(l, (struct sockaddr *)&a, &alen) ||
      (c = WSASocketA(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0,
                      WSA_FLAG_OVERLAPPED)) == INVALID_SOCKET ||
      connect(c, (struct sockaddr *)&a, sizeof(a)) ||
      (s = accept(l, NULL, NULL)) == INVALID_SOCKET || set_nodelay(s) ||
      set_nodelay(c)) {
    fprintf(stderr, "raw: tcp pair: error %d\n", WSAGetLastError());
    if (l != INVALID_SOCKET)
      closesocket(l);
    if (c != INVALID_SOCKET)
      closesocket(c);
    if (s != INVALID_SOCKET)
      closesocket(s);
    return -1;
  }
  closesocket(l);
  p->srv = (HANDLE)s;
  p->cli = (HANDLE)c;
  return 0;
}

int bw_pair_open(struct bw_pair *p, int tcp, int overlapped) {
  p->srv = p->cli = INVALID_HANDLE_VALUE;
  p->tcp = tcp;
  if ((tcp ? tcp_pair(p) : pipe_pair(p, overlapped)) == 0)
    return 0;
  bw_pair_close(p);
  return -1;
}

static void close_one(HANDLE *h, int tcp) {
  if (*h == INVALID_HANDLE_VALUE)
    return;
  if (tcp)
    closesocket((SOCKET)*h);
  else
    CloseHandle(*h);
  *h = INVALID_HANDLE_VALUE;
}

void bw_pair_close(struct bw_pair *p) {
  close_one(&p->srv, p->tcp);
  close_one(&p->cli, p->tcp);
}

/* ---- the blocking pair -------------------------------------------------- */

struct blk {
  HANDLE h;
  struct bench_ctl *ctl;
  char *buf;
  size_t len;
  int echo, err;
};

/* Sender (bulk) or echo server (ping-pong) on its own thread. */
static void blk_thread(void *arg) {
  struct blk *b = arg;
  DWORD n;

  if (!b->echo && bh_wait_flag(&b->ctl->go, BENCH_SETUP_S) < 0)
    b->err = -1;
  else if (b->echo)
    bh_store(&b->ctl->go, 1);
  while (!bh_load(&b->ctl->stop) && b->err == 0) {
    if (b->echo && (!ReadFile(b->h, b->buf, (DWORD)b->len, &n, NULL) ||
                    !WriteFile(b->h, b->buf, n, &n, NULL)))
      b->err = !bh_load(&b->ctl->stop) ? bw_fail("blocking", "echo") : 0;
    else if (!b->echo && !WriteFile(b->h, b->buf, (DWORD)b->len, &n, NULL))
      b->err = !bh_load(&b->ctl->stop) ? bw_fail("blocking", "write") : 0;
  }
}

/* The measuring side; returns the figure or NaN. */
static double blk_measure(HANDLE h, const struct bench_work *w,
                          struct bench_ctl *ctl, char *msg, char *buf) {
  DWORD rlen = (DWORD)bench_read_len(w), n;
  double bytes = 0, count = 0, now;

  if (w->kind == BENCH_PING && bh_wait_flag(&ctl->go, BENCH_SETUP_S) < 0)
    return bh_nan();
  bench_ctl_start(ctl, w->seconds);
  for (;;) {
    double got = 0;

    if (w->kind == BENCH_PING && !WriteFile(h, msg, (DWORD)w->size, &n, NULL))
      return bw_fail("blocking", "write"), bh_nan();
    do {
      if (!ReadFile(h, buf, rlen, &n, NULL))
        return bw_fail("blocking", "read"), bh_nan();
      got += n;
    } while (w->kind == BENCH_PING && got < (double)w->size);
    bytes += got;
    count++;
    if ((now = bh_now()) >= ctl->until)
      break;
  }
  bh_store(&ctl->stop, 1);
  return (w->kind == BENCH_PING ? count : bytes) / (now - ctl->t0);
}

static int blk_run(const struct bench_work *w, struct bench_result *r) {
  struct bench_ctl ctl = {0, 0, 1, 0, 0, 0};
  size_t rlen = bench_read_len(w);
  char *bufs = malloc(w->size + 2 * rlen);
  struct bw_pair p;
  struct blk b;
  bh_thread *t;
  int ping = w->kind == BENCH_PING;

  if (bufs == NULL || bw_pair_open(&p, 0, 0) < 0) {
    free(bufs);
    return -1;
  }
  bench_fill(bufs, w->size);
  memset(&b, 0, sizeof(b));
  b.h = ping ? p.srv : p.cli;
  b.ctl = &ctl;
  b.echo = ping;
  b.buf = ping ? bufs + w->size + rlen : bufs;
  b.len = ping ? rlen : w->size;
  t = bh_thread_start(blk_thread, &b);
  r->v[0] = blk_measure(ping ? p.cli : p.srv, w, &ctl, bufs, bufs + w->size);
  bh_store(&ctl.stop, 1);
  /* Closing the measuring end breaks the pipe under the other thread's
   * blocked ReadFile or WriteFile. */
  if (ping)
    close_one(&p.cli, 0);
  else
    close_one(&p.srv, 0);
  bh_thread_join(t);
  bw_pair_close(&p);
  free(bufs);
  return bh_isnan(r->v[0]) || b.err != 0 ? -1 : 0;
}

static int blk_supports(const struct bench_work *w) {
  return !w->tcp && (w->kind == BENCH_BULK || w->kind == BENCH_PING);
}

/* ---- the families ------------------------------------------------------- */

static int iocp_supports(const struct bench_work *w) {
  (void)w;
  return 1;
}

static int iocp_run(const struct bench_work *w, struct bench_result *r) {
  switch (w->kind) {
  case BENCH_CONNECT:
  case BENCH_CONNRR:
    return bw_run_connect(w, r);
  case BENCH_SCALE:
    return bw_run_scale(w, r, 0);
  default:
    return bw_iocp_run(w, r, 0);
  }
}

/* Issue 7 under Wine: bulk and ping-pong 0.9x, connections 0.8x. */
static int iocp_target(const struct bench_work *w, double *min) {
  *min = w->kind == BENCH_CONNECT || w->kind == BENCH_CONNRR ? 0.8 : 0.9;
  return !w->tcp && w->kind != BENCH_SCALE;
}

static int mio_supports(const struct bench_work *w) {
  return !w->tcp && w->kind != BENCH_CONNECT && w->kind != BENCH_CONNRR;
}

static int mio_run(const struct bench_work *w, struct bench_result *r) {
  if (w->kind == BENCH_SCALE)
    return bw_run_scale(w, r, BW_MIO_READ);
  return bw_iocp_run(w, r, 1);
}

/* Issue 7: at 64 KiB writes and above, 5x the mio design. */
static int mio_target(const struct bench_work *w, double *min) {
  *min = 5.0;
  return (w->kind == BENCH_BULK || w->kind == BENCH_BULK2) &&
         w->size >= 64 * 1024;
}

static const struct bench_family raw_iocp = {"raw-iocp", iocp_supports,
                                             iocp_run, iocp_target};
static const struct bench_family mio_emu = {"mio-emu", mio_supports, mio_run,
                                            mio_target};
static const struct bench_family blocking = {"blocking", blk_supports, blk_run,
                                             NULL};

const char bench_suite_name[] =
    "Windows (Wine when so marked): npipe vs raw overlapped IOCP, mio "
    "emulation, blocking pair";
const struct bench_family *const bench_baselines[] = {&raw_iocp, &mio_emu,
                                                      &blocking};
const int bench_nbaselines = 3;
