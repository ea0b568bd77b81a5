/*
 * The socket stream's write buffer: bytes np_write accepted while the
 * kernel's socket buffer was full.  Linear, compacted on demand; an idle
 * stream keeps at most a small block, so thousands of quiet streams do
 * not pin megabytes.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fd-stream.h"

/* Storage an emptied buffer may keep for the next burst. */
#define KEEP_CAP (16u * 1024u)
#define MIN_CAP 4096u

/* Makes room for n more bytes after the unsent ones. */
static int reserve(struct np__wbuf *w, size_t n) {
  size_t need = w->len + n;
  size_t cap;
  unsigned char *p;

  if (need < w->len)
    return NP_ENOMEM;
  if (w->head + need <= w->cap)
    return 0;
  /* Sliding the unsent bytes down is cheaper than growing when at least
   * half the storage is already sent. */
  if (need <= w->cap && w->head >= w->cap / 2) {
    memmove(w->data, w->data + w->head, w->len);
    w->head = 0;
    return 0;
  }
  cap = w->cap < MIN_CAP ? MIN_CAP : w->cap;
  while (cap < need)
    cap = cap * 2 > cap ? cap * 2 : need;
  p = malloc(cap);
  if (p == NULL)
    return NP_ENOMEM;
  if (w->len > 0)
    memcpy(p, w->data + w->head, w->len);
  free(w->data);
  w->data = p;
  w->cap = cap;
  w->head = 0;
  return 0;
}

int np__wbuf_append(struct np__wbuf *w, const void *a, size_t an,
                    const void *b, size_t bn) {
  unsigned char *end;
  int err = reserve(w, an + bn);

  if (err != 0)
    return err;
  end = w->data + w->head + w->len;
  if (an > 0)
    memcpy(end, a, an);
  if (bn > 0)
    memcpy(end + an, b, bn);
  w->len += an + bn;
  return 0;
}

void np__wbuf_consume(struct np__wbuf *w, size_t n) {
  w->head += n;
  w->len -= n;
  if (w->len > 0)
    return;
  w->head = 0;
  if (w->cap > KEEP_CAP)
    np__wbuf_free(w);
}

void np__wbuf_free(struct np__wbuf *w) {
  free(w->data);
  w->data = NULL;
  w->head = w->len = w->cap = 0;
}
