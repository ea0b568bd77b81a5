/*
 * What the Windows TCP modules share: Winsock set-up, addresses, socket
 * creation (tcp-winsock.c), and the stream that a listener hands out
 * (tcp-afd.c).
 */
#ifndef NP_WIN_TCP_H
#define NP_WIN_TCP_H

#include <winsock2.h>
#include <ws2tcpip.h>

#include "win.h"

/* Starts Winsock once per process.  Returns 0 or NP_E*. */
int np__wsa_init(void);
/* Resolves addr (numeric port; passive: for bind) into a list the caller
 * frees with freeaddrinfo.  Returns 0, NP_ENOENT for an unknown host, or
 * another NP_E*. */
int np__tcp_resolve(const struct np__address *addr, int passive,
                    struct addrinfo **out);
/* Opens a non-blocking TCP socket of family that child processes do not
 * inherit.  Returns 0 or NP_E*. */
int np__tcp_socket(int family, SOCKET *out);
/* Prepares a connected socket for stream use: no Nagle delay, so small
 * writes leave at once as on POSIX.  Failures only cost latency. */
void np__tcp_tune(SOCKET s);
/* Writes s's local address as "tcp:HOST:PORT" ("tcp:[V6]:PORT").
 * Returns its length, NP_ENAMETOOLONG, or another NP_E*. */
int np__tcp_local_address(SOCKET s, char *buf, size_t len);

/* Wraps s, a socket just accepted, in a stream registered with poll under
 * token and interest.  Takes s in every case.  Returns 0 or NP_E*. */
int np__tcp_stream_accepted(np_poll *poll, SOCKET s, uint64_t token,
                            uint32_t interest, np_stream **out);

#endif /* NP_WIN_TCP_H */
