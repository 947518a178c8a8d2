/**
 * `@otp-auth/client`, what callers install: the generated contract, a typed client, and local verification of
 * access tokens. Nothing here is imported by the server itself. The generated code stays in the repository's
 * one `gen/` (buf writes it there for the server too) and is compiled into this package's `dist/gen/`.
 */
export * from "../../../gen/auth/v1/auth_pb.js";
export { authInterceptor, authUser, authUserKey } from "./auth-interceptor.js";
export {
  type AuthClient,
  type AuthClientOptions,
  type AuthProtocol,
  createAuthClient,
} from "./create-client.js";
export {
  type AuthUser,
  createTokenVerifier,
  MAX_CLOCK_TOLERANCE_SECONDS,
  TokenVerificationError,
  type TokenVerifier,
  type TokenVerifierOptions,
  type VerifiedToken,
} from "./token-verifier.js";
