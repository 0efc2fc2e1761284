import { describe, expect, it } from "vitest";
import { dueBadge, metricLabel, relativeTime, statusLabel, roleLabel } from "./format";

const now = Date.parse("2026-12-02T12:00:00Z");

describe("relativeTime", () => {
  it("says how long ago, in the largest whole unit", () => {
    expect(relativeTime("2026-12-02T12:00:00Z", now)).toBe("just now");
    expect(relativeTime("2026-12-02T11:59:30Z", now)).toBe("30 s ago");
    expect(relativeTime("2026-12-02T11:55:00Z", now)).toBe("5 min ago");
    expect(relativeTime("2026-12-02T09:00:00Z", now)).toBe("3 h ago");
    expect(relativeTime("2026-11-29T12:00:00Z", now)).toBe("3 days ago");
  });
  it("reads PostgreSQL's offsets as well as Z", () => {
    expect(relativeTime("2026-12-02T11:55:00+00:00", now)).toBe("5 min ago");
  });
  it("speaks of the future", () => {
    expect(relativeTime("2026-12-06T12:00:00Z", now)).toBe("in 4 days");
  });
});

describe("dueBadge", () => {
  it("is overdue when the date passed or the API says so", () => {
    expect(dueBadge("2026-12-01T00:00:00Z", false, "Calibration", now)).toEqual({ label: "Calibration overdue", tone: "bad" });
    expect(dueBadge("2027-01-01T00:00:00Z", true, "Calibration", now)?.tone).toBe("bad");
  });
  it("warns within two weeks and is silent beyond", () => {
    expect(dueBadge("2026-12-05T12:00:00Z", false, "Maintenance", now)).toEqual({ label: "Maintenance due in 3 days", tone: "warn" });
    expect(dueBadge("2027-02-01T00:00:00Z", false, "Maintenance", now)).toBeNull();
    expect(dueBadge(null, false, "Maintenance", now)).toBeNull();
  });
});

describe("statusLabel", () => {
  it("names every status", () => {
    expect(statusLabel("online")).toBe("Online");
    expect(statusLabel("maintenance")).toBe("Maintenance");
    expect(statusLabel("something_new")).toBe("Something_new");
  });
});

describe("metricLabel", () => {
  it("turns the API's metric names into words", () => {
    expect(metricLabel("compressorDutyPercent")).toBe("Compressor duty percent");
    expect(metricLabel("temperature")).toBe("Temperature");
    expect(metricLabel("door_open")).toBe("Door open");
  });
});

describe("roleLabel", () => {
  it("reads a role as people say it", () => {
    expect(roleLabel("LAB_MANAGER")).toBe("Lab manager");
    expect(roleLabel("VIEWER")).toBe("Viewer");
  });
});
