// Form fields from an instrument type's configuration schema (a JSON
// Schema object of optional fields, `GET /api/v1/instrument-types`), and
// the configuration document read back from a submitted form.
import { metricLabel } from "./format";

interface PropertySchema {
  type?: string;
  /** What the form calls it, with its unit ("Setpoint (°C)"). */
  title?: string;
  enum?: (string | number)[];
  minimum?: number;
  maximum?: number;
  maxLength?: number;
  maxItems?: number;
  format?: string;
  items?: PropertySchema;
}

export type FormField = {
  name: string;
  label: string;
  hint?: string;
} & (
  | { input: "select"; options: (string | number)[]; numeric: boolean }
  | { input: "checkbox" }
  | { input: "number"; integer: boolean; min?: number; max?: number }
  | { input: "datetime" }
  | { input: "text"; maxLength?: number }
  | { input: "list"; integer: boolean; maxLength?: number }
);

/** The fields a form offers for `schema` (nested objects, e.g. QC thresholds, are left to their own page). */
export function formFields(schema: unknown): FormField[] {
  const document = schema as { properties?: Record<string, PropertySchema>; "x-order"?: string[] } | null;
  const properties = document?.properties ?? {};
  // `x-order` lists the fields as a form shows them; any it leaves out follow.
  const listed = (document?.["x-order"] ?? []).filter((name) => name in properties);
  const names = [...listed, ...Object.keys(properties).filter((name) => !listed.includes(name))];
  const fields: FormField[] = [];
  for (const name of names) {
    const property = properties[name];
    if (!property) continue;
    const label = property.title ?? metricLabel(name);
    if (property.enum) {
      fields.push({ name, label, input: "select", options: property.enum, numeric: property.type === "integer" || property.type === "number" });
    } else if (property.type === "boolean") {
      fields.push({ name, label, input: "checkbox" });
    } else if (property.type === "integer" || property.type === "number") {
      fields.push({
        name, label, input: "number", integer: property.type === "integer",
        ...(property.minimum !== undefined ? { min: property.minimum } : {}),
        ...(property.maximum !== undefined ? { max: property.maximum } : {}),
        hint: range(property),
      });
    } else if (property.type === "string" && property.format === "date-time") {
      fields.push({ name, label, input: "datetime" });
    } else if (property.type === "string") {
      fields.push({ name, label, input: "text", ...(property.maxLength !== undefined ? { maxLength: property.maxLength } : {}) });
    } else if (property.type === "array") {
      const integer = property.items?.type === "integer";
      fields.push({ name, label, input: "list", integer, hint: `Separate values with commas${property.maxItems ? ` (at most ${property.maxItems})` : ""}.` });
    }
  }
  return fields;
}

function range(property: PropertySchema): string | undefined {
  if (property.minimum !== undefined && property.maximum !== undefined) return `From ${property.minimum} to ${property.maximum}.`;
  return undefined;
}

/** The configuration the form holds: only the fields filled in, typed as the schema says. */
export function readConfiguration(fields: FormField[], form: FormData): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of fields) {
    const raw = form.get(`configuration.${field.name}`);
    if (field.input === "checkbox") {
      if (raw !== null) out[field.name] = true;
      continue;
    }
    const text = String(raw ?? "").trim();
    if (text === "") continue;
    switch (field.input) {
      case "number":
        out[field.name] = Number(text);
        break;
      case "select":
        out[field.name] = field.numeric ? Number(text) : text;
        break;
      case "datetime":
        out[field.name] = new Date(text).toISOString();
        break;
      case "list": {
        const items = text.split(",").map((v) => v.trim()).filter(Boolean);
        out[field.name] = field.integer ? items.map(Number) : items;
        break;
      }
      default:
        out[field.name] = text;
    }
  }
  return out;
}
