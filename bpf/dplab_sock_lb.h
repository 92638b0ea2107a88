/* Structures of the socket-level load balancer (cgroup_sock_lb.c), mirrored
 * by #[repr(C)] types in lab/src/ebpf/cgroup_lb/layout.rs: keep the two in
 * sync, field by field, padding included. Services and backends use the tc
 * programs' maps and layout (dplab_lb.h); these are its own. */
#ifndef DPLAB_SOCK_LB_H
#define DPLAB_SOCK_LB_H

#include <linux/types.h>

#define DPLAB_MAX_SOCKETS 65536
#define DPLAB_MAX_NODE_ADDRS 1024

/* Per socket translation, in one LRU map:
 * SOCK_XLATE_FORWARD: (cookie, service ip:port) -> the backend this socket
 *   was given, so that every datagram of an unconnected UDP socket goes to
 *   the same backend;
 * SOCK_XLATE_REVERSE: (cookie, backend ip:port) -> the service ip:port, to
 *   give replies (recvmsg) and getpeername the address the application
 *   asked for. Keyed by cookie: only sockets we translated are translated
 *   back. */
#define SOCK_XLATE_FORWARD 0
#define SOCK_XLATE_REVERSE 1

struct sock_xlate_key {
	__u64 cookie;
	__be32 addr;
	__be16 port;
	__u8 dir;
	__u8 pad;
};

struct sock_xlate_value {
	__be32 addr;
	__be16 port;
	__u16 pad;
	__u32 index; /* forward entries: the backend's index in its service */
};

/* One per CPU, single slot. */
struct sock_lb_counters {
	__u64 connect;     /* connect4: destination rewritten to a backend */
	__u64 sendmsg;     /* sendmsg4: datagram destination rewritten */
	__u64 recvmsg;     /* recvmsg4: reply source given the service back */
	__u64 getpeername; /* getpeername4: peer shown as the service */
	__u64 rejected;    /* service without backends, or no room to remember */
};

#endif
