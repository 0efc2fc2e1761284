import { describe, expect, it } from "vitest";
import type { Schemas } from "../../api/client";
import { steps } from "./Commands";

const command = (over: Partial<Schemas["Command"]>) =>
  ({
    id: "c", instrumentId: "i", command: "stop", parameters: {}, status: "queued", createdAt: "2026-12-01T10:00:00Z",
    updatedAt: "2026-12-01T10:00:00Z", expiresAt: "2026-12-01T10:05:00Z", ...over,
  }) as Schemas["Command"];

describe("steps", () => {
  it("marks how far a command got", () => {
    expect(steps(command({ status: "queued" })).map((s) => s.state)).toEqual(["current", "todo", "todo", "todo"]);
    expect(steps(command({ status: "acknowledged", sentAt: "x", acknowledgedAt: "y" })).map((s) => s.state)).toEqual([
      "done", "done", "current", "todo",
    ]);
    expect(steps(command({ status: "completed", sentAt: "x", acknowledgedAt: "y", completedAt: "z" })).map((s) => [s.label, s.state])).toEqual([
      ["Queued", "done"], ["Sent", "done"], ["Acknowledged", "done"], ["Completed", "done"],
    ]);
  });
  it("ends in failed or expired", () => {
    expect(steps(command({ status: "failed" })).at(-1)).toMatchObject({ label: "Failed", state: "bad" });
    expect(steps(command({ status: "expired" })).at(-1)).toMatchObject({ label: "Expired", state: "bad" });
    // Expired while queued: it was never sent.
    expect(steps(command({ status: "expired" })).map((s) => s.state)).toEqual(["done", "todo", "todo", "bad"]);
  });
});
