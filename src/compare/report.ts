/**
 * Summarises diff logs (src/compare/difflog.ts): how many comparisons of each result, the
 * mismatch rate, the routes with the most mismatches, and one example of each kind. Noise
 * (differences the baseline shares) is counted apart and left out of the rate and the top routes.
 */
import fs from 'node:fs';
import readline from 'node:readline';

const MISMATCHES = ['status_mismatch', 'trailer_mismatch', 'body_mismatch', 'header_mismatch'] as const;

export interface DiffLine {
  kind: 'diff';
  destination: string;
  method: string;
  path: string;
  route: string;
  result: string;
  noise: boolean;
  unpaired?: { side: string; reason: string };
  status: { production: number | null; test: number | null };
  headers: string[];
  headerValues: Record<string, { production: string | null; test: string | null }>;
  /** HTTP/2 answers with trailers: the differing trailer names and their values. */
  trailers?: string[];
  trailerValues?: Record<string, { production: string | null; test: string | null }>;
  /** A gRPC call: its method (the path) and each side's grpc-status and grpc-message. */
  grpc?: { method: string; production: GrpcStatus; test: GrpcStatus };
  body: Record<'production' | 'test', { length: number; sha256: string; snippet?: string } | null>;
}

interface GrpcStatus {
  code: string | null;
  message: string | null;
}

export interface Report {
  files: string[];
  /** Comparisons by result from the stats lines (noise included); null when the log has none. */
  compared: Record<string, number> | null;
  /** Diff lines by result (noise excluded), and noise by result. */
  differences: Record<string, number>;
  noise: Record<string, number>;
  /** Mismatches (not noise, not unpaired) over compared responses that were paired; null if unknown. */
  mismatchRate: number | null;
  topRoutes: Array<{ route: string; mismatches: number; byResult: Record<string, number> }>;
  examples: Record<string, DiffLine>;
  badLines: number;
}

export async function buildReport(files: string[], top = 10): Promise<Report> {
  let compared: Record<string, number> | null = null;
  const differences: Record<string, number> = {};
  const noise: Record<string, number> = {};
  const routes = new Map<string, Record<string, number>>();
  const examples: Record<string, DiffLine> = {};
  let badLines = 0;
  const add = (o: Record<string, number>, k: string, n = 1) => (o[k] = (o[k] ?? 0) + n);
  for (const f of files) {
    const rl = readline.createInterface({ input: fs.createReadStream(f), crlfDelay: Infinity });
    for await (const line of rl) {
      if (!line.trim()) continue;
      let o: { kind?: string } & Record<string, unknown>;
      try {
        o = JSON.parse(line);
      } catch {
        badLines++;
        continue;
      }
      if (o.kind === 'stats') {
        compared ??= {};
        for (const byResult of Object.values((o.counts ?? {}) as Record<string, Record<string, number>>)) for (const [r, n] of Object.entries(byResult)) add(compared, r, n);
      } else if (o.kind === 'diff') {
        const d = o as unknown as DiffLine;
        if (d.noise) {
          add(noise, d.result);
          examples[`noise:${d.result}`] ??= d;
          continue;
        }
        add(differences, d.result);
        examples[d.result] ??= d;
        if (d.result !== 'unpaired') add((routes.get(d.route) ?? routes.set(d.route, {}).get(d.route)!), d.result);
      } else badLines++;
    }
  }
  let mismatchRate: number | null = null;
  if (compared) {
    const paired = Object.entries(compared).reduce((a, [r, n]) => (r === 'unpaired' ? a : a + n), 0);
    const real = MISMATCHES.reduce((a, r) => a + (differences[r] ?? 0), 0);
    mismatchRate = paired > 0 ? real / paired : 0;
  }
  const topRoutes = [...routes.entries()]
    .map(([route, byResult]) => ({ route, byResult, mismatches: Object.values(byResult).reduce((a, n) => a + n, 0) }))
    .sort((a, b) => b.mismatches - a.mismatches || a.route.localeCompare(b.route))
    .slice(0, top);
  return { files, compared, differences, noise, mismatchRate, topRoutes, examples, badLines };
}

export function formatReport(r: Report): string {
  const out: string[] = [];
  const list = (o: Record<string, number>) => Object.entries(o).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ') || 'none';
  out.push(`diff log: ${r.files.join(', ')}`);
  if (r.compared) {
    const total = Object.values(r.compared).reduce((a, n) => a + n, 0);
    out.push(`compared: ${total} (${list(r.compared)})`);
    out.push(`mismatch rate: ${(100 * (r.mismatchRate ?? 0)).toFixed(2)}% of paired responses, noise excluded`);
  } else out.push('compared: unknown (no stats lines in these files); differences only');
  out.push(`differences: ${list(r.differences)}`);
  out.push(`noise (the baseline differs the same way): ${list(r.noise)}`);
  out.push('top routes by mismatch:');
  if (!r.topRoutes.length) out.push('  none');
  for (const t of r.topRoutes) out.push(`  ${String(t.mismatches).padStart(7)}  ${t.route}  (${list(t.byResult)})`);
  out.push('examples:');
  for (const [kind, d] of Object.entries(r.examples)) out.push(`  ${kind}: ${describe(d)}`);
  if (r.badLines) out.push(`${r.badLines} line(s) not understood`);
  return `${out.join('\n')}\n`;
}

function describe(d: DiffLine): string {
  const head = d.grpc
    ? `gRPC ${d.grpc.method} → ${d.destination}: grpc-status ${grpcText(d.grpc.production)} vs ${grpcText(d.grpc.test)}, status ${d.status.production ?? '-'} vs ${d.status.test ?? '-'}`
    : `${d.method} ${d.path} → ${d.destination}: status ${d.status.production ?? '-'} vs ${d.status.test ?? '-'}`;
  if (d.result === 'unpaired') return `${head}; no ${d.unpaired?.side ?? '?'} answer (${d.unpaired?.reason ?? '?'})`;
  const parts = [head];
  if (d.result === 'body_mismatch' && d.body.production && d.body.test) {
    parts.push(`body ${d.body.production.length} B sha256 ${d.body.production.sha256.slice(0, 12)} vs ${d.body.test.length} B ${d.body.test.sha256.slice(0, 12)}`);
  }
  if (d.trailers?.length) parts.push(`trailers ${fields(d.trailers, d.trailerValues ?? {})}`);
  if (d.headers.length) parts.push(`headers ${fields(d.headers, d.headerValues)}`);
  return parts.join('; ');
}

function fields(names: string[], values: Record<string, { production: string | null; test: string | null }>): string {
  return names.map((h) => `${h} (${JSON.stringify(values[h]?.production ?? null)} vs ${JSON.stringify(values[h]?.test ?? null)})`).join(', ');
}

function grpcText(s: GrpcStatus | undefined): string {
  if (!s || s.code === null) return '-';
  return s.message ? `${s.code} ${JSON.stringify(s.message)}` : s.code;
}
