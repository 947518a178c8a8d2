import { type Client, createClient, type Interceptor } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { AuthService } from "../../../gen/auth/v1/auth_pb.js";

export type AuthProtocol = "grpc" | "connect" | "grpc-web";

export interface AuthClientOptions {
  /** Where the service listens, e.g. `http://otp-auth.internal:8000`. */
  readonly baseUrl: string;
  /** `grpc` (HTTP/2, the default for internal callers), `connect` or `grpc-web` (both HTTP/1.1). */
  readonly protocol?: AuthProtocol;
  /** A deadline for every call that does not set its own; unset means none. */
  readonly timeoutMs?: number;
  readonly interceptors?: Interceptor[];
}

export type AuthClient = Client<typeof AuthService>;

/**
 * A typed AuthService client over connect-node. All three protocols reach the same port; callers pick by what
 * sits between them and the service (gRPC needs end-to-end HTTP/2, the other two work through HTTP/1.1 proxies).
 */
export function createAuthClient(options: AuthClientOptions): AuthClient {
  const common = {
    baseUrl: options.baseUrl,
    interceptors: options.interceptors ?? [],
    ...(options.timeoutMs !== undefined ? { defaultTimeoutMs: options.timeoutMs } : {}),
  };
  const protocol = options.protocol ?? "grpc";
  switch (protocol) {
    case "grpc":
      return createClient(AuthService, createGrpcTransport(common));
    case "connect":
      return createClient(AuthService, createConnectTransport({ ...common, httpVersion: "1.1" }));
    case "grpc-web":
      return createClient(AuthService, createGrpcWebTransport({ ...common, httpVersion: "1.1" }));
    default:
      throw new TypeError(`protocol must be grpc, connect or grpc-web, got "${String(protocol)}"`);
  }
}
