import { describe, expect, it } from "vitest";
import { ApiFailure } from "../api/client";
import { explain } from "./SignIn";

describe("explain", () => {
  it("never says whether the account exists", () => {
    const text = explain(new ApiFailure(401, "AUTH_INVALID_CREDENTIALS", "Invalid credentials"));
    expect(text).toContain("e-mail or password is not right");
    expect(text).not.toMatch(/no account|not found|unknown user/i);
  });
  it("gives the retry time of a rate limit", () => {
    expect(explain(new ApiFailure(429, "RATE_LIMIT_EXCEEDED", "Too many", [], "req_1", 120))).toBe(
      "Too many attempts. Try again in 2 minutes.",
    );
  });
  it("points at the fields of a validation error", () => {
    const failure = new ApiFailure(400, "VALIDATION_ERROR", "Invalid input", [{ field: "email", message: "E-mail is required" }]);
    expect(explain(failure)).toBe("Check the marked fields.");
    expect(failure.forField("email")).toBe("E-mail is required");
  });
});
