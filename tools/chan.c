/*
 * Channels: bytes between the poller's thread and handles that cannot
 * join an np_poll (standard input and output, files, a child's pipes).
 *
 * A reader thread fills one input buffer and waits until the poller's
 * thread has taken it all; a writer thread swaps out the output buffer
 * and writes it while the poller's thread fills the other one.  Each
 * change wakes the poller with np_poll_wake, which is the only npipe call
 * made off the poller's thread.  A wake-up names no channel: with many
 * threads on one poller (pipe-server --threads), the thread woken asks
 * tl_chan_changed which ones it was for.  The channel is freed by
 * whichever of the owner and the threads lets go last.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "tools.h"

#define CHAN_BUF (64 * 1024)

enum out_state { OUT_OPEN, OUT_SHUT, OUT_CLOSED };

struct tl_chan {
  tl_lock *lock; /* guards everything below but the handles */
  np_poll *poll;
  int refs;    /* the owner and each running thread */
  int closing; /* the owner let go: stop, and wake nobody */
  int changed; /* notified since tl_chan_changed last looked */
  int close_handles;

  tl_handle in;
  unsigned char *ibuf; /* the reader fills it only while ilen is 0 */
  size_t ilen, ioff;
  int in_end; /* 0 while reading, then NP_EOF or the input's error */

  tl_handle out;
  unsigned char *obuf; /* filled by the owner */
  unsigned char *wbuf; /* being written by the writer thread */
  size_t olen;
  enum out_state out_state;
  int out_err;

  tl_proc proc; /* 0 if none */
  int exited;
};

/* Tells the poller's thread that something changed.  Called with the
 * lock held, so that tl_chan_close cannot let the poller be freed while
 * a wake-up is on its way. */
static void notify(tl_chan *c) {
  tl_lock_broadcast(c->lock);
  c->changed = 1;
  if (!c->closing)
    np_poll_wake(c->poll);
}

static void chan_free(tl_chan *c) {
  tl_lock_free(c->lock);
  free(c->ibuf);
  free(c->obuf);
  free(c->wbuf);
  free(c);
}

static void unref(tl_chan *c) {
  int last;

  tl_lock_take(c->lock);
  last = --c->refs == 0;
  tl_lock_give(c->lock);
  if (last)
    chan_free(c);
}

/* After the child's output ended: wait for its exit, then reap it.  It is
 * marked exited before it is reaped, so that tl_chan_close never kills a
 * process id that the system may have given to another process. */
static void wait_child(tl_chan *c) {
  tl_sys_proc_wait(c->proc);
  tl_lock_take(c->lock);
  c->exited = 1;
  tl_sys_proc_release(c->proc);
  notify(c);
  tl_lock_give(c->lock);
}

static void reader_main(void *arg) {
  tl_chan *c = arg;

  tl_lock_take(c->lock);
  while (!c->closing && c->in_end == 0) {
    ptrdiff_t n;

    if (c->ilen > 0) {
      tl_lock_wait(c->lock);
      continue;
    }
    tl_lock_give(c->lock);
    n = tl_sys_read(c->in, c->ibuf, CHAN_BUF);
    tl_lock_take(c->lock);
    if (n > 0) {
      c->ilen = (size_t)n;
      c->ioff = 0;
    } else {
      c->in_end = n == 0 ? NP_EOF : (int)n;
    }
    notify(c);
  }
  tl_lock_give(c->lock);
  if (c->close_handles)
    tl_sys_close(c->in);
  if (c->proc != 0)
    wait_child(c);
  unref(c);
}

/* Writes what the owner queued; returns 0, or the output's error. */
static int write_queued(tl_chan *c) {
  unsigned char *tmp = c->wbuf;
  size_t len = c->olen;
  int err;

  c->wbuf = c->obuf;
  c->obuf = tmp;
  c->olen = 0;
  tl_lock_give(c->lock);
  err = tl_sys_write(c->out, c->wbuf, len);
  tl_lock_take(c->lock);
  return err;
}

static void writer_main(void *arg) {
  tl_chan *c = arg;

  tl_lock_take(c->lock);
  while (!c->closing && c->out_state != OUT_CLOSED) {
    if (c->olen > 0) {
      int err = write_queued(c);

      if (err != 0) {
        c->out_err = err;
        c->out_state = OUT_CLOSED;
      }
      notify(c);
    } else if (c->out_state == OUT_SHUT) {
      c->out_state = OUT_CLOSED;
      if (c->close_handles)
        tl_sys_close(c->out);
      c->out = TL_NO_HANDLE;
      notify(c);
    } else {
      tl_lock_wait(c->lock);
    }
  }
  tl_lock_give(c->lock);
  if (c->close_handles && c->out != TL_NO_HANDLE)
    tl_sys_close(c->out);
  unref(c);
}

/* Starts a thread that holds a reference until it ends. */
static int start(tl_chan *c, void (*fn)(void *)) {
  int err;

  tl_lock_take(c->lock);
  c->refs++;
  tl_lock_give(c->lock);
  err = tl_thread_start(fn, c);
  if (err != 0) {
    tl_lock_take(c->lock);
    c->refs--;
    tl_lock_give(c->lock);
  }
  return err;
}

/* Undoes a channel whose threads never started. */
static void discard(tl_chan *c, tl_handle in, tl_handle out, int close_h,
                    tl_proc proc) {
  if (close_h && in != TL_NO_HANDLE)
    tl_sys_close(in);
  if (close_h && out != TL_NO_HANDLE)
    tl_sys_close(out);
  if (proc != 0) {
    tl_sys_proc_kill(proc);
    tl_sys_proc_wait(proc);
    tl_sys_proc_release(proc);
  }
  if (c != NULL)
    chan_free(c);
}

static tl_chan *chan_alloc(void) {
  tl_chan *c = calloc(1, sizeof(*c));

  if (c == NULL)
    return NULL;
  c->lock = tl_lock_new();
  c->ibuf = malloc(CHAN_BUF);
  c->obuf = malloc(CHAN_BUF);
  c->wbuf = malloc(CHAN_BUF);
  if (c->lock == NULL || c->ibuf == NULL || c->obuf == NULL ||
      c->wbuf == NULL) {
    if (c->lock != NULL)
      tl_lock_free(c->lock);
    free(c->ibuf);
    free(c->obuf);
    free(c->wbuf);
    free(c);
    return NULL;
  }
  return c;
}

int tl_chan_new(np_poll *poll, tl_handle in, tl_handle out, int close_handles,
                tl_proc proc, tl_chan **out_chan) {
  tl_chan *c = chan_alloc();
  int err;

  *out_chan = NULL;
  if (c == NULL) {
    discard(NULL, in, out, close_handles, proc);
    return NP_ENOMEM;
  }
  c->poll = poll;
  c->refs = 1;
  c->close_handles = close_handles;
  c->in = in;
  c->out = out;
  c->proc = proc;
  c->in_end = in == TL_NO_HANDLE ? NP_EOF : 0;
  c->out_state = out == TL_NO_HANDLE ? OUT_CLOSED : OUT_OPEN;
  if (in != TL_NO_HANDLE && (err = start(c, reader_main)) != 0) {
    discard(c, in, out, close_handles, proc);
    return err;
  }
  if (out != TL_NO_HANDLE && (err = start(c, writer_main)) != 0) {
    /* The reader runs and owns its side; the output is ours to close. */
    if (close_handles)
      tl_sys_close(out);
    c->out_state = OUT_CLOSED;
    tl_chan_close(c);
    return err;
  }
  *out_chan = c;
  return 0;
}

ptrdiff_t tl_chan_read(tl_chan *c, void *buf, size_t len) {
  ptrdiff_t r;

  tl_lock_take(c->lock);
  if (c->ilen > 0) {
    size_t n = c->ilen - c->ioff < len ? c->ilen - c->ioff : len;

    memcpy(buf, c->ibuf + c->ioff, n);
    c->ioff += n;
    if (c->ioff == c->ilen) {
      c->ilen = c->ioff = 0;
      tl_lock_broadcast(c->lock); /* the reader may read again */
    }
    r = (ptrdiff_t)n;
  } else {
    r = c->in_end != 0 ? c->in_end : NP_EAGAIN;
  }
  tl_lock_give(c->lock);
  return r;
}

ptrdiff_t tl_chan_write(tl_chan *c, const void *buf, size_t len) {
  ptrdiff_t r;

  tl_lock_take(c->lock);
  if (c->out_err != 0) {
    r = c->out_err;
  } else if (c->out_state != OUT_OPEN) {
    r = NP_ESHUTDOWN;
  } else if (c->olen == CHAN_BUF) {
    r = NP_EAGAIN;
  } else {
    size_t n = CHAN_BUF - c->olen < len ? CHAN_BUF - c->olen : len;

    memcpy(c->obuf + c->olen, buf, n);
    c->olen += n;
    tl_lock_broadcast(c->lock);
    r = (ptrdiff_t)n;
  }
  tl_lock_give(c->lock);
  return r;
}

int tl_chan_shutdown(tl_chan *c) {
  int r;

  tl_lock_take(c->lock);
  if (c->out_err != 0) {
    r = c->out_err;
  } else if (c->out_state == OUT_CLOSED) {
    r = 0;
  } else {
    c->out_state = OUT_SHUT;
    tl_lock_broadcast(c->lock);
    r = NP_EAGAIN;
  }
  tl_lock_give(c->lock);
  return r;
}

int tl_chan_changed(tl_chan *c) {
  int changed;

  tl_lock_take(c->lock);
  changed = c->changed;
  c->changed = 0;
  tl_lock_give(c->lock);
  return changed;
}

int tl_chan_gone(tl_chan *c) {
  int gone;

  tl_lock_take(c->lock);
  gone = c->exited || c->out_err != 0;
  tl_lock_give(c->lock);
  return gone;
}

int tl_chan_output_error(tl_chan *c) {
  int err;

  tl_lock_take(c->lock);
  err = c->proc == 0 ? c->out_err : 0;
  tl_lock_give(c->lock);
  return err;
}

void tl_chan_close(tl_chan *c) {
  if (c == NULL)
    return;
  tl_lock_take(c->lock);
  c->closing = 1;
  if (c->proc != 0 && !c->exited)
    tl_sys_proc_kill(c->proc);
  tl_lock_broadcast(c->lock);
  tl_lock_give(c->lock);
  unref(c);
}
