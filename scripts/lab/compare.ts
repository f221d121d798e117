/**
 * Compares what production received with what the test environment received, request by
 * request (matched on X-Test-Id). Faithful means: same method, target and body hash; the same
 * header names with the same case, values, order and duplicates, leaving out X-Forwarded-* and
 * hop-by-hop fields; Host is the destination's unless --keep-host-header.
 */
import fs from 'node:fs';

export interface RecordLine {
  method: string;
  url: string;
  version: string;
  rawHeaders: string[];
  rawTrailers: string[];
  bodyLen: number;
  bodySha: string;
}

const IGNORED = new Set(['x-forwarded-for', 'x-forwarded-port', 'x-forwarded-proto', 'x-forwarded-host', 'connection', 'keep-alive', 'proxy-connection', 'te', 'upgrade', 'expect']);

export function readRecords(file: string): RecordLine[] {
  if (!fs.existsSync(file)) return [];
  const s = fs.readFileSync(file, 'utf8');
  // The recorder may be mid-line: take whole lines only.
  return s.slice(0, s.lastIndexOf('\n') + 1).split('\n').filter(Boolean).map((l) => JSON.parse(l) as RecordLine);
}

export function testId(r: RecordLine): string | undefined {
  for (let i = 0; i < r.rawHeaders.length; i += 2) if (r.rawHeaders[i].toLowerCase() === 'x-test-id') return r.rawHeaders[i + 1];
  return undefined;
}

/** The fields that must be identical, as "Name: value" lines; Host's value as the test should see it. */
export function comparableHeaders(r: RecordLine, hostValue?: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < r.rawHeaders.length; i += 2) {
    const n = r.rawHeaders[i];
    const lower = n.toLowerCase();
    if (IGNORED.has(lower)) continue;
    out.push(`${n}: ${lower === 'host' && hostValue !== undefined ? hostValue : r.rawHeaders[i + 1]}`);
  }
  return out;
}

export interface Comparison {
  prodCount: number;
  testCount: number;
  matched: number;
  missing: string[];
  duplicated: string[];
  unexpected: string[];
  mismatches: Array<{ id: string; what: string; prod: unknown; test: unknown }>;
}

export function compare(prod: RecordLine[], test: RecordLine[], opts: { destinationHost: string; keepHost: boolean }): Comparison {
  const byId = new Map<string, RecordLine[]>();
  for (const t of test) {
    const id = testId(t) ?? '(none)';
    byId.set(id, [...(byId.get(id) ?? []), t]);
  }
  const res: Comparison = { prodCount: prod.length, testCount: test.length, matched: 0, missing: [], duplicated: [], unexpected: [], mismatches: [] };
  const seen = new Set<string>();
  for (const p of prod) {
    const id = testId(p) ?? '(none)';
    seen.add(id);
    const ts = byId.get(id) ?? [];
    if (ts.length === 0) {
      res.missing.push(id);
      continue;
    }
    if (ts.length > 1) res.duplicated.push(id);
    const t = ts[0];
    const before = res.mismatches.length;
    const check = (what: string, a: unknown, b: unknown) => {
      if (JSON.stringify(a) !== JSON.stringify(b)) res.mismatches.push({ id, what, prod: a, test: b });
    };
    check('method', p.method, t.method);
    check('url', p.url, t.url);
    check('body', `${p.bodyLen} ${p.bodySha}`, `${t.bodyLen} ${t.bodySha}`);
    check('trailers', p.rawTrailers, t.rawTrailers);
    const hasHost = p.rawHeaders.some((_, i) => i % 2 === 0 && p.rawHeaders[i].toLowerCase() === 'host');
    check('headers', comparableHeaders(p, hasHost && !opts.keepHost ? opts.destinationHost : undefined), comparableHeaders(t));
    if (res.mismatches.length === before) res.matched++;
  }
  for (const id of byId.keys()) if (!seen.has(id)) res.unexpected.push(id);
  return res;
}

/** Per X-Test-Id prefix (the behaviour): how many production got and how many arrived faithfully. */
export function byBehaviour(prod: RecordLine[], c: Comparison): Array<{ behaviour: string; production: number; test: number }> {
  const bad = new Set([...c.missing, ...c.mismatches.map((m) => m.id)]);
  const rows = new Map<string, { behaviour: string; production: number; test: number }>();
  for (const p of prod) {
    const id = testId(p) ?? '(none)';
    const b = id.replace(/-\d+$/, '');
    const r = rows.get(b) ?? { behaviour: b, production: 0, test: 0 };
    r.production++;
    if (!bad.has(id)) r.test++;
    rows.set(b, r);
  }
  return [...rows.values()];
}
