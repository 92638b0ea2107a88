/* veth-ebpf: attached at tc ingress of every pod's host-side veth, so it sees
 * each packet a pod sends. It delivers packets for pods of this node straight
 * into the destination pod with bpf_redirect_peer (eBPF host routing),
 * skipping the node namespace's routing and the second veth hop's backlog
 * queue; with the eBPF service proxy it also translates services first (DNAT,
 * hairpin SNAT, reverse NAT of replies to local clients). Everything else
 * continues up the node's stack. */
#include "dplab_deliver.h"

SEC("classifier")
int veth_ingress(struct __sk_buff *skb)
{
	struct lb_counters *c = counters();
	struct lb_config *cfg = config();
	if (!c || !cfg)
		return TC_ACT_OK;
	c->runs++;

	struct flow f;
	if (!parse_flow(skb, &f))
		return deliver_other(skb, c);

	enum nat_result r = service_dnat(skb, &f, cfg, AT_SOURCE);
	if (nat_done(r)) {
		c->dnat++;
		if (r == NAT_SNAT)
			c->snat++;
	} else if (r == NAT_NONE) {
		r = service_rev_nat(skb, &f, cfg, CT_REVERSE);
		if (nat_done(r))
			c->rev_nat++;
	}
	if (r == NAT_DROP) {
		c->dropped++;
		return TC_ACT_SHOT;
	}
	return deliver_local(skb, f.daddr, c);
}

char LICENSE[] SEC("license") = "GPL";
