import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService } from "../gen/auth/v1/auth_pb.js";
import { routes } from "../src/rpc/routes.js";
import { type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";

/** The Connect router in memory, no port: the contract's shapes and error codes. */
describe("AuthService router (in memory)", () => {
  let s: RunningApp;
  let client: ReturnType<typeof createClient<typeof AuthService>>;
  beforeAll(async () => {
    s = await startApp({ OTP_LENGTH: "8", OTP_TTL_SECONDS: "120", ACCESS_TOKEN_TTL_SECONDS: "60" });
    client = createClient(AuthService, createRouterTransport(routes(s.app.login, pino({ level: "silent" }))));
  });
  afterAll(() => s.close());

  const code = async (p: Promise<unknown>) =>
    ConnectError.from(
      await p.then(
        () => undefined,
        (e: unknown) => e,
      ),
    ).code;

  it("honours the configured code length and lifetimes", async () => {
    const phone = uniquePhone();
    expect(await client.sendOtp({ phone })).toMatchObject({ expiresInSeconds: 120, codeLength: 8 });
    const otp = s.sms.lastCode(phone);
    expect(otp).toMatch(/^\d{8}$/);
    const session = await client.verifyOtp({ phone, otp });
    expect(session).toMatchObject({ tokenType: "bearer", expiresIn: 60 });
    expect(typeof session.user?.id).toBe("bigint");
  });

  it("maps every refusal to its Connect code", async () => {
    const phone = uniquePhone();
    expect(await code(client.sendOtp({ phone: "" }))).toBe(Code.InvalidArgument);
    expect(await code(client.verifyOtp({ phone, otp: "12" }))).toBe(Code.InvalidArgument);
    expect(await code(client.verifyOtp({ phone, otp: "12345678" }))).toBe(Code.Unauthenticated);
    expect(await code(client.refreshToken({ refreshToken: "x" }))).toBe(Code.Unauthenticated);
    expect(await code(client.logout({ refreshToken: "" }))).toBe(Code.Unauthenticated);
    s.sms.failWith = new Error("down");
    try {
      expect(await code(client.sendOtp({ phone }))).toBe(Code.Unavailable);
    } finally {
      s.sms.failWith = undefined;
    }
  });

  it("tells clients why a code was refused in the x-error-reason header", async () => {
    const phone = uniquePhone();
    const err = ConnectError.from(
      await client.verifyOtp({ phone, otp: "12345678" }).catch((e: unknown) => e),
    );
    expect(err.metadata.get("x-error-reason")).toBe("OTP_EXPIRED");
  });
});
