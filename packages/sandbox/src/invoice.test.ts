import { describe, expect, it } from "vitest";
import { parseInvoice } from "./invoice.js";

const data = "q".repeat(50);

describe("parseInvoice", () => {
  it("reads the amount of each multiplier, rounding millisatoshis up", () => {
    expect(parseInvoice(`lnbc1m1${data}`)).toEqual({ valid: true, amountSats: 100_000 });
    expect(parseInvoice(`lnbc25u1${data}`)).toEqual({ valid: true, amountSats: 2_500 });
    expect(parseInvoice(`lntb10n1${data}`)).toEqual({ valid: true, amountSats: 1 });
    expect(parseInvoice(`lnbcrt15n1${data}`)).toEqual({ valid: true, amountSats: 2 });
    expect(parseInvoice(`lnbc10p1${data}`)).toEqual({ valid: true, amountSats: 1 });
    expect(parseInvoice(`LNBC25U1${data.toUpperCase()}`)).toEqual({
      valid: true,
      amountSats: 2_500,
    });
    expect(parseInvoice(`lnbc1${data}`)).toEqual({ valid: true, amountSats: undefined });
  });

  it("rejects what is not a BOLT11 payment request", () => {
    for (const invoice of [
      "",
      "lnbc",
      "bitcoin:abc",
      `lnxx10u1${data}`,
      `lnbc10u1${data}b`,
      `lnbc1p1${data}`,
      `Lnbc10u1${data}`,
    ]) {
      expect(parseInvoice(invoice).valid, invoice).toBe(false);
    }
  });
});
