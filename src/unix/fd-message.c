/*
 * Message mode over SOCK_SEQPACKET: one np_write is one message, one
 * np_read returns one message, boundaries kept.
 *
 * Wire format.  On Linux a zero-length SEQPACKET message and the end of
 * the stream both make recv() return 0, so they cannot be told apart.
 * Every message on the wire therefore starts with one header byte
 * (msg_hdr) that np_read strips: a wire message is never empty, and
 * recv() == 0 always means the end.  An empty np_write is a wire message
 * of just the header.  A first byte other than msg_hdr means the peer is
 * not speaking npipe's framing: np_read drops that message and returns
 * NP_EIO, and so it does for an empty packet from such a peer (see
 * empty_or_end).
 *
 * In the write buffer a message waits as a record: its payload length
 * (uint32_t, host order) followed by the payload; the header byte is
 * added when it is sent.
 */
#define _GNU_SOURCE /* POLLRDHUP */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "fd-stream.h"

static const unsigned char msg_hdr = 0x6d; /* 'm' */

/* The socket send buffer to ask for, so that messages of a few hundred
 * KiB fit (Linux doubles it and caps it at net.core.wmem_max). */
#define WANT_SNDBUF (256 * 1024)
/* Linux refuses a SEQPACKET message longer than the send buffer minus a
 * little (32 bytes in af_unix.c): stay safely below that. */
#define SNDBUF_MARGIN 64

typedef uint32_t record_len;

static int sndbuf_size(int fd, int *size) {
  socklen_t len = sizeof(*size);

  if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, size, &len) < 0)
    return np__error_from_errno();
  return 0;
}

int np__fd_msg_setup(struct np__fd_stream *s) {
  int size, want = WANT_SNDBUF;
  int err = sndbuf_size(s->watch.fd, &size);

  if (err != 0)
    return err;
  /* Never shrink a larger default.  A refusal leaves the default, which
   * the check below still turns into a correct limit. */
  if (size < 2 * want) {
    (void)setsockopt(s->watch.fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want));
    if ((err = sndbuf_size(s->watch.fd, &size)) != 0)
      return err;
  }
  if (size <= SNDBUF_MARGIN + 1)
    return NP_ENOBUFS;
  s->msg_max = (size_t)size - SNDBUF_MARGIN - 1;
  return 0;
}

ptrdiff_t np__fd_msg_write(struct np__fd_stream *s, const void *buf,
                           size_t len) {
  record_len rec;
  int err;

  /* write_limit bounds one message as on Windows, where a message must
   * fit in the write queue whole. */
  if (len > s->msg_max || len > s->write_limit)
    return NP_EMSGSIZE;
  if (s->out.len == 0 && !s->out_full && !s->connecting) {
    ssize_t n = np__fd_send(s, &msg_hdr, 1, buf, len);

    if (n >= 0)
      return (ptrdiff_t)len;
    if (n != NP_EAGAIN)
      return n;
  }
  /* Whole messages only.  An empty buffer takes any message np_write
   * allows, so that no message is refused for good. */
  if (s->out.len > 0 && s->out.len + sizeof(rec) + len > s->write_limit)
    return np__fd_no_room(s);
  rec = (record_len)len;
  err = np__fd_queue(s, &rec, sizeof(rec), buf, len);
  return err != 0 ? err : (ptrdiff_t)len;
}

ssize_t np__fd_msg_flush_one(struct np__fd_stream *s) {
  const unsigned char *head = np__wbuf_head(&s->out);
  record_len rec;
  ssize_t n;

  memcpy(&rec, head, sizeof(rec));
  n = np__fd_send(s, &msg_hdr, 1, head + sizeof(rec), rec);
  return n < 0 ? n : (ssize_t)(sizeof(rec) + rec);
}

/* recv() gave 0: the end of the stream, or an empty packet, which npipe
 * never sends but a foreign peer may.  Linux gives 0 for the end only
 * after the peer has shut down, which poll reports as POLLRDHUP: without
 * it the 0 was a packet, dropped as malformed (NP_EIO).  With it, an
 * empty packet just ahead of the end is taken for the end. */
static ptrdiff_t empty_or_end(struct np__fd_stream *s) {
  struct pollfd p;
  unsigned char hdr;
  struct iovec iov;
  int r;

  p.fd = s->watch.fd;
  p.events = POLLRDHUP;
  p.revents = 0;
  do
    r = poll(&p, 1, 0);
  while (r < 0 && errno == EINTR);
  /* A failed look decides nothing: the packet or end is still there. */
  if (r < 0)
    return np__error_from_errno();
  if (r > 0)
    return np__fd_recv_end(s, 0);
  iov.iov_base = &hdr;
  iov.iov_len = 1;
  (void)np__fd_recv(s, &iov, 1, 0);
  return NP_EIO;
}

ptrdiff_t np__fd_msg_read(struct np__fd_stream *s, void *buf, size_t len) {
  unsigned char hdr;
  struct iovec iov[2];
  ssize_t n;

  if (s->eof)
    return NP_EOF;
  iov[0].iov_base = &hdr;
  iov[0].iov_len = 1;
  iov[1].iov_base = buf;
  iov[1].iov_len = len;
  /* Learn the size first: a plain recv into a buffer that is too small
   * would cut the message, and it must stay whole for a larger one. */
  n = np__fd_recv(s, iov, 1, MSG_PEEK | MSG_TRUNC);
  if (n == 0)
    return empty_or_end(s);
  if (n < 0)
    return np__fd_recv_end(s, errno);
  if (hdr == msg_hdr && (size_t)(n - 1) > len)
    return NP_EMSGSIZE;
  n = np__fd_recv(s, iov, 2, 0);
  if (n <= 0)
    return np__fd_recv_end(s, n == 0 ? 0 : errno);
  if (hdr != msg_hdr)
    return NP_EIO;
  return n - 1;
}
