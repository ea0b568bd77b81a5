/*
 * What the AF_UNIX pipe modules share: where a pipe name lives on disk
 * (pipe-path.c) and how a listener claims and gives back that file
 * (pipe-bind.c).  pipe-uds.c puts them together.
 */
#ifndef NP_PIPE_UDS_H
#define NP_PIPE_UDS_H

#include <sys/types.h>
#include <sys/un.h>

#include "unix.h"

#define NP__SUN_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)

/* The socket path of addr ("pipe:NAME" in the private directory, or
 * "unix:/path"), NUL-terminated in path[NP__SUN_PATH_MAX].  For a pipe
 * name the private directory must be a real directory owned by this user
 * with no group or other access; listen (create non-zero) makes it, mode
 * 0700, when it is missing.  Returns 0, NP_EINVAL (relative path),
 * NP_ENAMETOOLONG (never truncated), NP_ENOTSUP (a remote host),
 * NP_EACCES (an unsafe directory), NP_ENOENT (no directory, connect), or
 * another NP_E*. */
int np__pipe_path(const struct np__address *addr, int create,
                  char path[NP__SUN_PATH_MAX]);

/* Non-zero when no other user can replace the file path names: every
 * directory on the way to it, as written and as symlinks resolve, is
 * owned by root or this user and writable by others only if sticky. */
int np__pipe_path_trusted(const char *path);

/* Fills addr with the socket address for path.  Returns its length. */
socklen_t np__pipe_sockaddr(const char *path, struct sockaddr_un *addr);

/* The files a live pipe listener owns. */
struct np__pipe_files {
  char path[NP__SUN_PATH_MAX]; /* the socket file */
  int lock_fd;                 /* flock held on "<path>.lock" */
  dev_t dev;                   /* the socket file that bind made */
  ino_t ino;
};

/* Binds fd, an AF_UNIX socket, to path and gives the socket file mode
 * (the umask is never changed).  Holds an exclusive flock on
 * "<path>.lock" for the listener's life: while one live listener holds
 * it, every other np__pipe_bind fails with NP_EADDRINUSE.  A socket file
 * in the way is replaced only when it is stale (a socket of this user
 * that nobody listens on).  Returns 0 with *f filled, or NP_EADDRINUSE,
 * NP_EACCES, ... with nothing left behind. */
int np__pipe_bind(int fd, const char *path, unsigned mode,
                  struct np__pipe_files *f);

/* Removes the socket file if it is still the one f bound, removes the
 * lock file and releases the lock. */
void np__pipe_unbind(struct np__pipe_files *f);

#endif /* NP_PIPE_UDS_H */
