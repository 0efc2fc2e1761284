import { describe, expect, it } from "vitest";
import { allowlist, assignableRoles, endOfDay, enrollCommand, keyStanding } from "./admin";

describe("administration", () => {
  it("keeps the super admin role to super admins", () => {
    expect(assignableRoles("ADMIN")).not.toContain("SUPER_ADMIN");
    expect(assignableRoles("ADMIN")).toContain("VIEWER");
    expect(assignableRoles("SUPER_ADMIN")).toContain("SUPER_ADMIN");
  });

  it("reads an allowlist one entry a line, or by commas", () => {
    expect(allowlist(" 10.0.0.0/8\n192.168.1.4, 2001:db8::/32 \n\n")).toEqual(["10.0.0.0/8", "192.168.1.4", "2001:db8::/32"]);
    expect(allowlist("   ")).toEqual([]);
  });

  it("ends an expiry date at the end of that local day", () => {
    const at = endOfDay("2027-03-31");
    expect(at).not.toBeNull();
    const local = new Date(at!);
    expect([local.getFullYear(), local.getMonth(), local.getDate(), local.getHours()]).toEqual([2027, 2, 31, 23]);
    expect(endOfDay("")).toBeNull();
    expect(endOfDay("31/03/2027")).toBeNull();
  });

  it("tells a revoked or expired key from an active one", () => {
    const now = Date.parse("2026-12-03T12:00:00Z");
    expect(keyStanding({ isActive: false, expiresAt: null }, now)).toBe("revoked");
    expect(keyStanding({ isActive: true, expiresAt: "2026-12-03T11:00:00Z" }, now)).toBe("expired");
    expect(keyStanding({ isActive: true, expiresAt: "2026-12-04T11:00:00Z" }, now)).toBe("active");
    expect(keyStanding({ isActive: true, expiresAt: null }, now)).toBe("active");
  });

  it("puts the join token in the environment of the enroll command", () => {
    expect(enrollCommand("https://lab.example.com", "bj_abc123")).toBe(
      "EDGE_BRIDGE_JOIN_TOKEN=bj_abc123 edge-bridge enroll --url https://lab.example.com",
    );
    expect(enrollCommand("http://127.0.0.1:8080", "it's")).toContain(`'it'\\''s'`);
  });
});
