/*
 * The raw-iocp echo server of bench-threads (Windows): overlapped named
 * pipes, one completion port created with concurrency 0, N threads in
 * GetQueuedCompletionStatusEx.  Every instance waits in an overlapped
 * ConnectNamedPipe; a connected pipe always has one read posted, and the
 * thread that takes a whole message does the work, echoes it with an
 * overlapped WriteFile and posts the next read.  Only one read is ever
 * pending per pipe, so no two threads handle the same pipe at once (the
 * packets of writes are dropped unread).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

#include "threads.h"

#define PIPE_BUF_BYTES 4096

struct op {
  OVERLAPPED ov;
  int launched; /* set when an operation was started on this slot */
};

struct conn {
  HANDLE h;
  struct op connect, read, write;
  size_t fill;
  int dead; /* the pipe ended: no read is pending any more */
  unsigned char buf[TB_MSG];
  unsigned char out[TB_MSG];
};

struct server {
  struct tb_threads th;
  HANDLE port;
  struct conn conns[TB_CONNS];
};

static void op_init(struct op *op) {
  memset(&op->ov, 0, sizeof(op->ov));
  op->launched = 1;
}

static int fail(const char *what, DWORD err) {
  fprintf(stderr, "%s: raw-iocp: %s: error %lu\n", bh_cfg.argv0, what,
          (unsigned long)err);
  return -1;
}

/* The errors that mean the client closed its end. */
static int is_end(DWORD err) {
  return err == ERROR_BROKEN_PIPE || err == ERROR_NO_DATA ||
         err == ERROR_PIPE_NOT_CONNECTED || err == ERROR_OPERATION_ABORTED;
}

/* Posts the read of the rest of the current message.  Returns 0 or -1. */
static int post_read(struct conn *c) {
  DWORD err;

  op_init(&c->read);
  if (ReadFile(c->h, c->buf + c->fill, (DWORD)(TB_MSG - c->fill), NULL,
               &c->read.ov) ||
      (err = GetLastError()) == ERROR_IO_PENDING)
    return 0;
  c->dead = 1;
  return is_end(err) ? 0 : fail("ReadFile", err);
}

/* Echoes the message in buf.  Its completion is ignored: out is not used
 * again before the client has the echo and sent the next message. */
static int post_write(struct conn *c) {
  DWORD err;

  memcpy(c->out, c->buf, TB_MSG);
  op_init(&c->write);
  if (WriteFile(c->h, c->out, TB_MSG, NULL, &c->write.ov) ||
      (err = GetLastError()) == ERROR_IO_PENDING)
    return 0;
  c->dead = 1;
  return is_end(err) ? 0 : fail("WriteFile", err);
}

/* A read took n bytes (ok) or ended with err. */
static int on_read(struct server *sv, struct conn *c, DWORD n, int ok,
                   DWORD err) {
  int rc;

  if (!ok || n == 0) {
    c->dead = 1;
    return ok || is_end(err) ? 0 : fail("read", err);
  }
  c->fill += n;
  if (c->fill < TB_MSG)
    return post_read(c);
  c->fill = 0;
  tb_work();
  if ((rc = post_write(c)) != 0 || c->dead)
    return rc;
  bh_add(&sv->th.echoes, 1);
  return post_read(c);
}

/* Handles one completion.  The status of a packet is its OVERLAPPED's
 * Internal field, an NTSTATUS: 0 for success. */
static int on_packet(struct server *sv, const OVERLAPPED_ENTRY *e) {
  struct conn *c = (struct conn *)e->lpCompletionKey;
  OVERLAPPED *ov = e->lpOverlapped;
  DWORD err, n;
  int ok;

  /* A write's packet may be taken only after the client had the echo and
   * sent its next message, whose write reused the slot: the OVERLAPPED
   * then describes that write.  A failed write shows up again as the
   * read's failure, so write packets are not looked at. */
  if (ov == &c->write.ov)
    return 0;
  ok = ov->Internal == 0 || GetOverlappedResult(c->h, ov, &n, FALSE);
  err = ok ? 0 : GetLastError();
  if (ov == &c->read.ov)
    return on_read(sv, c, e->dwNumberOfBytesTransferred, ok, err);
  /* The connect: a client that came before ConnectNamedPipe is a success
   * too. */
  if (!ok && err != ERROR_PIPE_CONNECTED)
    return is_end(err) ? 0 : fail("ConnectNamedPipe", err);
  return post_read(c);
}

static void serve(void *arg) {
  struct server *sv = arg;
  OVERLAPPED_ENTRY ev[TB_BATCH];
  ULONG i, n;

  while (!tb_stopping(&sv->th)) {
    if (!GetQueuedCompletionStatusEx(sv->port, ev, TB_BATCH, &n, TB_TICK_MS,
                                     FALSE)) {
      DWORD err = GetLastError();

      if (err == WAIT_TIMEOUT)
        continue;
      fail("GetQueuedCompletionStatusEx", err);
      bh_add(&sv->th.errors, 1);
      return;
    }
    for (i = 0; i < n; i++)
      if (on_packet(sv, &ev[i]) != 0)
        bh_add(&sv->th.errors, 1);
  }
}

/* Creates instance c of path on the port and starts its connect. */
static int instance_new(struct server *sv, struct conn *c,
                        const wchar_t *path) {
  DWORD open = PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED, err;

  if (c == &sv->conns[0])
    open |= FILE_FLAG_FIRST_PIPE_INSTANCE;
  c->h = CreateNamedPipeW(path, open,
                          PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT |
                              PIPE_REJECT_REMOTE_CLIENTS,
                          TB_CONNS, PIPE_BUF_BYTES, PIPE_BUF_BYTES, 0, NULL);
  if (c->h == INVALID_HANDLE_VALUE)
    return fail("CreateNamedPipe", GetLastError());
  if (CreateIoCompletionPort(c->h, sv->port, (ULONG_PTR)c, 0) == NULL)
    return fail("CreateIoCompletionPort", GetLastError());
  op_init(&c->connect);
  if (ConnectNamedPipe(c->h, &c->connect.ov))
    return 0;
  err = GetLastError();
  /* ERROR_PIPE_CONNECTED queues no packet: post one for the threads. */
  if (err == ERROR_PIPE_CONNECTED) {
    c->connect.ov.Internal = 0; /* complete, for conn_close */
    return PostQueuedCompletionStatus(sv->port, 0, (ULONG_PTR)c,
                                      &c->connect.ov)
               ? 0
               : fail("PostQueuedCompletionStatus", GetLastError());
  }
  return err == ERROR_IO_PENDING ? 0 : fail("ConnectNamedPipe", err);
}

/* Waits for what is still pending on c, cancelled first, then closes. */
static void conn_close(struct conn *c) {
  struct op *ops[3] = {&c->connect, &c->read, &c->write};
  DWORD n;
  int i;

  if (c->h == NULL || c->h == INVALID_HANDLE_VALUE)
    return;
  CancelIoEx(c->h, NULL);
  for (i = 0; i < 3; i++)
    if (ops[i]->launched && !HasOverlappedIoCompleted(&ops[i]->ov))
      GetOverlappedResult(c->h, &ops[i]->ov, &n, TRUE);
  CloseHandle(c->h);
}

static void server_free(struct server *sv) {
  int i;

  for (i = 0; i < TB_CONNS; i++)
    conn_close(&sv->conns[i]);
  if (sv->port != NULL)
    CloseHandle(sv->port);
  free(sv);
}

static void *start(const char *name, int nthreads, char *addr, size_t len) {
  struct server *sv = calloc(1, sizeof(*sv));
  wchar_t path[200];
  int i;

  if (sv == NULL)
    return NULL;
  snprintf(addr, len, "\\\\.\\pipe\\%s", name);
  if (MultiByteToWideChar(CP_UTF8, 0, addr, -1, path, 200) == 0) {
    free(sv);
    fail("MultiByteToWideChar", GetLastError());
    return NULL;
  }
  if ((sv->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 0)) ==
      NULL) {
    fail("CreateIoCompletionPort", GetLastError());
    server_free(sv);
    return NULL;
  }
  for (i = 0; i < TB_CONNS; i++)
    if (instance_new(sv, &sv->conns[i], path) != 0) {
      server_free(sv);
      return NULL;
    }
  tb_threads_start(&sv->th, nthreads, serve, sv);
  return sv;
}

static int stop(void *server, int *echoes) {
  struct server *sv = server;
  int rc = tb_threads_stop(&sv->th, echoes);

  server_free(sv);
  return rc;
}

const struct tb_family tb_raw = {"raw-iocp", start, stop};
