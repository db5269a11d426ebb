import { describe, expect, it } from "vitest";
import { auditFilterErrors, auditQuery, emptyAuditFilters, exportFilename, localToRfc3339 } from "./auditQuery";

describe("audit filters", () => {
  it("leaves out empty filters", () => {
    expect(auditQuery(emptyAuditFilters)).toEqual({});
    expect(auditQuery({ ...emptyAuditFilters, action: "  ", resource_id: "" })).toEqual({});
  });

  it("trims text filters and converts local times to RFC 3339", () => {
    const query = auditQuery({
      user_id: " 01a219dd-7e73-71af-a602-0c544c36c948 ",
      action: "container.start",
      resource_type: "container",
      resource_id: "web-1",
      since: "2026-11-26T15:04",
      until: "2026-11-27T00:00",
    });
    expect(query).toEqual({
      user_id: "01a219dd-7e73-71af-a602-0c544c36c948",
      action: "container.start",
      resource_type: "container",
      resource_id: "web-1",
      since: new Date(2026, 10, 26, 15, 4).toISOString(),
      until: new Date(2026, 10, 27, 0, 0).toISOString(),
    });
    expect(query.since).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:00\.000Z$/);
  });

  it("adds the cursor, format and limit", () => {
    expect(auditQuery({ ...emptyAuditFilters, action: "auth.login" }, { cursor: "42", limit: 100 })).toEqual({
      action: "auth.login",
      cursor: "42",
      limit: "100",
    });
    expect(auditQuery(emptyAuditFilters, { format: "ndjson", cursor: null })).toEqual({ format: "ndjson" });
  });

  it("reads seconds and rejects impossible dates", () => {
    expect(localToRfc3339("2026-01-02T03:04:05")).toBe(new Date(2026, 0, 2, 3, 4, 5).toISOString());
    expect(localToRfc3339("2026-02-30T10:00")).toBeNull();
    expect(localToRfc3339("yesterday")).toBeNull();
  });

  it("reports bad filters by field", () => {
    expect(auditFilterErrors(emptyAuditFilters)).toEqual({});
    expect(auditFilterErrors({ ...emptyAuditFilters, user_id: "alice" })).toEqual({ user_id: "a user id is a UUID" });
    expect(auditFilterErrors({ ...emptyAuditFilters, since: "2026-11-27T00:00", until: "2026-11-26T00:00" }).since).toMatch(/after until/);
    expect(auditFilterErrors({ ...emptyAuditFilters, until: "2026-13-01T00:00" }).until).toBeDefined();
  });

  it("names export files by format and time", () => {
    expect(exportFilename("csv", new Date(2026, 10, 26, 15, 4))).toBe("dcp-audit-log-20261126-1504.csv");
    expect(exportFilename("ndjson", new Date(2026, 0, 2, 3, 5))).toBe("dcp-audit-log-20260102-0305.ndjson");
  });
});
