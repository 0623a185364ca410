#!/usr/bin/env bats
# metrics.bats - MOUNTPOINT/.aprfs/metrics on a real mount: Prometheus text exposition
# format as promtool parses and lints it, the same counters as stats.json, the chunk compute
# latency histogram consistent with them, and the disk cache's counters with cache_dir.

load helpers

setup() {
	work_setup
}

teardown() {
	cleanup_mounts
}

@test "metrics parse with promtool and say what stats.json says" {
	"$GENMODEL" --layers 2 --hidden 256 --inter 512 --vocab 2000 "$SRCD" >/dev/null
	mount_fg "$SRCD" "$MNT" -o cache_dir="$W/dc"
	[ "$(ls "$MNT/.aprfs")" = "$(printf 'metrics\nstats.json')" ]
	cat "$MNT/model.q4k.apr" "$MNT/model.q8.apr" >/dev/null
	local i
	for i in $(seq 100); do # read-ahead and disk writes settle
		[ "$(jq '.readahead.pending + .disk_cache.queued_bytes' "$MNT/.aprfs/stats.json")" = 0 ] &&
			break
		sleep 0.1
	done
	cp "$MNT/.aprfs/metrics" "$W/metrics"
	cp "$MNT/.aprfs/stats.json" "$W/stats.json"
	run timeout 120 promtool check metrics <"$W/metrics"
	[ "$status" -eq 0 ] || { echo "$output"; false; }
	[ -z "$output" ] || { echo "promtool: $output"; false; }
	timeout 60 python3 - "$W/metrics" "$W/stats.json" <<-'PY'
		import json, re, sys
		samples = {}
		for line in open(sys.argv[1]):
		    if line.startswith("#") or not line.strip():
		        continue
		    name, value = line.rsplit(" ", 1)
		    samples[name] = float(value)
		st = json.load(open(sys.argv[2]))
		def m(name, **labels):
		    key = name + ("{" + ",".join('%s="%s"' % kv for kv in labels.items()) + "}"
		                  if labels else "")
		    return samples[key]
		for v, c in st["variants"].items():
		    assert m("aprfs_chunks_computed_total", variant=v) == c["chunks_computed"], v
		    assert m("aprfs_cache_hits_total", variant=v) == c["cache_hits"], v
		    assert m("aprfs_bytes_served_total", variant=v) == c["bytes_served"], v
		    assert m("aprfs_bytes_quantized_total", variant=v) == c["bytes_quantized"], v
		    n = m("aprfs_chunk_compute_seconds_count", variant=v)
		    assert n == c["chunks_computed"], (v, n)
		    assert m("aprfs_chunk_compute_seconds_bucket", variant=v, le="+Inf") == n
		    les = sorted((float(k.split('le="')[1].rstrip('"}')), val) for k, val in
		                 samples.items() if k.startswith(
		                     'aprfs_chunk_compute_seconds_bucket{variant="%s",' % v)
		                 and "+Inf" not in k)
		    assert all(a[1] <= b[1] for a, b in zip(les, les[1:])), "buckets cumulative"
		assert st["variants"]["q4k"]["chunks_computed"] > 0
		assert m("aprfs_cache_bytes") == st["cache"]["bytes_cached"]
		assert m("aprfs_cache_budget_bytes") == st["cache"]["budget"]
		d = st["disk_cache"]
		for k in ("hits", "misses", "entries_written", "corrupt", "evictions"):
		    assert m("aprfs_disk_cache_%s_total" % k) == d[k], k
		assert m("aprfs_disk_cache_written_bytes_total") == d["bytes_written"] > 0
		assert m("aprfs_readahead_queued_total") == st["readahead"]["queued"]
		assert m("aprfs_checkpoints", state="open") == st["checkpoints"]["open"] == 1
	PY
}
