// Names for the API's schemas, generated from the server's OpenAPI document
// (`npm run api-types` regenerates `schema.d.ts` from `dcp openapi`).
import type { components } from "./schema";

type Schemas = components["schemas"];

export type UserView = Schemas["UserView"];
export type TokenResponse = Schemas["TokenResponse"];
export type ContainerView = Schemas["ContainerView"];
export type ContainerList = Schemas["ContainerList"];
export type ContainerDetail = Schemas["ContainerDetail"];
export type CreateContainerRequest = Schemas["CreateContainerRequest"];
export type CreateOutcome = Schemas["CreateOutcome"];
export type OperationOutcome = Schemas["OperationOutcome"];
export type OperationView = Schemas["OperationView"];
export type HostAnswer = Schemas["HostAnswer"];
export type HostView = Schemas["HostView"];
export type WizardState = Schemas["WizardState"];
export type TestOutcome = Schemas["TestOutcome"];
export type CheckResult = Schemas["CheckResult"];
export type CompletionView = Schemas["CompletionView"];
export type GeneratedKey = Schemas["GeneratedKey"];
export type AuditPage = Schemas["AuditPage"];
export type AuditLogView = Schemas["AuditLogView"];
export type EventPage = Schemas["EventPage"];
export type EventView = Schemas["EventView"];
export type ImageList = Schemas["ImageList"];
export type VolumeList = Schemas["VolumeList"];
export type NetworkList = Schemas["NetworkList"];
export type UserList = Schemas["UserList"];
export type AcceptedOperation = Schemas["AcceptedOperation"];
export type TicketPurpose = Schemas["Purpose"];
export type ErrorBody = Schemas["Error"];
export type Role = "admin" | "operator" | "viewer";
