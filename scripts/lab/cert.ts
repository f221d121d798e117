/** A self-signed certificate made by openssl, for the lab's TLS production server and the TLS tests. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Writes cert.pem and key.pem (EC P-256, one day) into `dir`; throws when openssl fails. */
export function selfSignedCert(dir: string, cn = 'prod.lab'): { cert: string; key: string } {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', `/CN=${cn}`], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`openssl req failed (${r.status}): ${r.error?.message ?? r.stderr}`);
  return { cert, key };
}

/** The same in memory (a temporary directory, removed): null when openssl is missing or fails. */
export function selfSignedPair(cn = 'localhost'): { key: Buffer; cert: Buffer } | null {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mr-tls-'));
  try {
    const files = selfSignedCert(dir, cn);
    return { key: fs.readFileSync(files.key), cert: fs.readFileSync(files.cert) };
  } catch {
    return null;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
