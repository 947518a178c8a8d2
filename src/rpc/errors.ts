import { Code, ConnectError } from "@connectrpc/connect";
import { codeFromString } from "@connectrpc/connect/protocol-connect";
import { ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import type { LoginLog } from "../login/ports.js";
import { internalError, type LoginError } from "../login/reasons.js";

/** `google.rpc.ErrorInfo.domain` of every refusal: clients branch on (domain, reason). */
export const ERROR_DOMAIN = "otp-auth";

/**
 * The one place refusals become Connect errors, so gRPC, gRPC-Web and Connect carry the same code, message and
 * details: a `google.rpc.ErrorInfo` (reason, domain, metadata) on every refusal and a `google.rpc.RetryInfo`
 * where waiting helps. The same facts go in headers (`x-error-reason`, `retry-after`) for plain HTTP tooling.
 * Anything that is not a refusal becomes `internal` with an error id (the cause is logged, not leaked).
 */
export function toConnectError(err: unknown, log: LoginLog): ConnectError {
  if (err instanceof ConnectError) return err;
  const refusal: LoginError = internalError(err, log);
  const details: ConstructorParameters<typeof ConnectError>[3] = [
    {
      desc: ErrorInfoSchema,
      value: { reason: refusal.reason, domain: ERROR_DOMAIN, metadata: { ...refusal.metadata } },
    },
  ];
  if (refusal.retryAfterSeconds !== undefined) {
    details.push({
      desc: RetryInfoSchema,
      value: { retryDelay: { seconds: BigInt(refusal.retryAfterSeconds) } },
    });
  }
  const ce = new ConnectError(
    refusal.message,
    codeFromString(refusal.kind) ?? Code.Internal,
    undefined,
    details,
  );
  ce.metadata.set("x-error-reason", refusal.reason);
  if (refusal.retryAfterSeconds !== undefined)
    ce.metadata.set("retry-after", String(refusal.retryAfterSeconds));
  return ce;
}
