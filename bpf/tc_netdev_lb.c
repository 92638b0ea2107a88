/* The node's edge: attached at tc ingress and egress of a node's underlay
 * link and of its VXLAN device, where traffic from and to other nodes
 * passes.
 *
 * Ingress translates node ports reached from outside the node (DNAT to a
 * backend; SNAT to this node's address when the backend lives on another
 * node, as kube-proxy and Cilium do for externalTrafficPolicy=Cluster, so
 * that its replies come back here) and reverse-translates the replies of
 * those SNATed flows. With eBPF host routing it also reverse-translates
 * replies to local clients of services whose backend is remote, and hands
 * packets for local pods straight to them (bpf_redirect_peer).
 *
 * Egress reverse-translates the replies of node-port flows to a local
 * backend as they leave the node. */
#include "dplab_deliver.h"

SEC("classifier")
int netdev_ingress(struct __sk_buff *skb)
{
	struct lb_counters *c = counters();
	struct lb_config *cfg = config();
	if (!c || !cfg)
		return TC_ACT_OK;
	c->runs++;

	struct flow f;
	if (!parse_flow(skb, &f)) {
		if (cfg->flags & CFG_F_HOST_ROUTING)
			return deliver_other(skb, c);
		c->passed++;
		return TC_ACT_OK;
	}
	/* Replies first: a SNAT port may equal a node port. */
	enum nat_result r = service_rev_nat(skb, &f, cfg, CT_EDGE_REVERSE);
	if (nat_done(r)) {
		c->rev_nat++;
		return deliver_or_forward(skb, &f, cfg, c);
	}
	if (r == NAT_NONE) {
		r = service_dnat(skb, &f, cfg, AT_EDGE);
		if (nat_done(r))
			c->dnat++;
		if (r == NAT_SNAT) {
			c->snat++;
			return fib_forward(skb, &f, c);
		}
	}
	if (r == NAT_DROP) {
		c->dropped++;
		return TC_ACT_SHOT;
	}
	if (!(cfg->flags & CFG_F_HOST_ROUTING)) {
		c->passed++;
		return TC_ACT_OK;
	}
	if (r == NAT_NONE) {
		r = service_rev_nat(skb, &f, cfg, CT_REVERSE);
		if (r == NAT_DROP) {
			c->dropped++;
			return TC_ACT_SHOT;
		}
		if (nat_done(r))
			c->rev_nat++;
	}
	return deliver_local(skb, f.daddr, c);
}

SEC("classifier")
int netdev_egress(struct __sk_buff *skb)
{
	struct lb_counters *c = counters();
	struct lb_config *cfg = config();
	if (!c || !cfg)
		return TC_ACT_OK;
	c->runs++;

	struct flow f;
	if (parse_flow(skb, &f)) {
		enum nat_result r = service_rev_nat(skb, &f, cfg, CT_EDGE_REVERSE);
		if (r == NAT_DROP) {
			c->dropped++;
			return TC_ACT_SHOT;
		}
		if (nat_done(r))
			c->rev_nat++;
	}
	c->passed++;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
