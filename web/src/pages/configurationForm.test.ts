import { describe, expect, it } from "vitest";
import { formFields, readConfiguration } from "./configurationForm";

const qpcr = {
  type: "object",
  properties: {
    calibrationIntervalDays: { type: "integer", minimum: 1, maximum: 3650, title: "Calibration interval (days)" },
    notes: { type: "string", maxLength: 2000 },
    wells: { type: "integer", enum: [48, 96, 384] },
    dyes: { type: "array", items: { type: "string" }, maxItems: 8 },
    pairedEnd: { type: "boolean" },
    qcThresholds: { type: "object", properties: {} },
  },
};

describe("formFields", () => {
  it("offers an input per field of the schema, by its type", () => {
    const fields = formFields(qpcr);
    expect(fields.map((f) => [f.name, f.input])).toEqual([
      ["calibrationIntervalDays", "number"],
      ["notes", "text"],
      ["wells", "select"],
      ["dyes", "list"],
      ["pairedEnd", "checkbox"],
    ]);
    expect(fields[0]).toMatchObject({ label: "Calibration interval (days)", min: 1, max: 3650, integer: true });
    // Without a title, the name in words.
    expect(fields[1]).toMatchObject({ label: "Notes" });
  });
  it("follows x-order, then the fields it leaves out", () => {
    const fields = formFields({ ...qpcr, "x-order": ["wells", "dyes", "nonexistent"] });
    expect(fields.map((f) => f.name)).toEqual(["wells", "dyes", "calibrationIntervalDays", "notes", "pairedEnd"]);
  });
});

describe("readConfiguration", () => {
  it("keeps what was filled in, typed as the schema says", () => {
    const form = new FormData();
    form.set("configuration.calibrationIntervalDays", "180");
    form.set("configuration.notes", "  ");
    form.set("configuration.wells", "96");
    form.set("configuration.dyes", "FAM, VIC ,");
    form.set("configuration.pairedEnd", "true");
    expect(readConfiguration(formFields(qpcr), form)).toEqual({
      calibrationIntervalDays: 180,
      wells: 96,
      dyes: ["FAM", "VIC"],
      pairedEnd: true,
    });
  });
});
