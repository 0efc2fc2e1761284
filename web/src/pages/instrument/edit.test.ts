import { describe, expect, it } from "vitest";
import type { Schemas } from "../../api/client";
import { changes, conflicts, flatten, patchBody } from "./edit";

const base = {
  id: "i1", name: "Freezer F-1", type: "freezer", status: "online", location: "Room 2", model: null, serialNumber: "SN1",
  firmware: null, configuration: { setpointC: -80, alarmHighC: -70, qcThresholds: { a: 1 } }, calibration: {},
  version: 3, createdAt: "", updatedAt: "",
} as unknown as Schemas["Instrument"];

describe("editing", () => {
  it("sends only what the form changed, keeping configuration the form does not show", () => {
    const form = { ...flatten(base), location: "Room 3", "configuration.alarmHighC": -75, "configuration.setpointC": null };
    const mine = changes(flatten(base), form);
    expect(mine).toEqual({ location: "Room 3", "configuration.alarmHighC": -75, "configuration.setpointC": null });
    expect(patchBody(base, mine)).toEqual({ location: "Room 3", configuration: { alarmHighC: -75, qcThresholds: { a: 1 } } });
    expect(changes(flatten(base), flatten(base))).toEqual({});
  });

  it("shows what someone else changed, with my value where we both did", () => {
    const latest = { ...base, version: 4, location: "Cold room", configuration: { ...(base.configuration as object), alarmHighC: -72 } } as unknown as Schemas["Instrument"];
    const mine = { "configuration.alarmHighC": -75 };
    expect(conflicts(flatten(base), flatten(latest), mine)).toEqual([
      { field: "configuration.alarmHighC", was: -70, now: -72, mine: -75 },
      { field: "location", was: "Room 2", now: "Cold room" },
    ]);
    // Applying mine over theirs keeps their other change.
    expect(patchBody(latest, mine)).toEqual({ configuration: { setpointC: -80, alarmHighC: -75, qcThresholds: { a: 1 } } });
  });
});
