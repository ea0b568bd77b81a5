/*
 * White-box figure for the scale case on Windows: the bytes of I/O
 * buffers that npipe's poller has lent to its streams, read from the
 * backend's buffer pool.  The only file of the benchmarks that looks
 * inside the library; it needs libnpipe-internal.la.
 */
#include "config.h"

#include "win/win.h"

#include "common/bufpool.h"

#include "bench-pipe.h"

double npb_pool_lent(np_poll *poll) {
  return (double)np__iocp_bufpool(poll)->lent;
}
