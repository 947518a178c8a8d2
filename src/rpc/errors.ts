import { Code, ConnectError } from "@connectrpc/connect";
import { RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import type { LoginErrorKind } from "../login/errors.js";
import { LoginError } from "../login/errors.js";

const codes: Record<LoginErrorKind, Code> = {
  invalid_argument: Code.InvalidArgument,
  failed_precondition: Code.FailedPrecondition,
  unauthenticated: Code.Unauthenticated,
  resource_exhausted: Code.ResourceExhausted,
  unavailable: Code.Unavailable,
};

export function connectCodeOf(kind: LoginErrorKind): Code {
  return codes[kind];
}

/**
 * The one place login refusals become Connect errors, so gRPC, gRPC-Web and Connect carry the same code and
 * message. Anything unexpected becomes Internal with a generic message (the cause is logged, not leaked).
 */
export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  if (err instanceof LoginError) {
    // The delay travels as a google.rpc.RetryInfo detail, which every protocol carries (gRPC in
    // grpc-status-details-bin, Connect in the error body); the header is for plain HTTP tooling.
    const details =
      err.retryAfterSeconds === undefined
        ? []
        : [{ desc: RetryInfoSchema, value: { retryDelay: { seconds: BigInt(err.retryAfterSeconds) } } }];
    const ce = new ConnectError(err.message, codes[err.kind], undefined, details);
    if (err.reason) ce.metadata.set("x-error-reason", err.reason);
    if (err.retryAfterSeconds !== undefined) ce.metadata.set("retry-after", String(err.retryAfterSeconds));
    return ce;
  }
  return new ConnectError("internal error", Code.Internal, undefined, undefined, err);
}
