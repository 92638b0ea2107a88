/* The eBPF service proxy on wirings without eBPF host routing: attached to a
 * pod's eth0 inside the pod namespace (as a CNI without a host-side device
 * would). Egress translates services to a backend, ingress gives replies
 * their service address back. No redirect to other pods: the device carries
 * the packet on; only a pod's connection to itself (hairpin) is looped back
 * into its own ingress. The maps are those of the pod's node. */
#include "dplab_deliver.h"

SEC("classifier")
int pod_egress(struct __sk_buff *skb)
{
	struct lb_counters *c = counters();
	struct lb_config *cfg = config();
	if (!c || !cfg)
		return TC_ACT_OK;
	c->runs++;

	struct flow f;
	if (!parse_flow(skb, &f)) {
		c->passed++;
		return TC_ACT_OK;
	}
	enum nat_result r = service_dnat(skb, &f, cfg, AT_SOURCE);
	if (nat_done(r)) {
		c->dnat++;
		if (r == NAT_SNAT)
			c->snat++;
	} else if (r == NAT_NONE && f.daddr == hairpin_addr(cfg)) {
		/* The pod answering its own hairpinned connection. */
		r = service_rev_nat(skb, &f, cfg, CT_REVERSE);
		if (nat_done(r))
			c->rev_nat++;
	}
	if (r == NAT_DROP) {
		c->dropped++;
		return TC_ACT_SHOT;
	}
	if (r == NAT_SNAT)
		return loop_back(skb, c);
	c->passed++;
	return TC_ACT_OK;
}

SEC("classifier")
int pod_ingress(struct __sk_buff *skb)
{
	struct lb_counters *c = counters();
	struct lb_config *cfg = config();
	if (!c || !cfg)
		return TC_ACT_OK;
	c->runs++;

	struct flow f;
	if (parse_flow(skb, &f)) {
		enum nat_result r = service_rev_nat(skb, &f, cfg, CT_REVERSE);
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
