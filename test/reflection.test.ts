import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { create, createFileRegistry, fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ServerReflection as ReflectionV1,
  type ServerReflectionRequest,
  ServerReflectionRequestSchema,
  type ServerReflectionResponse,
  ServerReflectionResponseSchema,
} from "../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ReflectionV1alpha } from "../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { type RunningApp, startApp } from "./support/app.js";
import { uniquePhone } from "./support/capture-sms.js";

const run = promisify(execFile);
const buf = (args: string[]) =>
  run("npx", ["--no-install", "buf", "curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args], {
    timeout: 60_000,
  });

describe("gRPC server reflection", () => {
  let s: RunningApp;
  beforeAll(async () => {
    s = await startApp();
  });
  afterAll(() => s?.close());

  /** One bidi exchange: each question in turn, each answer collected. */
  async function ask(
    questions: ServerReflectionRequest["messageRequest"][],
  ): Promise<ServerReflectionResponse["messageResponse"][]> {
    const client = createClient(ReflectionV1, createGrpcTransport({ baseUrl: s.baseUrl }));
    async function* requests() {
      for (const q of questions) yield { host: "", messageRequest: q };
    }
    const answers: ServerReflectionResponse["messageResponse"][] = [];
    for await (const res of client.serverReflectionInfo(requests())) answers.push(res.messageResponse);
    return answers;
  }

  it("lists every service on the router, itself included", async () => {
    const [answer] = await ask([{ case: "listServices", value: "" }]);
    expect(answer?.case).toBe("listServicesResponse");
    const names = answer?.case === "listServicesResponse" ? answer.value.service.map((x) => x.name) : [];
    expect(names).toEqual([
      "auth.v1.AuthService",
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
    ]);
  });

  it("describes a service by symbol with every file it needs, enough to rebuild the schema", async () => {
    const answers = await ask([
      { case: "fileContainingSymbol", value: "auth.v1.AuthService" },
      { case: "fileContainingSymbol", value: "auth.v1.AuthService.VerifyOtp" },
      { case: "fileContainingSymbol", value: "auth.v1.VerifyOtpResponse" },
      { case: "fileByFilename", value: "auth/v1/auth.proto" },
    ]);
    expect(answers).toHaveLength(4);
    for (const a of answers) {
      expect(a?.case).toBe("fileDescriptorResponse");
      if (a?.case !== "fileDescriptorResponse") continue;
      const files = a.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b));
      expect(files[0]?.name).toBe("auth/v1/auth.proto");
      // The answer is self-contained: a registry builds from it and resolves the RPC's types.
      // Reflection puts the asked-for file first and its imports after it, so it is resolved by name, not read
      // in order.
      const byName = new Map(files.map((f) => [f.name, f]));
      const [asked] = files;
      if (!asked) throw new Error("no file");
      const registry = createFileRegistry(asked, (name) => byName.get(name));
      const service = registry.getService("auth.v1.AuthService");
      // Others may be added beside these; none may go.
      expect(service?.methods.map((m) => m.name)).toEqual(
        expect.arrayContaining([
          "SendOtp",
          "VerifyOtp",
          "RefreshToken",
          "Logout",
          "ListSessions",
          "RevokeSession",
          "RevokeOtherSessions",
          "RevokeAllSessions",
          "GetVerification",
          "CancelVerification",
          "WatchAuditEvents",
        ]),
      );
      expect(registry.getMessage("auth.v1.VerifyOtpResponse")?.field.user?.message?.typeName).toBe(
        "auth.v1.User",
      );
    }
  });

  it("answers unknown symbols and files with NOT_FOUND and keeps the stream open", async () => {
    const answers = await ask([
      { case: "fileContainingSymbol", value: "auth.v1.NoSuchThing" },
      { case: "fileByFilename", value: "nope.proto" },
      { case: "listServices", value: "" },
    ]);
    expect(answers.map((a) => a?.case)).toEqual(["errorResponse", "errorResponse", "listServicesResponse"]);
    const first = answers[0];
    expect(first?.case === "errorResponse" && first.value.errorCode).toBe(Code.NotFound);
  });

  it("speaks v1alpha for older tools", async () => {
    const client = createClient(ReflectionV1alpha, createGrpcTransport({ baseUrl: s.baseUrl }));
    async function* requests() {
      yield {
        host: "",
        messageRequest: { case: "fileContainingSymbol" as const, value: "auth.v1.AuthService" },
      };
    }
    const answers = [];
    for await (const res of client.serverReflectionInfo(requests())) answers.push(res);
    expect(answers[0]?.messageResponse.case).toBe("fileDescriptorResponse");
    expect(answers[0]?.originalRequest?.messageRequest.value).toBe("auth.v1.AuthService");
  });

  it("answers a real @grpc/grpc-js client", async () => {
    const Ctor = grpc.makeGenericClientConstructor(
      {
        serverReflectionInfo: {
          path: "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
          requestStream: true,
          responseStream: true,
          requestSerialize: (v: ServerReflectionRequest) =>
            Buffer.from(toBinary(ServerReflectionRequestSchema, v)),
          requestDeserialize: (b: Buffer) => fromBinary(ServerReflectionRequestSchema, b),
          responseSerialize: () => Buffer.alloc(0),
          responseDeserialize: (b: Buffer) => fromBinary(ServerReflectionResponseSchema, b),
        },
      },
      "ServerReflection",
    );
    const client = new Ctor(`127.0.0.1:${s.port}`, grpc.credentials.createInsecure());
    try {
      const call = (
        client as unknown as { serverReflectionInfo(): grpc.ClientDuplexStream<unknown, unknown> }
      ).serverReflectionInfo();
      const got: ServerReflectionResponse[] = [];
      const done = new Promise<void>((resolve, reject) => {
        call.on("data", (m: ServerReflectionResponse) => got.push(m));
        call.on("end", resolve);
        call.on("error", reject);
      });
      call.write(
        create(ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "*" } }),
      );
      call.end();
      await done;
      expect(got).toHaveLength(1);
      expect(got[0]?.messageResponse.case).toBe("listServicesResponse");
    } finally {
      client.close();
    }
  });

  it("serves `buf curl --list-methods` and a call without --schema", async () => {
    const listed = await buf(["--list-methods", s.baseUrl]);
    expect(listed.stdout.trim().split("\n")).toEqual(
      expect.arrayContaining([
        "auth.v1.AuthService/SendOtp",
        "auth.v1.AuthService/VerifyOtp",
        "grpc.health.v1.Health/Check",
      ]),
    );
    const phone = uniquePhone();
    const called = await buf(["-d", JSON.stringify({ phone }), `${s.baseUrl}/auth.v1.AuthService/SendOtp`]);
    expect(JSON.parse(called.stdout)).toMatchObject({ message: "OTP sent successfully", phone });
    expect(s.sms.lastCode(phone)).toMatch(/^\d{6}$/);
  });
});
