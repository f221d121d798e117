// Where `npm run bench` writes its result files: outside the work tree unless asked (`--save`), so
// running the benchmarks leaves `git status` as it was and the committed results change on purpose.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RESULTS, ROOT, resultsDir, writeResults } from './util.js';

const inside = (dir: string, root: string) => !path.relative(root, dir).startsWith('..');

function gitStatus(): string | null {
  const r = spawnSync('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=all'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout : null;
}

test('results go to the temporary directory by default, to $MR_BENCH_OUT when set, and to the committed results/ only with --save', () => {
  const byDefault = resultsDir(['node', 'run.js', 'lab'], {});
  assert.equal(byDefault, path.join(os.tmpdir(), 'mirror-replay-bench'));
  assert.ok(!inside(byDefault, ROOT), byDefault);
  assert.equal(resultsDir(['node', 'run.js', 'lab', '--quick'], { MR_BENCH_OUT: '/var/tmp/mr-out' }), '/var/tmp/mr-out');
  assert.equal(resultsDir(['node', 'run.js', '--child', 'lab', '--save'], {}), RESULTS);
  assert.equal(resultsDir(['node', 'run.js', 'lab', '--save'], { MR_BENCH_OUT: '/var/tmp/mr-out' }), RESULTS, '--save wins over $MR_BENCH_OUT');
  assert.equal(RESULTS, path.join(ROOT, 'test/bench/results'));
});

test('a benchmark writing its results without --save leaves git status as it was', (t) => {
  const before = gitStatus();
  if (before === null) return t.skip('not a git checkout');
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-bench-out-'));
  const files = { 'results-test.md': '# a table\n', 'results-test.json': '{}\n' };
  try {
    const written = writeResults(files, resultsDir(['node', 'run.js', 'lab'], { MR_BENCH_OUT: out }));
    assert.deepEqual(written, Object.keys(files).map((f) => path.join(out, f)));
    for (const [f, content] of Object.entries(files)) assert.equal(fs.readFileSync(path.join(out, f), 'utf8'), content);
    assert.equal(gitStatus(), before);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
    for (const f of Object.keys(files)) fs.rmSync(path.join(RESULTS, f), { force: true });
  }
});
