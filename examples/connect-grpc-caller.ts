// An internal service calling otp-auth with the package's typed client over gRPC, then checking the access
// token locally against the published JWKS, as a downstream API would. Run against a server:
//
//   node --import tsx examples/connect-grpc-caller.ts [http://localhost:8000] [+919876543210]
//
// It asks for a code and reads it from stdin as a person would type it. In another service, import the same
// names from "@otp-auth/client".
import { createInterface } from "node:readline/promises";
import { ConnectError } from "@connectrpc/connect";
import { createAuthClient, createTokenVerifier } from "../packages/client/src/index.js";

const baseUrl = process.argv[2] ?? process.env.OTP_AUTH_URL ?? "http://localhost:8000";
const phone = process.argv[3] ?? "+919876543210";

const auth = createAuthClient({ baseUrl, protocol: "grpc", timeoutMs: 5_000 });
// One verifier per process: it caches the key set and refetches only for an unknown key id.
const tokens = createTokenVerifier({ jwksUrl: new URL("/.well-known/jwks.json", baseUrl) });

try {
  const sent = await auth.sendOtp({ phone });
  console.log(`code sent to ${sent.phone}; it expires in ${sent.expiresInSeconds} s`);

  const rl = createInterface({ input: process.stdin, output: process.stdout });
  const otp = (await rl.question(`enter the ${sent.codeLength}-digit code: `)).trim();
  rl.close();

  const session = await auth.verifyOtp({ phone: sent.phone, otp });
  console.log(`signed in: user ${session.user?.id} ${session.user?.phone} (${session.user?.role})`);

  // What a downstream service does with the bearer token it receives: no call to otp-auth, just the JWKS.
  const user = await tokens.verify(session.accessToken);
  console.log(
    `token verified: user ${user.id} ${user.phone} (${user.role}), expires ${user.expiresAt.toISOString()}`,
  );

  await auth.logout({ refreshToken: session.refreshToken });
  console.log("logged out");
} catch (err) {
  const e = ConnectError.from(err);
  console.error(`failed: ${e.message}`);
  process.exitCode = 1;
}
