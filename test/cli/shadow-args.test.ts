import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs } from '../../src/cli/args.js';
import { ConfigError } from '../../src/errors.js';

const base = ['--destination', 'http://10.0.0.37'];

test('shadow testing is off unless asked for', () => {
  assert.equal(parseArgs(base)!.shadow, undefined);
});

test('--baseline-destination joins the destinations last and turns comparison on', () => {
  const c = parseArgs([...base, '--baseline-destination', 'http://10.0.0.38', '--diff-log', '/tmp/d.jsonl', '--diff-body-bytes', '1KiB', '--compare-route', '/a/:id', '--compare-json-ignore', 'meta.time'])!;
  assert.deepEqual(c.destinations, ['http://10.0.0.37', 'http://10.0.0.38']);
  assert.deepEqual(c.shadow, { baseline: 'http://10.0.0.38', diffLog: '/tmp/d.jsonl', diffLogMaxBytes: 64 * 1024 * 1024, diffBodyBytes: 1024, routes: ['/a/:id'], ignoreHeaders: [], redactHeaders: [], jsonIgnore: ['meta.time'] });
});

test('bad shadow flags stop startup naming the flag', () => {
  assert.throws(() => parseArgs(['--baseline-destination', 'http://10.0.0.38']), ConfigError);
  assert.throws(() => parseArgs([...base, '--compare', '--compare-route', 'no-slash']), /--compare-route/);
  assert.throws(() => parseArgs([...base, '--compare', '--compare-json-ignore', 'a..b']), /--compare-json-ignore/);
  assert.throws(() => parseArgs([...base, '--compare', '--diff-body-bytes', '2GiB']), /--diff-body-bytes/);
});
