// Checks every dashboard in monitoring/grafana/dashboards against Grafana's own types
// (@grafana/schema's `Dashboard`, the classic JSON model that file provisioning loads) with the
// TypeScript compiler: `node monitoring/grafana/check-dashboards.mjs` (scripts/check-monitoring
// runs it; NODE_PATH must hold @grafana/schema and typescript, as scripts/lib/tools.sh sets it).
//
// Each dashboard is written into a .ts file as an object literal `satisfies Dashboard`, rather
// than imported as a JSON module: an import widens every string to `string`, so a misspelt enum
// value ("timeseris") or an unknown key (excess property) would pass. Panel options are typed
// `Record<string, unknown>` in the schema and are not checked here; the end-to-end test checks
// every panel's PromQL against a real Prometheus instead.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dashboards = join(here, "dashboards");
const modules = (process.env.NODE_PATH || "").split(":").filter(Boolean);
const schema = modules.map((m) => join(m, "@grafana/schema")).find((p) => exists(join(p, "package.json")));
const tsc = modules.map((m) => join(m, "typescript/bin/tsc")).find(exists);
if (!schema || !tsc) {
  console.error("@grafana/schema and typescript are not in NODE_PATH: run scripts/test once (scripts/lib/tools.sh installs them)");
  process.exit(2);
}

// `Loose<T>` is `T` with every string enum replaced by the union of its values (a JSON file holds
// "absolute", never `ThresholdsMode.Absolute`); unknown keys are still excess properties.
// @grafana/schema has no type for the Prometheus data source's queries: its annotation options
// (Grafana's PrometheusAnnotationSupport reads them beside the query) are declared here.
const PRELUDE = `import type { AnnotationQuery, Dashboard, DataQuery } from "@grafana/schema";
type Loose<T> = T extends string ? \`\${T}\` : T extends (infer U)[] ? Loose<U>[] : T extends object ? { [K in keyof T]: Loose<T[K]> } : T;
interface PrometheusQuery extends DataQuery { expr: string; legendFormat?: string; instant?: boolean; range?: boolean; interval?: string; }
interface PrometheusAnnotation extends AnnotationQuery<PrometheusQuery> {
  titleFormat?: string; tagKeys?: string; textFormat?: string; step?: string; useValueForTime?: boolean;
}
type Checked = Loose<Omit<Dashboard, "annotations"> & { annotations?: { list?: (AnnotationQuery | PrometheusAnnotation)[] } }>;
`;

const work = mkdtempSync(join(tmpdir(), "wasmline-dashboards-"));
let failed = false;
try {
  const files = readdirSync(dashboards).filter((f) => f.endsWith(".json"));
  if (files.length === 0) throw new Error(`no dashboards in ${dashboards}`);
  for (const file of files) {
    const json = JSON.parse(readFileSync(join(dashboards, file), "utf8"));
    const name = file.replace(/\W/g, "_");
    // Leading lines keep tsc's line numbers close to the JSON's.
    writeFileSync(
      join(work, `${name}.ts`),
      PRELUDE + `export const dashboard = ${JSON.stringify(json, null, 2)} satisfies Checked;\n`,
    );
  }
  writeFileSync(
    join(work, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        target: "es2022",
        module: "nodenext",
        moduleResolution: "nodenext",
        skipLibCheck: true,
        types: [],
        baseUrl: ".",
        paths: { "@grafana/schema": [join(schema, "dist/types/index.d.ts")] },
      },
      include: ["*.ts"],
    }),
  );
  try {
    execFileSync(process.execPath, [tsc, "-p", work], { stdio: "inherit" });
    console.log(`${files.length} dashboard(s) match @grafana/schema's Dashboard: ${files.join(", ")}`);
  } catch {
    failed = true;
    console.error(`dashboards do not match @grafana/schema (the generated files are in ${work})`);
  }
} finally {
  if (!failed) rmSync(work, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);

function exists(p) {
  try {
    readFileSync(p);
    return true;
  } catch {
    return false;
  }
}
