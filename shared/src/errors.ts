/**
 * One catalogue of error codes (fastify style). Every error a user or operator can
 * see carries one of these codes and a message saying what to do.
 */
export const ERROR_CODES = {
  // bus
  BUS_CONNECT_FAILED: 'Could not connect to the MQTT broker; check the broker address and that it is running.',
  BUS_AUTH_REFUSED: 'The broker refused the credentials; check the bus secret / username.',
  BUS_PUBLISH_INVALID: 'A message did not match its schema and was not sent (a bug in the producer).',
  BUS_CLOSED: 'The bus client is closed.',
  // inbound message rejections (dead-letter reasons)
  PAYLOAD_TOO_LARGE: 'The message is larger than the configured maximum payload.',
  UNKNOWN_TOPIC: 'The topic is not part of the contract.',
  INVALID_JSON: 'The payload is not valid JSON.',
  INVALID_ENVELOPE: 'The payload is not a valid CloudEvents 1.0 structured envelope.',
  TYPE_TOPIC_MISMATCH: 'The envelope type does not match the topic it was published on.',
  WRONG_GATEWAY: 'The envelope source names another gateway than the topic.',
  WRONG_PRODUCER: 'The envelope source names a service that does not produce this type.',
  INVALID_DATA: 'The event data does not match the schema of its type.',
  // orchestration
  NO_HANDLER: 'No live handler instance for the step answered within its timeout; start the service.',
  STEP_TIMEOUT: 'The handler did not answer within the step timeout.',
  STEP_FAILED: 'The step failed.',
  RETRIES_EXHAUSTED: 'The step kept failing after all configured attempts.',
  QUEUE_FULL: 'Too many analyses are waiting; try again later or raise orchestrator.maxQueue.',
  // configuration
  CONFIG_INVALID: 'The configuration is invalid.',
  CONFIG_UNREADABLE: 'The configuration file could not be read or parsed.',
  // HTTP API / image intake
  IMAGE_EMPTY: 'The request body is empty; send the image bytes (or a multipart field `image`).',
  UNSUPPORTED_MEDIA_TYPE: 'Send the image with Content-Type image/jpeg, image/png or image/webp (or multipart/form-data with a field `image`).',
  NOT_AN_IMAGE: 'The bytes are not a JPEG, PNG or WebP image (checked by content, not by the Content-Type header).',
  UPLOAD_TOO_LARGE: 'The upload is larger than limits.maxUploadBytes; downscale or recompress the photo.',
  IMAGE_TOO_MANY_PIXELS: 'The image declares more pixels than limits.maxPixels; downscale the photo before upload.',
  IMAGE_DECODE_FAILED: 'The image could not be decoded (truncated or corrupt); upload a complete JPEG, PNG or WebP file.',
  INVALID_REQUEST: 'The request does not match the API schema; see the message for the offending field.',
  NOT_FOUND: 'No such resource.',
  SERVICE_DISABLED: 'The service needed for this request is not running in this agent process.',
  STORAGE_FAILED: 'Writing to the data directory failed; check free space and permissions of dataDir.',
  INTERNAL_ERROR: 'Unexpected internal error; see the agent log.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class TuError extends Error {
  readonly code: ErrorCode;
  override readonly cause?: unknown;
  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? ERROR_CODES[code]);
    this.name = 'TuError';
    this.code = code;
    this.cause = options?.cause;
  }
}
