/**
 * The end-of-run summary of a file run: what /metrics would show at that moment, read from the
 * same registry (no second set of counters), in full as JSON (--summary-json) and as a few
 * human lines naming only what is not zero.
 */
import type client from 'prom-client';

type Labels = Record<string, string | number>;
/** A metric without labels is a number; with labels, one entry per label set (the labels and `value`). */
export type SummaryJson = Record<string, number | Array<Labels & { value: number }>>;

/** Every mirror_replay_* metric; histograms as their _count and _sum. */
export async function summaryJson(reg: client.Registry): Promise<SummaryJson> {
  const out: SummaryJson = {};
  for (const m of await reg.getMetricsAsJSON()) {
    if (!m.name.startsWith('mirror_replay_')) continue;
    for (const v of m.values as Array<{ labels: Labels; value: number; metricName?: string }>) {
      const name = v.metricName ?? m.name;
      if (name.endsWith('_bucket')) continue;
      const labels = Object.keys(v.labels).length;
      if (labels === 0 && !Array.isArray(out[name])) out[name] = v.value;
      else ((out[name] ??= []) as Array<Labels & { value: number }>).push({ ...v.labels, value: v.value });
    }
  }
  return out;
}

const LINES: ReadonlyArray<readonly [string, ReadonlyArray<readonly [string, string, string | null]>]> = [
  ['frames', [['read', 'mirror_replay_capture_packets_total', null], ['truncated', 'mirror_replay_capture_truncated_frames_total', null], ['kernel drops', 'mirror_replay_capture_kernel_drops_total', null]]],
  ['decode', [['skipped', 'mirror_replay_decode_skipped_total', 'reason'], ['anomalies', 'mirror_replay_decode_anomalies_total', 'anomaly']]],
  ['reassembly', [['events', 'mirror_replay_reassembly_events_total', 'event'], ['stream bytes skipped', 'mirror_replay_stream_bytes_skipped_total', 'reason']]],
  ['requests', [['parsed', 'mirror_replay_requests_parsed_total', 'protocol'], ['replayed', 'mirror_replay_requests_replayed_total', 'protocol'], ['dropped', 'mirror_replay_requests_dropped_total', 'reason']]],
  ['record', [['frames written', 'mirror_replay_record_frames_written_total', null], ['files', 'mirror_replay_record_files_total', null], ['frames dropped', 'mirror_replay_record_frames_dropped_total', 'reason']]],
];

/** A few lines: per stage, each figure with its non-zero breakdown, e.g. `dropped 3 (timeout 2, queue_full 1)`. */
export function summaryText(s: SummaryJson): string {
  const lines: string[] = [];
  for (const [title, figures] of LINES) {
    const parts: string[] = [];
    for (const [what, name, label] of figures) {
      const v = s[name];
      if (v === undefined) continue;
      if (!Array.isArray(v)) {
        parts.push(`${what} ${v}`);
        continue;
      }
      const by = new Map<string, number>();
      for (const e of v) if (e.value) by.set(label ? String(e[label]) : '', (by.get(label ? String(e[label]) : '') ?? 0) + e.value);
      const total = [...by.values()].reduce((a, b) => a + b, 0);
      const detail = label && by.size ? ` (${[...by].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ')})` : '';
      // Reassembly events are not parts of a whole: only their breakdown means something.
      parts.push(what === 'events' ? `events${detail || ' none'}` : `${what} ${total}${detail}`);
    }
    if (parts.length) lines.push(`  ${title.padEnd(11)}${parts.join('; ')}`);
  }
  return `run summary (the figures /metrics shows):\n${lines.join('\n')}\n`;
}
