import { describe, expect, it } from "vitest";
import { duration, runFilters } from "./runs";

describe("runFilters", () => {
  it("reads the address's filters and drops malformed ones", () => {
    const id = "0c18b448-9d94-4ab5-adcf-2dfe33965d03";
    expect(runFilters(new URLSearchParams(`instrumentId=${id}&status=running&from=2026-12-01&to=nope&operatorId=x`))).toEqual({
      instrumentId: id, status: "running", operatorId: "", from: "2026-12-01", to: "",
    });
    expect(runFilters(new URLSearchParams("status=done")).status).toBe("");
  });
});

describe("duration", () => {
  it("says how long a run took, or has taken so far", () => {
    expect(duration(null, null)).toBe("—");
    expect(duration("2026-12-01T10:00:00Z", "2026-12-01T10:00:42Z")).toBe("42 s");
    expect(duration("2026-12-01T10:00:00Z", "2026-12-01T13:05:00Z")).toBe("3 h 5 min");
    expect(duration("2026-12-01T10:00:00Z", null, Date.parse("2026-12-01T10:12:00Z"))).toBe("12 min");
  });
});
