/** The dashboard's GraphQL contract (DESIGN §4). */
export const typeDefs = /* GraphQL */ `
  scalar JSON

  type PageInfo {
    hasNextPage: Boolean!
    endCursor: String
  }

  type Gateway {
    id: ID!
    name: String
    online: Boolean!
    lastSeen: String
    machines(first: Int, after: String): MachineConnection!
  }

  "What a photo's recognition said: evidence about a machine, not its type"
  type Recognition {
    "Machine type the gateway recognised (or 'unknown' = not recognised as a machine)"
    machineType: String!
    "The recognition's confidence, 0..1"
    confidence: Float!
    "The analysis of that photo"
    analysisId: ID!
  }

  type Machine {
    id: ID!
    gatewayId: ID!
    "The registered type (PUT /api/v1/machine on the gateway); null when none is registered. Never taken from a photo"
    type: String
    brand: String
    model: String
    serialNumber: String
    "The registered name"
    name: String
    "The id the machine is registered under on its gateway"
    registeredId: String
    "When the machine was last seen (ISO, UTC): the latest photo's time; lastSeenSource says which time it is"
    lastSeen: String
    """
    Which time lastSeen is: capture-time (the photo's EXIF time, plausible), capture-time-latest (the
    latest instant the EXIF time of a photo without a time zone can be, for a photo taken more than a
    day before its upload: the machine was seen by then), upload-time (when the
    gateway received the photo: no usable capture time, or an implausible one), completed-time (the
    gateway's analysis time; no photo time known), gateway (the gateway's time, of a gateway that does
    not say which), relay-receipt (when the relay received it: the gateway's times were in the
    future). Null for machines last seen before the relay kept it
    """
    lastSeenSource: String
    "Why the photo's own time was not used for lastSeen (an implausible or future time); null when it was, or there was none"
    lastSeenNote: String
    "What the latest photo (the one at lastSeen) was recognised as"
    lastRecognition: Recognition
    "The gateway's type check of the latest photo: false = the recognition disagrees with the registered type, true = agrees, null = not judged (no registered type, or recognition unsure)"
    typeMatch: Boolean
    "The GPS position ({ latitude, longitude, altitude? }: degrees, metres) of the newest photo that carried one; a newer photo without one keeps it, so it can be older than lastSeen. Null when no photo had one"
    lastPosition: JSON
    "Small JPEG thumbnail of the latest photo, base64"
    latestThumbnail: String
    analyses(first: Int, after: String, status: AnalysisStatus): AnalysisConnection!
  }

  enum AnalysisStatus {
    running
    completed
    failed
  }

  type Analysis {
    id: ID!
    gatewayId: ID!
    machineId: ID!
    status: AnalysisStatus!
    """
    Each step's summary as the gateway sent it (shared/src/schemas/messages.ts stepSummary: step,
    status, attempts, times, error). While the analysis runs the relay records every step as
    pending. Once it has ended a step is completed, failed, cancelled (it had started, but the
    analysis ended before it finished; a later answer is ignored) or skipped (it never started).
    Gateways older than cancelled and skipped send running, waiting or pending for those
    (shared/src/step-status.ts)
    """
    steps: JSON
    results: JSON
    failure: JSON
    startedAt: String
    endedAt: String
  }

  "One event a gateway forwarded (every type, *.failed included)"
  type AnalysisEvent {
    id: ID!
    type: String!
    analysisId: ID!
    gatewayId: ID!
    time: String!
    data: JSON
  }

  """
  Real-world accuracy of one machine type, judged by technicians who confirmed or corrected the
  gateway's recognition (POST /api/v1/analyses/{id}/label on the gateway). Counts use only the
  newest label of each labelled analysis; photos nobody labelled are not counted.
  """
  type TypeAccuracy {
    "Machine type (or 'negative' = no machine, 'unknown' = the gateway abstained)"
    machineType: String!
    "Photos the gateway recognised as this type and a technician confirmed"
    confirmed: Int!
    "Photos the gateway recognised as this type but a technician chose another type (false positives)"
    correctedAway: Int!
    "Photos of this type (per the technician) that the gateway recognised as another type or unknown (misses)"
    correctedTo: Int!
    "confirmed / (confirmed + correctedAway): how often the gateway was right when it said this type; null without such labels"
    accuracy: Float
  }

  "A labelled example for the head refit: the technician's newest label of one analysis"
  type LabelledExample {
    "The correction id (idempotency key)"
    id: ID!
    gatewayId: ID!
    analysisId: ID!
    machineId: ID
    "sha256 of the photo"
    sha256: String!
    "Backbone embedding of the photo (the head's input)"
    embedding: [Float!]!
    "The label the technician confirmed or chose (a machine type, or 'negative' = no machine)"
    label: String!
    "The machine type the gateway had recognised"
    previousLabel: String!
    "confirmation or correction"
    kind: String!
    "The technician (name or id as typed on the gateway)"
    by: String!
    "When the technician labelled it (gateway clock, ISO)"
    at: String!
    "Backbone model id and version that computed the embedding"
    modelId: String!
    modelVersion: String!
    "The head that produced previousLabel (null: no head loaded)"
    headId: String
  }

  type LabelledExampleEdge {
    cursor: String!
    node: LabelledExample!
  }
  type LabelledExampleConnection {
    edges: [LabelledExampleEdge!]!
    nodes: [LabelledExample!]!
    pageInfo: PageInfo!
  }

  type GatewayEdge {
    cursor: String!
    node: Gateway!
  }
  type GatewayConnection {
    edges: [GatewayEdge!]!
    nodes: [Gateway!]!
    pageInfo: PageInfo!
  }
  type MachineEdge {
    cursor: String!
    node: Machine!
  }
  type MachineConnection {
    edges: [MachineEdge!]!
    nodes: [Machine!]!
    pageInfo: PageInfo!
  }
  type AnalysisEdge {
    cursor: String!
    node: Analysis!
  }
  type AnalysisConnection {
    edges: [AnalysisEdge!]!
    nodes: [Analysis!]!
    pageInfo: PageInfo!
  }

  type Query {
    gateways(first: Int, after: String, search: String): GatewayConnection!
    gateway(id: ID!): Gateway
    "Filters: gateway, machine type (exact, case-insensitive), text search over name/brand/model/serial/registered type/registered id/id"
    machines(first: Int, after: String, gatewayId: ID, type: String, search: String): MachineConnection!
    machine(id: ID!): Machine
    "Newest first"
    analyses(first: Int, after: String, gatewayId: ID, machineId: ID, status: AnalysisStatus): AnalysisConnection!
    analysis(id: ID!): Analysis
    "The newest events of the tenant's gateways (or one gateway), newest first; first: 1..100 (default 50). The dashboard loads these, then merges the live analysisEvents by id"
    recentEvents(first: Int, gatewayId: ID): [AnalysisEvent!]!
    "Per machine type, over the tenant's gateways (or one gateway): technicians' confirmations and corrections, and the accuracy they imply; sorted by type"
    typeAccuracy(gatewayId: ID): [TypeAccuracy!]!
    "The tenant's labelled examples (newest label per analysis), oldest first; for exporting training data (see relay README, 'Labelled examples')"
    labelledExamples(first: Int, after: String, gatewayId: ID): LabelledExampleConnection!
  }

  type Subscription {
    "Every event of the tenant's gateways, or of one gateway, live and in order"
    analysisEvents(gatewayId: ID): AnalysisEvent!
  }
`;
