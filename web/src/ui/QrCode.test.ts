import { describe, expect, it } from "vitest";
import QRCode from "qrcode";
import { qrPath } from "./QrCode";
import { groups } from "../auth/SecondFactorKey";

describe("qrPath", () => {
  it("draws exactly the dark modules of the code", () => {
    const text = "otpauth://totp/Antevus:ada%40lab.example?secret=JBSWY3DPEHPK3PXP&issuer=Antevus";
    const { path, width } = qrPath(text);
    const { modules } = QRCode.create(text, { errorCorrectionLevel: "M" });
    expect(width).toBe(modules.size);
    expect((width - 17) % 4).toBe(0);
    // Every rectangle is one row high; their lengths add up to the dark modules.
    let drawn = 0;
    for (const [, , , run] of path.matchAll(/M(\d+) (\d+)h(\d+)v1h-\d+z/g)) drawn += Number(run);
    let dark = 0;
    for (let r = 0; r < width; r++) for (let c = 0; c < width; c++) dark += modules.get(r, c) ? 1 : 0;
    expect(drawn).toBe(dark);
    expect(dark).toBeGreaterThan(0);
  });
});

describe("groups", () => {
  it("splits a key into groups of four", () => {
    expect(groups("JBSWY3DPEHPK3PXP")).toBe("JBSW Y3DP EHPK 3PXP");
    expect(groups("ABCDE")).toBe("ABCD E");
  });
});
