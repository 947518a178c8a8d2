import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { AuthService } from "../../gen/auth/v1/auth_pb.js";
import type { LoginService } from "../login/login-service.js";
import { type Client, OTP_SENT_MESSAGE } from "../login/model.js";
import { CHANNEL } from "../login/verifications.js";

/**
 * One unary RPC as a plain function: its request message and the caller in, the login core, the response's
 * fields out. Refusals are thrown as the core throws them; each transport maps them in its own way.
 */
export type UnaryCall<I extends DescMessage, O extends DescMessage> = (
  req: MessageShape<I>,
  client: Client,
) => Promise<MessageInitShape<O>>;

type Methods = (typeof AuthService)["method"];

/** The AuthService RPCs that are a mapping over the login core, shared by every transport that serves them. */
export type AuthCalls = {
  readonly [K in "sendOtp" | "verifyOtp" | "refreshToken" | "logout"]: UnaryCall<
    Methods[K]["input"],
    Methods[K]["output"]
  >;
};

/**
 * The message mapping of AuthService, written once: the Connect ServiceImpl and the gRPC fast path both call
 * these, so a field added to a response reaches every protocol.
 */
export function authCalls(login: LoginService): AuthCalls {
  return {
    async sendOtp(req, client) {
      const sent = await login.sendOtp(req.phone, client);
      return {
        message: OTP_SENT_MESSAGE,
        phone: sent.phone,
        expiresInSeconds: sent.expiresInSeconds,
        codeLength: sent.codeLength,
        verificationId: sent.verificationId,
        channel: CHANNEL,
      };
    },
    async verifyOtp(req, client) {
      const s = await login.verifyOtp(req.phone, req.otp, client, {
        verificationId: req.verificationId,
        deviceName: req.deviceName,
      });
      return {
        accessToken: s.accessToken,
        refreshToken: s.refreshToken,
        tokenType: "bearer",
        expiresIn: s.expiresIn,
        user: {
          id: BigInt(s.user.id),
          phone: s.user.phone,
          name: s.user.name,
          role: s.user.role,
          isPhoneVerified: s.user.isPhoneVerified,
        },
      };
    },
    async refreshToken(req, client) {
      const p = await login.refresh(req.refreshToken, client);
      return {
        accessToken: p.accessToken,
        refreshToken: p.refreshToken,
        tokenType: "bearer",
        expiresIn: p.expiresIn,
      };
    },
    async logout(req, client) {
      await login.logout(req.refreshToken, client);
      return {};
    },
  };
}
