// Fails the web build when src/api/schema.d.ts is not what openapi-typescript
// makes of ../docs/openapi.json (the document the Rust code generates):
// regenerate with `npm run api` after `cargo xtask routes`.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import openapiTS, { astToString } from "openapi-typescript";

const doc = new URL("../../docs/openapi.json", import.meta.url);
const committed = fileURLToPath(new URL("../src/api/schema.d.ts", import.meta.url));
const fresh = astToString(await openapiTS(doc));
// openapi-typescript's CLI adds a banner; compare what follows it.
const body = (text) => text.slice(text.indexOf("export "));
if (body(readFileSync(committed, "utf8")) !== body(fresh)) {
  console.error(
    "src/api/schema.d.ts is stale: it does not match docs/openapi.json. Run `npm run api` in web/ (after `cargo xtask routes`).",
  );
  process.exit(1);
}
console.log("src/api/schema.d.ts matches docs/openapi.json");
