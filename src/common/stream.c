/*
 * The public listener and stream calls: argument checks, then dispatch to
 * the object's kind (pipe or TCP) through its ops, holding the lock of
 * the object's poller, so that calls from different threads on one
 * poller are safe (internal.h).  A live object's source always knows its
 * poller's core; only np_close and np_listener_close clear it.
 *
 * The ops calls are written (ops->read)(...): the fault-injection build
 * turns read, write, close... into function-like macros (common/seam.h),
 * and a parenthesised member name is not followed by '(' so it is left
 * alone.
 */
#include "config.h"

#include "internal.h"

int np_listen(np_poll *poll, const char *address, const np_options *opts,
              uint64_t token, np_listener **out) {
  struct np__address addr;
  struct np__opts o;
  int err;

  if (out != NULL)
    *out = NULL;
  if (poll == NULL || address == NULL || out == NULL)
    return NP_EINVAL;
  if ((err = np__address_parse(address, &addr)) != 0 ||
      (err = np__options_resolve(opts, &o)) != 0)
    return err;
  if (addr.kind == NP__ADDR_PIPE && addr.host[0] != '.')
    return NP_EINVAL; /* only this machine can serve a pipe name */
  np__core_lock(np__poll_core(poll));
  if (addr.kind == NP__ADDR_TCP)
    err = np__tcp_listen(poll, &addr, &o, token, out);
  else
    err = np__pipe_listen(poll, &addr, &o, token, out);
  if (err == 0) {
    (*out)->poll = poll;
    (*out)->linger_ms = o.linger_ms;
  }
  np__core_unlock(np__poll_core(poll));
  return err;
}

static int bad_interest(uint32_t interest) {
  return (interest & ~NP__INTEREST_BITS) != 0 ||
         ((interest & NP_EDGE) && (interest & NP_ONESHOT));
}

/* Two pollers' locks, always in the same order (by address), so that two
 * threads accepting crosswise cannot deadlock. */
static void lock_pair(struct np__poll_core *a, struct np__poll_core *b) {
  if (a == b) {
    np__core_lock(a);
  } else if (a < b) {
    np__core_lock(a);
    np__core_lock(b);
  } else {
    np__core_lock(b);
    np__core_lock(a);
  }
}

static void unlock_pair(struct np__poll_core *a, struct np__poll_core *b) {
  if (a != b)
    np__core_unlock(b);
  np__core_unlock(a);
}

static int accept_on(np_listener *l, np_poll *poll, uint64_t token,
                     uint32_t interest, np_stream **out) {
  struct np__poll_core *home, *target;
  int err;

  if (out != NULL)
    *out = NULL;
  if (l == NULL || poll == NULL || out == NULL || bad_interest(interest))
    return NP_EINVAL;
  home = l->src.core;
  target = np__poll_core(poll);
  lock_pair(home, target);
  err = (l->ops->accept)(l, poll, token, interest, out);
  if (err == 0)
    (*out)->linger_ms = l->linger_ms;
  unlock_pair(home, target);
  return err;
}

int np_accept(np_listener *l, uint64_t token, uint32_t interest,
              np_stream **out) {
  if (l == NULL) {
    if (out != NULL)
      *out = NULL;
    return NP_EINVAL;
  }
  return accept_on(l, l->poll, token, interest, out);
}

int np_accept_to(np_listener *l, np_poll *poll, uint64_t token,
                 uint32_t interest, np_stream **out) {
  return accept_on(l, poll, token, interest, out);
}

int np_listener_address(np_listener *l, char *buf, size_t len) {
  int r;

  if (l == NULL || buf == NULL || len == 0)
    return NP_EINVAL;
  np__core_lock(l->src.core);
  r = l->ops->address(l, buf, len);
  np__core_unlock(l->src.core);
  return r;
}

int np_listener_set_interest(np_listener *l, uint64_t token,
                             uint32_t interest) {
  int r;

  if (l == NULL || (interest & NP_WRITABLE) != 0)
    return NP_EINVAL;
  np__core_lock(l->src.core);
  r = np__source_set_interest(&l->src, token, interest);
  np__core_unlock(l->src.core);
  return r;
}

void np_listener_close(np_listener *l) {
  struct np__poll_core *core;

  if (l == NULL)
    return;
  core = l->src.core; /* the close deregisters and frees l */
  np__core_lock(core);
  (l->ops->close)(l);
  np__core_unlock(core);
}

int np_connect(np_poll *poll, const char *address, const np_options *opts,
               uint64_t token, uint32_t interest, np_stream **out) {
  struct np__address addr;
  struct np__opts o;
  int err;

  if (out != NULL)
    *out = NULL;
  if (poll == NULL || address == NULL || out == NULL || bad_interest(interest))
    return NP_EINVAL;
  if ((err = np__address_parse(address, &addr)) != 0 ||
      (err = np__options_resolve(opts, &o)) != 0)
    return err;
  np__core_lock(np__poll_core(poll));
  if (addr.kind == NP__ADDR_TCP)
    err = np__tcp_connect(poll, &addr, &o, token, interest, out);
  else
    err = np__pipe_connect(poll, &addr, &o, token, interest, out);
  if (err == 0)
    (*out)->linger_ms = o.linger_ms;
  np__core_unlock(np__poll_core(poll));
  return err;
}

ptrdiff_t np_read(np_stream *s, void *buf, size_t len) {
  ptrdiff_t r;

  if (s == NULL || (buf == NULL && len != 0))
    return NP_EINVAL;
  np__core_lock(s->src.core);
  r = (s->ops->read)(s, buf, len);
  np__core_unlock(s->src.core);
  return r;
}

ptrdiff_t np_write(np_stream *s, const void *buf, size_t len) {
  ptrdiff_t r;

  if (s == NULL || (buf == NULL && len != 0))
    return NP_EINVAL;
  np__core_lock(s->src.core);
  r = (s->ops->write)(s, buf, len);
  np__core_unlock(s->src.core);
  return r;
}

int np_shutdown(np_stream *s) {
  int r;

  if (s == NULL)
    return NP_EINVAL;
  np__core_lock(s->src.core);
  r = (s->ops->shutdown)(s);
  np__core_unlock(s->src.core);
  return r;
}

int np_stream_set_interest(np_stream *s, uint64_t token, uint32_t interest) {
  int r;

  if (s == NULL)
    return NP_EINVAL;
  np__core_lock(s->src.core);
  r = np__source_set_interest(&s->src, token, interest);
  np__core_unlock(s->src.core);
  return r;
}

int np_stream_error(np_stream *s) {
  int err;

  if (s == NULL)
    return NP_EINVAL;
  np__core_lock(s->src.core);
  err = s->error;
  s->error = 0;
  np__source_clear(&s->src, NP_ERR);
  np__core_unlock(s->src.core);
  return err;
}

int np_stream_peer(np_stream *s, np_peer *peer) {
  int r;

  if (s == NULL || peer == NULL)
    return NP_EINVAL;
  np__core_lock(s->src.core);
  r = s->ops->peer(s, peer);
  np__core_unlock(s->src.core);
  return r;
}

void np_close(np_stream *s) {
  struct np__poll_core *core;

  if (s == NULL)
    return;
  core = s->src.core; /* the close deregisters the source */
  np__core_lock(core);
  (s->ops->close)(s);
  np__core_unlock(core);
}

void np_abort(np_stream *s) {
  struct np__poll_core *core;

  if (s == NULL)
    return;
  core = s->src.core;
  np__core_lock(core);
  (s->ops->abort)(s);
  np__core_unlock(core);
}
