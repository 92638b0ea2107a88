/* Packet parsing and address rewriting shared by the tc programs. */
#ifndef DPLAB_NAT_H
#define DPLAB_NAT_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "dplab_maps.h"

#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

#define IP_CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))
#define IP_SADDR_OFF (ETH_HLEN + offsetof(struct iphdr, saddr))
#define IP_DADDR_OFF (ETH_HLEN + offsetof(struct iphdr, daddr))
#define TCP_CSUM_OFF 16
#define UDP_CSUM_OFF 6
#define TCP_FLAGS_OFF 13
#define TCP_FIN 0x01
#define TCP_RST 0x04

/* What the programs need from an IPv4 TCP/UDP packet. */
struct flow {
	__u32 l4_off;
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 tcp_flags;
};

static __always_inline struct lb_counters *counters(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&dplab_counters, &zero);
}

static __always_inline struct lb_config *config(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&dplab_config, &zero);
}

static __always_inline __be32 hairpin_addr(const struct lb_config *cfg)
{
	return cfg->hairpin_addr ? cfg->hairpin_addr : bpf_htonl(DPLAB_DEFAULT_HAIRPIN);
}

/* Fills `f` from an unfragmented IPv4 TCP or UDP packet; returns false for
 * anything else (ARP, IPv6, ICMP, fragments), which the caller passes on. */
static __always_inline bool parse_flow(struct __sk_buff *skb, struct flow *f)
{
	const __u32 min_len = ETH_HLEN + sizeof(struct iphdr) + 4;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	/* Headers written by a local stack are linear; pull in case they are not. */
	if (data + min_len > data_end && skb->len >= min_len) {
		bpf_skb_pull_data(skb, min_len);
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
	}
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > data_end)
		return false;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl < 5)
		return false;
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return false;
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return false;

	__u32 l4_off = ETH_HLEN + ip->ihl * 4;
	__u8 *l4 = data + l4_off;
	if ((void *)(l4 + 4) > data_end)
		return false;

	f->l4_off = l4_off;
	f->saddr = ip->saddr;
	f->daddr = ip->daddr;
	f->proto = ip->protocol;
	f->sport = *(__be16 *)l4;
	f->dport = *(__be16 *)(l4 + 2);
	f->tcp_flags = 0;
	if (f->proto == IPPROTO_TCP) {
		/* Conntrack needs FIN and RST; the header may be only partly linear. */
		if ((void *)(l4 + TCP_FLAGS_OFF + 1) <= data_end)
			f->tcp_flags = l4[TCP_FLAGS_OFF];
		else
			bpf_skb_load_bytes(skb, l4_off + TCP_FLAGS_OFF, &f->tcp_flags, 1);
	}
	return true;
}

/* The destination of any IPv4 packet (ICMP, fragments too): host routing
 * delivers by address alone. */
static __always_inline bool parse_ipv4_daddr(struct __sk_buff *skb, __be32 *daddr)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return false;
	*daddr = ip->daddr;
	return true;
}

static __always_inline __u32 rotl32(__u32 x, __u32 r)
{
	return (x << r) | (x >> (32 - r));
}

static __always_inline __u32 murmur_mix(__u32 h, __u32 k)
{
	k *= 0xcc9e2d51;
	k = rotl32(k, 15);
	k *= 0x1b873593;
	h ^= k;
	h = rotl32(h, 13);
	return h * 5 + 0xe6546b64;
}

/* Spreads flows over backends; the choice is then kept in conntrack. */
static __always_inline __u32 flow_hash(const struct flow *f)
{
	__u32 h = 0x9747b28c;
	h = murmur_mix(h, f->saddr);
	h = murmur_mix(h, f->daddr);
	h = murmur_mix(h, ((__u32)f->sport << 16) | f->dport);
	h = murmur_mix(h, f->proto);
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

/* Rewrites the source (dst == false) or destination address and port, fixing
 * the IPv4 header checksum and the TCP/UDP checksum (pseudo header included),
 * and `f` with them. A UDP checksum of 0 ("none") stays 0. */
static __always_inline int rewrite_endpoint(struct __sk_buff *skb, struct flow *f, bool dst,
					    __be32 new_addr, __be16 new_port)
{
	__u32 addr_off = dst ? IP_DADDR_OFF : IP_SADDR_OFF;
	__u32 port_off = f->l4_off + (dst ? 2 : 0);
	__be32 old_addr = dst ? f->daddr : f->saddr;
	__be16 old_port = dst ? f->dport : f->sport;
	__u32 csum_off = f->l4_off + (f->proto == IPPROTO_TCP ? TCP_CSUM_OFF : UDP_CSUM_OFF);
	__u64 l4_flags = f->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;

	if (bpf_l4_csum_replace(skb, csum_off, old_addr, new_addr, l4_flags | BPF_F_PSEUDO_HDR | 4))
		return -1;
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_addr, new_addr, 4))
		return -1;
	if (bpf_skb_store_bytes(skb, addr_off, &new_addr, 4, 0))
		return -1;
	if (old_port != new_port) {
		if (bpf_l4_csum_replace(skb, csum_off, old_port, new_port, l4_flags | 2))
			return -1;
		if (bpf_skb_store_bytes(skb, port_off, &new_port, 2, 0))
			return -1;
	}
	if (dst) {
		f->daddr = new_addr;
		f->dport = new_port;
	} else {
		f->saddr = new_addr;
		f->sport = new_port;
	}
	return 0;
}

#endif
