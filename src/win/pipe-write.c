/*
 * The write slot: np_write copies into pool buffers, up to the stream's
 * write limit, and one overlapped WriteFile at a time sends them.
 *
 * In byte mode new bytes are appended to the last buffer, even while an
 * earlier part of it is being written: the write in flight covers
 * [sent, len) as it was at the launch, and whatever is left after its
 * completion (appended bytes, or a partial write) is sent next.  In
 * message mode every message is a buffer of its own and one WriteFile,
 * so boundaries are kept.
 *
 * A WriteFile that fails because the system lacks resources for the
 * moment keeps the slot busy (wbusy and wwaiting) and is issued again on
 * the poller's timer (pipe-backoff.c); only a shortage that lasts reaches
 * the user.
 */
#include "config.h"

#include <string.h>

#include "win/pipe.h"

/* The largest byte-mode buffer, and so the largest WriteFile: a quarter
 * of the default write limit, so that a bulk writer has the next chunk
 * queued when one completes and the pipe never runs dry while np_write
 * copies more in.  With 1 MiB chunks (the whole limit in one call) a
 * 256 KiB writer ran at 0.67x the raw overlapped loop under Wine; with
 * 256 KiB chunks at 0.85x, and 128 or 512 KiB were both slower. */
#define CHUNK_MAX (256u * 1024u)

static void write_done(struct np__op *op, DWORD err, DWORD bytes);

static char *wbuf_data(struct np__wbuf *b) { return (char *)(b + 1); }

/* Appends a new buffer with room for want bytes, or in byte mode (where
 * a write may span buffers) for twice as many, up to a pool buffer: the
 * writes that follow while one is in flight then land in the same
 * buffer and leave with the next WriteFile, so that a busy stream makes
 * one call per few writes instead of one per write or per leftover
 * piece.  Returns NULL when memory is short. */
static struct np__wbuf *wbuf_add(struct np__pipe *p, size_t want) {
  size_t size = sizeof(struct np__wbuf) + want;
  struct np__wbuf *b;

  if (!p->message) {
    size =
        want < CHUNK_MAX / 2 ? sizeof(struct np__wbuf) + 2 * want : CHUNK_MAX;
    if (size > CHUNK_MAX)
      size = CHUNK_MAX;
  }
  size = np__bufpool_round(size);
  b = np__bufpool_get(np__pipe_pool(p), size);

  if (b == NULL)
    return NULL;
  b->next = NULL;
  b->size = size;
  b->cap = size - sizeof(*b);
  b->len = b->sent = 0;
  if (p->wtail != NULL)
    p->wtail->next = b;
  else
    p->whead = b;
  p->wtail = b;
  return b;
}

static void wbuf_pop(struct np__pipe *p) {
  struct np__wbuf *b = p->whead;

  p->whead = b->next;
  if (p->whead == NULL)
    p->wtail = NULL;
  np__bufpool_put(np__pipe_pool(p), b, b->size);
}

void np__pipe_write_drop(struct np__pipe *p) {
  /* The buffer of the write in flight is the kernel's until it
   * completes; write_done drops it then.  A write waiting for its retry
   * is not in flight. */
  struct np__wbuf *keep = p->wbusy && !p->wwaiting ? p->whead : NULL;

  if (keep != NULL) {
    while (keep->next != NULL) {
      struct np__wbuf *b = keep->next;

      keep->next = b->next;
      np__bufpool_put(np__pipe_pool(p), b, b->size);
    }
    p->wtail = keep;
    p->wqueued = keep->len - keep->sent;
    return;
  }
  while (p->whead != NULL)
    wbuf_pop(p);
  p->wqueued = 0;
}

/* Sends the head of the queue while nothing is in flight.  A write that
 * completes at once runs write_done inside the launch, which would call
 * back here: the wpumping flag turns that recursion into this loop. */
static void write_pump(struct np__pipe *p) {
  if (p->wpumping)
    return;
  p->wpumping = 1;
  while (p->whead != NULL && !p->wbusy && p->werr == 0) {
    struct np__wbuf *b = p->whead;
    DWORD done = 0;
    BOOL ok;

    p->wbusy = 1;
    p->write_op.complete = write_done;
    np__pipe_op_begin(p, &p->write_op);
    ok = WriteFile(p->handle, wbuf_data(b) + b->sent,
                   (DWORD)(b->len - b->sent), &done, &p->write_op.ov);
    np__pipe_op_launched(p, &p->write_op, ok, done);
  }
  p->wpumping = 0;
}

/* Room freed: tell a writer that np_write turned away. */
static void room_freed(struct np__pipe *p) {
  if (p->wblocked && p->wqueued < p->wlimit) {
    p->wblocked = 0;
    np__source_signal(&p->stream.src, NP_WRITABLE);
  }
}

static int is_peer_gone(DWORD err) {
  return err == ERROR_NO_DATA || err == ERROR_BROKEN_PIPE ||
         err == ERROR_PIPE_NOT_CONNECTED;
}

static void write_failed(struct np__pipe *p, DWORD err) {
  np__pipe_write_drop(p);
  if (is_peer_gone(err) || err == ERROR_OPERATION_ABORTED) {
    np__pipe_write_peer_gone(p);
    return;
  }
  p->werr = np__error_from_win32(err);
  p->stream.error = p->werr;
  np__source_signal(&p->stream.src, NP_WRITABLE | NP_ERR);
}

/* A closed stream keeps its handle only until its writes are out.  A
 * completion inside write_pump leaves this to the pump's caller. */
static void close_if_done(struct np__pipe *p) {
  if (p->closed && !p->wbusy && !p->wpumping)
    np__pipe_flush_end(p, 0);
}

/* The retry timer: the write goes out again, from where it was.  Gives
 * back the timer's reference. */
static void retry_fire(struct np__timer *t) {
  struct np__pipe *p = NP__CONTAINER_OF(t, struct np__pipe, wretry.timer);

  p->wbusy = p->wwaiting = 0;
  write_pump(p);
  close_if_done(p);
  np__pipe_unref(p);
}

/* The OS took bytes of the head buffer: the rest goes next. */
static void write_sent(struct np__pipe *p, DWORD bytes) {
  struct np__wbuf *b = p->whead;
  /* A message is never resent in part: that would split it. */
  size_t n = p->message ? b->len - b->sent : (size_t)bytes;

  np__pipe_retry_reset(&p->wretry);
  b->sent += n;
  p->wqueued -= n;
  if (b->sent == b->len)
    wbuf_pop(p);
  room_freed(p);
  write_pump(p);
}

static void write_done(struct np__op *op, DWORD err, DWORD bytes) {
  struct np__pipe *p = NP__CONTAINER_OF(op, struct np__pipe, write_op);

  p->wbusy = 0;
  if (err != 0 && p->werr == 0 &&
      np__pipe_retry_later(p, &p->wretry, err, retry_fire)) {
    /* The slot stays taken, so that nothing else is sent first and a
     * closed stream keeps its handle meanwhile. */
    p->wbusy = p->wwaiting = 1;
  } else if (err != 0) {
    write_failed(p, err);
  } else {
    write_sent(p, bytes);
  }
  if (p->werr != 0)
    np__pipe_write_drop(p);
  close_if_done(p);
  np__pipe_op_end(p);
}

void np__pipe_write_peer_gone(struct np__pipe *p) {
  if (p->werr == 0)
    p->werr = NP_EPIPE;
  np__pipe_write_drop(p);
  np__source_signal(&p->stream.src, NP_WRITABLE | NP_HUP);
}

/* Copies len bytes into the queue.  Returns the count copied (less than
 * len only when memory ran short) or NP_ENOMEM. */
static ptrdiff_t queue_bytes(struct np__pipe *p, const char *buf, size_t len) {
  size_t done = 0;

  while (done < len) {
    struct np__wbuf *b = p->wtail;
    size_t n;

    if (b == NULL || b->len == b->cap) {
      /* Sized by the whole write, so that its leftover piece does not
       * get a small buffer (and a WriteFile) of its own. */
      if ((b = wbuf_add(p, len)) == NULL)
        break;
    }
    n = b->cap - b->len < len - done ? b->cap - b->len : len - done;
    memcpy(wbuf_data(b) + b->len, buf + done, n);
    b->len += n;
    done += n;
  }
  p->wqueued += done;
  return done > 0 || len == 0 ? (ptrdiff_t)done : NP_ENOMEM;
}

static ptrdiff_t refuse_full(struct np__pipe *p) {
  p->wblocked = 1;
  np__source_clear(&p->stream.src, NP_WRITABLE);
  return NP_EAGAIN;
}

/* Queues one message, empty ones included.  Returns 0 or NP_ENOMEM. */
static int queue_message(struct np__pipe *p, const void *buf, size_t len) {
  struct np__wbuf *b = wbuf_add(p, len);

  if (b == NULL)
    return NP_ENOMEM;
  if (len > 0)
    memcpy(wbuf_data(b), buf, len);
  b->len = len;
  p->wqueued += len;
  return 0;
}

ptrdiff_t np__pipe_write(np_stream *s, const void *buf, size_t len) {
  struct np__pipe *p = NP__CONTAINER_OF(s, struct np__pipe, stream);
  size_t room;
  ptrdiff_t n;

  if (p->shut)
    return NP_ESHUTDOWN;
  if (p->werr != 0)
    return p->werr;
  room = p->wqueued < p->wlimit ? p->wlimit - p->wqueued : 0;
  if (p->message) {
    if (len > p->wlimit)
      return NP_EMSGSIZE;
    if (len > room)
      return refuse_full(p);
    if (queue_message(p, buf, len) != 0)
      return NP_ENOMEM;
    n = (ptrdiff_t)len;
  } else {
    if (len == 0)
      return 0;
    if (room == 0)
      return refuse_full(p);
    n = queue_bytes(p, buf, len < room ? len : room);
    if (n < 0)
      return n;
  }
  write_pump(p);
  return n;
}

int np__pipe_shutdown(np_stream *s) {
  struct np__pipe *p = NP__CONTAINER_OF(s, struct np__pipe, stream);
  int err;

  if (p->shut)
    return 0;
  /* Named pipes have no half-close: in message mode an empty message
   * tells the peer, in byte mode only local writes stop. */
  if (p->message) {
    if (p->werr != 0)
      return p->werr;
    if ((err = queue_message(p, NULL, 0)) != 0)
      return err;
    write_pump(p);
  }
  p->shut = 1;
  return 0;
}
