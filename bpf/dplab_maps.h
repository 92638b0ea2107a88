/* BTF map definitions shared by every dplab load balancer object. Each map is
 * pinned by name, so the objects (and later processes) loaded with the same
 * pin directory (one per node of a lab) share one instance of each map. */
#ifndef DPLAB_MAPS_H
#define DPLAB_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "dplab_lb.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* memory for what is programmed only */
	__uint(max_entries, DPLAB_MAX_SERVICES);
	__type(key, struct lb_service_key);
	__type(value, struct lb_service);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dplab_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, DPLAB_MAX_BACKENDS);
	__type(key, struct lb_backend_key);
	__type(value, struct lb_backend);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dplab_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DPLAB_MAX_FLOWS);
	__type(key, struct lb_ct_key);
	__type(value, struct lb_ct_value);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dplab_ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DPLAB_MAX_ENDPOINTS);
	__type(key, __be32);
	__type(value, struct lb_endpoint);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dplab_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lb_counters);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dplab_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lb_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dplab_config SEC(".maps");

#endif
