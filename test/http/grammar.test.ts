/**
 * The shared HTTP/1.x grammar: list fields and Content-Length against their RFC definitions
 * written the slow way, field lines, chunk lines, and the §6.3 framing tables for both directions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  BODY_CHUNKED,
  BODY_CLOSE,
  BODY_INVALID,
  BODY_LENGTH,
  BODY_NONE,
  BODY_SWITCH,
  fieldLine,
  hasToken,
  isFieldValue,
  isToken,
  parseChunkLine,
  parseContentLength,
  replyFraming,
  requestFraming,
} from '../../src/http/grammar.js';

const TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const trim = (s: string) => s.replace(/^[ \t]+|[ \t]+$/g, '');
/** Content-Length by RFC 9110 §8.6 read literally: a list of 1*DIGIT, all equal. */
function slowContentLength(v: string): number {
  const els = v.split(',').map(trim);
  if (els.some((e) => !/^[0-9]+$/.test(e))) return -1;
  const ns = els.map((e) => (e.length > 15 ? Number.MAX_SAFE_INTEGER + 1 : Number(e)));
  return ns.every((n) => n === ns[0]) ? ns[0] : -1;
}
const slowHasToken = (v: string, t: string) => v.split(',').some((e) => trim(e).replace(/[A-Z]/g, (c) => c.toLowerCase()) === t);
/** Strings of the characters that matter to list parsing, latin1 only. */
const listString = fc.string({ unit: fc.constantFrom('0', '1', '5', '9', ',', ' ', '\t', 'a', 'C', 'c', 'l', 'o', 's', 'e', 'E', '-', '\xa0', '\xc9'), maxLength: 24 });

test('parseContentLength equals the RFC read literally, for any string of the characters that matter', () => {
  fc.assert(fc.property(listString, (v) => assert.equal(parseContentLength(v), slowContentLength(v), JSON.stringify(v))), { numRuns: 5000 });
  assert.equal(parseContentLength('5, 5'), 5);
  assert.equal(parseContentLength(' 007 '), 7);
  assert.equal(parseContentLength('1234567890123456'), Number.MAX_SAFE_INTEGER + 1);
  for (const v of ['', ',', '5,', ',5', '5 5', '5;', '+5', '5\xa0', '0x10']) assert.equal(parseContentLength(v), -1, JSON.stringify(v));
});

test('hasToken: an element of the list, ASCII case ignored, OWS trimmed', () => {
  fc.assert(fc.property(listString, fc.constantFrom('close', 'keep-alive', 'c'), (v, t) => assert.equal(hasToken(v, t), slowHasToken(v, t), JSON.stringify([v, t]))), { numRuns: 5000 });
  assert.equal(hasToken('Keep-Alive, CLOSE', 'close'), true);
  assert.equal(hasToken('closed, x-close', 'close'), false);
  assert.equal(hasToken('cl\xc9se', 'close'), false, 'no case folding outside ASCII');
});

test('isToken and isFieldValue: the one tchar table and the field-value rule', () => {
  for (let c = 0; c < 256; c++) {
    const ch = String.fromCharCode(c);
    assert.equal(isToken(`a${ch}`), TCHARS.includes(ch), `tchar ${c}`);
    assert.equal(isFieldValue(`a${ch}b`), c === 9 || (c >= 32 && c !== 127), `value ${c}`);
  }
  assert.equal(isToken(''), false);
  assert.equal(isToken('\u0100'), false);
  assert.equal(isFieldValue('\u20ac'), false, 'not latin1: cannot go on the wire as sent');
});

test('fieldLine: token, colon, OWS-trimmed value; refuses what RFC 9110/9112 refuse', () => {
  const out = { nameEnd: 0, valueStart: 0, valueEnd: 0 };
  const line = (s: string) => (fieldLine(Buffer.from(s, 'latin1'), 0, s.length, out) ? [s.slice(0, out.nameEnd), s.slice(out.valueStart, out.valueEnd)] : null);
  assert.deepEqual(line('X-A:  a b \t'), ['X-A', 'a b']);
  assert.deepEqual(line('X:'), ['X', '']);
  assert.deepEqual(line('X: caf\xe9\xa0'), ['X', 'caf\xe9\xa0'], 'obs-text kept, NBSP is not OWS');
  for (const bad of ['X : a', ' X: a', ': a', 'X', 'X Y: a', 'X: a\rb', 'X: a\x00', 'X: \x7f', '\xe9: a']) assert.equal(line(bad), null, JSON.stringify(bad));
});

test('parseChunkLine: hex size and extensions; -1 for anything else or a size over 2^53', () => {
  const size = (s: string) => parseChunkLine(Buffer.from(s, 'latin1'), 0, s.length);
  assert.equal(size('1A'), 26);
  assert.equal(size('0'), 0);
  assert.equal(size('5;a=1 ; b="x y";c'), 5);
  assert.equal(size('fffffffffffff'), 0xfffffffffffff);
  for (const bad of ['', ';a', '5 ', '5;', '5;a=', 'g', '-1', '5;a="x', '20000000000000']) assert.equal(size(bad), -1, JSON.stringify(bad));
});

test('requestFraming: chunked last on HTTP/1.1 without Content-Length, or a valid Content-Length; else refused', () => {
  const cases: Array<[number, string | null, number, number]> = [
    [1, null, -1, BODY_NONE],
    [1, null, 0, BODY_NONE],
    [1, null, 10, BODY_LENGTH],
    [1, null, -2, BODY_INVALID],
    [1, 'chunked', -1, BODY_CHUNKED],
    [1, 'gzip, chunked', -1, BODY_CHUNKED],
    [1, 'chunked', 5, BODY_INVALID],
    [1, 'chunked', -2, BODY_INVALID],
    [0, 'chunked', -1, BODY_INVALID],
    [1, 'chunked, gzip', -1, BODY_INVALID],
    [1, 'chunked, chunked', -1, BODY_INVALID],
  ];
  for (const [minor, te, cl, want] of cases) assert.equal(requestFraming(minor, te, cl), want, JSON.stringify([minor, te, cl]));
});

test('replyFraming: RFC 9112 §6.3 in order', () => {
  const cases: Array<[number, string | null, number, string | null, number, number]> = [
    [101, 'GET', 1, null, 5, BODY_SWITCH],
    [200, 'CONNECT', 1, null, 5, BODY_SWITCH],
    [204, 'CONNECT', 1, null, -1, BODY_SWITCH],
    [407, 'CONNECT', 1, null, 3, BODY_LENGTH],
    [200, 'HEAD', 1, 'chunked', 5, BODY_NONE],
    [204, 'GET', 1, null, -2, BODY_NONE],
    [304, null, 1, 'chunked', -1, BODY_NONE],
    [200, 'GET', 1, 'chunked', 5, BODY_CHUNKED],
    [200, 'GET', 1, 'chunked', -2, BODY_CHUNKED],
    [200, 'GET', 1, 'gzip', -1, BODY_CLOSE],
    [200, 'GET', 0, 'chunked', -1, BODY_CLOSE],
    [200, 'GET', 1, null, -2, BODY_INVALID],
    [200, 'GET', 1, null, -1, BODY_CLOSE],
    [200, null, 1, null, 0, BODY_NONE],
    [500, 'POST', 0, null, 7, BODY_LENGTH],
  ];
  for (const [status, method, minor, te, cl, want] of cases) assert.equal(replyFraming(status, method, minor, te, cl), want, JSON.stringify([status, method, minor, te, cl]));
});
