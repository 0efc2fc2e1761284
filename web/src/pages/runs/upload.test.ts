import { describe, expect, it } from "vitest";
import { hex } from "../../ui/files";
import { contentRange, digestField, uploadLimit } from "./upload";

describe("run data upload", () => {
  it("reads the sizes a refused chunk names", () => {
    expect(uploadLimit("min-append-size=5242880, max-append-size=8388608")).toEqual({ min: 5242880, max: 8388608 });
    expect(uploadLimit("max-append-size=2097152")).toEqual({ min: 1, max: 2097152 });
    expect(uploadLimit(null)).toBeNull();
    expect(uploadLimit("max-append-size=0")).toBeNull();
    expect(uploadLimit("nonsense")).toBeNull();
  });

  it("names a chunk's place as Content-Range does (last byte inclusive)", () => {
    expect(contentRange(0, 2097152, 5000000)).toBe("bytes 0-2097151/5000000");
    expect(contentRange(4194304, 5000000, 5000000)).toBe("bytes 4194304-4999999/5000000");
  });

  it("writes an RFC 9530 digest field", async () => {
    const sha = await crypto.subtle.digest("SHA-256", new TextEncoder().encode("abc"));
    expect(digestField(sha)).toBe("sha-256=:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=:");
    expect(hex(sha)).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });
});
