/*
 * The pipe object: its references, the launch of overlapped operations,
 * and closing.
 *
 * Lifetime.  The owner (the listener for an instance not yet accepted,
 * then the user's np_stream) holds one reference, and every operation in
 * flight holds one, taken before the launch and dropped as the last step
 * of its completion.  The memory (with the OVERLAPPEDs in it) goes with
 * the last reference, so no completion ever finds it freed.  The handle
 * is not tied to the references: np_close closes it at once unless a
 * write is still being flushed, so that the name and the peer are
 * released without waiting for the poller to drain cancelled reads.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "win/pipe.h"

#define READ_START 16384 /* first byte-mode read buffer */

volatile LONG np__pipe_live;

static void pipe_close(np_stream *s);
static void pipe_abort(np_stream *s);
static int pipe_peer(np_stream *s, np_peer *peer);

static const struct np__stream_ops stream_ops = {
    np__pipe_read, np__pipe_write, np__pipe_shutdown,
    pipe_peer,     pipe_close,     pipe_abort,
};

static struct np__pipe *from_source(struct np__source *src) {
  return NP__CONTAINER_OF(src, struct np__pipe, stream.src);
}

static void on_interest(struct np__source *src) {
  np__pipe_read_arm(from_source(src));
}

/* Through the stream's current ops: a client end that is still
 * connecting closes its own way (pipe-connect.c). */
static void on_orphan(struct np__source *src) {
  np_stream *s = &from_source(src)->stream;

  (s->ops->close)(s);
}

static const struct np__source_ops source_ops = {on_interest, on_orphan};

/* np_poll_free: whatever is still in flight (a write that a peer never
 * reads) is cancelled, and the handle closed now, so that neither the
 * peer nor the name waits for the port to drain.  Nothing may start
 * after this, or the drain would wait for it. */
static void on_linger_cancel(struct np__linger *l) {
  struct np__pipe *p = NP__CONTAINER_OF(l, struct np__pipe, linger);

  p->refs++; /* the retries' references may be all there is */
  np__pipe_retries_stop(p);
  np__pipe_flush_end(p, 1);
  np__pipe_unref(p);
}

/* Chooses how completions arrive.  Skipping the packet on synchronous
 * success saves a wineserver round trip per operation, and the launch
 * code then completes the operation itself.  It is only enabled in byte
 * read mode: a message-mode read can fail synchronously with
 * ERROR_MORE_DATA, and whether a packet follows depends on the mode
 * (Wine queues one without the flag and none with it), so message-mode
 * pipes always take their completions from the port. */
int np__pipe_flushing(const struct np__pipe *p) {
  return p->closed && p->wbusy && !p->cancelled &&
         p->handle != INVALID_HANDLE_VALUE;
}

void np__pipe_flush_end(struct np__pipe *p, int give_up) {
  np__timer_stop(np__poll_core(p->poll), &p->linger_due);
  if (give_up) {
    p->cancelled = 1; /* nothing starts again */
    if (p->werr == 0)
      p->werr = NP_ECANCELED;
    np__pipe_write_drop(p);
  }
  np__pipe_close_handle(p);
}

/* The peer did not take the bytes within np_stream.linger_ms. */
static void on_linger_due(struct np__timer *t) {
  np__pipe_flush_end(NP__CONTAINER_OF(t, struct np__pipe, linger_due), 1);
}

static int on_linger_flushing(const struct np__linger *l) {
  return np__pipe_flushing(NP__CONTAINER_OF(l, struct np__pipe, linger));
}

static void choose_completion_mode(struct np__pipe *p) {
  UCHAR modes = FILE_SKIP_SET_EVENT_ON_HANDLE;

  if (!p->message)
    modes |= FILE_SKIP_COMPLETION_PORT_ON_SUCCESS;
  if (SetFileCompletionNotificationModes(p->handle, modes))
    p->skip_sync = !p->message;
}

int np__pipe_attach(struct np__pipe *p, HANDLE handle) {
  int err = np__iocp_associate(p->poll, handle);

  if (err != 0)
    return err;
  p->handle = handle;
  choose_completion_mode(p);
  return 0;
}

int np__pipe_new(np_poll *poll, HANDLE handle, uint32_t flags,
                 size_t write_limit, int server, struct np__pipe **out) {
  struct np__pipe *p = calloc(1, sizeof(*p));
  int err;

  *out = NULL;
  if (p == NULL)
    return NP_ENOMEM;
  p->poll = poll;
  p->handle = INVALID_HANDLE_VALUE;
  p->refs = 1;
  p->message = (flags & NP_OPT_MESSAGE) != 0;
  p->server = server != 0;
  p->closed = 1; /* until handed out as a stream */
  p->rstate = NP__READ_IDLE;
  p->rsize = p->message ? NP__BUFPOOL_MIN : READ_START;
  p->wlimit = write_limit;
  /* After the mode: it decides how completions arrive. */
  if (handle != INVALID_HANDLE_VALUE &&
      (err = np__pipe_attach(p, handle)) != 0) {
    free(p);
    return err;
  }
  np__timer_init(&p->linger_due, on_linger_due);
  p->linger.cancel = on_linger_cancel;
  p->linger.flushing = on_linger_flushing;
  np__iocp_linger_add(poll, &p->linger);
  InterlockedIncrement(&np__pipe_live);
  *out = p;
  return 0;
}

int np__pipe_move(struct np__pipe *p, np_poll *poll) {
  int moved = np__iocp_move(poll, p->handle);

  if (moved < 0)
    return moved;
  /* Where the port cannot change, the old one forwards the packets. */
  if (!moved)
    p->connect_op.home = p->read_op.home = p->write_op.home = poll;
  np__iocp_linger_remove(p->poll, &p->linger);
  p->poll = poll;
  np__iocp_linger_add(poll, &p->linger);
  return 0;
}

void np__pipe_register(struct np__pipe *p, uint64_t token, uint32_t interest,
                       const struct np__stream_ops *ops) {
  p->stream.ops = ops != NULL ? ops : &stream_ops;
  p->stream.error = 0;
  np__source_register(np__poll_core(p->poll), &p->stream.src, &source_ops,
                      token, interest);
}

void np__pipe_start(struct np__pipe *p) {
  p->closed = 0;
  p->stream.ops = &stream_ops;
  np__source_signal(&p->stream.src, NP_WRITABLE);
  np__pipe_read_defer(p);
}

void np__pipe_open(struct np__pipe *p, uint64_t token, uint32_t interest) {
  np__pipe_register(p, token, interest, NULL);
  np__pipe_start(p);
}

/* The failed stream is an ordinary one whose read slot has ended and
 * whose writes fail: the pipe's ops then need no case of their own, and
 * no read is ever launched on the missing handle. */
void np__pipe_fail(struct np__pipe *p, int err) {
  p->closed = 0;
  p->stream.ops = &stream_ops;
  p->rstate = NP__READ_END;
  p->rerr = err;
  p->werr = err;
  p->stream.error = err;
  np__source_signal(&p->stream.src, NP_WRITABLE | NP_ERR);
}

void np__pipe_unref(struct np__pipe *p) {
  if (--p->refs > 0)
    return;
  np__timer_stop(np__poll_core(p->poll), &p->linger_due);
  np__pipe_close_handle(p);
  np__pipe_read_stop(p);
  np__pipe_write_drop(p);
  np__iocp_linger_remove(p->poll, &p->linger);
  InterlockedDecrement(&np__pipe_live);
  free(p);
}

void np__pipe_close_handle(struct np__pipe *p) {
  if (p->handle == INVALID_HANDLE_VALUE)
    return;
  CloseHandle(p->handle);
  p->handle = INVALID_HANDLE_VALUE;
}

void np__pipe_discard(struct np__pipe *p) {
  p->closed = 1;
  if (p->connecting)
    CancelIoEx(p->handle, &p->connect_op.ov);
  np__pipe_close_handle(p);
  np__pipe_unref(p);
}

struct np__bufpool *np__pipe_pool(struct np__pipe *p) {
  return np__iocp_bufpool(p->poll);
}

void np__pipe_op_begin(struct np__pipe *p, struct np__op *op) {
  memset(&op->ov, 0, sizeof(op->ov));
  p->refs++;
  np__iocp_op_begin(p->poll);
}

void np__pipe_op_launched(struct np__pipe *p, struct np__op *op, BOOL ok,
                          DWORD bytes) {
  DWORD err = ok ? 0 : GetLastError();

  /* A packet comes for a pending operation, and for a synchronous result
   * unless skip_sync is on: success, or the warning ERROR_MORE_DATA
   * (which skip_sync never meets).  Errors never queue one. */
  if (ok || err == ERROR_MORE_DATA) {
    if (!p->skip_sync)
      return;
  } else if (err == ERROR_IO_PENDING) {
    return;
  }
  op->complete(op, err, ok || err == ERROR_MORE_DATA ? bytes : 0);
}

void np__pipe_op_end(struct np__pipe *p) {
  np__iocp_op_end(p->poll);
  np__pipe_unref(p);
}

/* np_close for pipes: the token goes at once, reads stop, accepted
 * writes are still flushed (the handle stays open until the last one
 * completes, for at most linger_ms: on_linger_due), and the memory goes
 * with the last completion. */
static void pipe_close(np_stream *s) {
  struct np__pipe *p = NP__CONTAINER_OF(s, struct np__pipe, stream);

  np__source_deregister(&s->src);
  p->closed = 1;
  np__pipe_read_stop(p);
  if (!p->wbusy)
    np__pipe_close_handle(p);
  else if (s->linger_ms >= 0)
    np__timer_start(np__poll_core(p->poll), &p->linger_due,
                    (uint64_t)s->linger_ms);
  np__pipe_unref(p);
}

/* np_abort for pipes: as np_close, but what np_write accepted and the
 * OS has not taken is dropped, and the handle closes at once, which
 * ends the operations still in flight; the memory goes with their
 * completions. */
static void pipe_abort(np_stream *s) {
  struct np__pipe *p = NP__CONTAINER_OF(s, struct np__pipe, stream);

  p->cancelled = 1;
  np__source_deregister(&s->src);
  p->closed = 1;
  np__pipe_read_stop(p);
  np__pipe_retries_stop(p);
  np__pipe_flush_end(p, 1);
  np__pipe_unref(p);
}

static int pipe_peer(np_stream *s, np_peer *peer) {
  struct np__pipe *p = NP__CONTAINER_OF(s, struct np__pipe, stream);
  ULONG pid = 0;
  BOOL ok;

  /* A client end whose connect failed has no handle (and
   * INVALID_HANDLE_VALUE would name this process). */
  if (p->handle == INVALID_HANDLE_VALUE)
    return p->werr != 0 ? p->werr : NP_ENOTCONN;
  ok = p->server ? GetNamedPipeClientProcessId(p->handle, &pid)
                 : GetNamedPipeServerProcessId(p->handle, &pid);
  if (!ok)
    return np__error_from_win32(GetLastError());
  peer->pid = (int64_t)pid;
  peer->uid = -1;
  peer->gid = -1;
  return 0;
}
