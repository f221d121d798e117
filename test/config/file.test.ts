import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from '../../src/cli/args.js';
import { loadConfigFile } from '../../src/config/file.js';

function tmp(name: string, text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-config-'));
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
}

function withEnv<T>(env: Record<string, string>, fn: () => T): T {
  const old = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return fn();
  } finally {
    for (const [k, v] of Object.entries(old)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
}

test('precedence: flag > MIRROR_REPLAY_* environment > --config file > default', () => {
  const f = tmp('c.yaml', 'destination: [http://10.0.0.1]\npercentage: 10\ntimeout: 3s\nmax-queue: 7\n');
  const fileOnly = parseArgs(['--config', f])!;
  assert.deepEqual(fileOnly.destinations, ['http://10.0.0.1']);
  assert.equal(fileOnly.percentage, 10);
  assert.equal(fileOnly.timeoutMs, 3000);
  assert.equal(fileOnly.maxConcurrency, 64, 'default where nobody says otherwise');
  const envWins = withEnv({ MIRROR_REPLAY_PERCENTAGE: '20', MIRROR_REPLAY_TIMEOUT: '4s' }, () => parseArgs(['--config', f, '--timeout', '5s'])!);
  assert.equal(envWins.percentage, 20, 'environment over file');
  assert.equal(envWins.timeoutMs, 5000, 'flag over environment');
  assert.equal(envWins.maxQueue, 7, 'file over default');
});

test('JSON works too; bad files and unknown keys are ConfigErrors naming the file or key', () => {
  const j = tmp('c.json', JSON.stringify({ destination: 'http://10.0.0.2', 'health-check-port': 4789 }));
  const c = parseArgs(['--config', j])!;
  assert.deepEqual(c.destinations, ['http://10.0.0.2']);
  assert.equal(c.healthCheckPort, 4789);
  assert.throws(() => loadConfigFile('/nonexistent/mr.yaml'), { code: 'MR_CONFIG', message: /cannot read/ });
  assert.throws(() => loadConfigFile(tmp('bad.yaml', 'a: [1,\n')), { code: 'MR_CONFIG', message: /not valid YAML or JSON/ });
  assert.throws(() => loadConfigFile(tmp('list.yaml', '- a\n- b\n')), { code: 'MR_CONFIG', message: /mapping/ });
  assert.throws(() => parseArgs(['--config', tmp('typo.yaml', 'destination: http://10.0.0.3\npercentag: 5\n')]), /percentag/);
  assert.throws(() => parseArgs(['--destination', 'http://x', '--health-check-port', '9464']), /must differ from --metrics-port/);
});
