// Runs every Antevus function on workerd through miniflare: one worker per
// function, each with its own route (infra/workerd/workers.json, generated
// from the route table). Bindings (vars and secrets) come from the
// environment variables named in ANTEVUS_BINDINGS (comma-separated), so no
// secret is ever written to disk or to the command line. Each worker gets
// the vars and only the secrets its route declares (`secrets` in
// workers.json); a function given one it does not declare refuses to serve.
//
//   ANTEVUS_BINDINGS=SQL_PROXY_URL,DATABASE_URL,JWT_KEYS PORT=8787 node infra/workerd/run.mjs
//
// Prints "ready <url>" once serving; stops on SIGTERM / SIGINT.
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare, Log, LogLevel } from "miniflare";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const specs = JSON.parse(readFileSync(join(root, "infra/workerd/workers.json"), "utf8"));
const bindings = {};
for (const name of (process.env.ANTEVUS_BINDINGS ?? "").split(",").filter(Boolean)) {
  if (process.env[name] !== undefined) bindings[name] = process.env[name];
}
const port = Number(process.env.PORT ?? 8787);
// Every secret some function declares; the rest of the bindings are vars.
const secretNames = new Set(specs.flatMap((spec) => spec.secrets));
const bindingsOf = (spec) =>
  Object.fromEntries(
    Object.entries(bindings).filter(([name]) => !secretNames.has(name) || spec.secrets.includes(name)),
  );

const mf = new Miniflare({
  host: "127.0.0.1",
  // Never fetch the `cf` object from Cloudflare: this runs offline.
  cf: false,
  port,
  log: new Log(process.env.MINIFLARE_LOG === "debug" ? LogLevel.DEBUG : LogLevel.WARN),
  workers: specs.map((spec) => ({
    name: spec.name,
    modules: true,
    modulesRoot: join(root, spec.modulesRoot),
    scriptPath: join(root, spec.scriptPath),
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
    compatibilityDate: "2025-09-01",
    routes: spec.routes,
    // Functions whose paths this worker's route pattern also covers.
    serviceBindings: spec.services ?? {},
    // The live hub's Durable Object class (binding -> class of this script).
    durableObjects: spec.durableObjects ?? {},
    bindings: bindingsOf(spec),
    // The web application: static assets as Workers serves them, with the
    // Worker run first for /api/* (an unclaimed API path: the 404 envelope).
    // It is the first worker, with no route: miniflare's fallback for every
    // path no route claims, and the only worker it reaches through assets.
    ...(spec.assets
      ? {
          assets: {
            directory: join(root, spec.assets.directory),
            routerConfig: {
              has_user_worker: true,
              invoke_user_worker_ahead_of_assets: false,
              static_routing: { user_worker: spec.assets.runWorkerFirst },
            },
            assetConfig: {
              not_found_handling: spec.assets.notFoundHandling,
              has_static_routing: true,
            },
          },
        }
      : {}),
  })),
});

const url = await mf.ready;
console.log(`ready ${url.origin}`);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await mf.dispose();
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
