import { describe, expect, it } from "vitest";
import { backoff, liveUrl } from "./socket";
import { merge } from "../pages/Dashboard";

describe("backoff", () => {
  it("doubles from one second to at most thirty, with jitter in [0.5, 1)", () => {
    expect(backoff(0, () => 0)).toBe(500);
    expect(backoff(0, () => 0.999)).toBeLessThan(1000);
    expect(backoff(3, () => 0)).toBe(4000);
    expect(backoff(10, () => 0)).toBe(15_000);
    expect(backoff(50, () => 0.999)).toBeLessThan(30_000);
  });
});

describe("liveUrl", () => {
  it("follows the page's scheme", () => {
    expect(liveUrl({ protocol: "https:", host: "lab.example.com" })).toBe("wss://lab.example.com/api/v1/live");
    expect(liveUrl({ protocol: "http:", host: "127.0.0.1:8787" })).toBe("ws://127.0.0.1:8787/api/v1/live");
  });
});

describe("merge", () => {
  const id = "4b1c2a6e-0000-4000-8000-000000000001";
  it("keeps the newest reading of each metric, whatever order they come in", () => {
    let view = merge({}, {
      type: "readings",
      instrumentId: id,
      readings: [{ metric: "temperatureC", value: -80.1, unit: "C", recordedAt: "2026-12-02T12:00:02Z" }],
    });
    view = merge(view, {
      type: "readings",
      instrumentId: id,
      readings: [{ metric: "temperatureC", value: -79.0, unit: "C", recordedAt: "2026-12-02T12:00:01Z" }],
    });
    expect(view[id]?.readings.temperatureC?.value).toBe(-80.1);
  });
  it("takes statuses from status messages and subscriptions", () => {
    let view = merge({}, { type: "subscribed", all: true, instruments: [{ id, name: "F", status: "online", lastSeenAt: null }] });
    expect(view[id]?.status).toBe("online");
    view = merge(view, { type: "status", instrumentId: id, status: "error" });
    expect(view[id]?.status).toBe("error");
  });
  it("ignores errors", () => {
    const before = {};
    expect(merge(before, { type: "error", status: 400, error: { code: "VALIDATION_ERROR", message: "x", details: [] } })).toBe(before);
  });
});
