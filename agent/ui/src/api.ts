import * as z from 'zod/mini';
import { authHeaders, signOut, token } from './auth';
import { accepted, analysisList, analysisView, currentLabel, errorBody, health, labelAnswer, machineView, publicHealth, referenceAdded, type Machine } from './schemas';

/** An error to show the technician: the API's code and message, or what went wrong on the way. */
export class UiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'UiError';
  }
}

function fromBody(status: number, text: string): UiError {
  try {
    const e = errorBody.safeParse(JSON.parse(text));
    if (e.success) return new UiError(e.data.error.code, e.data.error.message, status);
  } catch {
    /* not JSON */
  }
  return new UiError(`HTTP_${status}`, `The gateway answered ${status}${text ? `: ${text.slice(0, 200)}` : ''}.`, status);
}

function check<T>(schema: z.ZodMiniType<T>, json: unknown, what: string): T {
  const r = schema.safeParse(json);
  if (!r.success) throw new UiError('BAD_RESPONSE', `Unexpected answer from the gateway for ${what}.`);
  return r.data;
}

/**
 * A refused answer: a 401 (no token, expired, another gateway) signs the technician out, so
 * the sign-in prompt shows why; a 403 (a role the token lacks) stays where it happened.
 */
function refused(status: number, text: string): UiError {
  const err = fromBody(status, text);
  if (status === 401) signOut(err.message);
  return err;
}

async function request<T>(schema: z.ZodMiniType<T>, url: string, init?: RequestInit): Promise<T> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, headers: { ...authHeaders(), ...(init?.headers as Record<string, string> | undefined) } });
  } catch {
    throw new UiError('GATEWAY_UNREACHABLE', 'The gateway does not answer. Check the Wi-Fi / cable to the gateway.');
  }
  const text = await res.text();
  if (!res.ok) throw refused(res.status, text);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new UiError('BAD_RESPONSE', `The gateway sent something that is not JSON for ${url}.`);
  }
  return check(schema, json, url);
}

/**
 * Health is open to anyone, but the details come only with an accepted token: the public
 * summary while the page holds a token means the gateway no longer accepts it (expired).
 */
export async function getHealth() {
  const sent = token();
  const h = await request(z.union([health, publicHealth]), '/api/v1/health');
  if ('broker' in h) return h;
  // The summary does not say why: ask the gateway (a 401 names it: expired, not a JWT, signature does not match).
  const why = sent ? await checkToken(sent) : null;
  // Another refused call may have signed out first, with the gateway's reason: that reason stays.
  if (token() === sent) signOut(why ?? 'The gateway no longer accepts your technician token (it may have expired). Sign in again.');
  throw new UiError('TOKEN_INVALID', 'Signed out: the technician token is no longer accepted.');
}
export const getAnalyses = (limit = 20) => request(analysisList, `/api/v1/analyses?limit=${limit}`);
export const getAnalysis = (id: string) => request(analysisView, `/api/v1/analyses/${encodeURIComponent(id)}`);
export const getMachine = () => request(machineView, '/api/v1/machine');
export const putMachine = (m: Machine) =>
  request(machineView, '/api/v1/machine', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(m) });
export const getLabel = (analysisId: string) => request(currentLabel, `/api/v1/analyses/${encodeURIComponent(analysisId)}/label`);
export const postLabel = (analysisId: string, body: { label: string; by: string }) =>
  request(labelAnswer, `/api/v1/analyses/${encodeURIComponent(analysisId)}/label`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

/** The Content-Type to send: the browser's guess, or by extension; the agent sniffs the bytes anyway. */
function contentType(file: File): string {
  if (file.type === 'image/jpeg' || file.type === 'image/png' || file.type === 'image/webp') return file.type;
  const ext = file.name.toLowerCase().split('.').pop();
  if (ext === 'png') return 'image/png';
  if (ext === 'webp') return 'image/webp';
  if (ext === 'jpg' || ext === 'jpeg') return 'image/jpeg';
  return file.type || 'application/octet-stream';
}

/**
 * The file name for the X-File-Name header (agent/src/http/read-image.ts): what the gateway
 * accepts (shared uploadFileName: no path, no control characters, at most 255 characters),
 * percent-encoded because headers are Latin-1. A long name keeps its end (the extension).
 */
export function fileNameHeader(name: string): string {
  let clean = name.replace(/[\p{Cc}/\\]/gu, '_').trim();
  if (clean.length > 255) {
    const points = Array.from(clean); // whole characters: a cut surrogate pair cannot be encoded
    clean = `${points.slice(0, 100).join('')}…${points.slice(-20).join('')}`;
  }
  return encodeURIComponent(clean);
}

/** Uploads one file as the raw body with XHR (fetch has no upload progress). */
function upload<T>(schema: z.ZodMiniType<T>, url: string, file: File, onProgress?: (fraction: number) => void, sendName = false): Promise<T> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url);
    xhr.setRequestHeader('content-type', contentType(file));
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    const name = sendName ? fileNameHeader(file.name) : '';
    if (name) xhr.setRequestHeader('x-file-name', name);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total);
    };
    xhr.onerror = () => reject(new UiError('GATEWAY_UNREACHABLE', 'The upload did not reach the gateway. Check the connection and try again.'));
    xhr.ontimeout = () => reject(new UiError('UPLOAD_TIMEOUT', 'The upload took too long. Try again closer to the gateway.'));
    xhr.onload = () => {
      if (xhr.status < 200 || xhr.status >= 300) return reject(refused(xhr.status, xhr.responseText));
      try {
        resolve(check(schema, JSON.parse(xhr.responseText), url));
      } catch (err) {
        reject(err instanceof UiError ? err : new UiError('BAD_RESPONSE', 'The gateway accepted the photo but its answer was unreadable.'));
      }
    };
    xhr.timeout = 120_000;
    xhr.send(file);
  });
}

export const uploadPhoto = (file: File, onProgress?: (f: number) => void, machineId?: string) =>
  upload(accepted, `/api/v1/images${machineId ? `?machineId=${encodeURIComponent(machineId)}` : ''}`, file, onProgress, true);
export const uploadReference = (file: File, onProgress?: (f: number) => void) => upload(referenceAdded, '/api/v1/machine/references', file, onProgress);

/**
 * Whether sending the same photo again can succeed: it did not reach the gateway (no answer, a
 * timeout), or the gateway was busy or failing (408, 429 QUEUE_FULL, 5xx incl. 507 STORAGE_FAILED,
 * which clear by themselves). A refusal of the photo itself (4xx: not an image, too large) cannot.
 */
export const canSendAgain = (err: unknown): boolean =>
  err instanceof UiError && err.code !== 'BAD_RESPONSE' && (err.status === undefined || err.status === 408 || err.status === 429 || err.status >= 500);

export const errorText = (err: unknown): { code: string; message: string } =>
  err instanceof UiError ? { code: err.code, message: err.message } : { code: 'UI_ERROR', message: err instanceof Error ? err.message : String(err) };

/** Whether the gateway accepts `token` (any valid token may view): null, or the gateway's reason. */
export async function checkToken(token: string): Promise<string | null> {
  try {
    const res = await fetch('/api/v1/analyses?limit=1', { headers: { authorization: `Bearer ${token}` } });
    return res.ok ? null : fromBody(res.status, await res.text()).message;
  } catch {
    return 'The gateway does not answer. Check the Wi-Fi / cable to the gateway.';
  }
}
