import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_ENV, NODE_FLAGS } from '../../src/cli/node-flags.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

test('the bin starts Node.js with the daemon\'s heap flags (src and build)', () => {
  for (const f of ['src/cli/main.ts', 'dist/src/cli/main.js']) {
    const first = fs.readFileSync(path.join(ROOT, f), 'utf8').split('\n')[0];
    assert.equal(first, `#!/usr/bin/env -S node ${NODE_FLAGS.join(' ')}`, f);
  }
});

test('the flags are ones this Node.js takes, and they size the heap as meant', () => {
  const probe = 'const v8 = require("node:v8"); const s = v8.getHeapSpaceStatistics().find((x) => x.space_name === "new_space"); console.log(JSON.stringify({ limit: v8.getHeapStatistics().heap_size_limit, arena: process.env.MALLOC_ARENA_MAX, newSpace: s.space_size }))';
  const r = spawnSync(process.execPath, [...NODE_FLAGS, '-e', probe], { encoding: 'utf8', env: { ...process.env, ...NODE_ENV } });
  assert.equal(r.status, 0, r.stderr);
  const o = JSON.parse(r.stdout) as { limit: number; arena: string; newSpace: number };
  const MiB = 2 ** 20;
  // The limit is the old generation's ceiling plus the young generation (3 semi-spaces).
  assert.ok(o.limit >= 512 * MiB && o.limit <= 520 * MiB, `heap limit ${o.limit / MiB} MiB`);
  assert.ok(o.newSpace <= 2 * MiB, `new space ${o.newSpace / MiB} MiB`);
  assert.equal(o.arena, NODE_ENV.MALLOC_ARENA_MAX);
  const plain = spawnSync(process.execPath, ['-e', 'console.log(require("node:v8").getHeapStatistics().heap_size_limit)'], { encoding: 'utf8' });
  assert.notEqual(Number(plain.stdout), o.limit, 'without the flags the limit differs (the test would not notice them missing)');
});
