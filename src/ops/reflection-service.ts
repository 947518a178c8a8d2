import { createRegistry, type DescFile, type DescService, type Registry, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectRouter } from "@connectrpc/connect";
import { ServerReflection as ReflectionV1 } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ReflectionV1alpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

/** A reflection request's question, the same in v1 and v1alpha. */
type Question =
  | {
      case: "fileByFilename" | "fileContainingSymbol" | "allExtensionNumbersOfType" | "listServices";
      value: string;
    }
  | { case: "fileContainingExtension"; value: { containingType: string; extensionNumber: number } }
  | { case: undefined; value?: undefined };

/** The answer, as an init shape both versions' response messages accept. */
type Answer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

/**
 * What reflection knows: the services on the router and every file they need, down to the well-known types.
 * Built on first use, once every service has been registered.
 */
class Schema {
  readonly services: readonly string[];
  readonly #files = new Map<string, DescFile>();
  readonly #registry: Registry;
  readonly #encoded = new Map<DescFile, Uint8Array>();

  constructor(services: readonly DescService[]) {
    this.services = [...new Set(services.map((s) => s.typeName))].sort();
    const visit = (f: DescFile) => {
      if (this.#files.has(f.proto.name)) return;
      this.#files.set(f.proto.name, f);
      for (const d of f.dependencies) visit(d);
    };
    for (const s of services) visit(s.file);
    this.#registry = createRegistry(...this.#files.values());
  }

  answer(q: Question): Answer {
    switch (q.case) {
      case "listServices":
        return { case: "listServicesResponse", value: { service: this.services.map((name) => ({ name })) } };
      case "fileByFilename":
        return this.#file(this.#files.get(q.value), `file "${q.value}"`);
      case "fileContainingSymbol":
        return this.#file(this.#fileOfSymbol(q.value), `symbol "${q.value}"`);
      case "fileContainingExtension": {
        const extendee = this.#registry.getMessage(q.value.containingType);
        const ext = extendee && this.#registry.getExtensionFor(extendee, q.value.extensionNumber);
        return this.#file(ext?.file, `extension ${q.value.extensionNumber} of "${q.value.containingType}"`);
      }
      case "allExtensionNumbersOfType": {
        if (!this.#registry.getMessage(q.value)) return notFound(`type "${q.value}"`);
        const numbers: number[] = [];
        for (const t of this.#registry) {
          if (t.kind === "extension" && t.extendee.typeName === q.value) numbers.push(t.number);
        }
        return {
          case: "allExtensionNumbersResponse",
          value: { baseTypeName: q.value, extensionNumber: numbers },
        };
      }
      default:
        return {
          case: "errorResponse",
          value: { errorCode: Code.InvalidArgument, errorMessage: "empty request" },
        };
    }
  }

  /** A symbol is a type, a service, or a method, field or enum value inside one. */
  #fileOfSymbol(name: string): DescFile | undefined {
    const t = this.#registry.get(name);
    if (t) return t.file;
    const parent = this.#registry.get(name.slice(0, Math.max(0, name.lastIndexOf("."))));
    if (!parent) return undefined;
    const member = name.slice(name.lastIndexOf(".") + 1);
    switch (parent.kind) {
      case "service":
        return parent.methods.some((m) => m.name === member) ? parent.file : undefined;
      case "message":
        return parent.fields.some((f) => f.name === member) ? parent.file : undefined;
      case "enum":
        return parent.values.some((v) => v.name === member) ? parent.file : undefined;
      default:
        return undefined;
    }
  }

  /** The file and everything it imports: clients such as buf curl need the whole closure to decode. */
  #file(file: DescFile | undefined, what: string): Answer {
    if (!file) return notFound(what);
    const closure: Uint8Array[] = [];
    const seen = new Set<DescFile>();
    const visit = (f: DescFile) => {
      if (seen.has(f)) return;
      seen.add(f);
      closure.push(this.#encode(f));
      for (const d of f.dependencies) visit(d);
    };
    visit(file);
    return { case: "fileDescriptorResponse", value: { fileDescriptorProto: closure } };
  }

  #encode(f: DescFile): Uint8Array {
    let bytes = this.#encoded.get(f);
    if (!bytes) {
      bytes = toBinary(FileDescriptorProtoSchema, f.proto);
      this.#encoded.set(f, bytes);
    }
    return bytes;
  }
}

function notFound(what: string): Answer {
  return { case: "errorResponse", value: { errorCode: Code.NotFound, errorMessage: `${what} not found` } };
}

/**
 * gRPC server reflection, v1 and v1alpha (older grpcurl and grpc_cli speak only v1alpha), describing every
 * service on the router, so `buf curl --list-methods` and calls without `--schema` work. Register it last.
 */
export function registerReflection(router: ConnectRouter): void {
  let schema: Schema | undefined;
  const known = () => {
    schema ??= new Schema(router.handlers.map((h) => h.service));
    return schema;
  };
  router.service(ReflectionV1, {
    async *serverReflectionInfo(requests) {
      for await (const req of requests) {
        yield {
          validHost: req.host,
          originalRequest: req,
          messageResponse: known().answer(req.messageRequest),
        };
      }
    },
  });
  router.service(ReflectionV1alpha, {
    async *serverReflectionInfo(requests) {
      for await (const req of requests) {
        yield {
          validHost: req.host,
          originalRequest: req,
          messageResponse: known().answer(req.messageRequest),
        };
      }
    },
  });
}
