/* socket-lb: service addresses translated at the socket, as Cilium's
 * socket-level load balancing (bpf/bpf_sock.c there). Attached to the lab's
 * cgroup, whose children hold every pod's processes:
 * - connect4 (TCP, connected UDP) and sendmsg4 (unconnected UDP) replace a
 *   cluster ip:port, or a node address:node port, by one backend pod ip:port
 *   before the kernel routes anything, so no packet ever carries a service
 *   address and nothing is NATed;
 * - recvmsg4 gives a UDP reply the service address back, and getpeername4
 *   shows the application the address it connected to.
 * Services and backends are the tc programs' maps (pinned by name in the
 * run's folder); node ports are services keyed by address 0.0.0.0. */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "dplab_maps.h"
#include "dplab_sock_lb.h"

#define AF_INET_FAMILY 2

/* Return values of cgroup sock_addr programs. */
#define SYS_PROCEED 1
#define SYS_REJECT 0 /* the syscall fails with EPERM */

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DPLAB_MAX_SOCKETS);
	__type(key, struct sock_xlate_key);
	__type(value, struct sock_xlate_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dplab_sock_xlate SEC(".maps");

/* The nodes' own addresses (underlay, pod gateways): node ports answer there. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DPLAB_MAX_NODE_ADDRS);
	__type(key, __be32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dplab_node_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sock_lb_counters);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dplab_sock_counters SEC(".maps");

enum xlate {
	XLATE_NONE = 0,   /* not a service: untouched */
	XLATE_DONE = 1,   /* rewritten */
	XLATE_REJECT = 2, /* a service, but no backend to give */
};

static __always_inline struct sock_lb_counters *sock_counters(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&dplab_sock_counters, &zero);
}

/* The service at addr:port/proto: a cluster IP, else a node port when addr
 * is one of the nodes' addresses. */
static __always_inline struct lb_service *find_service(__be32 addr, __be16 port, __u8 proto)
{
	struct lb_service_key key = { .addr = addr, .port = port, .proto = proto };
	struct lb_service *svc = bpf_map_lookup_elem(&dplab_services, &key);

	if (svc)
		return svc;
	if (!bpf_map_lookup_elem(&dplab_node_addrs, &addr))
		return NULL;
	key.addr = 0;
	return bpf_map_lookup_elem(&dplab_services, &key);
}

/* The backend this socket already has for the service, if it still backs
 * it at the same index (an endpoint removal shifts indexes). */
static __always_inline bool kept_backend(const struct lb_service *svc,
					 const struct sock_xlate_key *fwd,
					 struct sock_xlate_value *out)
{
	struct sock_xlate_value *known = bpf_map_lookup_elem(&dplab_sock_xlate, fwd);

	if (!known || known->index >= svc->backend_count)
		return false;
	struct lb_backend_key bk = { .service_id = svc->service_id, .index = known->index };
	struct lb_backend *be = bpf_map_lookup_elem(&dplab_backends, &bk);

	if (!be || be->addr != known->addr || be->port != known->port)
		return false;
	*out = *known;
	return true;
}

/* A backend chosen at random over the service's backends. */
static __always_inline bool pick_backend(const struct lb_service *svc,
					 struct sock_xlate_value *out)
{
	__u32 count = svc->backend_count;

	if (count == 0)
		return false;
	__u32 index = bpf_get_prandom_u32() % count;
	struct lb_backend_key bk = { .service_id = svc->service_id, .index = index };
	struct lb_backend *be = bpf_map_lookup_elem(&dplab_backends, &bk);

	if (!be)
		return false;
	*out = (struct sock_xlate_value){ .addr = be->addr, .port = be->port, .index = index };
	return true;
}

/* connect4 / sendmsg4: service address -> backend address. */
static __always_inline enum xlate sock4_forward(struct bpf_sock_addr *ctx)
{
	if (ctx->user_family != AF_INET_FAMILY)
		return XLATE_NONE;
	__be32 addr = ctx->user_ip4;
	__be16 port = (__be16)ctx->user_port;
	struct lb_service *svc = find_service(addr, port, (__u8)ctx->protocol);

	if (!svc)
		return XLATE_NONE;
	__u64 cookie = bpf_get_socket_cookie(ctx);
	struct sock_xlate_key fwd = {
		.cookie = cookie, .addr = addr, .port = port, .dir = SOCK_XLATE_FORWARD
	};
	struct sock_xlate_value backend;

	if (!kept_backend(svc, &fwd, &backend)) {
		if (!pick_backend(svc, &backend))
			return XLATE_REJECT;
		if (bpf_map_update_elem(&dplab_sock_xlate, &fwd, &backend, BPF_ANY))
			return XLATE_REJECT;
	}
	struct sock_xlate_key rev = {
		.cookie = cookie, .addr = backend.addr, .port = backend.port, .dir = SOCK_XLATE_REVERSE
	};
	struct sock_xlate_value service = { .addr = addr, .port = port };

	if (bpf_map_update_elem(&dplab_sock_xlate, &rev, &service, BPF_ANY))
		return XLATE_REJECT;
	ctx->user_ip4 = backend.addr;
	ctx->user_port = (__u32)backend.port;
	return XLATE_DONE;
}

/* recvmsg4 / getpeername4: backend address -> the service address, for
 * sockets that sock4_forward translated. */
static __always_inline bool sock4_reverse(struct bpf_sock_addr *ctx)
{
	struct sock_xlate_key rev = {
		.cookie = bpf_get_socket_cookie(ctx),
		.addr = ctx->user_ip4,
		.port = (__be16)ctx->user_port,
		.dir = SOCK_XLATE_REVERSE,
	};
	struct sock_xlate_value *service = bpf_map_lookup_elem(&dplab_sock_xlate, &rev);

	if (!service)
		return false;
	ctx->user_ip4 = service->addr;
	ctx->user_port = (__u32)service->port;
	return true;
}

SEC("cgroup/connect4")
int sock4_connect(struct bpf_sock_addr *ctx)
{
	enum xlate r = sock4_forward(ctx);
	struct sock_lb_counters *c = sock_counters();

	if (c && r == XLATE_DONE)
		c->connect++;
	if (c && r == XLATE_REJECT)
		c->rejected++;
	return r == XLATE_REJECT ? SYS_REJECT : SYS_PROCEED;
}

SEC("cgroup/sendmsg4")
int sock4_sendmsg(struct bpf_sock_addr *ctx)
{
	enum xlate r = sock4_forward(ctx);
	struct sock_lb_counters *c = sock_counters();

	if (c && r == XLATE_DONE)
		c->sendmsg++;
	if (c && r == XLATE_REJECT)
		c->rejected++;
	return r == XLATE_REJECT ? SYS_REJECT : SYS_PROCEED;
}

/* recvmsg4 and getpeername4 may only proceed (the verifier insists on 1). */
SEC("cgroup/recvmsg4")
int sock4_recvmsg(struct bpf_sock_addr *ctx)
{
	struct sock_lb_counters *c = sock_counters();

	if (sock4_reverse(ctx) && c)
		c->recvmsg++;
	return SYS_PROCEED;
}

SEC("cgroup/getpeername4")
int sock4_getpeername(struct bpf_sock_addr *ctx)
{
	struct sock_lb_counters *c = sock_counters();

	if (sock4_reverse(ctx) && c)
		c->getpeername++;
	return SYS_PROCEED;
}

char LICENSE[] SEC("license") = "GPL";
