/* veth-ebpf: attached at tc ingress of every pod's host-side veth, so it sees
 * each packet a pod sends. It does the service DNAT / reverse NAT and delivers
 * packets for pods of this node straight into the destination pod with
 * bpf_redirect_peer, skipping the node namespace's routing and the second
 * veth hop's backlog queue. Everything else continues up the node's stack. */
#include "dplab_nat.h"

static __always_inline int deliver_local(struct __sk_buff *skb, const struct flow *f,
					 struct lb_counters *c)
{
	struct lb_endpoint *ep = bpf_map_lookup_elem(&dplab_endpoints, &f->daddr);
	if (!ep) {
		c->passed++;
		return TC_ACT_OK;
	}
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

SEC("classifier")
int veth_ingress(struct __sk_buff *skb)
{
	struct lb_counters *c = counters();
	if (!c)
		return TC_ACT_OK;
	c->runs++;

	struct flow f;
	if (!parse_flow(skb, &f)) {
		c->passed++;
		return TC_ACT_OK;
	}

	enum nat_result r = service_dnat(skb, &f);
	if (r == NAT_DONE) {
		c->dnat++;
	} else if (r == NAT_NONE) {
		r = service_rev_nat(skb, &f);
		if (r == NAT_DONE)
			c->rev_nat++;
	}
	if (r == NAT_DROP) {
		c->dropped++;
		return TC_ACT_SHOT;
	}
	return deliver_local(skb, &f, c);
}

char LICENSE[] SEC("license") = "GPL";
