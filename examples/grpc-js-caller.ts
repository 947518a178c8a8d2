// An internal service calling otp-auth over gRPC with @grpc/grpc-js, using the package's generated schemas
// (no .proto loading at run time). Run against a server:
//
//   node --import tsx examples/grpc-js-caller.ts [localhost:8000] [+919876543210]
//
// It asks for a code, reads it from stdin as a person would type it, signs in, rotates the refresh token and
// logs out. In another service, import the schemas from "otp-auth/gen/auth/v1/auth_pb.js".
import { createInterface } from "node:readline/promises";
import {
  create,
  type DescMessage,
  type DescMethodUnary,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { AuthService } from "../gen/auth/v1/auth_pb.js";

const address = process.argv[2] ?? process.env.OTP_AUTH_ADDRESS ?? "localhost:8000";
const phone = process.argv[3] ?? "+919876543210";

const client = new grpc.Client(address, grpc.credentials.createInsecure());

/**
 * One unary call with a 5-second deadline. The generated descriptors give the path and the binary codecs, so
 * grpc-js needs no .proto file. Rejects with the grpc error (its `code` is a grpc.status).
 */
function call<I extends DescMessage, O extends DescMessage>(
  method: DescMethodUnary<I, O>,
  req: MessageInitShape<I>,
): Promise<MessageShape<O>> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      `/${AuthService.typeName}/${method.name}`,
      (m: MessageShape<I>) => Buffer.from(toBinary(method.input, m)),
      (b: Buffer) => fromBinary(method.output, b),
      create(method.input, req),
      new grpc.Metadata(),
      { deadline: new Date(Date.now() + 5_000) },
      (err, res) => (err || !res ? reject(err) : resolve(res)),
    );
  });
}

try {
  const sent = await call(AuthService.method.sendOtp, { phone });
  console.log(`code sent to ${sent.phone}; it expires in ${sent.expiresInSeconds} s`);

  const rl = createInterface({ input: process.stdin, output: process.stdout });
  const otp = (await rl.question(`enter the ${sent.codeLength}-digit code: `)).trim();
  rl.close();

  const session = await call(AuthService.method.verifyOtp, { phone: sent.phone, otp });
  console.log(`signed in: user ${session.user?.id} ${session.user?.phone} (${session.user?.role})`);
  console.log(`access token expires in ${session.expiresIn} s`);

  const rotated = await call(AuthService.method.refreshToken, { refreshToken: session.refreshToken });
  console.log("refresh token rotated");

  await call(AuthService.method.logout, { refreshToken: rotated.refreshToken });
  console.log("logged out");
} catch (err) {
  const e = err as grpc.ServiceError;
  console.error(`failed: ${grpc.status[e.code] ?? "?"} ${e.details ?? String(err)}`);
  process.exitCode = 1;
} finally {
  client.close();
}
