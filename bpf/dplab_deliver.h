/* Where a packet goes after translation: straight into a pod of this node
 * (eBPF host routing), out of the node by a FIB lookup (packets whose
 * source is now this node's own address, which the node's stack would
 * reject as martian), or back into the sending pod itself (hairpin). */
#ifndef DPLAB_DELIVER_H
#define DPLAB_DELIVER_H

#include "dplab_service.h"

#define AF_INET 2

/* The endpoint of a pod of this node, if `addr` is one. */
static __always_inline struct lb_endpoint *local_endpoint(__be32 addr)
{
	return bpf_map_lookup_elem(&dplab_endpoints, &addr);
}

/* Hands the packet to the local pod behind `ep` (bpf_redirect_peer: into
 * the pod's eth0 ingress, skipping the node's routing and the second veth
 * hop's backlog queue). */
static __always_inline int redirect_to(struct __sk_buff *skb, struct lb_endpoint *ep,
				       struct lb_counters *c)
{
	__u32 ifindex = ep->ifindex;
	__u32 flags = ep->flags;
	__u8 macs[12];
	__builtin_memcpy(macs, ep->pod_mac, 6);
	__builtin_memcpy(macs + 6, ep->host_mac, 6);

	/* The frame was addressed to the sender's gateway (its host veth);
	 * give it the addresses the destination pod expects. */
	__u64 any = 0;
	__builtin_memcpy(&any, macs, 6);
	if (any && bpf_skb_store_bytes(skb, 0, macs, 12, 0)) {
		c->dropped++;
		return TC_ACT_SHOT;
	}
	c->redirected++;
	if (flags & ENDPOINT_F_PLAIN_REDIRECT)
		return bpf_redirect(ifindex, 0);
	return bpf_redirect_peer(ifindex, 0);
}

/* Local pods get the packet directly; anything else continues up the
 * node's stack. */
static __always_inline int deliver_local(struct __sk_buff *skb, __be32 daddr,
					 struct lb_counters *c)
{
	struct lb_endpoint *ep = local_endpoint(daddr);
	if (!ep) {
		c->passed++;
		return TC_ACT_OK;
	}
	return redirect_to(skb, ep, c);
}

/* The same for a packet no service can concern (not TCP or UDP, or a
 * fragment): IPv4 by its destination, anything else up the stack. */
static __always_inline int deliver_other(struct __sk_buff *skb, struct lb_counters *c)
{
	__be32 daddr;
	if (!parse_ipv4_daddr(skb, &daddr)) {
		c->passed++;
		return TC_ACT_OK;
	}
	return deliver_local(skb, daddr, c);
}

/* Sends the packet out of the node the way the FIB routes its destination
 * (the underlay, or the VXLAN device), filling in the L2 addresses. */
static __always_inline int fib_forward(struct __sk_buff *skb, const struct flow *f,
				       struct lb_counters *c)
{
	/* tot_len stays 0: the kernel then checks the MTU against the skb
	 * itself, which knows GSO (a GRO'd packet is larger than any MTU). */
	struct bpf_fib_lookup p = {};
	p.family = AF_INET;
	p.l4_protocol = f->proto;
	p.sport = f->sport;
	p.dport = f->dport;
	p.ipv4_src = f->saddr;
	p.ipv4_dst = f->daddr;
	p.ifindex = skb->ingress_ifindex;

	long rc = bpf_fib_lookup(skb, &p, sizeof(p), 0);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		if (bpf_skb_store_bytes(skb, 0, p.dmac, 6, 0) ||
		    bpf_skb_store_bytes(skb, 6, p.smac, 6, 0)) {
			c->dropped++;
			return TC_ACT_SHOT;
		}
		c->forwarded++;
		return bpf_redirect(p.ifindex, 0);
	}
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		struct bpf_redir_neigh nh = { .nh_family = AF_INET, .ipv4_nh = p.ipv4_dst };
		c->forwarded++;
		return bpf_redirect_neigh(p.ifindex, &nh, sizeof(nh), 0);
	}
	/* No route, forwarding off, or too big for the way out. */
	c->dropped++;
	return TC_ACT_SHOT;
}

/* A local pod gets it directly when host routing is on; else out by FIB. */
static __always_inline int deliver_or_forward(struct __sk_buff *skb, const struct flow *f,
					      const struct lb_config *cfg, struct lb_counters *c)
{
	if (cfg->flags & CFG_F_HOST_ROUTING) {
		struct lb_endpoint *ep = local_endpoint(f->daddr);
		if (ep)
			return redirect_to(skb, ep, c);
	}
	return fib_forward(skb, f, c);
}

/* Hairpin inside a pod: the packet, now addressed to the pod itself, goes
 * back into the pod's own interface instead of out to the node. */
static __always_inline int loop_back(struct __sk_buff *skb, struct lb_counters *c)
{
	__u8 own[6];
	if (bpf_skb_load_bytes(skb, 6, own, 6) || bpf_skb_store_bytes(skb, 0, own, 6, 0)) {
		c->dropped++;
		return TC_ACT_SHOT;
	}
	return bpf_redirect(skb->ifindex, BPF_F_INGRESS);
}

#endif
