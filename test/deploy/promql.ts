// Helpers for the deploy tests: which series the daemon exports, and which a PromQL expression reads.
import { zeroCaptureStats } from '../../src/capture/source.js';
import { Metrics, type PipelineProbe } from '../../src/metrics/registry.js';

const counts = { interface: 'vxlan0', ...zeroCaptureStats() };
const zeroProbe: PipelineProbe = {
  // One source, readable both as a list of sources and as the counts of the only one, so the helper
  // keeps working whichever shape the registry's probe has.
  capture: (() => Object.assign([counts], counts)) as unknown as PipelineProbe['capture'],
  decodeAnomalies: () => new Float64Array(64),
  decodeSkips: () => new Float64Array(64),
  reassemblyEvents: () => new Float64Array(64),
  flowsOpen: () => 0,
  reassemblyHeldBytes: () => 0,
  httpBufferedBytes: () => 0,
  destinations: () => [{ label: 'http://127.0.0.1:1', queueDepth: 0, inFlight: 0 }],
};

/** Every series name a scrape of the daemon can show (histograms with _bucket/_sum/_count), from the real registry. */
export async function exportedSeriesNames(): Promise<Set<string>> {
  const m = new Metrics(['http://127.0.0.1:1'], zeroProbe);
  // Observe once so the histogram prints its series.
  m.replayed('http://127.0.0.1:1', 200, 0.01);
  const names = new Set<string>();
  for (const line of (await m.registry.metrics()).split('\n')) {
    const mm = /^(?:# TYPE )?([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
    if (mm && !line.startsWith('# HELP')) names.add(mm[1]);
  }
  return names;
}

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan']);

/** The metric names a PromQL expression selects (functions, labels, strings, durations and dashboard variables left out). */
export function selectedMetrics(expr: string): string[] {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ') // strings
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // range and subquery durations
    .replace(/\boffset\s+-?[\dsmhdwy]+/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ') // label lists
    .replace(/\$\{?\w+\}?/g, ' '); // Grafana variables
  const out: string[] = [];
  for (const m of s.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?/g)) {
    if (m[1]) continue; // a function call
    const name = m[0];
    if (!KEYWORDS.has(name.toLowerCase()) && !/^\d/.test(name)) out.push(name);
  }
  return out;
}
