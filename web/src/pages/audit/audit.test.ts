import { describe, expect, it } from "vitest";
import { sha256Hex } from "../../ui/files";
import { auditFilters, auditQuery, changes, headerManifest, splitExport, verdict } from "./audit";

const base = {
  chainId: "9b1e0c4e-3a55-4a70-8e5e-0d1f7c2b6a11", verified: true, fromSequence: 1, verifiedToSequence: 42,
  events: 42, legacyEvents: 0, checkpointsChecked: 1, complete: true,
};

describe("audit", () => {
  it("keeps well-formed filters and drops the rest", () => {
    const f = auditFilters(new URLSearchParams("eventType=run_started&severity=loud&outcome=failure&recordId=nope&from=2026-12-01&q=%20stop%20"));
    expect(f).toMatchObject({ eventType: "RUN_STARTED", severity: "", outcome: "FAILURE", recordId: "", from: "2026-12-01", q: "stop" });
    const q = auditQuery(f);
    expect(q.eventType).toBe("RUN_STARTED");
    expect(q.from).toBe(new Date("2026-12-01T00:00:00").toISOString());
    expect(q).not.toHaveProperty("severity");
  });

  it("says what a verification found", () => {
    expect(verdict(base).headline).toBe("The audit trail is intact: all 42 events from #1 to #42 verify.");
    expect(verdict(base).tone).toBe("good");
    const broken = verdict({ ...base, verified: false, events: 6, failure: { sequence: 7, reason: "modified", detail: "Its content hash differs." } });
    expect(broken.tone).toBe("bad");
    expect(broken.headline).toContain("#7: an event was changed after it was recorded");
    expect(verdict({ ...base, complete: false, verified: false, events: 20000 }).tone).toBe("info");
  });

  it("splits a JSON Lines export at its manifest", async () => {
    const text = '{"sequence":1}\n{"sequence":2}\n{"manifest":{"count":2}}\n';
    const { body, trailer } = splitExport(new TextEncoder().encode(text));
    expect(new TextDecoder().decode(body)).toBe('{"sequence":1}\n{"sequence":2}\n');
    expect(trailer).toEqual({ manifest: { count: 2 } });
    expect(await sha256Hex(new TextEncoder().encode("abc"))).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  it("reads a CSV export's manifest header", () => {
    const header = btoa(JSON.stringify({ count: 3, sha256: "ab" })).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    expect(headerManifest(header)).toMatchObject({ count: 3 });
    expect(headerManifest("not base64 json")).toBeNull();
  });

  it("lists what an event changed", () => {
    expect(changes({ role: "SCIENTIST" }, { role: "SENIOR_SCIENTIST", name: "Sam" })).toEqual([
      { field: "name", before: "—", after: "Sam" },
      { field: "role", before: "SCIENTIST", after: "SENIOR_SCIENTIST" },
    ]);
    expect(changes(null, undefined)).toEqual([]);
  });
});
