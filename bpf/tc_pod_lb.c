/* ipvlan-ebpf: attached to a pod's eth0 inside the pod namespace (as a CNI
 * without a host-side device would). Egress translates service addresses to
 * a backend, ingress gives replies their service address back. No redirect:
 * the device itself carries the packet on. The maps are pinned and shared by
 * every pod of the run. */
#include "dplab_nat.h"

SEC("classifier")
int pod_egress(struct __sk_buff *skb)
{
	struct lb_counters *c = counters();
	if (!c)
		return TC_ACT_OK;
	c->runs++;

	struct flow f;
	if (parse_flow(skb, &f)) {
		enum nat_result r = service_dnat(skb, &f);
		if (r == NAT_DROP) {
			c->dropped++;
			return TC_ACT_SHOT;
		}
		if (r == NAT_DONE)
			c->dnat++;
	}
	c->passed++;
	return TC_ACT_OK;
}

SEC("classifier")
int pod_ingress(struct __sk_buff *skb)
{
	struct lb_counters *c = counters();
	if (!c)
		return TC_ACT_OK;
	c->runs++;

	struct flow f;
	if (parse_flow(skb, &f)) {
		enum nat_result r = service_rev_nat(skb, &f);
		if (r == NAT_DROP) {
			c->dropped++;
			return TC_ACT_SHOT;
		}
		if (r == NAT_DONE)
			c->rev_nat++;
	}
	c->passed++;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
