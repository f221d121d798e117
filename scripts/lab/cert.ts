/** A self-signed certificate made by openssl, for the lab's TLS production server and the TLS tests. */
import { spawnSync } from 'node:child_process';
import path from 'node:path';

/** Writes cert.pem and key.pem (EC P-256, one day) into `dir`; throws when openssl fails. */
export function selfSignedCert(dir: string, cn = 'prod.lab'): { cert: string; key: string } {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', `/CN=${cn}`], { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`openssl req failed (${r.status}): ${r.error?.message ?? r.stderr}`);
  return { cert, key };
}
