// The lint config (eslint.config.js) enforces what it claims: `npm test` runs `eslint .` on the tree,
// and these check that the rules issue #11's bar depends on fire where they should, so a config slip
// (a wrong glob, a rule switched off) cannot turn the lint into a pass that checks nothing.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ESLint } from 'eslint';
import { ROOT } from '../scripts/lab/harness.js';

const eslint = new ESLint({ cwd: ROOT });

/** `rule:severity` for each finding (2 error, 1 warning) of `code` linted as if it lived at `filePath`. */
async function findings(code: string, filePath: string): Promise<string[]> {
  const [r] = await eslint.lintText(code, { filePath });
  return r.messages.map((m) => `${m.ruleId}:${m.severity}`);
}

const lines = (n: number, line: string) => Array.from({ length: n }, () => line).join('\n');
/** A function spanning exactly `n` lines, declaration and closing brace included. */
const fn = (n: number) => `export function f(): number {\n  let x = 0;\n${lines(n - 4, '  x += 1;')}\n  return x;\n}\n`;

describe('eslint.config.js', () => {
  it('in src/, a file over 700 lines is an error; 700 is not', async () => {
    const file = (n: number) => `${Array.from({ length: n }, (_, i) => `export const a${i} = ${i};`).join('\n')}\n`;
    assert.deepEqual(await findings(file(700), 'src/x.ts'), []);
    assert.deepEqual(await findings(file(701), 'src/x.ts'), ['max-lines:2']);
  });

  it('in src/, a function over 80 lines is an error; 80 is not; tests and scripts may have longer ones', async () => {
    assert.deepEqual(await findings(fn(80), 'src/deep/x.ts'), []);
    assert.deepEqual(await findings(fn(81), 'src/deep/x.ts'), ['max-lines-per-function:2']);
    assert.deepEqual(await findings(fn(81), 'test/deep/x.test.ts'), []);
    assert.deepEqual(await findings(fn(81), 'scripts/lab/x.ts'), []);
  });

  it('in src/, methods and arrow functions are held to the same 80 lines', async () => {
    const body = lines(80, '    x += 1;');
    assert.deepEqual(await findings(`export class C {\n  m(): number {\n    let x = 0;\n${body}\n    return x;\n  }\n}\n`, 'src/x.ts'), ['max-lines-per-function:2']);
    assert.deepEqual(await findings(`export const g = (): number => {\n  let x = 0;\n${body}\n  return x;\n};\n`, 'src/x.ts'), ['max-lines-per-function:2']);
  });

  it('no file in src/ is exempt: both limits are errors for every one of them', async () => {
    const files = fs.readdirSync(path.join(ROOT, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    assert.ok(files.length > 50, `${files.length} files`);
    const severity = (v: unknown) => (Array.isArray(v) ? v[0] : v);
    const lenient: string[] = [];
    for (const f of files) {
      const rules = ((await eslint.calculateConfigForFile(path.join(ROOT, 'src', f))) as { rules: Record<string, unknown> }).rules;
      for (const r of ['max-lines', 'max-lines-per-function']) if (![2, 'error'].includes(severity(rules[r]) as number | string)) lenient.push(`src/${f} ${r}`);
    }
    assert.deepEqual(lenient, []);
  });

  it('builtins are imported with the node: protocol', async () => {
    assert.deepEqual(await findings(`import fs from 'fs';\nimport { join } from 'node:path';\nexport const s = fs.statSync(join('a'));\n`, 'src/x.ts'), ['no-restricted-imports:2']);
    assert.deepEqual(await findings(`import { pipeline } from 'stream/promises';\nexport const p = pipeline;\n`, 'test/x.test.ts'), ['no-restricted-imports:2']);
    assert.deepEqual(await findings(`import fs from 'node:fs';\nexport const s = fs.statSync('a');\n`, 'src/x.ts'), []);
  });

  it('unused imports and variables are errors; a leading underscore marks one kept on purpose', async () => {
    assert.deepEqual(await findings(`import { a, b } from './a.js';\nexport const c = a;\n`, 'src/x.ts'), ['@typescript-eslint/no-unused-vars:2']);
    assert.deepEqual(await findings(`export function f(x: number): number {\n  const y = 1;\n  return x;\n}\n`, 'src/x.ts'), ['@typescript-eslint/no-unused-vars:2']);
    assert.deepEqual(await findings(`export function f(_x: number): number {\n  return 1;\n}\n`, 'src/x.ts'), []);
  });

  it('an import used only as a type says so', async () => {
    assert.deepEqual(await findings(`import { Flow } from './flow.js';\nexport const same = (f: Flow): Flow => f;\n`, 'src/x.ts'), ['@typescript-eslint/consistent-type-imports:2']);
    assert.deepEqual(await findings(`import type { Flow } from './flow.js';\nexport const same = (f: Flow): Flow => f;\n`, 'src/x.ts'), []);
  });

  it('layout as the code is written: single quotes and semicolons', async () => {
    assert.deepEqual(await findings(`export const a = "x";\n`, 'src/x.ts'), ['@stylistic/quotes:2']);
    assert.deepEqual(await findings(`export const a = 'x'\n`, 'src/x.ts'), ['@stylistic/semi:2']);
  });
});
