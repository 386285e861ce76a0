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

  type Machine {
    id: ID!
    gatewayId: ID!
    type: String
    brand: String
    model: String
    serialNumber: String
    name: String
    lastSeen: String
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
    "Filters: gateway, machine type (exact, case-insensitive), text search over name/brand/model/serial/type/id"
    machines(first: Int, after: String, gatewayId: ID, type: String, search: String): MachineConnection!
    machine(id: ID!): Machine
    "Newest first"
    analyses(first: Int, after: String, gatewayId: ID, machineId: ID, status: AnalysisStatus): AnalysisConnection!
    analysis(id: ID!): Analysis
  }

  type Subscription {
    "Every event of the tenant's gateways, or of one gateway, live and in order"
    analysisEvents(gatewayId: ID): AnalysisEvent!
  }
`;
