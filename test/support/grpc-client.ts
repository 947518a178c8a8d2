import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { GenService } from "@bufbuild/protobuf/codegenv2";
import * as grpc from "@grpc/grpc-js";

type Unary = (
  req: unknown,
  meta: grpc.Metadata,
  cb: (err: grpc.ServiceError | null, res: unknown) => void,
) => void;

/**
 * A real @grpc/grpc-js client built from the generated schema (no proto-loader): the serializers are the
 * generated messages' binary codecs, exactly what an internal caller would use.
 */
export function grpcJsClient<
  S extends GenService<
    Record<string, { methodKind: "unary" | "server_streaming"; input: DescMessage; output: DescMessage }>
  >,
>(service: S, address: string) {
  const definition: Record<
    string,
    grpc.MethodDefinition<MessageShape<DescMessage>, MessageShape<DescMessage>>
  > = {};
  // Unary methods only: a stream (WatchAuditEvents) is not what these tests call through grpc-js.
  for (const m of service.methods) {
    if (m.methodKind !== "unary") continue;
    definition[m.localName] = {
      path: `/${service.typeName}/${m.name}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: (v: MessageShape<DescMessage>) => Buffer.from(toBinary(m.input, v)),
      requestDeserialize: (b: Buffer) => fromBinary(m.input, b),
      responseSerialize: (v: MessageShape<DescMessage>) => Buffer.from(toBinary(m.output, v)),
      responseDeserialize: (b: Buffer) => fromBinary(m.output, b),
    };
  }
  const Ctor = grpc.makeGenericClientConstructor(definition, service.typeName);
  const client = new Ctor(address, grpc.credentials.createInsecure()) as unknown as grpc.Client &
    Record<string, Unary>;
  return {
    client,
    /** Calls a unary method; rejects with the grpc ServiceError (code, details, metadata). */
    call<I extends DescMessage, O extends DescMessage>(
      method: { localName: string; input: I; output: O },
      req: MessageShape<I>,
      meta = new grpc.Metadata(),
    ): Promise<MessageShape<O>> {
      return new Promise((resolve, reject) => {
        const fn = client[method.localName];
        if (!fn) throw new Error(`no method ${method.localName}`);
        fn.call(client, req, meta, (err, res) => (err ? reject(err) : resolve(res as MessageShape<O>)));
      });
    },
    close: () => client.close(),
  };
}
