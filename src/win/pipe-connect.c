/*
 * np_connect to a pipe name.  A local name is opened at once when it
 * can be.  When it cannot and opts ask to wait for a busy or absent
 * name, the stream is handed out connecting, and the open is retried on
 * the poller's timers (the dial below): nothing here sleeps or blocks.
 *
 * Waiting.  The retries back off from 1 to BACKOFF_MAX_MS, and the last
 * one comes right at the deadline.  WaitNamedPipeW is not used: it
 * blocks, and it is only a hint anyway (under Wine it returns at once
 * while the server replaces instances, and the instance it saw can be
 * taken by another client before the open), so a freed instance is
 * found by the next retry instead, at most BACKOFF_MAX_MS later.
 *
 * Remote names.  Opening \\HOST\pipe\NAME goes through SMB and can stall
 * for seconds, so every attempt runs on a worker thread (pipe-remote.c)
 * and its result comes back through the completion port: such a stream
 * is connecting from the start, even without wait flags, and all its
 * errors arrive as NP_ERR.  With a timeout above 0 the deadline also
 * ends an attempt still in flight.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "win/pipe.h"

#define BACKOFF_MAX_MS 50

struct np__dial {
  struct np__pipe *pipe;
  wchar_t *path;
  /* The next attempt; for a remote attempt in flight, its deadline. */
  struct np__timer timer;
  struct np__remote *job; /* the remote attempt in flight, or NULL */
  uint64_t deadline;      /* np__now_ms() past which it fails */
  unsigned backoff;       /* ms before the next attempt */
  uint32_t flags;         /* NP_OPT_* */
  int seen_busy;          /* the name existed: "not found" is a gap */
  unsigned char forever;  /* no deadline */
  unsigned char cut;      /* the deadline ends a remote attempt too */
  unsigned char remote;   /* attempts run on a worker */
  unsigned char shut;     /* np_shutdown while connecting */
};

static void attempt(struct np__dial *d);

/* Whether a failed open may be retried: busy with NP_OPT_WAIT_BUSY,
 * absent with NP_OPT_WAIT_ABSENT, or absent after it was busy (the
 * server is between instances). */
static int may_wait(uint32_t flags, int *seen_busy, DWORD err) {
  if (err == ERROR_PIPE_BUSY && (flags & NP_OPT_WAIT_BUSY)) {
    *seen_busy = 1;
    return 1;
  }
  return err == ERROR_FILE_NOT_FOUND &&
         ((flags & NP_OPT_WAIT_ABSENT) || *seen_busy);
}

/* Message mode is the client's choice; it fails
 * (ERROR_INVALID_PARAMETER) when the server is in byte mode. */
/* Who serves the name, unless NP_OPT_ANY_SERVER: see
 * np__security_vet_server. */
static int vet_server(HANDLE h, uint32_t flags) {
  return (flags & NP_OPT_ANY_SERVER) ? 0 : np__security_vet_server(h);
}

static int set_read_mode(HANDLE h, uint32_t flags) {
  DWORD mode = PIPE_READMODE_MESSAGE;

  if ((flags & NP_OPT_MESSAGE) &&
      !SetNamedPipeHandleState(h, &mode, NULL, NULL))
    return np__error_from_win32(GetLastError());
  return 0;
}

static struct np__poll_core *core_of(const struct np__dial *d) {
  return np__poll_core(d->pipe->poll);
}

/* Ends the wait either way: the timer stops, a remote attempt in flight
 * is given up, and the dial goes. */
static void dial_end(struct np__dial *d) {
  np__timer_stop(core_of(d), &d->timer);
  if (d->job != NULL)
    np__remote_cancel(d->job);
  d->pipe->dial = NULL;
  free(d->path);
  free(d);
}

static void failed(struct np__dial *d, int err) {
  struct np__pipe *p = d->pipe;

  p->shut = d->shut;
  dial_end(d);
  np__pipe_fail(p, err);
}

/* The open worked: the stream starts, and an np_shutdown made while it
 * was connecting applies now. */
static void opened(struct np__dial *d, HANDLE h) {
  struct np__pipe *p = d->pipe;
  int shut = d->shut;
  int err = vet_server(h, d->flags);

  if (err == 0)
    err = set_read_mode(h, d->flags);
  if (err == 0)
    err = np__pipe_attach(p, h);
  if (err != 0) {
    CloseHandle(h);
    failed(d, err);
    return;
  }
  dial_end(d);
  np__pipe_start(p);
  if (shut && (err = np__pipe_shutdown(&p->stream)) != 0) {
    p->stream.error = err;
    np__source_signal(&p->stream.src, NP_ERR);
  }
}

/* Arms the next attempt: after the back-off, but never past the
 * deadline. */
static void retry_later(struct np__dial *d) {
  uint64_t ms = d->backoff, now = np__now_ms();

  if (!d->forever && d->deadline - now < ms)
    ms = d->deadline - now;
  np__timer_start(core_of(d), &d->timer, ms);
  d->backoff =
      d->backoff * 2 < BACKOFF_MAX_MS ? d->backoff * 2 : BACKOFF_MAX_MS;
}

/* An attempt ended with err (0: h is the client end). */
static void settle(struct np__dial *d, DWORD err, HANDLE h) {
  if (err == 0)
    opened(d, h);
  else if (!may_wait(d->flags, &d->seen_busy, err))
    failed(d, np__error_from_win32(err));
  else if (!d->forever && np__now_ms() >= d->deadline)
    failed(d, NP_ETIMEDOUT);
  else
    retry_later(d);
}

static void remote_done(struct np__pipe *p, DWORD err, HANDLE h) {
  struct np__dial *d = p->dial;

  d->job = NULL;
  np__timer_stop(core_of(d), &d->timer);
  settle(d, err, h);
}

/* Starts a remote attempt, bounded by the deadline when there is one.
 * Returns 0 or NP_E*. */
static int start_remote(struct np__dial *d) {
  int err = np__remote_start(d->pipe, d->path, remote_done, &d->job);
  uint64_t now = np__now_ms();

  if (err == 0 && d->cut)
    np__timer_start(core_of(d), &d->timer,
                    d->deadline > now ? d->deadline - now : 0);
  return err;
}

static void attempt(struct np__dial *d) {
  HANDLE h;
  int err;

  if (!d->remote) {
    DWORD e = np__pipe_open_client(d->path, &h);

    settle(d, e, h);
  } else if ((err = start_remote(d)) != 0) {
    failed(d, err);
  }
}

static void on_timer(struct np__timer *t) {
  struct np__dial *d = NP__CONTAINER_OF(t, struct np__dial, timer);

  /* With a remote attempt in flight the timer was its deadline. */
  if (d->job != NULL)
    failed(d, NP_ETIMEDOUT);
  else
    attempt(d);
}

/* ---- the stream while it connects -------------------------------------- */

static struct np__pipe *pipe_of(np_stream *s) {
  return NP__CONTAINER_OF(s, struct np__pipe, stream);
}

static ptrdiff_t dial_read(np_stream *s, void *buf, size_t len) {
  NP__UNUSED(s);
  NP__UNUSED(buf);
  NP__UNUSED(len);
  return NP_EAGAIN;
}

/* Takes nothing yet; NP_WRITABLE follows when the stream is open. */
static ptrdiff_t dial_write(np_stream *s, const void *buf, size_t len) {
  NP__UNUSED(buf);
  NP__UNUSED(len);
  return pipe_of(s)->dial->shut ? NP_ESHUTDOWN : NP_EAGAIN;
}

static int dial_shutdown(np_stream *s) {
  pipe_of(s)->dial->shut = 1;
  return 0;
}

static int dial_peer(np_stream *s, np_peer *peer) {
  NP__UNUSED(s);
  NP__UNUSED(peer);
  return NP_ENOTCONN;
}

/* The token goes, the wait stops; a remote attempt in flight keeps the
 * object (not the stream) until its packet comes. */
static void dial_close(np_stream *s) {
  struct np__pipe *p = pipe_of(s);

  np__source_deregister(&s->src);
  dial_end(p->dial);
  np__pipe_unref(p);
}

/* Nothing was sent: aborting is closing. */
static const struct np__stream_ops dial_ops = {
    dial_read, dial_write, dial_shutdown, dial_peer, dial_close, dial_close,
};

/* ---- np_connect --------------------------------------------------------- */

/* The client end p of path, connecting, with its dial.  Takes path on
 * success.  Returns 0 or NP_E* with nothing left. */
static int dial_new(np_poll *poll, wchar_t *path, const struct np__opts *o,
                    int remote, int seen_busy, struct np__pipe **out) {
  struct np__dial *d;
  struct np__pipe *p;
  int err = np__pipe_new(poll, INVALID_HANDLE_VALUE, o->flags, o->write_limit,
                         0, &p);

  if (err != 0)
    return err;
  if ((d = calloc(1, sizeof(*d))) == NULL) {
    np__pipe_unref(p);
    return NP_ENOMEM;
  }
  d->pipe = p;
  d->path = path;
  np__timer_init(&d->timer, on_timer);
  d->flags = o->flags;
  d->backoff = 1;
  d->seen_busy = seen_busy;
  d->remote = remote != 0;
  d->forever = o->timeout_ms < 0;
  d->cut = o->timeout_ms > 0;
  /* One more millisecond: the clock's ticks must not cut a wait short. */
  if (!d->forever)
    d->deadline = np__now_ms() + (uint64_t)o->timeout_ms + 1;
  p->dial = d;
  *out = p;
  return 0;
}

/* The sync path: h is open. */
static int open_now(np_poll *poll, HANDLE h, const struct np__opts *o,
                    uint64_t token, uint32_t interest, np_stream **out) {
  struct np__pipe *p;
  int err = vet_server(h, o->flags);

  if (err == 0)
    err = set_read_mode(h, o->flags);
  if (err == 0)
    err = np__pipe_new(poll, h, o->flags, o->write_limit, 0, &p);
  if (err != 0) {
    CloseHandle(h);
    return err;
  }
  np__pipe_open(p, token, interest);
  *out = &p->stream;
  return 0;
}

int np__pipe_connect(np_poll *poll, const struct np__address *addr,
                     const struct np__opts *opts, uint64_t token,
                     uint32_t interest, np_stream **out) {
  int remote = strcmp(addr->host, ".") != 0 || (opts->flags & NP__OPT_WORKER);
  int seen_busy = 0, err;
  struct np__pipe *p;
  wchar_t *path;
  HANDLE h;

  if ((err = np__pipe_path(addr, &path)) != 0)
    return err;
  if (!remote) {
    DWORD e = np__pipe_open_client(path, &h);
    int wait = e != 0 && may_wait(opts->flags, &seen_busy, e);

    /* Without time to wait, the one attempt is all there is. */
    if (!wait || opts->timeout_ms == 0) {
      free(path);
      if (e == 0)
        return open_now(poll, h, opts, token, interest, out);
      return wait ? NP_ETIMEDOUT : np__error_from_win32(e);
    }
  }
  if ((err = dial_new(poll, path, opts, remote, seen_busy, &p)) != 0) {
    free(path);
    return err;
  }
  if (remote && (err = start_remote(p->dial)) != 0) {
    dial_end(p->dial);
    np__pipe_unref(p);
    return err;
  }
  np__pipe_register(p, token, interest, &dial_ops);
  if (!remote)
    retry_later(p->dial);
  *out = &p->stream;
  return 0;
}
