import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type * as grpc from "@grpc/grpc-js";
import { AuthService } from "../../gen/auth/v1/auth_pb.js";
import { OnePortServer } from "../../src/http/one-port.js";

/**
 * The ceilings: the same stacks as the service with handlers that do no work, so a ratio to them is what our
 * own code costs on top of the framework, on this machine, in this run.
 */
const noopImpl: Partial<ServiceImpl<typeof AuthService>> = {
  async sendOtp(req) {
    return { message: "OTP sent successfully", phone: req.phone, expiresInSeconds: 600, codeLength: 6 };
  },
  async verifyOtp(req) {
    return {
      accessToken: "noop",
      refreshToken: "noop",
      tokenType: "bearer",
      expiresIn: 900,
      user: { id: 1n, phone: req.phone, name: "User", role: "consumer", isPhoneVerified: true },
    };
  },
  async refreshToken() {
    return { accessToken: "noop", refreshToken: "noop", tokenType: "bearer", expiresIn: 900 };
  },
  async logout() {
    return {};
  },
  async listSessions() {
    return { sessions: [] };
  },
  async revokeSession() {
    return {};
  },
  async revokeOtherSessions() {
    return { revokedCount: 0 };
  },
  async revokeAllSessions() {
    return { revokedCount: 0 };
  },
};

/** The one-port connect-node server with no-op handlers; `/api/v1/*` reads and parses the body, then answers. */
export function connectNoopServer(): OnePortServer {
  const handler = connectNodeAdapter({
    routes: (router: ConnectRouter) => {
      router.service(AuthService, noopImpl);
    },
    readMaxBytes: 64 * 1024,
    fallback(req, res) {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { phone?: string };
        const payload = JSON.stringify({ message: "OTP sent successfully", phone: body.phone ?? "" });
        res.writeHead(200, {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(payload),
        });
        res.end(payload);
      });
    },
  });
  return new OnePortServer(handler);
}

/** A @grpc/grpc-js server with the same no-op handlers and the generated binary codecs. */
export function grpcJsNoopServer(port: number, host: string): Promise<grpc.Server> {
  return grpcJsServer(noopImpl, port, host);
}

/** A @grpc/grpc-js server for `impl`'s AuthService methods, with the generated binary codecs. */
export async function grpcJsServer(
  impl: Partial<ServiceImpl<typeof AuthService>>,
  port: number,
  host: string,
): Promise<grpc.Server> {
  const definition: Record<
    string,
    grpc.MethodDefinition<MessageShape<DescMessage>, MessageShape<DescMessage>>
  > = {};
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const m of AuthService.methods) {
    const method = impl[m.localName as keyof typeof impl] as ((req: unknown) => Promise<unknown>) | undefined;
    if (!method) continue;
    definition[m.localName] = {
      path: `/${AuthService.typeName}/${m.name}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: (v: MessageShape<DescMessage>) => Buffer.from(toBinary(m.input, v)),
      requestDeserialize: (b: Buffer) => fromBinary(m.input, b),
      responseSerialize: (v: MessageShape<DescMessage>) => Buffer.from(toBinary(m.output, v)),
      responseDeserialize: (b: Buffer) => fromBinary(m.output, b),
    };
    handlers[m.localName] = (
      call: grpc.ServerUnaryCall<unknown, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) => {
      method(call.request).then(
        // grpc-js hands the reply to the serializer as is: make it a message, as connect-node does.
        (res) => callback(null, create(m.output, res as MessageShape<DescMessage>)),
        (err: Error) => callback(err),
      );
    };
  }
  // Imported here so the connect-node no-op's process does not carry grpc-js.
  const { Server, ServerCredentials } = await import("@grpc/grpc-js");
  const server = new Server();
  server.addService(definition, handlers);
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`${host}:${port}`, ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    ),
  );
  return server;
}
