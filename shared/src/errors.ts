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
  BUS_READ_ONLY: 'An observer client may only subscribe to events; it cannot publish.',
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
  // uplink (store-and-forward to the relay)
  UPLINK_CONFIG_INVALID: 'The uplink settings are unusable (unreadable passwordFile or TLS file); fix uplink.* in the config.',
  UPLINK_CONNECT_FAILED: 'Could not reach the relay; events stay in the outbox and are sent when it is reachable.',
  UPLINK_AUTH_REFUSED: 'The relay refused the gateway credentials; check uplink.username and the gateway secret (TU_UPLINK_PASSWORD / uplink.passwordFile).',
  UPLINK_PUBLISH_REFUSED: 'The relay refused a publish (its ACL); check that uplink.username is this gateway id.',
  UPLINK_OUTBOX_FULL: 'The outbox is full; events are dropped or refused per uplink.outbox.whenFull until the relay is reachable.',
  UPLINK_OUTBOX_FAILED: 'Writing the uplink outbox failed; check free space and permissions of dataDir.',
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
  NOT_RECOGNISED: 'The analysis has no recognition result to confirm or correct; wait until its recognition step completed (the vision service must be running).',
  SERVICE_DISABLED: 'The service needed for this request is not running in this agent process.',
  STORAGE_FAILED: 'Writing to the data directory failed; check free space and permissions of dataDir.',
  INTERNAL_ERROR: 'Unexpected internal error; see the agent log.',
  DATA_FORMAT_TOO_NEW: 'The data directory was written by a newer agent whose data format this agent cannot read; run the newer agent again (`tu-agent update`), or move the data directory away to start afresh.',
  DATA_FORMAT_INVALID: 'The data directory carries an unreadable data-format.json; restore it from the agent that wrote the data.',
  // gateway installation (tu-agent install / provision / update)
  INSTALL_FAILED: 'Installing the agent failed; see the message, fix it and run the command again.',
  UPDATE_UNHEALTHY: 'The new version did not report healthy in time; the previous version was restored.',
  UI_NOT_BUILT: 'The web UI is not built; run `npm run build:ui` (npm start and npm test build it first).',
  // relay: gateway ingress, registry, dashboard clients
  UNKNOWN_GATEWAY: 'The gateway is not registered with the relay; add it with `npm run relay -- gateways add <id> --tenant <t>`.',
  COMMAND_REFUSED: 'Commands never leave a gateway; the relay accepts events only.',
  GATEWAY_TOPIC_REFUSED: 'A gateway may publish only tu/{ownGatewayId}/evt/{type} and tu/{ownGatewayId}/sys/status, and may subscribe to nothing.',
  UNAUTHENTICATED: 'Send a valid bearer token (JWT with sub and tenant claims): Authorization header, or `authorization` in the graphql-ws connection_init payload.',
  FORBIDDEN: 'The token does not give access to this gateway (another tenant).',
  REGISTRY_CONFLICT: 'A tenant or gateway with this id already exists.',
  UNKNOWN_TENANT: 'No such tenant; add it with `npm run relay -- tenants add <id>`.',
  STORAGE_UNAVAILABLE: 'The relay storage (SQLite file or PostgreSQL) is not reachable; check storage.url.',
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
