/*
 * The public listener and stream calls: argument checks, then dispatch to
 * the object's kind (pipe or TCP) through its ops.
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
  if (addr.kind == NP__ADDR_TCP)
    err = np__tcp_listen(poll, &addr, &o, token, out);
  else if (addr.kind == NP__ADDR_PIPE && addr.host[0] != '.')
    err = NP_EINVAL; /* only this machine can serve a pipe name */
  else
    err = np__pipe_listen(poll, &addr, &o, token, out);
  if (err == 0)
    (*out)->linger_ms = o.linger_ms;
  return err;
}

int np_accept(np_listener *l, uint64_t token, uint32_t interest,
              np_stream **out) {
  int err;

  if (out != NULL)
    *out = NULL;
  if (l == NULL || out == NULL || (interest & ~NP__INTEREST_BITS) != 0 ||
      ((interest & NP_EDGE) && (interest & NP_ONESHOT)))
    return NP_EINVAL;
  err = (l->ops->accept)(l, token, interest, out);
  if (err == 0)
    (*out)->linger_ms = l->linger_ms;
  return err;
}

int np_listener_address(np_listener *l, char *buf, size_t len) {
  if (l == NULL || buf == NULL || len == 0)
    return NP_EINVAL;
  return l->ops->address(l, buf, len);
}

int np_listener_set_interest(np_listener *l, uint64_t token,
                             uint32_t interest) {
  if (l == NULL || (interest & NP_WRITABLE) != 0)
    return NP_EINVAL;
  return np__source_set_interest(&l->src, token, interest);
}

void np_listener_close(np_listener *l) {
  if (l != NULL)
    (l->ops->close)(l);
}

int np_connect(np_poll *poll, const char *address, const np_options *opts,
               uint64_t token, uint32_t interest, np_stream **out) {
  struct np__address addr;
  struct np__opts o;
  int err;

  if (out != NULL)
    *out = NULL;
  if (poll == NULL || address == NULL || out == NULL ||
      (interest & ~NP__INTEREST_BITS) != 0 ||
      ((interest & NP_EDGE) && (interest & NP_ONESHOT)))
    return NP_EINVAL;
  if ((err = np__address_parse(address, &addr)) != 0 ||
      (err = np__options_resolve(opts, &o)) != 0)
    return err;
  if (addr.kind == NP__ADDR_TCP)
    err = np__tcp_connect(poll, &addr, &o, token, interest, out);
  else
    err = np__pipe_connect(poll, &addr, &o, token, interest, out);
  if (err == 0)
    (*out)->linger_ms = o.linger_ms;
  return err;
}

ptrdiff_t np_read(np_stream *s, void *buf, size_t len) {
  if (s == NULL || (buf == NULL && len != 0))
    return NP_EINVAL;
  return (s->ops->read)(s, buf, len);
}

ptrdiff_t np_write(np_stream *s, const void *buf, size_t len) {
  if (s == NULL || (buf == NULL && len != 0))
    return NP_EINVAL;
  return (s->ops->write)(s, buf, len);
}

int np_shutdown(np_stream *s) {
  if (s == NULL)
    return NP_EINVAL;
  return (s->ops->shutdown)(s);
}

int np_stream_set_interest(np_stream *s, uint64_t token, uint32_t interest) {
  if (s == NULL)
    return NP_EINVAL;
  return np__source_set_interest(&s->src, token, interest);
}

int np_stream_error(np_stream *s) {
  int err;

  if (s == NULL)
    return NP_EINVAL;
  err = s->error;
  s->error = 0;
  np__source_clear(&s->src, NP_ERR);
  return err;
}

int np_stream_peer(np_stream *s, np_peer *peer) {
  if (s == NULL || peer == NULL)
    return NP_EINVAL;
  return s->ops->peer(s, peer);
}

void np_close(np_stream *s) {
  if (s != NULL)
    (s->ops->close)(s);
}

void np_abort(np_stream *s) {
  if (s != NULL)
    (s->ops->abort)(s);
}
