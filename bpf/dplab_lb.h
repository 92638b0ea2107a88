/* Structures shared by the dplab service load balancer programs and their
 * loader (mirrored by #[repr(C)] types in lab/src/ebpf/maps/layout.rs: keep
 * the two in sync, field by field, padding included).
 *
 * Addresses and ports are stored in network byte order, as they appear in the
 * packet, so the datapath never converts them.
 *
 * Every node of a lab has its own set of these maps (as every Kubernetes node
 * has its own): services with node-local backend flags, the node's conntrack,
 * its local pods and its configuration.
 */
#ifndef DPLAB_LB_H
#define DPLAB_LB_H

#include <linux/types.h>

#define DPLAB_MAX_SERVICES 65536
#define DPLAB_MAX_BACKENDS 131072
#define DPLAB_MAX_FLOWS 131072 /* conntrack entries: two per flow */
#define DPLAB_MAX_ENDPOINTS 1024

/* frontend ip:port/proto -> service. A cluster IP is one frontend; a node
 * port adds one per address of the node. */
struct lb_service_key {
	__be32 addr;
	__be16 port;
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad;
};

/* The frontend is one of this node's addresses at a node port: it is also
 * translated where traffic enters the node (its underlay device). */
#define SVC_F_NODE_PORT 1

struct lb_service {
	__u32 backend_count;
	__u32 service_id;
	__u16 flags;
	__u16 pad;
};

/* (service id, index < backend_count) -> backend */
struct lb_backend_key {
	__u32 service_id;
	__u32 index;
};

/* The backend is a pod of this node (node ports to it need no SNAT). */
#define BACKEND_F_LOCAL 1

struct lb_backend {
	__be32 addr;
	__be16 port;
	__u16 flags;
};

/* Connection tracking: two entries per flow in one LRU map, each with the
 * time it was last used; an entry unused for longer than its timeout is
 * dead (deleted when found, else evicted by the LRU).
 * CT_SERVICE / CT_EDGE: the client's tuple towards the frontend -> the
 *   backend chosen (affinity) and the source after SNAT. CT_SERVICE is
 *   written where the client's packets leave it (pod programs, node-side
 *   veth), CT_EDGE where a node port is reached from outside the node.
 * CT_REVERSE / CT_EDGE_REVERSE: the translated tuple (source after SNAT ->
 *   backend) -> the frontend (the reply's source) and the client (the
 *   reply's destination when SNAT rewrote it); looked up with the reply's
 *   addresses swapped. */
#define CT_SERVICE 0
#define CT_REVERSE 1
#define CT_EDGE 2
#define CT_EDGE_REVERSE 3

struct lb_ct_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 dir;
	__u16 pad;
};

#define CT_F_SNAT 1	/* the source was rewritten (hairpin or node port) */
#define CT_F_CLOSING 2	/* a FIN or RST was seen: the closing timeout applies */

struct lb_ct_value {
	__be32 addr;  /* forward: backend; reverse: frontend */
	__be32 addr2; /* forward: source after translation; reverse: client */
	__be16 port;
	__be16 port2;
	__u32 flags;
	__u64 seen_ns; /* bpf_ktime_get_ns() of the last use */
};

/* pod ip -> where to deliver it on this node */
#define ENDPOINT_F_PLAIN_REDIRECT 1 /* bpf_redirect to the host end, not redirect_peer */

struct lb_endpoint {
	__u32 ifindex; /* the pod's host-side veth, in the node namespace */
	__u32 flags;
	__u8 pod_mac[6]; /* rewritten into the frame when not all zero */
	__u8 host_mac[6];
};

/* The node's settings, one slot; zero fields take the defaults below. */
#define CFG_F_HOST_ROUTING 1 /* the datapath delivers to local pods itself */

#define DPLAB_DEFAULT_HAIRPIN 0xa9fe2a01 /* 169.254.42.1, host order */
#define DPLAB_CT_TCP_NS (21600ULL * 1000000000ULL)
#define DPLAB_CT_OTHER_NS (60ULL * 1000000000ULL)
#define DPLAB_CT_CLOSING_NS (10ULL * 1000000000ULL)

struct lb_config {
	__be32 snat_addr;    /* the node's own address: source of node-port SNAT */
	__be32 hairpin_addr; /* source of a pod's connection to itself */
	__u32 flags;
	__u32 pad;
	__u64 ct_tcp_ns;
	__u64 ct_other_ns;
	__u64 ct_closing_ns;
};

/* One per CPU, single slot. */
struct lb_counters {
	__u64 runs;
	__u64 dnat;
	__u64 rev_nat;
	__u64 redirected; /* handed straight to a local pod (redirect_peer) */
	__u64 passed;
	__u64 dropped;
	__u64 snat;	 /* connections whose source was rewritten */
	__u64 forwarded; /* sent out by a FIB lookup (node-port SNAT paths) */
};

#endif
