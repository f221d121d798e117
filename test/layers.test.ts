/**
 * The import graph of src/ follows the layout in STYLE.md: data flows left to right, so a file
 * imports only from its own layer and the layers below it, a stage knows only its neighbours'
 * types, and no files import each other in a circle. Type-only imports count: a type is a
 * dependency on the layer that defines it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * The layers, lowest first. `base` (src/errors.ts, log.ts, units.ts, linktypes.ts) is visible to everyone.
 * A stage lists the layers it `sees` (besides base): its neighbours as data flows. A layer
 * without `sees` may import from any layer below it.
 */
export const LAYERS: ReadonlyArray<{ name: string; sees?: readonly string[] }> = [
  { name: 'base' },
  { name: 'capture', sees: [] },
  { name: 'decode', sees: [] },
  { name: 'reassemble', sees: ['decode'] },
  { name: 'http', sees: ['reassemble'] },
  // HTTP/2 beside HTTP/1.x: a connection starts as either, and h2c upgrades from HTTP/1.1; both hand on HttpRequest.
  { name: 'http2', sees: ['reassemble', 'http'] },
  { name: 'replay', sees: ['http'] },
  // Shadow testing sits beside replay: it reads production's answers from reassembly through the
  // HTTP reply framer, and the destinations' answers from replay.
  { name: 'compare', sees: ['reassemble', 'http', 'http2', 'replay'] },
  { name: 'metrics' },
  { name: 'ops' },
  { name: 'doctor' },
  { name: 'pipeline' },
  { name: 'config' },
  { name: 'daemon' },
  { name: 'cli' },
];

const BASE_FILES = new Set(['src/errors.ts', 'src/log.ts', 'src/units.ts', 'src/linktypes.ts']);

export interface Edge {
  from: string;
  to: string;
}

/** The layer of a file under src/ (paths relative to the repository, with '/'). */
export function layerOf(file: string): string {
  if (BASE_FILES.has(file)) return 'base';
  if (file === 'src/daemon.ts') return 'daemon';
  const m = /^src\/([^/]+)\//.exec(file);
  if (!m) throw new Error(`${file}: not in a layer; add it to LAYERS in test/layers.test.ts`);
  return m[1];
}

/** Relative module references of one file: import/export ... from, import(), and new URL('./x.js', import.meta.url) (worker scripts). */
export function referencesOf(fileName: string, text: string): string[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out: string[] = [];
  const visit = (n: ts.Node): void => {
    if ((ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) out.push(n.moduleSpecifier.text);
    else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument) && ts.isStringLiteral(n.argument.literal)) out.push(n.argument.literal.text);
    else if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword && n.arguments[0] && ts.isStringLiteral(n.arguments[0])) out.push(n.arguments[0].text);
    else if (ts.isNewExpression(n) && n.expression.getText(sf) === 'URL' && n.arguments?.length === 2 && ts.isStringLiteral(n.arguments[0]) && n.arguments[1].getText(sf) === 'import.meta.url') out.push(n.arguments[0].text);
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out.filter((s) => s.startsWith('./') || s.startsWith('../'));
}

/** Every edge between files under src/. */
export function importGraph(root = ROOT): Edge[] {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = `${dir}/${e.name}`;
      if (e.isDirectory()) walk(rel);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) files.push(rel);
    }
  };
  walk('src');
  const edges: Edge[] = [];
  for (const from of files.sort()) {
    for (const spec of referencesOf(from, fs.readFileSync(path.join(root, from), 'utf8'))) {
      const to = path.posix.join(path.posix.dirname(from), spec).replace(/\.js$/, '.ts');
      if (!files.includes(to)) throw new Error(`${from}: imports ${spec}, which is not a file under src/`);
      edges.push({ from, to });
    }
  }
  return edges;
}

/** Edges that point up the layers, or past a stage's neighbours, each with why. */
export function layerViolations(edges: readonly Edge[]): string[] {
  const rank = new Map(LAYERS.map((l, i) => [l.name, i]));
  const bad: string[] = [];
  for (const { from, to } of edges) {
    const lf = layerOf(from);
    const lt = layerOf(to);
    if (lf === lt || lt === 'base') continue;
    const rf = rank.get(lf);
    const rt = rank.get(lt);
    if (rf === undefined || rt === undefined) {
      bad.push(`${from} → ${to}: layer ${rf === undefined ? lf : lt} is not in LAYERS (test/layers.test.ts)`);
      continue;
    }
    const sees = LAYERS[rf].sees;
    if (rt > rf) bad.push(`${from} → ${to}: ${lf} imports from ${lt}, a higher layer`);
    else if (sees && !sees.includes(lt)) bad.push(`${from} → ${to}: ${lf} may import only from ${['base', ...sees].join(', ')}, not ${lt}`);
  }
  return bad;
}

/** Each circle of imports once, as the files in order (a → b → … → a). */
export function importCycles(edges: readonly Edge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const { from, to } of edges) next.set(from, [...(next.get(from) ?? []), to]);
  const cycles: string[][] = [];
  const seen = new Set<string>();
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 'open');
    stack.push(f);
    for (const t of next.get(f) ?? []) {
      if (state.get(t) === 'open') {
        const cycle = [...stack.slice(stack.indexOf(t)), t];
        const key = [...cycle.slice(1)].sort().join(' ');
        if (!seen.has(key)) {
          seen.add(key);
          cycles.push(cycle);
        }
      } else if (!state.has(t)) visit(t);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of [...next.keys()].sort()) if (!state.has(f)) visit(f);
  return cycles;
}

test('src/: no import points up a layer or past a stage’s neighbours', () => {
  assert.deepEqual(layerViolations(importGraph()), []);
});

test('src/: no import circle, type-only imports included', () => {
  assert.deepEqual(importCycles(importGraph()).map((c) => c.join(' → ')), []);
});

test('every layer has files, and every file under src/ is in a layer', () => {
  const edges = importGraph();
  const used = new Set(edges.flatMap((e) => [layerOf(e.from), layerOf(e.to)]));
  assert.deepEqual(LAYERS.map((l) => l.name).filter((n) => !used.has(n)), []);
  assert.equal(LAYERS.length, new Set(LAYERS.map((l) => l.name)).size);
  for (const l of LAYERS) for (const s of l.sees ?? []) assert.ok(LAYERS.findIndex((x) => x.name === s) < LAYERS.indexOf(l), `${l.name} sees ${s}, which is not below it`);
});

test('the checks find an upward import, a skipped neighbour and a circle, naming the edge', () => {
  const edges: Edge[] = [
    { from: 'src/replay/destination.ts', to: 'src/config/units.ts' },
    { from: 'src/replay/loop.ts', to: 'src/reassemble/stream.ts' },
    { from: 'src/pipeline/stages.ts', to: 'src/capture/ring.ts' },
    { from: 'src/pipeline/workers.ts', to: 'src/pipeline/capture-worker.ts' },
    { from: 'src/pipeline/capture-worker.ts', to: 'src/pipeline/messages.ts' },
    { from: 'src/pipeline/messages.ts', to: 'src/pipeline/workers.ts' },
  ];
  assert.deepEqual(layerViolations(edges), [
    'src/replay/destination.ts → src/config/units.ts: replay imports from config, a higher layer',
    'src/replay/loop.ts → src/reassemble/stream.ts: replay may import only from base, http, not reassemble',
  ]);
  assert.deepEqual(importCycles(edges).map((c) => c.join(' → ')), ['src/pipeline/capture-worker.ts → src/pipeline/messages.ts → src/pipeline/workers.ts → src/pipeline/capture-worker.ts']);
});

test('type-only imports, re-exports, dynamic imports and worker script URLs are all read', () => {
  const text = [
    "import type { A } from '../a/x.js';",
    "import { type B } from './b.js';",
    "export { C } from '../c/y.js';",
    "export * from './d.js';",
    "import fs from 'node:fs';",
    "type E = import('../e/z.js').E;",
    "const m = await import('./f.js');",
    "const w = new URL('./g.js', import.meta.url);",
    "const u = new URL('https://example.com/');",
  ].join('\n');
  assert.deepEqual(referencesOf('src/p/q.ts', text), ['../a/x.js', './b.js', '../c/y.js', './d.js', '../e/z.js', './f.js', './g.js']);
});
