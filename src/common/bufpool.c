/*
 * The buffer pool: free lists per size class, bounded in bytes.
 */
#include "config.h"

#include <stdlib.h>

#include "common/bufpool.h"

/* The class index for a size that fits a class. */
static int class_of(size_t size) {
  size_t c = NP__BUFPOOL_MIN;
  int i = 0;

  while (c < size) {
    c <<= 1;
    i++;
  }
  return i;
}

void np__bufpool_init(struct np__bufpool *pool, size_t limit) {
  int i;

  for (i = 0; i < NP__BUFPOOL_CLASSES; i++)
    pool->free[i] = NULL;
  pool->cached = 0;
  pool->limit = limit;
  pool->lent = 0;
}

void np__bufpool_destroy(struct np__bufpool *pool) {
  int i;

  for (i = 0; i < NP__BUFPOOL_CLASSES; i++) {
    while (pool->free[i] != NULL) {
      void *buf = pool->free[i];

      pool->free[i] = *(void **)buf;
      free(buf);
    }
  }
  pool->cached = 0;
}

size_t np__bufpool_round(size_t size) {
  if (size > NP__BUFPOOL_MAX)
    return size;
  return (size_t)NP__BUFPOOL_MIN << class_of(size);
}

void *np__bufpool_get(struct np__bufpool *pool, size_t size) {
  size_t real = np__bufpool_round(size);
  void *buf = NULL;

  if (real <= NP__BUFPOOL_MAX) {
    int i = class_of(real);

    buf = pool->free[i];
    if (buf != NULL) {
      pool->free[i] = *(void **)buf;
      pool->cached -= real;
    }
  }
  if (buf == NULL)
    buf = malloc(real);
  if (buf != NULL)
    pool->lent += real;
  return buf;
}

void np__bufpool_put(struct np__bufpool *pool, void *buf, size_t size) {
  size_t real = np__bufpool_round(size);

  if (buf == NULL)
    return;
  pool->lent -= real;
  if (real > NP__BUFPOOL_MAX || pool->cached + real > pool->limit) {
    free(buf);
    return;
  }
  *(void **)buf = pool->free[class_of(real)];
  pool->free[class_of(real)] = buf;
  pool->cached += real;
}
