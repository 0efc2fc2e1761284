import { describe, expect, it } from "vitest";
import { appendLive, columns, limitsFor, summary } from "./chart";

const freezer = {
  properties: {
    setpointC: { type: "number", title: "Setpoint (°C)", "x-limit": { metric: "temperature", kind: "setpoint" } },
    alarmHighC: { type: "number", title: "High-temperature alarm (°C)", "x-limit": { metric: "temperature", kind: "high" } },
    notes: { type: "string", title: "Notes" },
  },
};

describe("limitsFor", () => {
  it("draws the configured limits of the metric only", () => {
    expect(limitsFor(freezer, { setpointC: -80, alarmHighC: -70, notes: "x" }, "temperature")).toEqual([
      { label: "Setpoint (°C)", value: -80, kind: "setpoint" },
      { label: "High-temperature alarm (°C)", value: -70, kind: "high" },
    ]);
    expect(limitsFor(freezer, { setpointC: -80 }, "compressorDutyPercent")).toEqual([]);
  });
  it("leaves out limits the instrument has no number for", () => {
    expect(limitsFor(freezer, { alarmHighC: "warm" }, "temperature")).toEqual([]);
    expect(limitsFor(null, null, "temperature")).toEqual([]);
  });
});

describe("columns", () => {
  const history = {
    metric: "temperature",
    unit: "C",
    points: [
      { t: "2026-12-01T10:00:00Z", min: -81, avg: -80, max: -79, count: 3 },
      { t: "2026-12-01T10:00:30Z", min: -80.5, avg: -80.2, max: -80, count: 3 },
    ],
  };
  it("puts live readings after the last bucket, oldest first, and a column per limit", () => {
    const live = [
      { metric: "temperature", value: -79.5, recordedAt: "2026-12-01T10:01:05Z" },
      { metric: "temperature", value: -79.9, recordedAt: "2026-12-01T10:00:10Z" },
      { metric: "temperature", value: -79.7, recordedAt: "2026-12-01T10:01:01Z" },
    ];
    const [t, avg, min, max, limit] = columns(history, live, [{ label: "High", value: -70, kind: "high" }]);
    expect(t).toEqual([1796119200, 1796119230, 1796119261, 1796119265]);
    expect(avg).toEqual([-80, -80.2, -79.7, -79.5]);
    expect(min).toEqual([-81, -80.5, -79.7, -79.5]);
    expect(max).toEqual([-79, -80, -79.7, -79.5]);
    expect(limit).toEqual([-70, -70, -70, -70]);
  });
  it("draws live readings alone when there is no history", () => {
    const [t] = columns(undefined, [{ metric: "x", value: 1, recordedAt: "2026-12-01T10:00:00Z" }], []);
    expect(t).toHaveLength(1);
  });
});

describe("summary", () => {
  it("says the latest value, the range and the limits in words", () => {
    const data = columns(
      { metric: "temperature", points: [{ t: "2026-12-01T10:00:00Z", min: -81, avg: -80, max: -79.5, count: 2 }] },
      [],
      [{ label: "High-temperature alarm (°C)", value: -70, kind: "high" }],
    );
    expect(summary("Temperature", data, "C", [{ label: "High-temperature alarm (°C)", value: -70, kind: "high" }], "Last hour")).toBe(
      "Temperature: latest -80 C; from -81 to -79.50 C in the last hour; high-temperature alarm -70 C.",
    );
    expect(summary("Temperature", columns(undefined, [], []), "C", [], "Last hour")).toBe("Temperature: no readings in the last hour.");
  });
});

describe("appendLive", () => {
  it("keeps at most the cap per metric, newest last", () => {
    let state = {};
    for (let i = 0; i < 5; i++) state = appendLive(state, [{ metric: "m", value: i, recordedAt: `2026-12-01T10:00:0${i}Z` }], 3);
    expect((state as Record<string, { value: number }[]>).m!.map((r) => r.value)).toEqual([2, 3, 4]);
    // The same latest value polled again is not a new point.
    state = appendLive(state, [{ metric: "m", value: 4, recordedAt: "2026-12-01T10:00:04Z" }], 3);
    expect((state as Record<string, unknown[]>).m).toHaveLength(3);
  });
});
