import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import { parse } from "yaml";

interface Ref {
  readonly $ref: string;
}
interface ResponseDoc {
  readonly headers?: Record<string, Ref | { readonly schema: unknown }>;
  readonly content?: Record<string, { readonly schema: unknown }>;
}
type Responses = Record<string, Ref | ResponseDoc>;
export interface OpenApiDoc {
  readonly openapi: string;
  readonly paths: Record<string, Record<string, { readonly responses: Responses }>>;
  readonly components: Record<string, Record<string, unknown>>;
}

export const OPENAPI_FILE = resolve(import.meta.dirname, "..", "..", "openapi.yaml");

export function loadOpenApi(): OpenApiDoc {
  return parse(readFileSync(OPENAPI_FILE, "utf8")) as OpenApiDoc;
}

/** What one REST call answered, as the checker needs it. */
export interface RestAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: unknown;
}

const toDefs = (schema: unknown): unknown =>
  JSON.parse(JSON.stringify(schema).replaceAll('"#/components/schemas/', '"openapi#/$defs/'));

const pointer = (...parts: string[]) =>
  parts.map((p) => p.replaceAll("~", "~0").replaceAll("/", "~1")).join("/");

/**
 * Checks REST answers against openapi.yaml with ajv (JSON Schema 2020-12, OpenAPI 3.1's dialect): the path and
 * method are documented, the status is listed (or falls under `default`), the body matches its schema and each
 * documented header is present and matches its own. It remembers which documented statuses it saw, so a suite
 * can check that none is left unexercised.
 */
export class OpenApiChecker {
  readonly doc = loadOpenApi();
  /** `post /api/v1/auth/send-otp 200`, for every answer whose status the document lists by number. */
  readonly seen = new Set<string>();
  readonly #ajv = new Ajv2020({ strict: true, allErrors: true });
  readonly #compiled = new Map<string, ValidateFunction>();

  constructor() {
    // The document as a whole is not a JSON Schema (strict ajv rightly refuses `openapi`, `paths`…): its
    // component schemas become one schema's $defs, and each schema in use is compiled with its refs pointed there.
    this.#ajv.addSchema({ $id: "openapi", $defs: toDefs(this.doc.components.schemas ?? {}) });
  }

  #validator(at: string): ValidateFunction {
    let v = this.#compiled.get(at);
    if (!v) {
      let node: unknown = this.doc;
      for (const part of at.replace(/^#\//, "").split("/")) {
        const key = part.replaceAll("~1", "/").replaceAll("~0", "~");
        node = typeof node === "object" && node !== null ? (node as Record<string, unknown>)[key] : undefined;
      }
      if (node === undefined) throw new Error(`openapi.yaml has nothing at ${at}`);
      v = this.#ajv.compile(toDefs(node) as object);
      this.#compiled.set(at, v);
    }
    return v;
  }

  /** Every `method path status` the document lists by number. */
  documented(): string[] {
    return Object.entries(this.doc.paths).flatMap(([path, ops]) =>
      Object.entries(ops).flatMap(([method, op]) =>
        Object.keys(op.responses)
          .filter((s) => s !== "default")
          .map((s) => `${method} ${path} ${s}`),
      ),
    );
  }

  /** Problems with one answer; empty when it is what the document says. */
  check(method: string, concrete: string, answer: RestAnswer): string[] {
    // A concrete path (`/sessions/abc`) is checked against its template (`/sessions/{id}`).
    const path =
      concrete in this.doc.paths
        ? concrete
        : (Object.keys(this.doc.paths).find((t) =>
            new RegExp(`^${t.replace(/\{[^}/]+\}/g, "[^/]+")}$`).test(concrete),
          ) ?? concrete);
    const ops = this.doc.paths[path] ?? {};
    // A 405 is the answer to a method the path does not have: it is documented on the methods it does have.
    const m =
      method.toLowerCase() in ops || answer.status !== 405
        ? method.toLowerCase()
        : Object.keys(ops).find((k) => "405" in (ops[k]?.responses ?? {}));
    const responses = m === undefined ? undefined : ops[m]?.responses;
    if (m === undefined || !responses) return [`${method} ${path} is not in openapi.yaml`];
    const status = String(answer.status);
    const listed = status in responses;
    const key = listed ? status : "default";
    let at = ["#", "paths", pointer(path), m, "responses", key].join("/");
    let response = responses[key];
    if (response === undefined) return [`${method} ${path} answered ${status}, not in openapi.yaml`];
    if ("$ref" in response) {
      at = response.$ref;
      const name = response.$ref.replace("#/components/responses/", "");
      response = this.doc.components.responses?.[name] as ResponseDoc;
    }
    const problems: string[] = [];
    const validate = (schemaAt: string, value: unknown, what: string) => {
      const v = this.#validator(schemaAt);
      if (!v(value)) problems.push(`${what}: ${this.#ajv.errorsText(v.errors)} in ${JSON.stringify(value)}`);
    };
    if (response.content?.["application/json"]) {
      const type = answer.headers.get("content-type") ?? "";
      if (!type.startsWith("application/json")) problems.push(`content-type is ${type}`);
      validate(`${at}/content/${pointer("application/json")}/schema`, answer.body, `${status} body`);
    }
    for (const [name, header] of Object.entries(response.headers ?? {})) {
      const value = answer.headers.get(name);
      if (value === null) {
        problems.push(`header ${name} missing`);
        continue;
      }
      const schemaAt = "$ref" in header ? `${header.$ref}/schema` : `${at}/headers/${pointer(name)}/schema`;
      validate(schemaAt, value, `header ${name}`);
    }
    if (problems.length === 0 && listed) this.seen.add(`${m} ${path} ${status}`);
    return problems;
  }

  /** `fetch` for REST tests: the answer, parsed, after checking it against the document. */
  async fetch(baseUrl: string, path: string, init: RequestInit = {}): Promise<RestAnswer> {
    const res = await fetch(new URL(path, baseUrl), init);
    const text = await res.text();
    const answer = {
      status: res.status,
      headers: res.headers,
      body: text === "" ? undefined : JSON.parse(text),
    };
    const problems = this.check(init.method ?? "GET", path, answer);
    if (problems.length > 0) {
      throw new Error(
        `${init.method ?? "GET"} ${path} does not match openapi.yaml:\n  ${problems.join("\n  ")}`,
      );
    }
    return answer;
  }
}
