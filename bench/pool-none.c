/*
 * The POSIX backend has no buffer pool: a stream holds a write buffer
 * only while the kernel's socket buffer is full, and reads go straight
 * into the caller's buffer.  The white-box figure is therefore absent.
 */
#include "config.h"

#include "bench-pipe.h"

double npb_pool_lent(np_poll *poll) {
  (void)poll;
  return bh_nan();
}
