/*
 * A bounded pool of I/O buffers in power-of-two size classes, so that
 * streams can borrow large buffers while busy and give them back when
 * they go quiet without a malloc/free per operation.  One pool per
 * poller; only the poller's thread uses it.
 */
#ifndef NP_BUFPOOL_H
#define NP_BUFPOOL_H

#include <stddef.h>

#define NP__BUFPOOL_MIN 4096u           /* smallest class */
#define NP__BUFPOOL_MAX (1024u * 1024u) /* largest cached class */
#define NP__BUFPOOL_CLASSES 9           /* 4 KiB .. 1 MiB */

struct np__bufpool {
  void *free[NP__BUFPOOL_CLASSES]; /* singly linked through the buffers */
  size_t cached;                   /* bytes on the free lists */
  size_t limit;                    /* most bytes kept on the free lists */
  size_t lent;                     /* bytes handed out, not yet returned */
};

/* Initialises an empty pool that keeps at most limit bytes of returned
 * buffers for reuse. */
void np__bufpool_init(struct np__bufpool *pool, size_t limit);
/* Frees every cached buffer.  Buffers still lent are the borrowers'. */
void np__bufpool_destroy(struct np__bufpool *pool);
/* The size np__bufpool_get would really hand out for a request of size:
 * the class size, or size itself above the largest class. */
size_t np__bufpool_round(size_t size);
/* Lends a buffer of np__bufpool_round(size) bytes, or NULL when memory
 * is short.  Sizes above NP__BUFPOOL_MAX are allocated directly. */
void *np__bufpool_get(struct np__bufpool *pool, size_t size);
/* Takes back a buffer that np__bufpool_get lent for the same size;
 * keeps it for reuse while the cache is under its limit.  NULL is
 * ignored. */
void np__bufpool_put(struct np__bufpool *pool, void *buf, size_t size);

#endif /* NP_BUFPOOL_H */
