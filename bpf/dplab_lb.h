/* Structures shared by the dplab service load balancer programs and their
 * loader (mirrored by #[repr(C)] types in lab/src/ebpf/maps.rs: keep the two
 * in sync, field by field, padding included).
 *
 * Addresses and ports are stored in network byte order, as they appear in the
 * packet, so the datapath never converts them.
 */
#ifndef DPLAB_LB_H
#define DPLAB_LB_H

#include <linux/types.h>

#define DPLAB_MAX_SERVICES 16384
#define DPLAB_MAX_BACKENDS 65536
#define DPLAB_MAX_FLOWS 65536
#define DPLAB_MAX_ENDPOINTS 1024

/* cluster ip:port/proto -> service */
struct lb_service_key {
	__be32 addr;
	__be16 port;
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad;
};

struct lb_service {
	__u32 backend_count;
	__u32 service_id;
};

/* (service id, index < backend_count) -> backend */
struct lb_backend_key {
	__u32 service_id;
	__u32 index;
};

struct lb_backend {
	__be32 addr;
	__be16 port;
	__u16 pad;
};

/* Connection tracking: two entries per flow in one LRU map.
 * CT_SERVICE: client -> cluster ip:port, value = chosen backend (affinity).
 * CT_REVERSE: client -> backend ip:port, value = cluster ip:port (reverse NAT
 * of replies, looked up with the reply's addresses swapped). */
#define CT_SERVICE 0
#define CT_REVERSE 1

struct lb_ct_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 dir;
	__u16 pad;
};

struct lb_ct_value {
	__be32 addr;
	__be16 port;
	__u16 pad;
};

/* pod ip -> where to deliver it on this node */
#define ENDPOINT_F_PLAIN_REDIRECT 1 /* bpf_redirect to the host end, not redirect_peer */

struct lb_endpoint {
	__u32 ifindex; /* the pod's host-side veth, in the node namespace */
	__u32 flags;
	__u8 pod_mac[6]; /* rewritten into the frame when not all zero */
	__u8 host_mac[6];
};

/* One per CPU, single slot. */
struct lb_counters {
	__u64 runs;
	__u64 dnat;
	__u64 rev_nat;
	__u64 redirected;
	__u64 passed;
	__u64 dropped;
};

#endif
