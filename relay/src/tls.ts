import crypto from 'node:crypto';
import fs from 'node:fs';
import { ConfigError } from '@tu/shared';
import type { TlsFiles } from './config.js';

/** A server certificate chain and its key, read and checked (PEM). */
export interface ServerTls {
  cert: Buffer;
  key: Buffer;
  /** The leaf certificate's end of validity (ISO), for the start-up log. */
  validTo: string;
}

const fail = (field: string, message: string): never => {
  throw new ConfigError(`invalid relay configuration:\n  - ${field}: ${message}`, [{ field, message }]);
};

function read(field: string, file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    return fail(field, `cannot read ${file}: ${(err as Error).message}`);
  }
}

/**
 * Reads `{field}.cert` and `{field}.key` (config http.tls / ingress.tls) when the relay starts:
 * certificates are not reloaded while it runs (restart the relay to renew them). The files must
 * parse as PEM and the key must be the certificate's, so a wrong file is a ConfigError naming the
 * field and the file at start, not a failed handshake for every gateway later.
 */
export function readServerTls(field: 'http.tls' | 'ingress.tls', files: TlsFiles): ServerTls {
  const cert = read(`${field}.cert`, files.cert);
  const key = read(`${field}.key`, files.key);
  let leaf: crypto.X509Certificate;
  try {
    // The first certificate of the file is the server's (the rest is its chain).
    leaf = new crypto.X509Certificate(cert);
  } catch (err) {
    return fail(`${field}.cert`, `${files.cert} is not a PEM certificate (-----BEGIN CERTIFICATE-----): ${(err as Error).message}`);
  }
  let privateKey: crypto.KeyObject;
  try {
    privateKey = crypto.createPrivateKey(key);
  } catch (err) {
    return fail(`${field}.key`, `${files.key} is not a PEM private key (an encrypted key is not supported): ${(err as Error).message}`);
  }
  if (!leaf.checkPrivateKey(privateKey)) fail(`${field}.key`, `${files.key} is not the private key of the certificate in ${files.cert} (subject ${leaf.subject.replace(/\n/g, ', ')})`);
  return { cert, key, validTo: new Date(leaf.validTo).toISOString() };
}
