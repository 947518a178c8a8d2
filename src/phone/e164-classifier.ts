import type { CountryCode } from "libphonenumber-js/max";
import { Metadata } from "libphonenumber-js/max";

/** What the classifier answers: the parts of a parsed number the normaliser keeps. */
export interface Classified {
  readonly e164: string;
  readonly region: CountryCode;
  readonly callingCode: string;
  readonly nationalNumber: string;
  readonly type: string;
}

// The metadata methods libphonenumber's own parse and getType call; its typings declare only a few of them.
interface TypeDefinition {
  pattern(): string;
  possibleLengths(): number[] | undefined;
}
interface Plan {
  nationalNumberPattern(): string;
  nationalPrefixForParsing(): string | undefined;
  type(name: string): TypeDefinition | undefined;
}
interface MetadataInternals {
  hasCallingCode(callingCode: string): boolean | undefined;
  getCountryCodesForCallingCode(callingCode: string): string[] | undefined;
  selectNumberingPlan(country: string): void;
  numberingPlan?: Plan;
}

interface CompiledType {
  readonly name: string;
  readonly pattern: RegExp;
  readonly lengths: readonly number[] | undefined;
}

/** A calling code with one region, its patterns compiled once. */
interface Region {
  readonly region: CountryCode;
  readonly national: RegExp;
  readonly prefixForParsing: RegExp | undefined;
  readonly fixedLine: CompiledType | undefined;
  /** Mobile is "" in the metadata: removed as a duplicate of fixed line, so a fixed line is also mobile. */
  readonly mobileIsFixedLine: boolean;
  readonly mobile: CompiledType | undefined;
  /** The other types, in libphonenumber's order. */
  readonly others: readonly CompiledType[];
}

// getNumberType's order (libphonenumber-js es6/helpers/getNumberType.js).
const NON_FIXED_LINE_TYPES = [
  "MOBILE",
  "PREMIUM_RATE",
  "TOLL_FREE",
  "SHARED_COST",
  "VOIP",
  "PERSONAL_NUMBER",
  "PAGER",
  "UAN",
  "VOICEMAIL",
] as const;
const MAX_CALLING_CODE_DIGITS = 3;
const MIN_NATIONAL_DIGITS = 2;
const MAX_NATIONAL_DIGITS = 17;
const CANONICAL = /^\+[1-9]\d{2,19}$/;

/**
 * libphonenumber's answer for the common input, a number already in E.164 ("+919876543210"), from patterns
 * compiled once per calling code. libphonenumber builds a `RegExp` from its pattern text on every test
 * (`matchesEntirely`), and a parse and a type walk test a dozen patterns of several KB each: ~8 % of a
 * SendOtp's CPU, since every phone is new and the normaliser's cache does not hit.
 *
 * It answers only where the answer is plainly the library's: a calling code with one region (+91, not +1 or
 * +44), no national prefix at the start of the number, and a number whose type the metadata names. Anything
 * else returns undefined and goes to libphonenumber, refusals included. test/phone-classifier.test.ts holds
 * every answer it gives to libphonenumber's, across every calling code in the metadata.
 */
export class E164Classifier {
  readonly #metadata: MetadataInternals;
  /** By calling code; null where another region shares it. Bounded by the metadata, not by the callers. */
  readonly #regions = new Map<string, Region | null>();

  constructor() {
    this.#metadata = new Metadata() as unknown as MetadataInternals;
    for (const method of [
      "hasCallingCode",
      "getCountryCodesForCallingCode",
      "selectNumberingPlan",
    ] as const) {
      if (typeof this.#metadata[method] !== "function") {
        throw new Error(`libphonenumber-js Metadata has no ${method}(); the E.164 classifier needs updating`);
      }
    }
  }

  classify(input: string): Classified | undefined {
    if (!CANONICAL.test(input)) return undefined;
    // The first calling code the metadata knows, shortest first, as libphonenumber extracts it.
    let callingCode: string | undefined;
    for (let end = 2; end - 1 <= MAX_CALLING_CODE_DIGITS; end++) {
      const candidate = input.slice(1, end);
      if (this.#metadata.hasCallingCode(candidate)) {
        callingCode = candidate;
        break;
      }
    }
    if (callingCode === undefined) return undefined;
    const national = input.slice(1 + callingCode.length);
    if (national.length < MIN_NATIONAL_DIGITS || national.length > MAX_NATIONAL_DIGITS) return undefined;
    const region = this.#region(callingCode);
    if (region === null) return undefined;
    if (region.prefixForParsing?.test(national)) return undefined;
    const type = typeOf(national, region);
    if (type === undefined) return undefined;
    return { e164: input, region: region.region, callingCode, nationalNumber: national, type };
  }

  #region(callingCode: string): Region | null {
    let region = this.#regions.get(callingCode);
    if (region === undefined) {
      region = this.#compile(callingCode);
      this.#regions.set(callingCode, region);
    }
    return region;
  }

  #compile(callingCode: string): Region | null {
    const countries = this.#metadata.getCountryCodesForCallingCode(callingCode);
    const only = countries?.length === 1 ? countries[0] : undefined;
    if (only === undefined || only === "001") return null;
    this.#metadata.selectNumberingPlan(only);
    const plan = this.#metadata.numberingPlan;
    if (plan === undefined) return null;
    const compiled = (name: string): CompiledType | undefined => {
      const definition = plan.type(name);
      const pattern = definition?.pattern();
      if (definition === undefined || !pattern) return undefined;
      return { name, pattern: entirely(pattern), lengths: definition.possibleLengths() };
    };
    const prefix = plan.nationalPrefixForParsing();
    const mobile = plan.type("MOBILE");
    return {
      region: only as CountryCode,
      national: entirely(plan.nationalNumberPattern()),
      prefixForParsing: prefix ? new RegExp(`^(?:${prefix})`) : undefined,
      fixedLine: compiled("FIXED_LINE"),
      mobileIsFixedLine: mobile === undefined || mobile.pattern() === "",
      mobile: compiled("MOBILE"),
      others: NON_FIXED_LINE_TYPES.map(compiled).filter((t): t is CompiledType => t !== undefined),
    };
  }
}

/** libphonenumber's `matchesEntirely`, compiled once. */
function entirely(pattern: string): RegExp {
  return new RegExp(`^(?:${pattern})$`);
}

function isOfType(national: string, type: CompiledType | undefined): boolean {
  if (type === undefined) return false;
  if (type.lengths && !type.lengths.includes(national.length)) return false;
  return type.pattern.test(national);
}

/** libphonenumber's getNumberType on a region's compiled patterns. */
function typeOf(national: string, region: Region): string | undefined {
  if (!region.national.test(national)) return undefined;
  if (isOfType(national, region.fixedLine)) {
    if (region.mobileIsFixedLine || isOfType(national, region.mobile)) return "FIXED_LINE_OR_MOBILE";
    return "FIXED_LINE";
  }
  for (const type of region.others) if (isOfType(national, type)) return type.name;
  return undefined;
}
