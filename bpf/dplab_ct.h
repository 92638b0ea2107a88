/* Conntrack of the translated flows: entries carry the time they were last
 * used and die after a timeout (TCP, other protocols, or closing once a FIN
 * or RST was seen), checked on every lookup. Without it an entry would live
 * until the LRU evicts it, and a reused tuple would find a stale backend. */
#ifndef DPLAB_CT_H
#define DPLAB_CT_H

#include "dplab_nat.h"

static __always_inline __u64 ct_timeout(const struct lb_config *cfg, __u8 proto, __u32 flags)
{
	__u64 t;
	if (flags & CT_F_CLOSING) {
		t = cfg->ct_closing_ns;
		return t ? t : DPLAB_CT_CLOSING_NS;
	}
	if (proto == IPPROTO_TCP) {
		t = cfg->ct_tcp_ns;
		return t ? t : DPLAB_CT_TCP_NS;
	}
	t = cfg->ct_other_ns;
	return t ? t : DPLAB_CT_OTHER_NS;
}

/* Signed: another CPU may have stamped an entry after `now` was read. */
static __always_inline bool ct_expired(const struct lb_config *cfg, __u8 proto,
				       const struct lb_ct_value *v, __u64 now)
{
	return (__s64)(now - v->seen_ns) > (__s64)ct_timeout(cfg, proto, v->flags);
}

/* The live entry for `key`, or NULL; a dead one is deleted on the way. The
 * clock is read (into `now`) only when there is an entry to judge. */
static __always_inline struct lb_ct_value *ct_lookup(const struct lb_ct_key *key,
						     const struct lb_config *cfg, __u64 *now)
{
	struct lb_ct_value *v = bpf_map_lookup_elem(&dplab_ct, key);
	if (!v)
		return NULL;
	*now = bpf_ktime_get_ns();
	if (ct_expired(cfg, key->proto, v, *now)) {
		bpf_map_delete_elem(&dplab_ct, key);
		return NULL;
	}
	return v;
}

static __always_inline __u32 ct_closing(const struct flow *f)
{
	return f->proto == IPPROTO_TCP && (f->tcp_flags & (TCP_FIN | TCP_RST)) ? CT_F_CLOSING : 0;
}

/* Marks an entry used at `now`. Writes only when it matters (closing seen,
 * or an eighth of its lifetime gone) so that busy flows do not write the
 * shared entry on every packet; returns whether it wrote. */
static __always_inline bool ct_touch(struct lb_ct_value *v, const struct lb_config *cfg,
				     __u8 proto, __u32 closing, __u64 now)
{
	__u32 flags = v->flags | closing;
	if (flags == v->flags && (__s64)(now - v->seen_ns) <= (__s64)(ct_timeout(cfg, proto, flags) >> 3))
		return false;
	v->flags = flags;
	v->seen_ns = now;
	return true;
}

/* Keeps the other entry of a flow alive with the one just used, so that a
 * flow carrying packets one way only does not lose its reverse entry. */
static __always_inline void ct_touch_twin(const struct lb_ct_key *twin, __u32 closing, __u64 now)
{
	struct lb_ct_value *v = bpf_map_lookup_elem(&dplab_ct, twin);
	if (v) {
		v->flags |= closing;
		v->seen_ns = now;
	}
}

#endif
