import { createHash } from 'node:crypto';
import { errorCodes, type FastifyInstance, type FastifyRequest } from 'fastify';
import { TuError, uploadFileName } from '@tu/shared';
import { baseMediaType } from '../intake/validate.js';
import { isImageContentType } from '../intake/sniff.js';

export interface UploadedBytes {
  bytes: Buffer;
  /** sha256 of bytes (hex), hashed chunk by chunk while a raw body streamed in; undefined for a multipart part. */
  sha256?: string;
  /** The Content-Type the client declared (of the request or of the multipart part). */
  declaredType: string | undefined;
  /** The file's name as the client gave it (validated by the contract's uploadFileName). */
  fileName: string | undefined;
}

/** Header for the file name of a raw-body upload: percent-encoded UTF-8 (encodeURIComponent), as headers are Latin-1. */
export const FILE_NAME_HEADER = 'x-file-name';

/**
 * The upload's file name: the multipart filename, or the X-File-Name header of a raw body.
 * Absent is fine (curl, scripts); a name that is malformed or breaks the contract
 * (shared/src/schemas/messages.ts uploadFileName) is refused with 400 before anything is stored.
 */
/** Unicode marks that reorder how text is displayed. */
const DIRECTION_MARKS = /[\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;

export function checkFileName(raw: string | string[] | undefined, encoded: boolean): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (Array.isArray(raw)) throw new TuError('INVALID_REQUEST', `Send one ${FILE_NAME_HEADER} header, not ${raw.length}.`);
  let name = raw;
  if (encoded) {
    try {
      name = decodeURIComponent(raw);
    } catch {
      throw new TuError('INVALID_REQUEST', `${FILE_NAME_HEADER} is not percent-encoded UTF-8; encode the name with encodeURIComponent.`);
    }
  }
  const r = uploadFileName.safeParse(name);
  if (!r.success) throw new TuError('INVALID_REQUEST', `file name: ${r.error.issues[0]?.message ?? 'invalid'} (1 to 255 characters, no path, no control characters).`);
  // Refused here, where names enter, not in the message schema (names already in outboxes stay
  // valid): a right-to-left override shows "photo\u202Egpj.exe" as "photoexe.jpg" to the technician.
  if (DIRECTION_MARKS.test(r.data)) throw new TuError('INVALID_REQUEST', 'file name: it holds text-direction marks (U+200E, U+200F, U+202A-U+202E, U+2066-U+2069), which can make a name display as another; rename the file.');
  return r.data;
}

/** The routes that take a photo (their refusals are the technician's upload errors). */
export const isImageUpload = (url: string): boolean => /^\/api\/v1\/(images|machine\/references)(\?|$)/.test(url);

const ACCEPTED = (t: string): boolean => isImageContentType(t) || t === 'application/octet-stream' || t === 'multipart/form-data';

/** A raw image body as the parser hands it to the route: the bytes and their sha256. */
interface RawImageBody {
  bytes: Buffer;
  sha256: string;
}
const isRawImageBody = (b: unknown): b is RawImageBody => typeof b === 'object' && b !== null && Buffer.isBuffer((b as RawImageBody).bytes) && typeof (b as RawImageBody).sha256 === 'string';

/**
 * Reads a raw image body, bounded by limit (413 as soon as the declared or streamed size
 * passes it, never buffering more, as fastify's own buffer parser does), hashing each chunk
 * as it arrives: the sha256 the blob store files the photo under costs no pass over the
 * whole upload on the event loop afterwards (bench/intake.bench.ts).
 */
function rawImageParser(limit: number) {
  return (req: FastifyRequest, payload: NodeJS.ReadableStream, done: (err: Error | null, body?: RawImageBody) => void): void => {
    const declared = Number(req.headers['content-length']);
    if (declared > limit) return done(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
    const hash = createHash('sha256');
    const chunks: Buffer[] = [];
    let received = 0;
    const stop = (): void => {
      payload.removeListener('data', onData);
      payload.removeListener('end', onEnd);
      payload.removeListener('error', onEnd);
    };
    function onData(chunk: Buffer | string): void {
      const c = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      received += c.length;
      if (received > limit) {
        stop();
        return done(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
      }
      hash.update(c);
      chunks.push(c);
    }
    function onEnd(err?: Error & { statusCode?: number }): void {
      stop();
      if (err) {
        if (!(typeof err.statusCode === 'number' && err.statusCode >= 400)) err.statusCode = 400;
        return done(err);
      }
      if (!Number.isNaN(declared) && received !== declared) return done(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH());
      // No preParsing hook replaces the request stream here, so each chunk is a buffer of its own
      // (Node's HTTP parser copies a body chunk out of the socket's read buffer; inject passes the
      // caller's payload): a body of one chunk is taken as is, several are joined in one copy.
      const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received);
      done(null, { bytes, sha256: hash.digest('hex') });
    }
    payload.on('data', onData);
    payload.on('end', onEnd);
    payload.on('error', onEnd);
    payload.resume();
  };
}

/** Registers the raw-image body parsers (image/* and application/octet-stream), bounded by maxUploadBytes. */
export function registerImageParsers(app: FastifyInstance, maxUploadBytes: number): void {
  app.addContentTypeParser(/^image\//, rawImageParser(maxUploadBytes));
  app.addContentTypeParser('application/octet-stream', rawImageParser(maxUploadBytes));
}

/**
 * onRequest guard for image routes: refuse an unsupported Content-Type before reading the body.
 * The technician UI sends the file's own type, so a text file arrives as text/plain and
 * its refusal is shown as is: the messages are the catalogue's, written for the technician.
 */
export function guardImageContentType(req: FastifyRequest): void {
  const ct = baseMediaType(req.headers['content-type']);
  if (!ct) {
    const len = req.headers['content-length'];
    if (len === undefined || len === '0') throw new TuError('IMAGE_EMPTY');
    throw new TuError('UNSUPPORTED_MEDIA_TYPE');
  }
  if (!ACCEPTED(ct)) throw new TuError('UNSUPPORTED_MEDIA_TYPE');
}

/** The image bytes of a request: raw body, or the multipart field `image` (size-limited by the plugin). */
export async function readImage(req: FastifyRequest): Promise<UploadedBytes> {
  if (req.isMultipart()) {
    const part = await req.file().catch(malformedMultipart);
    if (!part) throw new TuError('IMAGE_EMPTY', 'No photo was sent. Choose a JPEG, PNG or WebP photo and try again.');
    if (part.fieldname !== 'image') {
      part.file.resume();
      // Only an API client can get here (the technician UI sends the raw file).
      throw new TuError('INVALID_REQUEST', `The upload carries a part named ${part.fieldname.slice(0, 64)} but no photo; send the photo as the part named image.`);
    }
    const fileName = checkFileName(part.filename, false);
    const bytes = await part.toBuffer().catch(malformedMultipart);
    return { bytes, declaredType: part.mimetype, fileName };
  }
  const body = isRawImageBody(req.body) ? req.body : { bytes: Buffer.alloc(0) };
  return { ...body, declaredType: req.headers['content-type'], fileName: checkFileName(req.headers[FILE_NAME_HEADER], true) };
}

/** What the multipart plugin reads of an upload besides the photo (app.ts); beyond it the upload is refused. */
export const MULTIPART_LIMITS = { files: 1, fields: 4, parts: 5 } as const;

/** The multipart plugin's refusals of an upload with too many parts: 413 by its status, but nothing was too large. */
const TOO_MANY_PARTS = new Set(['FST_PARTS_LIMIT', 'FST_FIELDS_LIMIT', 'FST_FILES_LIMIT']);

/**
 * busboy's errors for a broken multipart body ("Boundary not found", "Unexpected end of form")
 * carry no HTTP status and came out as 500 INTERNAL_ERROR: they are the client's bad input. The
 * multipart plugin's own errors (a file over the limit: 413) keep their status.
 */
function malformedMultipart(err: Error & { statusCode?: number; code?: unknown }): never {
  // Their 413 came out as UPLOAD_TOO_LARGE ("take it at a lower resolution") for a small photo sent with a few form fields too many.
  if (typeof err.code === 'string' && TOO_MANY_PARTS.has(err.code)) {
    throw new TuError('INVALID_REQUEST', `The multipart upload has more parts than this gateway reads: send the photo as the part named image, with at most ${MULTIPART_LIMITS.fields} other fields and no other file.`);
  }
  if (typeof err.statusCode === 'number') throw err;
  throw new TuError('INVALID_REQUEST', `The multipart upload is malformed (${err.message.slice(0, 120)}); send the photo as the part named image of a complete multipart/form-data body, or the raw bytes with an image Content-Type.`);
}
