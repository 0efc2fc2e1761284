import { describe, expect, it } from "vitest";
import { curl, example, operations, redacted, requestPath } from "./playground";

const doc = {
  paths: {
    "/api/health": { get: { tags: ["System"], summary: "Health", security: [{}], responses: { "200": { description: "ok" } } } },
    "/api/v1/runs/{id}/stop": {
      put: {
        tags: ["Runs"], summary: "Stop", operationId: "putRunsStop",
        parameters: [{ name: "id", in: "path", required: true, schema: { type: "string", format: "uuid" } }],
        requestBody: { content: { "application/json": { schema: { $ref: "#/components/schemas/StopInput" } } } },
        responses: { "200": { description: "Stopped" } },
      },
    },
  },
  components: {
    schemas: {
      StopInput: {
        type: "object", required: ["outcome"],
        properties: { outcome: { $ref: "#/components/schemas/Outcome" }, reason: { type: ["string", "null"] }, at: { oneOf: [{ type: "null" }, { type: "string", format: "date-time" }] } },
      },
      Outcome: { type: "string", enum: ["completed", "aborted"] },
    },
  },
};

describe("API playground", () => {
  it("lists the operations with their tag, parameters and body", () => {
    const ops = operations(doc);
    expect(ops.map((o) => `${o.method} ${o.path}`)).toEqual(["GET /api/health", "PUT /api/v1/runs/{id}/stop"]);
    expect(ops[0]!.open).toBe(true);
    expect(ops[1]!).toMatchObject({ tag: "Runs", id: "putRunsStop", open: false });
    expect(ops[1]!.parameters[0]!.name).toBe("id");
  });

  it("makes an example body from the schema", () => {
    const body = operations(doc)[1]!.body!;
    expect(example(doc, body)).toEqual({ outcome: "completed", reason: "", at: "1970-01-01T00:00:00.000Z" });
  });

  it("fills the path and leaves empty query values out", () => {
    expect(requestPath("/api/v1/runs/{id}/stop", { id: "a b", limit: "", status: "running" }, ["limit", "status"]))
      .toBe("/api/v1/runs/a%20b/stop?status=running");
  });

  it("writes curl with a credential variable, never the credential", () => {
    expect(curl("https://lab.example", "PUT", "/api/v1/runs/1/stop", "token", '{"outcome":"aborted","reason":"it\'s late"}')).toBe(
      `curl -sS -X PUT https://lab.example/api/v1/runs/1/stop -H "Authorization: Bearer $ANTEVUS_TOKEN" -H 'Content-Type: application/json' --data '{"outcome":"aborted","reason":"it'\\''s late"}'`,
    );
    expect(curl("http://127.0.0.1:8080", "GET", "/api/health", "none", null)).toBe("curl -sS http://127.0.0.1:8080/api/health");
  });

  it("keeps secrets out of the curl body", () => {
    expect(redacted('{"email":"a@b.c","password":"hunter2","code":"123456","nested":{"refreshToken":"rt"}}')).toBe(
      '{"email":"a@b.c","password":"<password>","code":"<code>","nested":{"refreshToken":"<refreshToken>"}}',
    );
    expect(redacted("not json")).toBe("not json");
  });
});
