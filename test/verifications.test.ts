import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthService, VerificationStatus } from "../gen/auth/v1/auth_pb.js";
import { ErrorInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import { type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";
import { describeWithRedis } from "./support/redis.js";
import { until } from "./support/wait.js";

/** A verification as any protocol reports it, in one shape so each test runs on every protocol. */
interface Seen {
  readonly id: string;
  readonly status: string;
  readonly phone: string;
  readonly attemptsUsed: number;
  readonly attemptsLeft: number;
  readonly createdAtMs: number;
  readonly expiresAtMs: number;
  readonly sends: readonly { provider: string; messageId: string; deliveryStatus: string }[];
}

/** What each protocol answered, or the refusal's reason. */
type Answer<T> = { ok: T } | { reason: string; code: string };

interface Api {
  send(phone: string): Promise<Answer<string>>;
  verify(phone: string, otp: string, verificationId?: string): Promise<Answer<unknown>>;
  get(id: string): Promise<Answer<Seen>>;
  cancel(id: string): Promise<Answer<Seen>>;
}

const STATUS_NAMES: Record<number, string> = {
  [VerificationStatus.PENDING]: "pending",
  [VerificationStatus.APPROVED]: "approved",
  [VerificationStatus.CANCELED]: "canceled",
  [VerificationStatus.EXPIRED]: "expired",
  [VerificationStatus.MAX_ATTEMPTS_REACHED]: "max_attempts_reached",
  [VerificationStatus.FAILED_TO_SEND]: "failed_to_send",
};

function rpcApi(client: Client<typeof AuthService>): Api {
  const answer = async <T>(call: () => Promise<T>): Promise<Answer<T>> => {
    try {
      return { ok: await call() };
    } catch (err) {
      const e = ConnectError.from(err);
      const [info] = e.findDetails(ErrorInfoSchema);
      const id = info?.metadata.verification_id;
      return { reason: id ? `${info?.reason}:${id}` : (info?.reason ?? ""), code: Code[e.code] ?? "" };
    }
  };
  const seen = (v: Awaited<ReturnType<typeof client.getVerification>>["verification"]): Seen => ({
    id: v?.id ?? "",
    status: STATUS_NAMES[v?.status ?? 0] ?? "unspecified",
    phone: v?.phone ?? "",
    attemptsUsed: v?.checkAttemptsUsed ?? -1,
    attemptsLeft: v?.checkAttemptsLeft ?? -1,
    createdAtMs: Number(v?.createdAtMs ?? 0n),
    expiresAtMs: Number(v?.expiresAtMs ?? 0n),
    sends: (v?.sendAttempts ?? []).map((a) => ({
      provider: a.provider,
      messageId: a.messageId,
      deliveryStatus: a.deliveryStatus,
    })),
  });
  return {
    send: (phone) =>
      answer(async () => {
        const sent = await client.sendOtp({ phone });
        expect(sent.channel).toBe("sms");
        return sent.verificationId;
      }),
    verify: (phone, otp, verificationId = "") =>
      answer(() => client.verifyOtp({ phone, otp, verificationId })),
    get: (id) =>
      answer(async () => seen((await client.getVerification({ verificationId: id })).verification)),
    cancel: (id) =>
      answer(async () => seen((await client.cancelVerification({ verificationId: id })).verification)),
  };
}

function restApi(baseUrl: string): Api {
  const call = async (method: string, path: string, body?: object) => {
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers: body ? { "content-type": "application/json" } : {},
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const json = (await res.json()) as Record<string, unknown>;
    if (res.status === 200) return { ok: json };
    const meta = json.metadata as Record<string, string> | undefined;
    const reason = String(json.reason);
    return {
      reason: meta?.verification_id ? `${reason}:${meta.verification_id}` : reason,
      code: String(json.code),
    };
  };
  const seen = (j: Record<string, unknown>): Seen => ({
    id: String(j.verification_id),
    status: String(j.status),
    phone: String(j.phone),
    attemptsUsed: Number(j.check_attempts_used),
    attemptsLeft: Number(j.check_attempts_left),
    createdAtMs: Date.parse(String(j.created_at)),
    expiresAtMs: Date.parse(String(j.expires_at)),
    sends: (j.send_attempts as Record<string, string>[]).map((a) => ({
      provider: String(a.provider),
      messageId: String(a.message_id),
      deliveryStatus: String(a.delivery_status),
    })),
  });
  const map = <T>(a: Answer<Record<string, unknown>>, f: (j: Record<string, unknown>) => T): Answer<T> =>
    "ok" in a ? { ok: f(a.ok) } : a;
  return {
    send: async (phone) =>
      map(await call("POST", "/api/v1/auth/send-otp", { phone }), (j) => String(j.verification_id)),
    verify: async (phone, otp, verificationId) =>
      call("POST", "/api/v1/auth/verify-otp", {
        phone,
        otp,
        ...(verificationId ? { verification_id: verificationId } : {}),
      }),
    get: async (id) => map(await call("GET", `/api/v1/auth/verifications/${encodeURIComponent(id)}`), seen),
    cancel: async (id) =>
      map(await call("POST", `/api/v1/auth/verifications/${encodeURIComponent(id)}/cancel`), seen),
  };
}

function apis(s: RunningApp): Record<string, Api> {
  return {
    REST: restApi(s.baseUrl),
    Connect: rpcApi(
      createClient(AuthService, createConnectTransport({ baseUrl: s.baseUrl, httpVersion: "1.1" })),
    ),
    gRPC: rpcApi(createClient(AuthService, createGrpcTransport({ baseUrl: s.baseUrl }))),
    "gRPC-Web": rpcApi(
      createClient(AuthService, createGrpcWebTransport({ baseUrl: s.baseUrl, httpVersion: "1.1" })),
    ),
  };
}

const ok = <T>(a: Answer<T>): T => {
  if (!("ok" in a)) throw new Error(`refused: ${a.reason}`);
  return a.ok;
};
const wrongCode = (code: string) => (code === "000000" ? "111111" : "000000");
const TEST_PHONE = "+919999900001";
const TEST_CODE = "246810";

function lifecycle(name: string, env: () => Record<string, string>) {
  describe(`verification lifecycle (${name})`, () => {
    let s: RunningApp;
    let short: RunningApp;
    beforeAll(async () => {
      s = await startApp({
        OTP_MAX_ATTEMPTS: "3",
        TEST_PHONE_NUMBERS: `${TEST_PHONE}:${TEST_CODE}`,
        ...env(),
      });
      short = await startApp({ OTP_TTL_SECONDS: "1", ...env() });
    });
    afterAll(async () => {
      await s?.close();
      await short?.close();
    });

    for (const protocol of ["REST", "Connect", "gRPC", "gRPC-Web"]) {
      describe(protocol, () => {
        const api = () => apis(s)[protocol] as Api;

        it("send answers an unguessable id; the verification is pending, then approved", async () => {
          const phone = uniquePhone();
          const id = ok(await api().send(phone));
          expect(id).toMatch(/^VE[0-9a-f]{32}$/);
          const pending = ok(await api().get(id));
          expect(pending).toMatchObject({
            id,
            status: "pending",
            phone: `+91******${phone.slice(-4)}`,
            attemptsUsed: 0,
            attemptsLeft: 3,
          });
          expect(pending.expiresAtMs - pending.createdAtMs).toBeGreaterThanOrEqual(599_000);
          expect(pending.sends).toEqual([
            { provider: "capture", messageId: expect.stringMatching(/^cap-\d+$/), deliveryStatus: "sent" },
          ]);
          expect(await api().verify(phone, wrongCode(s.sms.lastCode(phone)))).toMatchObject({
            reason: "OTP_INCORRECT",
          });
          expect(await api().verify(phone, wrongCode(s.sms.lastCode(phone)))).toMatchObject({
            reason: "OTP_INCORRECT",
          });
          ok(await api().verify(phone, s.sms.lastCode(phone), id));
          expect(ok(await api().get(id))).toMatchObject({
            status: "approved",
            // Every check counts, the right one too.
            attemptsUsed: 3,
            attemptsLeft: 0,
          });
        });

        it("cancel: pending -> canceled, and its code no longer verifies", async () => {
          const phone = uniquePhone();
          const id = ok(await api().send(phone));
          expect(ok(await api().cancel(id)).status).toBe("canceled");
          expect(await api().verify(phone, s.sms.lastCode(phone))).toMatchObject({ reason: "OTP_EXPIRED" });
          // Canceling again changes nothing.
          expect(ok(await api().cancel(id)).status).toBe("canceled");
          // A new send starts a new verification.
          expect(ok(await api().send(phone))).not.toBe(id);
        });

        it("-> max_attempts_reached after OTP_MAX_ATTEMPTS wrong codes", async () => {
          const phone = uniquePhone();
          const id = ok(await api().send(phone));
          const wrong = wrongCode(s.sms.lastCode(phone));
          for (let i = 0; i < 3; i++) await api().verify(phone, wrong);
          expect(ok(await api().get(id))).toMatchObject({ status: "max_attempts_reached", attemptsLeft: 0 });
        });

        it("-> expired once its code has expired", async () => {
          const phone = uniquePhone();
          const shortApi = apis(short)[protocol] as Api;
          const id = ok(await shortApi.send(phone));
          await until(async () => ok(await shortApi.get(id)).status === "expired", {
            what: "status expired",
          });
          expect(await shortApi.verify(phone, short.sms.lastCode(phone))).toMatchObject({
            reason: "OTP_EXPIRED",
          });
        });

        it("-> failed_to_send when no provider could send; the refusal names the verification", async () => {
          const phone = uniquePhone();
          s.sms.failWith = new Error("provider exploded");
          let refused: Answer<string>;
          try {
            refused = await api().send(phone);
          } finally {
            s.sms.failWith = undefined;
          }
          expect(refused).toMatchObject({
            reason: expect.stringMatching(/^SMS_UNAVAILABLE:VE[0-9a-f]{32}$/),
          });
          const id = "reason" in refused ? (refused.reason.split(":")[1] ?? "") : "";
          const v = ok(await api().get(id));
          expect(v.status).toBe("failed_to_send");
          expect(v.sends).toEqual([{ provider: "capture", messageId: "", deliveryStatus: "failed" }]);
        });

        it("a late code still works after a resend, and the resend continues the verification", async () => {
          const phone = uniquePhone();
          const id = ok(await api().send(phone));
          const first = s.sms.lastCode(phone);
          expect(ok(await api().send(phone))).toBe(id);
          expect(ok(await api().get(id)).sends).toHaveLength(2);
          ok(await api().verify(phone, first, id));
          expect(ok(await api().get(id)).status).toBe("approved");
        });

        it("unknown, malformed and foreign ids are not_found", async () => {
          const phone = uniquePhone();
          const other = uniquePhone();
          ok(await api().send(phone));
          const foreign = ok(await api().send(other));
          for (const id of [`VE${"0".repeat(32)}`, "nonsense", `${foreign}x`]) {
            expect(await api().get(id)).toMatchObject({ reason: "VERIFICATION_NOT_FOUND" });
            expect(await api().cancel(id)).toMatchObject({ reason: "VERIFICATION_NOT_FOUND" });
          }
          // Another phone's verification does not verify this phone's code.
          expect(await api().verify(phone, s.sms.lastCode(phone), foreign)).toMatchObject({
            reason: "VERIFICATION_NOT_FOUND",
          });
          expect(ok(await api().get(foreign)).status).toBe("pending");
        });
      });
    }

    it("test numbers: never sent, their fixed code verifies, exempt from the phone's limits", async () => {
      const before = s.sms.sent.length;
      const strict = await startApp({
        ...env(),
        TEST_PHONE_NUMBERS: `${TEST_PHONE}:${TEST_CODE}`,
        RATE_LIMIT_PHONE_COOLDOWN_SECONDS: "600",
        RATE_LIMIT_PHONE_SEND_POINTS: "1",
        SMS_MAX_PER_HOUR: "1",
      });
      try {
        const api = apis(strict).REST as Api;
        const ids = [];
        for (let i = 0; i < 3; i++) ids.push(ok(await api.send(TEST_PHONE)));
        expect(strict.sms.sent).toHaveLength(0);
        expect(s.sms.sent.length).toBe(before);
        const v = ok(await api.get(ids[0] ?? ""));
        expect(v.sends.every((a) => a.provider === "test" && a.messageId === "")).toBe(true);
        expect(await api.verify(TEST_PHONE, wrongCode(TEST_CODE))).toMatchObject({ reason: "OTP_INCORRECT" });
        ok(await api.verify(TEST_PHONE, TEST_CODE));
        // An ordinary number is still limited (the SMS budget of 1 per hour).
        ok(await api.send(uniquePhone()));
        expect(await api.send(uniquePhone())).toMatchObject({ reason: "SMS_BUDGET_EXHAUSTED" });
      } finally {
        await strict.close();
      }
    });

    it("test numbers are still under the per-IP limit", async () => {
      const strict = await startApp({
        ...env(),
        TEST_PHONE_NUMBERS: `${TEST_PHONE}:${TEST_CODE}`,
        RATE_LIMIT_IP_POINTS: "2",
      });
      try {
        const api = apis(strict).REST as Api;
        ok(await api.send(TEST_PHONE));
        ok(await api.send(TEST_PHONE));
        expect(await api.send(TEST_PHONE)).toMatchObject({ reason: "RATE_LIMIT_IP" });
      } finally {
        await strict.close();
      }
    });
  });
}

lifecycle("embedded in-memory store", () => ({}));

describeWithRedis("with Redis", (redis) => {
  lifecycle("Redis", () => ({ REDIS_URL: redis.fresh().url }));
});
