/**
 * Short functions and files (STYLE.md): no function in src/ over 80 lines, no file over 700.
 * The few over today are listed with their length, so they cannot grow; an entry that is no
 * longer over the limit fails too, so the list only shrinks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MAX_FUNCTION_LINES = 80;
const MAX_FILE_LINES = 700;

/** Over the limit today: file, or file#function, and its length in lines. To be split, then removed. */
const KNOWN_OVER: Record<string, number> = {
  'src/http/parser.ts': 1064,
  'src/http/parser.ts#onLine': 132,
  'src/reassemble/table.ts#data': 95,
};

function sourceFiles(dir = 'src'): string[] {
  return fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sourceFiles(`${dir}/${e.name}`) : e.name.endsWith('.ts') ? [`${dir}/${e.name}`] : []));
}

/** Lines of each file and of each function with a body (named by its name, or by its line). */
export function measure(file: string, text: string): Map<string, number> {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const line = (pos: number) => sf.getLineAndCharacterOfPosition(pos).line;
  const out = new Map<string, number>([[file, text.split('\n').length - (text.endsWith('\n') ? 1 : 0)]]);
  const visit = (n: ts.Node): void => {
    if (ts.isFunctionLike(n) && 'body' in n && n.body) {
      const named = n.name ?? (ts.isVariableDeclaration(n.parent) || ts.isPropertyAssignment(n.parent) || ts.isPropertyDeclaration(n.parent) ? n.parent.name : undefined);
      const name = named && ts.isIdentifier(named) ? named.text : `line ${line(n.getStart(sf)) + 1}`;
      out.set(`${file}#${name}`, Math.max(out.get(`${file}#${name}`) ?? 0, line(n.end) - line(n.getStart(sf)) + 1));
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

function overLimit(sizes: Map<string, number>): Map<string, number> {
  return new Map([...sizes].filter(([k, n]) => n > (k.includes('#') ? MAX_FUNCTION_LINES : MAX_FILE_LINES)));
}

test(`src/: no function over ${MAX_FUNCTION_LINES} lines, no file over ${MAX_FILE_LINES}, beyond the known ones (which do not grow)`, () => {
  const over = new Map<string, number>();
  for (const f of sourceFiles()) for (const [k, n] of overLimit(measure(f, fs.readFileSync(path.join(ROOT, f), 'utf8')))) over.set(k, n);
  const grown = [...over].filter(([k, n]) => n > (KNOWN_OVER[k] ?? 0)).map(([k, n]) => `${k}: ${n} lines`);
  assert.deepEqual(grown, []);
  const fixed = Object.keys(KNOWN_OVER).filter((k) => !over.has(k));
  assert.deepEqual(fixed, [], 'no longer over the limit: remove from KNOWN_OVER');
});

test('measure names functions, methods and arrow functions, and counts their lines', () => {
  const body = Array.from({ length: 90 }, (_, i) => `  x += ${i};`).join('\n');
  const text = [`function long() {\n  let x = 0;\n${body}\n}`, 'const short = () => 1;', `class C {\n  m(): void {\n${body}\n  }\n}`, ''].join('\n');
  const sizes = measure('src/x.ts', text);
  assert.equal(sizes.get('src/x.ts#long'), 93);
  assert.equal(sizes.get('src/x.ts#short'), 1);
  assert.equal(sizes.get('src/x.ts#m'), 92);
  assert.deepEqual([...overLimit(sizes).keys()], ['src/x.ts#long', 'src/x.ts#m']);
});
