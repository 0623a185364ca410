/* counters.c - the counter table (counters.h): the order is both stats.json's and the
 * metrics text's, and a row's key, name and help are written nowhere else. */
#include "report/counters.h"

#include "cache/cache.h"
#include "file/readahead.h"

#define C(j, m, t, h, s, f)                                                                    \
	{                                                                                      \
		j, m, t, h, offsetof(s, f)                                                     \
	}
#define CS aprfs_cache_stats
#define DS aprfs_diskcache_stats
#define RS aprfs_ra_stats

const report_counter report_cache_variant[] = {
    C("chunks_computed", "chunks_computed_total", "counter", "Chunks quantized.", CS,
      chunks_computed),
    C("cache_hits", "cache_hits_total", "counter", "Chunk reads served by the memory cache.",
      CS, cache_hits),
    C("bytes_quantized", "bytes_quantized_total", "counter",
      "Output bytes of the chunks quantized.", CS, bytes_quantized),
    C("bytes_served", "bytes_served_total", "counter", "Bytes returned by reads of APR files.",
      CS, bytes_served),
    {0},
};

const report_counter report_cache[] = {
    C("evictions", "cache_evictions_total", "counter", "Chunks evicted from the memory cache.",
      CS, evictions),
    C("bytes_cached", "cache_bytes", "gauge", "Bytes held by the memory cache.", CS,
      bytes_cached),
    C("budget", "cache_budget_bytes", "gauge", "The memory cache's budget (cache_mb).", CS,
      budget),
    {0},
};

const report_counter report_disk[] = {
    C("hits", "disk_cache_hits_total", "counter", "Entries served from the disk cache.", DS,
      hits),
    C("misses", "disk_cache_misses_total", "counter",
      "Disk cache lookups that found nothing usable (computed here).", DS, misses),
    C("claim_waits", "disk_cache_claim_waits_total", "counter",
      "Lookups that waited for another process computing the same entry.", DS, claim_waits),
    C("bytes_read", "disk_cache_read_bytes_total", "counter", "Entry bytes read on hits.", DS,
      bytes_read),
    C("bytes_written", "disk_cache_written_bytes_total", "counter", "Entry bytes written.", DS,
      bytes_written),
    C("entries_written", "disk_cache_entries_written_total", "counter", "Records written.", DS,
      entries_written),
    C("not_persisted", "disk_cache_not_persisted_total", "counter",
      "Computed entries not written (queue full, degraded, set aside, error).", DS,
      not_persisted),
    C("write_errors", "disk_cache_write_errors_total", "counter", "Failed pack writes.", DS,
      write_errors),
    C("corrupt", "disk_cache_corrupt_total", "counter",
      "Corrupt, truncated or misfiled records or packs found (packs deleted).", DS, corrupt),
    C("evictions", "disk_cache_evictions_total", "counter",
      "Packs deleted to stay in the budget.", DS, evictions),
    C("stalls", "disk_cache_stalls_total", "counter",
      "Times the disk cache was set aside (a read past its deadline or failing).", DS, stalls),
    C("stalled", "disk_cache_stalled", "gauge", "1 while the disk cache is set aside.", DS,
      stalled),
    C("packs", "disk_cache_packs", "gauge", "Pack files in the cache directory.", DS, packs),
    C("packs_sealed", "disk_cache_packs_sealed_total", "counter", "Packs this process sealed.",
      DS, packs_sealed),
    C("packs_recovered", "disk_cache_packs_recovered_total", "counter",
      "Unsealed packs of dead writers recovered.", DS, packs_recovered),
    C("bytes_on_disk", "disk_cache_bytes", "gauge", "Bytes of packs in the cache directory.",
      DS, bytes_on_disk),
    C("budget", "disk_cache_budget_bytes", "gauge", "The disk cache's budget (disk_cache_mb).",
      DS, budget),
    C("queued_bytes", "disk_cache_queued_bytes", "gauge", "Bytes waiting for the writer.", DS,
      queued_bytes),
    C("degraded", "disk_cache_degraded", "gauge",
      "1 while writes are off (a full or read-only disk).", DS, degraded),
    C("degraded_errno", NULL, NULL, NULL, DS, degraded_errno),
    C("peers", "disk_cache_peers", "gauge", "Other processes using the cache directory.", DS,
      peers),
    {0},
};

const report_counter report_disk_variant[] = {
    C("chunk_hits", "disk_cache_chunk_hits_total", "counter",
      "Chunk lookups the disk cache answered (bytes, or a CRC for a footer).", DS, chunk_hits),
    C("chunk_misses", NULL, NULL, NULL, DS, chunk_misses),
    C("content_bytes", "disk_cache_content_bytes_total", "counter",
      "Chunk bytes written to the disk cache, uncompressed.", DS, content_bytes),
    C("stored_bytes", "disk_cache_stored_bytes_total", "counter",
      "Record bytes of those chunks (headers, LZ4 where it saves 10%).", DS, stored_bytes),
    {0},
};

const report_counter report_ra[] = {
    C("queued", "readahead_queued_total", "counter", "Read-ahead jobs accepted.", RS, queued),
    C("warmed", "readahead_warmed_total", "counter", "Read-ahead jobs run to success.", RS,
      warmed),
    C("failed", "readahead_failed_total", "counter", "Read-ahead jobs that failed.", RS,
      failed),
    C("dropped", "readahead_dropped_total", "counter",
      "Read-ahead jobs refused (queue full) or cancelled.", RS, dropped),
    C("pending", "readahead_pending", "gauge", "Read-ahead jobs waiting.", RS, pending),
    {0},
};
