/*
 * The read slot: one overlapped read at a time turns completions into
 * NP_READABLE.
 *
 * Byte mode.  A quiet stream waits with a probe: a read of at most
 * NP__PROBE_SIZE bytes into the pipe object itself, which pins no pool
 * buffer.  A small message (a request, a reply) arrives whole with it,
 * so a chatty stream makes one read per message, as a raw overlapped
 * loop does; a larger one leaves the rest for np_read, which reads it
 * into a pool buffer at once since it is there.  A busy stream (its
 * last read brought more than a probe holds) skips the probe and keeps
 * a real read in flight, and its buffer doubles up to READ_MAX while
 * reads fill it; reads that use under a quarter of theirs halve it
 * again, and a read no larger than a probe sends the stream back to
 * its probe.
 *
 * A read that is not needed yet waits for the poller's next OS wait (or
 * an np_read): a new stream's first, and the next one after np_read
 * took everything.  Readiness can only be seen from there, and a
 * connection that is accepted and closed at once, or closed after its
 * reply, then makes no read it must cancel (each is a wineserver round
 * trip under Wine, and so is the cancel).
 *
 * Message mode.  A zero-byte read would swallow an empty message, so the
 * read in flight always has a buffer.  When a message is larger, the
 * read ends with ERROR_MORE_DATA: the buffer grows to what
 * PeekNamedPipe says is left and the rest of the same message is read
 * into it, so messages are never split, merged or dropped.
 *
 * Closing.  np_close stops reading, but while accepted writes are still
 * being flushed the stream keeps reading and throws the bytes away: a
 * peer that is itself blocked writing to us would otherwise never read
 * what we flush, and both ends would wait for each other forever.  Past
 * NP__LINGER_DISCARD_MAX dropped bytes it gives up the delivery, so a
 * peer that only sends cannot hold it forever.
 *
 * Shortages.  A read that fails because the system lacks resources for
 * the moment waits in NP__READ_RETRY and is launched again on the
 * poller's timer (pipe-backoff.c); np_read meanwhile says NP_EAGAIN.
 */
#include "config.h"

#include <string.h>

#include "win/pipe.h"

#define READ_MAX NP__BUFPOOL_MAX
#define READ_LOOPS 8 /* state steps one np_read may take */

static void read_done(struct np__op *op, DWORD err, DWORD bytes);
static void discard_more(struct np__pipe *p, DWORD err);

static int wants_read(const struct np__pipe *p) {
  return !p->closed && (p->stream.src.interest & NP_READABLE) != 0;
}

static void rbuf_put(struct np__pipe *p) {
  np__bufpool_put(np__pipe_pool(p), p->rbuf, p->rcap);
  p->rbuf = NULL;
  p->rcap = p->rlen = p->roff = 0;
}

/* Makes sure rbuf holds at least size bytes, keeping its contents.
 * Returns 0 or NP_ENOMEM. */
static int rbuf_reserve(struct np__pipe *p, size_t size) {
  char *buf;

  if (p->rbuf != NULL && p->rcap >= size)
    return 0;
  buf = np__bufpool_get(np__pipe_pool(p), size);
  if (buf == NULL)
    return NP_ENOMEM;
  if (p->rlen > 0)
    memcpy(buf, p->rbuf, p->rlen);
  np__bufpool_put(np__pipe_pool(p), p->rbuf, p->rcap);
  p->rbuf = buf;
  p->rcap = np__bufpool_round(size);
  return 0;
}

static void launch_probe(struct np__pipe *p) {
  DWORD got = 0;
  BOOL ok;

  p->rstate = NP__READ_PROBE;
  p->read_op.complete = read_done;
  np__pipe_op_begin(p, &p->read_op);
  ok = ReadFile(p->handle, p->probe, sizeof(p->probe), &got, &p->read_op.ov);
  np__pipe_op_launched(p, &p->read_op, ok, got);
}

/* Reads into rbuf after its rlen bytes; a new read gets a buffer of at
 * least rsize.  Returns 0 or NP_ENOMEM. */
static int launch_read(struct np__pipe *p) {
  DWORD got = 0;
  BOOL ok;

  if (p->rlen == 0 && rbuf_reserve(p, p->rsize) != 0)
    return NP_ENOMEM;
  p->rstate = NP__READ_PENDING;
  p->read_op.complete = read_done;
  np__pipe_op_begin(p, &p->read_op);
  ok = ReadFile(p->handle, p->rbuf + p->rlen, (DWORD)(p->rcap - p->rlen), &got,
                &p->read_op.ov);
  np__pipe_op_launched(p, &p->read_op, ok, got);
  return 0;
}

/* Starts the read an idle stream should have in flight: a probe when it
 * is quiet, a real read when it is busy or in message mode.  Falls back
 * to the probe when memory is short (byte mode).  Returns 0 or
 * NP_ENOMEM. */
static int start_read(struct np__pipe *p) {
  if (!p->message && !p->rfull) {
    rbuf_put(p);
    launch_probe(p);
    return 0;
  }
  if (launch_read(p) == 0)
    return 0;
  if (p->message)
    return NP_ENOMEM;
  launch_probe(p);
  return 0;
}

/* The deferred list reuses the instance links, which a stream (accepted,
 * or a client end) no longer needs. */
static void undefer(struct np__pipe *p) {
  struct np__pipe **head;

  if (!p->rdeferred)
    return;
  head = np__iocp_deferred(p->poll);
  if (p->inst_prev != NULL)
    p->inst_prev->inst_next = p->inst_next;
  else
    *head = p->inst_next;
  if (p->inst_next != NULL)
    p->inst_next->inst_prev = p->inst_prev;
  p->inst_next = p->inst_prev = NULL;
  p->rdeferred = 0;
}

void np__pipe_read_defer(struct np__pipe *p) {
  struct np__pipe **head = np__iocp_deferred(p->poll);

  if (p->rdeferred || p->rstate != NP__READ_IDLE || !wants_read(p))
    return;
  p->inst_prev = NULL;
  p->inst_next = *head;
  if (*head != NULL)
    (*head)->inst_prev = p;
  *head = p;
  p->rdeferred = 1;
}

void np__pipe_read_deferred(np_poll *poll) {
  struct np__pipe **head = np__iocp_deferred(poll), *p;

  while ((p = *head) != NULL)
    np__pipe_read_arm(p);
}

void np__pipe_read_arm(struct np__pipe *p) {
  undefer(p);
  if (p->rstate == NP__READ_IDLE && wants_read(p) && start_read(p) != 0)
    /* np_read will retry and report the shortage. */
    np__source_signal(&p->stream.src, NP_READABLE);
}

static int is_eof_error(DWORD err) {
  return err == ERROR_BROKEN_PIPE || err == ERROR_PIPE_NOT_CONNECTED ||
         err == ERROR_NO_DATA;
}

static void read_failed(struct np__pipe *p, DWORD err) {
  rbuf_put(p);
  p->rstate = NP__READ_END;
  if (is_eof_error(err)) {
    p->rerr = NP_EOF;
    np__pipe_write_peer_gone(p);
    np__source_signal(&p->stream.src, NP_READABLE | NP_HUP);
    return;
  }
  p->rerr = err == ERROR_OPERATION_ABORTED ? NP_ECANCELED
                                           : np__error_from_win32(err);
  np__source_signal(&p->stream.src, NP_READABLE);
}

/* Message mode: the buffer is full and the message goes on.  Grows the
 * buffer to hold the rest and reads it. */
static void read_rest_of_message(struct np__pipe *p) {
  DWORD left = 0;
  size_t more;

  if (!PeekNamedPipe(p->handle, NULL, 0, NULL, NULL, &left) || left == 0)
    left = (DWORD)p->rcap; /* unknown: double */
  more = (size_t)left;
  if (rbuf_reserve(p, p->rlen + more) != 0) {
    rbuf_put(p);
    p->rstate = NP__READ_END;
    p->rerr = NP_ENOMEM;
    np__source_signal(&p->stream.src, NP_READABLE);
    return;
  }
  if (p->rcap > p->rsize)
    p->rsize = p->rcap < READ_MAX ? p->rcap : READ_MAX;
  launch_read(p);
}

/* Adapts the next read to how much this one carried.  A byte read that
 * brought more than the probe could hold marks the stream busy: its
 * next read is a real one, kept in flight at once, because a probe in
 * front of it would cost a second read (a wineserver round trip under
 * Wine) for every chunk.  A byte read that fills its buffer doubles the
 * size, a message that needed a larger buffer sets it, and reads that
 * use under a quarter of theirs halve it.  A busy stream that goes
 * quiet drops back to the probe with its first small read. */
static void adapt(struct np__pipe *p, size_t got, size_t asked) {
  p->rfull = !p->message && got > NP__PROBE_SIZE;
  if (!p->message && got == asked && p->rsize < READ_MAX)
    p->rsize *= 2;
  else if (got <= asked / 4 && p->rsize > NP__BUFPOOL_MIN)
    p->rsize /= 2;
}

static void data_done(struct np__pipe *p, DWORD err, DWORD bytes) {
  size_t asked = p->rcap - p->rlen;

  if (err == 0 || err == ERROR_MORE_DATA)
    p->rlen += bytes;
  if (err == ERROR_MORE_DATA && p->message) {
    read_rest_of_message(p);
    return;
  }
  if (err != 0) {
    read_failed(p, err);
    return;
  }
  if (!p->message && bytes == 0) {
    /* A zero-byte write on a byte-mode pipe: nothing to report. */
    rbuf_put(p);
    p->rstate = NP__READ_IDLE;
    np__pipe_read_arm(p);
    return;
  }
  if (p->message)
    adapt(p, p->rlen, p->rsize);
  else
    adapt(p, bytes, asked);
  p->roff = 0;
  p->rstate = NP__READ_DATA;
  np__source_signal(&p->stream.src, NP_READABLE);
}

static int read_worked(DWORD err) {
  return err == 0 || err == ERROR_MORE_DATA;
}

static void discard_done(struct np__op *op, DWORD err, DWORD bytes);
static void retry_fire(struct np__timer *t);

/* Keeps a read in flight whose bytes are dropped, as long as the closed
 * stream flushes and the reads work (or fail for want of resources, and
 * are retried).  A read that completes inside its launch (skip_sync)
 * reports back through rsync instead of recursing, so a fast peer turns
 * into this loop, not into a deep stack.  err is the result of the read
 * that just ended, if any; its bytes are counted already. */
static void discard_more(struct np__pipe *p, DWORD err) {
  while (read_worked(err) && np__pipe_flushing(p)) {
    DWORD got = 0;
    BOOL ok;

    p->rlen = 0;
    if (rbuf_reserve(p, NP__BUFPOOL_MIN) != 0)
      break;
    p->rstate = NP__READ_PENDING;
    p->read_op.complete = discard_done;
    p->rlaunching = 1;
    p->rsync = 0;
    np__pipe_op_begin(p, &p->read_op);
    /* The count of a synchronous success: discard_done counts it. */
    ok = ReadFile(p->handle, p->rbuf, (DWORD)p->rcap, &got, &p->read_op.ov);
    np__pipe_op_launched(p, &p->read_op, ok, got);
    p->rlaunching = 0;
    if (!p->rsync)
      return; /* in flight: discard_done goes on */
    err = p->rsync_err;
  }
  rbuf_put(p);
  p->rstate = NP__READ_IDLE;
  if (np__pipe_flushing(p) &&
      np__pipe_retry_later(p, &p->rretry, err, retry_fire))
    p->rstate = NP__READ_RETRY;
}

static void discard_done(struct np__op *op, DWORD err, DWORD bytes) {
  struct np__pipe *p = NP__CONTAINER_OF(op, struct np__pipe, read_op);

  p->rstate = NP__READ_IDLE;
  /* A peer that sends without end must not keep the stream alive. */
  if (read_worked(err))
    np__pipe_retry_reset(&p->rretry);
  p->discarded += bytes;
  if (p->discarded > NP__LINGER_DISCARD_MAX && np__pipe_flushing(p))
    np__pipe_flush_end(p, 1);
  if (p->rlaunching) {
    p->rsync = 1;
    p->rsync_err = err;
  } else {
    discard_more(p, err);
  }
  np__pipe_op_end(p);
}

/* The probe brought bytes: they become the data np_read hands out (in a
 * pool buffer, which drained() gives back).  A full probe means more may
 * follow: the next read is a real one. */
static void probe_data(struct np__pipe *p, DWORD bytes) {
  if (rbuf_reserve(p, p->rsize) != 0) {
    rbuf_put(p);
    p->rstate = NP__READ_END;
    p->rerr = NP_ENOMEM;
    np__source_signal(&p->stream.src, NP_READABLE);
    return;
  }
  memcpy(p->rbuf, p->probe, bytes);
  p->rlen = bytes;
  p->roff = 0;
  /* Small traffic shrinks the next real read, as a small read does. */
  adapt(p, bytes, p->rsize);
  p->rfull = bytes == sizeof(p->probe);
  p->rstate = NP__READ_DATA;
  np__source_signal(&p->stream.src, NP_READABLE);
}

/* A read failed for want of resources: it goes to NP__READ_RETRY and
 * is launched again later.  A read that worked resets the slot's
 * retries.  Returns 1 when the read will be retried. */
static int read_retry(struct np__pipe *p, DWORD err) {
  if (read_worked(err)) {
    np__pipe_retry_reset(&p->rretry);
    return 0;
  }
  if (!np__pipe_retry_later(p, &p->rretry, err, retry_fire))
    return 0;
  p->rstate = NP__READ_RETRY;
  return 1;
}

/* The retry timer: the read is launched again as it was (the rest of a
 * message goes after the part already read); a closed stream goes on
 * discarding.  Gives back the timer's reference. */
static void retry_fire(struct np__timer *t) {
  struct np__pipe *p = NP__CONTAINER_OF(t, struct np__pipe, rretry.timer);

  p->rstate = NP__READ_IDLE;
  if (p->closed) {
    rbuf_put(p);
    discard_more(p, 0);
  } else if (p->rlen > 0 ? launch_read(p) != 0 : start_read(p) != 0) {
    /* np_read will retry and report the shortage. */
    np__source_signal(&p->stream.src, NP_READABLE);
  }
  np__pipe_unref(p);
}

static void read_done(struct np__op *op, DWORD err, DWORD bytes) {
  struct np__pipe *p = NP__CONTAINER_OF(op, struct np__pipe, read_op);

  if (p->closed) {
    /* Completed after np_close, or cancelled by it. */
    rbuf_put(p);
    p->rstate = NP__READ_IDLE;
    discard_more(p, err);
  } else if (read_retry(p, err)) {
    /* retry_fire goes on */
  } else if (p->rstate == NP__READ_PROBE) {
    if (err != 0)
      read_failed(p, err);
    else if (bytes > 0)
      probe_data(p, bytes);
    else {
      p->rstate = NP__READ_WAITING;
      np__source_signal(&p->stream.src, NP_READABLE);
    }
  } else {
    data_done(p, err, bytes);
  }
  np__pipe_op_end(p);
}

/* Everything in rbuf was consumed: start over, at the next OS wait or
 * np_read.  An np_read that still has room goes on at once; one that
 * took exactly what was there leaves the next read to whichever call
 * needs it, so a request/reply stream closed after its reply makes no
 * read it would then have to cancel. */
static void drained(struct np__pipe *p) {
  p->rlen = p->roff = 0;
  p->rstate = NP__READ_IDLE;
  /* A busy stream keeps its buffer for the next read; one that a
   * message made large gives it back. */
  if ((!p->message && !p->rfull) || p->rcap > p->rsize)
    rbuf_put(p);
  np__pipe_read_defer(p);
}

/* Copies out what rbuf holds.  Message mode: the whole message or
 * NP_EMSGSIZE. */
static ptrdiff_t deliver(struct np__pipe *p, char *buf, size_t len) {
  size_t n = p->rlen - p->roff;

  if (p->message && n > len)
    return NP_EMSGSIZE;
  if (n > len)
    n = len;
  if (n > 0)
    memcpy(buf, p->rbuf + p->roff, n);
  p->roff += n;
  if (p->roff == p->rlen)
    drained(p);
  return (ptrdiff_t)n;
}

/* Takes one step towards data.  Returns 1 to look again, 0 when a read
 * is in flight, or a negative NP_E*. */
static int step(struct np__pipe *p) {
  switch (p->rstate) {
  case NP__READ_IDLE:
    undefer(p);
    return start_read(p) == 0 ? 1 : NP_ENOMEM;
  case NP__READ_WAITING:
    if (launch_read(p) != 0)
      return NP_ENOMEM;
    return 1;
  case NP__READ_PROBE:
  case NP__READ_PENDING:
  case NP__READ_RETRY:
    return 0;
  default:
    return 1;
  }
}

static int readable_now(const struct np__pipe *p) {
  return p->rstate == NP__READ_DATA || p->rstate == NP__READ_WAITING ||
         p->rstate == NP__READ_END;
}

ptrdiff_t np__pipe_read(np_stream *s, void *buf, size_t len) {
  struct np__pipe *p = NP__CONTAINER_OF(s, struct np__pipe, stream);
  size_t got = 0;
  int loops, r = 1, delivered = 0;

  /* A zero-length read is a no-op in byte mode; in message mode it reads
   * an empty message, and any other gets NP_EMSGSIZE, as on POSIX. */
  if (len == 0 && !p->message)
    return 0;
  for (loops = 0; loops < READ_LOOPS && r > 0; loops++) {
    if (p->rstate == NP__READ_END) {
      if (!delivered)
        return p->rerr;
      break;
    }
    if (p->rstate == NP__READ_DATA) {
      ptrdiff_t n = deliver(p, (char *)buf + got, len - got);

      if (n < 0)
        return n;
      got += (size_t)n;
      delivered = 1;
      /* A byte stream fills the caller's buffer while reads complete at
       * once; a message is returned alone. */
      if (p->message || got == len)
        break;
      continue;
    }
    r = step(p);
  }
  if (!readable_now(p))
    np__source_clear(&s->src, NP_READABLE);
  if (delivered)
    return (ptrdiff_t)got;
  return r < 0 ? r : NP_EAGAIN;
}

void np__pipe_read_stop(struct np__pipe *p) {
  undefer(p);
  (void)np__pipe_retry_stop(p, &p->rretry);
  if (p->rstate == NP__READ_PROBE || p->rstate == NP__READ_PENDING) {
    /* While writes flush, the read in flight stays: its completion
     * starts discarding. */
    if (!np__pipe_flushing(p) && p->handle != INVALID_HANDLE_VALUE)
      CancelIoEx(p->handle, &p->read_op.ov);
    return;
  }
  rbuf_put(p);
  p->rstate = NP__READ_IDLE;
  discard_more(p, 0);
}
