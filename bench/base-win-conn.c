/*
 * The raw overlapped baseline, continued: connection rates (a server that
 * keeps BENCH_BACKLOG instances with an overlapped ConnectNamedPipe on
 * one completion port and replaces each connected instance by a new one,
 * as libuv and mio do; a blocking client that retries a busy or missing
 * name) and the scale case (idle pairs with one read pending per end:
 * zero bytes as libuv does, or 8 KiB as mio does).
 */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base-win.h"

#define SLOTS 256

enum conn_state { LISTENING, READING, WRITING, DRAINING };

struct conn {
  OVERLAPPED ov;
  HANDLE h;
  enum conn_state state;
  int slot;
  char buf[16];
};

struct conn_server {
  HANDLE port;
  char name[128];
  struct bench_ctl *ctl;
  int reply, err, live;
  struct conn *slot[SLOTS];
};

static struct conn *conn_of(OVERLAPPED *ov) {
  return (struct conn *)(void *)((char *)ov - offsetof(struct conn, ov));
}

static void conn_free(struct conn_server *sv, struct conn *c) {
  CloseHandle(c->h);
  sv->slot[c->slot] = NULL;
  sv->live--;
  free(c);
}

static int listen_one(struct conn_server *sv);

/* Issues c's next operation; frees c when it cannot be issued. */
static void conn_issue(struct conn_server *sv, struct conn *c) {
  BOOL ok;

  memset(&c->ov, 0, sizeof(c->ov));
  if (c->state == WRITING)
    ok = WriteFile(c->h, "y", 1, NULL, &c->ov);
  else
    ok = ReadFile(c->h, c->buf, sizeof(c->buf), NULL, &c->ov);
  if (!ok && GetLastError() != ERROR_IO_PENDING)
    conn_free(sv, c);
}

/* An instance has its client: keep the backlog full, then serve it. */
static void on_connected(struct conn_server *sv, struct conn *c) {
  if (!bh_load(&sv->ctl->stop) && listen_one(sv) < 0)
    sv->err = -1;
  if (!sv->reply || bh_load(&sv->ctl->stop)) {
    conn_free(sv, c);
    return;
  }
  c->state = READING;
  conn_issue(sv, c);
}

static int listen_one(struct conn_server *sv) {
  struct conn *c = calloc(1, sizeof(*c));
  int k;

  for (k = 0; k < SLOTS && sv->slot[k] != NULL; k++)
    ;
  if (c == NULL || k == SLOTS) {
    free(c);
    return -1;
  }
  c->h = bw_pipe_instance(sv->name, 1);
  if (c->h == INVALID_HANDLE_VALUE ||
      CreateIoCompletionPort(c->h, sv->port, BW_KEY_IO, 0) == NULL) {
    free(c);
    return bw_fail("raw-iocp", "instance");
  }
  c->slot = k;
  sv->slot[k] = c;
  sv->live++;
  if (ConnectNamedPipe(c->h, &c->ov) || GetLastError() == ERROR_IO_PENDING)
    return 0;
  /* Wine and Windows: a client that came before the call makes it fail
   * with ERROR_PIPE_CONNECTED, or ERROR_NO_DATA if it already left; no
   * packet is queued for either. */
  if (GetLastError() == ERROR_PIPE_CONNECTED ||
      GetLastError() == ERROR_NO_DATA) {
    on_connected(sv, c);
    return 0;
  }
  conn_free(sv, c);
  return bw_fail("raw-iocp", "ConnectNamedPipe");
}

static void on_done(struct conn_server *sv, struct conn *c, int failed) {
  if (c->state == LISTENING) {
    if (failed)
      conn_free(sv, c);
    else
      on_connected(sv, c);
    return;
  }
  /* Reads end at the client's close (broken pipe). */
  if (failed || bh_load(&sv->ctl->stop)) {
    conn_free(sv, c);
    return;
  }
  c->state = c->state == READING ? WRITING : DRAINING;
  conn_issue(sv, c);
}

static void pump(struct conn_server *sv, DWORD ms) {
  OVERLAPPED_ENTRY ents[32];
  ULONG n, i;

  if (!GetQueuedCompletionStatusEx(sv->port, ents, 32, &n, ms, FALSE))
    return;
  for (i = 0; i < n; i++)
    if (ents[i].lpCompletionKey == BW_KEY_IO)
      on_done(sv, conn_of(ents[i].lpOverlapped),
              ents[i].lpOverlapped->Internal != 0);
}

static void conn_server_thread(void *arg) {
  struct conn_server *sv = arg;
  double until;
  int k;

  while (!bh_load(&sv->ctl->stop))
    pump(sv, 50);
  for (k = 0; k < SLOTS; k++)
    if (sv->slot[k] != NULL)
      CancelIoEx(sv->slot[k]->h, &sv->slot[k]->ov);
  until = bh_now() + 2.0;
  while (sv->live > 0 && bh_now() < until)
    pump(sv, 100);
}

/* Opens the name, retrying while it is busy or between instances. */
static HANDLE open_client(const char *name, double until) {
  for (;;) {
    HANDLE h = CreateFileA(name, GENERIC_READ | GENERIC_WRITE, 0, NULL,
                           OPEN_EXISTING, 0, NULL);
    DWORD err = GetLastError();

    if (h != INVALID_HANDLE_VALUE || bh_now() > until)
      return h;
    if (err == ERROR_PIPE_BUSY)
      WaitNamedPipeA(name, 2000);
    else if (err == ERROR_FILE_NOT_FOUND)
      Sleep(0);
    else
      return h;
  }
}

static int client_loop(struct conn_server *sv, double seconds, double *rate) {
  double now, count = 0;
  DWORD n;
  char b;

  bench_ctl_start(sv->ctl, seconds);
  do {
    HANDLE h = open_client(sv->name, bh_now() + BENCH_SETUP_S);
    int ok = h != INVALID_HANDLE_VALUE;

    if (ok && sv->reply)
      ok = WriteFile(h, "x", 1, &n, NULL) && ReadFile(h, &b, 1, &n, NULL) &&
           n == 1;
    if (!ok)
      return bw_fail("raw-iocp", "client");
    CloseHandle(h);
    count++;
  } while ((now = bh_now()) < sv->ctl->until);
  *rate = count / (now - sv->ctl->t0);
  return 0;
}

int bw_run_connect(const struct bench_work *w, struct bench_result *r) {
  struct bench_ctl ctl = {0, 0, 1, 0, 0, 0};
  struct conn_server *sv = calloc(1, sizeof(*sv));
  bh_thread *t;
  int k, err = 0;

  if (sv == NULL)
    return -1;
  sv->ctl = &ctl;
  sv->reply = w->kind == BENCH_CONNRR;
  bw_pipe_name(sv->name, sizeof(sv->name));
  sv->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
  for (k = 0; k < BENCH_BACKLOG && err == 0 && sv->port != NULL; k++)
    err = listen_one(sv);
  if (sv->port == NULL || err != 0) {
    bh_store(&ctl.stop, 1);
    conn_server_thread(sv);
    err = -1;
  } else {
    t = bh_thread_start(conn_server_thread, sv);
    err = client_loop(sv, w->seconds, &r->v[0]);
    bh_store(&ctl.stop, 1);
    PostQueuedCompletionStatus(sv->port, 0, BW_KEY_WAKE, NULL);
    bh_thread_join(t);
  }
  if (sv->port != NULL)
    CloseHandle(sv->port);
  err = err != 0 || sv->err != 0 ? -1 : 0;
  free(sv);
  return err;
}

/* ---- scale -------------------------------------------------------------- */

struct idle_end {
  OVERLAPPED ov;
  HANDLE h;
  char *buf;
};

/* Reads of rsize bytes on both ends of pair i; for 0 bytes no buffer. */
static int arm_reads(struct idle_end *e, DWORD rsize) {
  static char none[1];
  int k;

  for (k = 0; k < 2; k++) {
    e[k].buf = rsize > 0 ? malloc(rsize) : none;
    memset(&e[k].ov, 0, sizeof(e[k].ov));
    if (e[k].buf == NULL ||
        (!ReadFile(e[k].h, e[k].buf, rsize, NULL, &e[k].ov) &&
         GetLastError() != ERROR_IO_PENDING))
      return bw_fail("raw-iocp", "idle read");
  }
  return 0;
}

/* Creates pair i (e[0] server, e[1] client) on port, both reading. */
static int add_idle_pair(HANDLE port, const char *name, struct idle_end *e,
                         DWORD rsize) {
  OVERLAPPED_ENTRY ent;
  ULONG n;

  e[0].h = bw_pipe_instance(name, 1);
  if (e[0].h == INVALID_HANDLE_VALUE ||
      CreateIoCompletionPort(e[0].h, port, BW_KEY_IO, 0) == NULL)
    return bw_fail("raw-iocp", "instance");
  if (!ConnectNamedPipe(e[0].h, &e[0].ov) &&
      GetLastError() != ERROR_IO_PENDING)
    return bw_fail("raw-iocp", "ConnectNamedPipe");
  e[1].h = CreateFileA(name, GENERIC_READ | GENERIC_WRITE, 0, NULL,
                       OPEN_EXISTING, FILE_FLAG_OVERLAPPED, NULL);
  if (e[1].h == INVALID_HANDLE_VALUE ||
      CreateIoCompletionPort(e[1].h, port, BW_KEY_IO, 0) == NULL)
    return bw_fail("raw-iocp", "CreateFile");
  /* The connect's packet, before its OVERLAPPED is used again. */
  if (!GetQueuedCompletionStatusEx(port, &ent, 1, &n, 5000, FALSE))
    return bw_fail("raw-iocp", "connect completion");
  return arm_reads(e, rsize);
}

int bw_run_scale(const struct bench_work *w, struct bench_result *r,
                 DWORD rsize) {
  enum { FEW = 5 }; /* pairs made before the first snapshot */
  int pairs = w->ends / 2, i;
  size_t bytes = sizeof(struct idle_end) * 2 * (size_t)pairs;
  struct idle_end *ends = malloc(bytes);
  HANDLE port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);
  int64_t c0, r0, c1, r1;
  char name[128];
  double t0;

  if (ends == NULL || port == NULL)
    return -1;
  /* Touched now, so that the array is not part of the delta. */
  memset(ends, 0, bytes);
  bw_pipe_name(name, sizeof(name));
  /* The first pairs pay for what Wine sets up on first use. */
  for (i = 0; i < FEW; i++)
    if (add_idle_pair(port, name, ends + 2 * i, rsize) < 0)
      return -1;
  bh_process_memory(&c0, &r0);
  t0 = bh_now();
  for (i = FEW; i < pairs; i++)
    if (add_idle_pair(port, name, ends + 2 * i, rsize) < 0)
      return -1;
  r->v[SCALE_CREATE] = (bh_now() - t0) / (pairs - FEW) * 1e6;
  bh_process_memory(&c1, &r1);
  r->v[SCALE_COMMIT] = (double)(c1 - c0) / (2.0 * (pairs - FEW));
  r->v[SCALE_RSS] = (double)(r1 - r0) / (2.0 * (pairs - FEW));
  /* A child process: its handles go with it. */
  return 0;
}
