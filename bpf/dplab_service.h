/* Service translation shared by the tc programs: DNAT of a connection to a
 * frontend (cluster IP, or a node address at a node port) to one of its
 * backends, with SNAT where the reply would otherwise not come back through
 * the translator, and the reverse translation of the replies. */
#ifndef DPLAB_SERVICE_H
#define DPLAB_SERVICE_H

#include "dplab_ct.h"

enum nat_result {
	NAT_NONE = 0, /* not ours: untouched */
	NAT_DONE = 1, /* destination translated (reverse: the source) */
	NAT_SNAT = 2, /* ... and the source too (reverse: the destination) */
	NAT_DROP = 3, /* service without backend, no SNAT port free, or a rewrite failed */
};

static __always_inline bool nat_done(enum nat_result r)
{
	return r == NAT_DONE || r == NAT_SNAT;
}

/* Where a connection is translated. */
enum nat_where {
	/* Where the client's packets leave it (its pod programs, or the
	 * node-side veth): cluster IPs and this node's node ports. */
	AT_SOURCE,
	/* Where packets from elsewhere enter the node: node ports only. */
	AT_EDGE,
};

#define SNAT_TRIES 8
#define SNAT_PORT_MIN 32768
#define SNAT_PORT_SPAN 28232 /* up to 60999, Linux's default ephemeral range */

/* Writes the reverse entry of a node-port flow SNATed to this node's
 * address: on the client's own port when free, else on one of a few others
 * picked by hash (two clients may use the same port). -1: none free. */
static __always_inline int snat_reserve(struct lb_ct_key *rev, const struct lb_ct_value *orig,
					const struct lb_config *cfg, __u32 hash, __u64 now)
{
	for (int i = 0; i < SNAT_TRIES; i++) {
		if (i > 0)
			rev->sport = bpf_htons(SNAT_PORT_MIN + (hash + i * 7919) % SNAT_PORT_SPAN);
		struct lb_ct_value *v = bpf_map_lookup_elem(&dplab_ct, rev);
		bool ours = v && v->addr2 == orig->addr2 && v->port2 == orig->port2 &&
			    v->addr == orig->addr && v->port == orig->port;
		if (!v || ours || ct_expired(cfg, rev->proto, v, now))
			return bpf_map_update_elem(&dplab_ct, rev, orig, BPF_ANY) ? -1 : 0;
	}
	return -1;
}

/* Picks a backend for a new flow and writes both of its conntrack entries;
 * `out` gets the translation. -1: no backend, or no SNAT port. */
static __always_inline int ct_create(const struct flow *f, const struct lb_service *svc,
				     const struct lb_config *cfg, enum nat_where where,
				     const struct lb_ct_key *fwd, __u64 now, struct lb_ct_value *out)
{
	__u32 count = svc->backend_count;
	if (count == 0)
		return -1;
	__u32 hash = flow_hash(f);
	struct lb_backend_key bk = { .service_id = svc->service_id, .index = hash % count };
	struct lb_backend *be = bpf_map_lookup_elem(&dplab_backends, &bk);
	if (!be)
		return -1;
	struct lb_ct_value t = {
		.addr = be->addr,
		.port = be->port,
		.addr2 = f->saddr,
		.port2 = f->sport,
		.flags = ct_closing(f),
		.seen_ns = now,
	};
	if (where == AT_SOURCE && be->addr == f->saddr) {
		/* Hairpin: a pod would drop a packet from its own address
		 * (martian source), so it comes from the hairpin address. */
		t.addr2 = hairpin_addr(cfg);
		t.flags |= CT_F_SNAT;
	} else if (where == AT_EDGE && !(be->flags & BACKEND_F_LOCAL)) {
		/* Backend on another node: from this node's address, so that
		 * the replies come back here for the reverse translation. */
		if (!cfg->snat_addr)
			return -1;
		t.addr2 = cfg->snat_addr;
		t.flags |= CT_F_SNAT;
	}
	struct lb_ct_value orig = {
		.addr = f->daddr,
		.port = f->dport,
		.addr2 = f->saddr,
		.port2 = f->sport,
		.flags = t.flags,
		.seen_ns = now,
	};
	struct lb_ct_key rev = {
		.saddr = t.addr2,
		.daddr = t.addr,
		.sport = t.port2,
		.dport = t.port,
		.proto = f->proto,
		.dir = fwd->dir + 1,
	};
	/* Reverse entry first: a reply can only exist once the forward packet
	 * has left, and by then both entries are in. */
	if (where == AT_EDGE && (t.flags & CT_F_SNAT)) {
		if (snat_reserve(&rev, &orig, cfg, hash, now))
			return -1;
		t.port2 = rev.sport;
	} else {
		bpf_map_update_elem(&dplab_ct, &rev, &orig, BPF_ANY);
	}
	bpf_map_update_elem(&dplab_ct, fwd, &t, BPF_ANY);
	*out = t;
	return 0;
}

/* Translates a packet to a frontend: the first packet of a flow picks the
 * backend, later ones find it in conntrack. `f` follows the rewrite. */
static __always_inline enum nat_result service_dnat(struct __sk_buff *skb, struct flow *f,
						    const struct lb_config *cfg, enum nat_where where)
{
	struct lb_service_key sk = { .addr = f->daddr, .port = f->dport, .proto = f->proto };
	struct lb_service *svc = bpf_map_lookup_elem(&dplab_services, &sk);
	if (!svc)
		return NAT_NONE;
	if (where == AT_EDGE && !(svc->flags & SVC_F_NODE_PORT))
		return NAT_NONE;

	struct lb_ct_key fwd = {
		.saddr = f->saddr,
		.daddr = f->daddr,
		.sport = f->sport,
		.dport = f->dport,
		.proto = f->proto,
		.dir = where == AT_EDGE ? CT_EDGE : CT_SERVICE,
	};
	__u64 now = 0;
	__u32 closing = ct_closing(f);
	struct lb_ct_value t;
	struct lb_ct_value *known = ct_lookup(&fwd, cfg, &now);
	if (known) {
		if (ct_touch(known, cfg, f->proto, closing, now)) {
			struct lb_ct_key rev = {
				.saddr = known->addr2,
				.daddr = known->addr,
				.sport = known->port2,
				.dport = known->port,
				.proto = f->proto,
				.dir = fwd.dir + 1,
			};
			ct_touch_twin(&rev, closing, now);
		}
		t = *known;
	} else if (ct_create(f, svc, cfg, where, &fwd, bpf_ktime_get_ns(), &t)) {
		return NAT_DROP;
	}

	if (rewrite_endpoint(skb, f, true, t.addr, t.port))
		return NAT_DROP;
	if (!(t.flags & CT_F_SNAT))
		return NAT_DONE;
	if (rewrite_endpoint(skb, f, false, t.addr2, t.port2))
		return NAT_DROP;
	return NAT_SNAT;
}

/* Reverse translation of a reply found in conntrack entries of kind `dir`
 * (CT_REVERSE or CT_EDGE_REVERSE): the frontend becomes its source again,
 * and the client its destination where SNAT had replaced it. */
static __always_inline enum nat_result service_rev_nat(struct __sk_buff *skb, struct flow *f,
						       const struct lb_config *cfg, __u8 dir)
{
	struct lb_ct_key rev = {
		.saddr = f->daddr,
		.daddr = f->saddr,
		.sport = f->dport,
		.dport = f->sport,
		.proto = f->proto,
		.dir = dir,
	};
	__u64 now = 0;
	struct lb_ct_value *v = ct_lookup(&rev, cfg, &now);
	if (!v)
		return NAT_NONE;
	__u32 closing = ct_closing(f);
	if (ct_touch(v, cfg, f->proto, closing, now)) {
		struct lb_ct_key fwd = {
			.saddr = v->addr2,
			.daddr = v->addr,
			.sport = v->port2,
			.dport = v->port,
			.proto = f->proto,
			.dir = dir - 1,
		};
		ct_touch_twin(&fwd, closing, now);
	}
	struct lb_ct_value o = *v;
	if (rewrite_endpoint(skb, f, false, o.addr, o.port))
		return NAT_DROP;
	if (!(o.flags & CT_F_SNAT))
		return NAT_DONE;
	if (rewrite_endpoint(skb, f, true, o.addr2, o.port2))
		return NAT_DROP;
	return NAT_SNAT;
}

#endif
