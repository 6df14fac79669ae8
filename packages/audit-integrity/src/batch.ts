// The byte ranges of the events inside an AuditBatch message, found by walking
// the protobuf wire format (field 2, length-delimited), so each event is hashed
// and stored exactly as published, without decoding and re-encoding it.

/** Sub-arrays (no copies) of each `events` entry, or an Error when the bytes are not a well-formed message. */
export function batchEventSlices(buf: Uint8Array): Uint8Array[] | Error {
  const out: Uint8Array[] = [];
  let i = 0;
  const varint = (): number => {
    let result = 0;
    let mul = 1;
    for (let n = 0; n < 10; n++) {
      if (i >= buf.length) throw new Error("truncated varint");
      const b = buf[i++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
    throw new Error("varint too long");
  };
  try {
    while (i < buf.length) {
      const tag = varint();
      const field = Math.floor(tag / 8);
      const wire = tag & 7;
      if (field === 0) throw new Error("field number 0");
      switch (wire) {
        case 0:
          varint();
          break;
        case 1:
          i += 8;
          break;
        case 5:
          i += 4;
          break;
        case 2: {
          const len = varint();
          if (i + len > buf.length) throw new Error("length past the end of the message");
          if (field === 2) out.push(buf.subarray(i, i + len));
          i += len;
          break;
        }
        default:
          throw new Error(`unsupported wire type ${wire}`);
      }
      if (i > buf.length) throw new Error("field past the end of the message");
    }
  } catch (e) {
    return e as Error;
  }
  return out;
}
