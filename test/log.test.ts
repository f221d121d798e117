import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { rateLimitedWarn } from '../src/log.js';

test('a warning per key at most once per interval, with the count suppressed since', async () => {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(JSON.parse(chunk.toString()));
      cb();
    },
  });
  const warn = rateLimitedWarn(pino({ level: 'warn' }, sink), 50);
  for (let i = 0; i < 1000; i++) warn('dest-a|ECONNREFUSED', { destination: 'a' }, 'replay failed');
  warn('dest-b|ECONNREFUSED', { destination: 'b' }, 'replay failed');
  await new Promise((r) => setTimeout(r, 60));
  warn('dest-a|ECONNREFUSED', { destination: 'a' }, 'replay failed');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(
    lines.map((l) => [l.destination, l.suppressed]),
    [['a', 0], ['b', 0], ['a', 999]],
  );
});
