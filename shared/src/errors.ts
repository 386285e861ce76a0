/** One catalogue entry: the HTTP status the error answers with, and the default message. */
export interface ErrorSpec {
  /**
   * The HTTP status when the error reaches an HTTP client (shared/src/http-errors.ts).
   * Errors that only travel on the bus or in logs carry the status they would have:
   * 4xx for bad input, 503 for a missing dependency, 500 for a fault.
   */
  readonly status: number;
  /** Written for the person who sees it (a technician, an operator), saying what to do. */
  readonly message: string;
}

/**
 * One catalogue of error codes (fastify style). Every error a user or operator can
 * see carries one of these codes, its HTTP status and a message saying what to do.
 * Bus failure reasons (`*.failed`, dead letters) use these codes too.
 */
export const ERROR_CODES = {
  // bus
  BUS_CONNECT_FAILED: { status: 503, message: 'Could not connect to the MQTT broker; check the broker address and that it is running.' },
  BUS_AUTH_REFUSED: { status: 503, message: 'The broker refused the credentials; check the bus secret / username.' },
  BUS_PUBLISH_INVALID: { status: 500, message: 'A message did not match its schema and was not sent (a bug in the producer).' },
  BUS_CLOSED: { status: 503, message: 'The bus client is closed.' },
  BUS_READ_ONLY: { status: 500, message: 'An observer client may only subscribe to events; it cannot publish.' },
  // inbound message rejections (dead-letter reasons)
  PAYLOAD_TOO_LARGE: { status: 413, message: 'The message is larger than the configured maximum payload.' },
  UNKNOWN_TOPIC: { status: 400, message: 'The topic is not part of the contract.' },
  INVALID_JSON: { status: 400, message: 'The payload is not valid JSON.' },
  INVALID_ENVELOPE: { status: 400, message: 'The payload is not a valid CloudEvents 1.0 structured envelope.' },
  TYPE_TOPIC_MISMATCH: { status: 400, message: 'The envelope type does not match the topic it was published on.' },
  WRONG_GATEWAY: { status: 403, message: 'The envelope source names another gateway than the topic.' },
  WRONG_PRODUCER: { status: 403, message: 'The envelope source names a service that does not produce this type.' },
  INVALID_DATA: { status: 422, message: 'The event data does not match the schema of its type.' },
  // orchestration
  NO_HANDLER: { status: 503, message: 'No live handler instance for the step answered within its timeout; start the service.' },
  STEP_TIMEOUT: { status: 504, message: 'The handler did not answer within the step timeout.' },
  STEP_FAILED: { status: 500, message: 'The step failed.' },
  RETRIES_EXHAUSTED: { status: 500, message: 'The step kept failing after all configured attempts.' },
  QUEUE_FULL: { status: 429, message: 'Too many photos are waiting to be analysed; try again in a few seconds (the answer says when, in Retry-After), or raise orchestrator.maxQueue.' },
  // analysis steps (`*.failed` reasons of the vision, comparison and metadata services)
  IMAGE_NOT_FOUND: { status: 404, message: 'The stored photo could not be read; upload it again.' },
  IMAGE_TOO_LARGE: { status: 413, message: 'The photo has more pixels than the analysis allows; downscale it before upload or raise limits.maxPixels.' },
  INVALID_INPUT: { status: 500, message: 'The metadata step was given neither a file nor image bytes (a bug in the caller).' },
  BACKEND_UNAVAILABLE: { status: 503, message: 'No inference backend could be loaded; check model.backend and that the runtime is installed.' },
  MODEL_NOT_FOUND: { status: 503, message: 'The recognition model files are missing; check model.dir (MODEL_DIR).' },
  MODEL_INVALID: { status: 503, message: 'The recognition model could not be loaded; check its manifest and files in model.dir.' },
  HEAD_INVALID: { status: 503, message: 'The recognition head file is unreadable; rebuild it with `npm run build:head`.' },
  HEAD_MISMATCH: { status: 503, message: 'The recognition head was trained for another model; rebuild it with `npm run build:head`.' },
  TRAINING_DATA_INVALID: { status: 422, message: 'The training photos cannot be used; see the message for the folder or example at fault.' },
  WORKER_FAILED: { status: 503, message: 'The vision worker crashed; the step is retried with a new worker.' },
  RECOGNIZER_DISPOSED: { status: 503, message: 'The recognizer was shut down while a photo was waiting (the service is stopping).' },
  EMBEDDING_LENGTH_MISMATCH: { status: 409, message: 'The reference photos were embedded with another model; register them again after a model change.' },
  EMBEDDING_MISSING: { status: 409, message: "The photo's stored embedding is missing or unreadable (removed by the storage quota, or a damaged file); upload the photo again to analyse it anew." },
  INVALID_EMBEDDING: { status: 422, message: 'The recognition result has no usable embedding; run recognition again.' },
  INVALID_HASH: { status: 422, message: 'A perceptual hash is malformed (16 hex characters expected); register the reference photo again.' },
  // uplink (store-and-forward to the relay)
  UPLINK_CONFIG_INVALID: { status: 500, message: 'The uplink settings are unusable (unreadable passwordFile or TLS file); fix uplink.* in the config.' },
  UPLINK_CONNECT_FAILED: { status: 503, message: 'Could not reach the relay; events stay in the outbox and are sent when it is reachable.' },
  UPLINK_AUTH_REFUSED: { status: 503, message: 'The relay refused the gateway credentials; check uplink.username and the gateway secret (TU_UPLINK_PASSWORD / uplink.passwordFile).' },
  UPLINK_PUBLISH_REFUSED: { status: 503, message: 'The relay refused a publish (its ACL); check that uplink.username is this gateway id.' },
  UPLINK_OUTBOX_FULL: { status: 503, message: 'The outbox is full; events are dropped or refused per uplink.outbox.whenFull until the relay is reachable.' },
  UPLINK_OUTBOX_FAILED: { status: 507, message: 'Writing the uplink outbox failed; check free space and permissions of dataDir.' },
  UPLINK_EVENT_TOO_LARGE: { status: 413, message: "An event is larger than the relay accepts (the relay's ingress.maxPayloadBytes, or this gateway's uplink.maxEventBytes). It is set aside in the outbox, not sent, so the events behind it keep flowing; raise the limit and it is sent by itself." },
  // configuration
  CONFIG_INVALID: { status: 500, message: 'The configuration is invalid.' },
  CONFIG_UNREADABLE: { status: 500, message: 'The configuration file could not be read or parsed.' },
  // HTTP API / image intake
  IMAGE_EMPTY: { status: 400, message: 'The file is empty. Choose a JPEG, PNG or WebP photo and try again.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'This file is not a photo. Choose a JPEG, PNG or WebP image.' },
  NOT_AN_IMAGE: { status: 415, message: 'This file is not a photo: its content is not a JPEG, PNG or WebP image. Choose a photo in one of those formats.' },
  UPLOAD_TOO_LARGE: { status: 413, message: 'The photo is too large for this gateway. Take it at a lower resolution or choose a smaller file.' },
  IMAGE_TOO_MANY_PIXELS: { status: 413, message: 'The photo has too many pixels for this gateway. Take it at a lower resolution and try again.' },
  IMAGE_DECODE_FAILED: { status: 422, message: 'The photo could not be read; it may be damaged or incomplete. Take or choose it again.' },
  // technician access to the agent (agent/src/http/auth/)
  TOKEN_REQUIRED: { status: 401, message: 'Sign in first: open the gateway page with a technician token (http://GATEWAY/#token=...) or send `Authorization: Bearer <token>`. On the gateway, `tu-agent token` prints one; away from it, ask the relay operator (`npm run relay -- technicians token`).' },
  TOKEN_INVALID: { status: 401, message: 'The technician token is expired, damaged, or made for another gateway; get a new one (`tu-agent token` on the gateway, or from the relay operator).' },
  ROLE_REQUIRED: { status: 403, message: 'Your technician token does not allow this; the message names the role it lacks. Ask for a token with that role.' },
  CROSS_ORIGIN_REFUSED: { status: 403, message: 'A web page of another site tried to change this gateway; only the gateway\'s own page may. Open the gateway page itself (http://GATEWAY/).' },
  INVALID_REQUEST: { status: 400, message: 'The request does not match the API schema; see the message for the offending field.' },
  BODY_TYPE_UNSUPPORTED: { status: 415, message: "This route does not read a body of that Content-Type; send JSON with 'Content-Type: application/json'." },
  NOT_FOUND: { status: 404, message: 'No such resource.' },
  NOT_RECOGNISED: { status: 409, message: 'The analysis has no recognition result to confirm or correct; wait until its recognition step completed (the vision service must be running).' },
  SERVICE_DISABLED: { status: 503, message: 'The service needed for this request is not running in this agent process.' },
  STORAGE_FAILED: { status: 507, message: "The gateway's storage is full or failing: nothing was stored. Free space in the data directory (dataDir) or check its permissions; new work is accepted again by itself once space returns." },
  INTERNAL_ERROR: { status: 500, message: 'Unexpected internal error; the details are in the log of the agent or relay that answered.' },
  DATA_FORMAT_TOO_NEW: { status: 500, message: 'The data directory was written by a newer agent whose data format this agent cannot read; run the newer agent again (`tu-agent update`), or move the data directory away to start afresh.' },
  DATA_FORMAT_INVALID: { status: 500, message: 'The data directory carries an unreadable data-format.json; restore it from the agent that wrote the data.' },
  // gateway installation (tu-agent install / provision / update)
  INSTALL_FAILED: { status: 500, message: 'Installing the agent failed; see the message, fix it and run the command again.' },
  UPDATE_UNHEALTHY: { status: 500, message: 'The new version did not report healthy in time; the previous version was restored.' },
  UI_NOT_BUILT: { status: 503, message: 'The web UI is not built; run `npm run build:ui` (npm start and npm test build it first).' },
  // relay: gateway ingress, registry, dashboard clients
  UNKNOWN_GATEWAY: { status: 403, message: 'The gateway is not registered with the relay; add it with `npm run relay -- gateways add <id> --tenant <t>`.' },
  COMMAND_REFUSED: { status: 403, message: 'Commands never leave a gateway; the relay accepts events only.' },
  GATEWAY_TOPIC_REFUSED: { status: 403, message: 'A gateway may publish only tu/{ownGatewayId}/evt/{type} and tu/{ownGatewayId}/sys/status, and may subscribe to nothing.' },
  UNAUTHENTICATED: { status: 401, message: 'Send a valid bearer token (JWT with sub and tenant claims): Authorization header, or `authorization` in the graphql-ws connection_init payload.' },
  FORBIDDEN: { status: 403, message: 'The token does not give access to this gateway (another tenant).' },
  REGISTRY_CONFLICT: { status: 409, message: 'A tenant or gateway with this id already exists.' },
  UNKNOWN_TENANT: { status: 404, message: 'No such tenant; add it with `npm run relay -- tenants add <id>`.' },
  STORAGE_UNAVAILABLE: { status: 503, message: 'The relay storage (SQLite file or PostgreSQL) is not reachable; check storage.url.' },
  QUERY_TOO_COMPLEX: { status: 400, message: 'The GraphQL query asks for too much (depth, aliases or cost over the relay\'s graphql.* limits); ask for fewer fields or smaller pages, and page with `after`.' },
  RESPONSE_TOO_LARGE: { status: 413, message: 'The GraphQL answer is larger than graphql.maxResponseBytes; ask for fewer fields or smaller pages.' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Whether a string from outside (a bus message, an error object) is a catalogue code. */
export const isErrorCode = (code: unknown): code is ErrorCode => typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);

export class TuError extends Error {
  readonly code: ErrorCode;
  override readonly cause?: unknown;
  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? ERROR_CODES[code].message);
    this.name = 'TuError';
    this.code = code;
    this.cause = options?.cause;
  }

  /** The HTTP status of the code (from the catalogue, never chosen at the throw site). */
  get status(): number {
    return ERROR_CODES[this.code].status;
  }
}
