/* ipvlan-ebpf: attached to a pod's eth0 inside the pod namespace (as a CNI
 * without a host-side device would). Egress translates service addresses to
 * a backend, ingress gives replies their service address back. No redirect:
 * the device itself carries the packet on. The maps are pinned and shared by
 * every pod of the run. */
#include "dplab_nat.h"

/* Both directions count and drop alike; only the translation differs. */
static __always_inline int pod_nat(struct __sk_buff *skb, int egress)
{
	struct lb_counters *c = counters();
	if (!c)
		return TC_ACT_OK;
	c->runs++;

	struct flow f;
	if (parse_flow(skb, &f)) {
		enum nat_result r = egress ? service_dnat(skb, &f) : service_rev_nat(skb, &f);
		if (r == NAT_DROP) {
			c->dropped++;
			return TC_ACT_SHOT;
		}
		if (r == NAT_DONE) {
			if (egress)
				c->dnat++;
			else
				c->rev_nat++;
		}
	}
	c->passed++;
	return TC_ACT_OK;
}

SEC("classifier")
int pod_egress(struct __sk_buff *skb)
{
	return pod_nat(skb, 1);
}

SEC("classifier")
int pod_ingress(struct __sk_buff *skb)
{
	return pod_nat(skb, 0);
}
