// Synthetic, realistic-looking personal data for the demo database. Everything is
// generated from the PRNG: example.* mail domains, fictional 555-01xx phone
// numbers, SSN-shaped numbers and Luhn-valid test card numbers. No real data.
import type { Prng } from "./prng.js";

const FIRST = [
  "Olivia", "Liam", "Emma", "Noah", "Ava", "Oliver", "Sophia", "Elijah", "Isabella", "James",
  "Mia", "William", "Amelia", "Benjamin", "Harper", "Lucas", "Evelyn", "Henry", "Abigail", "Theodore",
  "Priya", "Mateo", "Yuki", "Omar", "Fatima", "Chen", "Aisha", "Diego", "Ingrid", "Kwame",
] as const;
const LAST = [
  "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
  "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
  "Nguyen", "Patel", "Kim", "Okafor", "Rossi", "Novak", "Haddad", "Larsen", "Silva", "Cohen",
] as const;
const MAIL_DOMAINS = ["example.com", "example.org", "example.net"] as const;
// Real NANP area codes; the 555-0100..0199 exchange range is reserved for fiction.
const AREA_CODES = ["212", "305", "312", "415", "503", "617", "702", "720", "808", "917"] as const;

export interface FakeCustomer {
  name: string;
  email: string;
  phone: string;
  ssn: string;
  card_number: string;
  notes: string;
}

export function phone(r: Prng): string {
  return `+1${r.pick(AREA_CODES)}55501${r.digits(2)}`;
}

/** Shaped like a US SSN (AAA-GG-SSSS) avoiding the never-issued 000/666/9xx areas. */
export function ssn(r: Prng): string {
  let area = r.int(1, 899);
  if (area === 666) area = 667;
  return `${String(area).padStart(3, "0")}-${String(r.int(1, 99)).padStart(2, "0")}-${String(r.int(1, 9999)).padStart(4, "0")}`;
}

/** Luhn check digit for a string of digits. */
export function luhnCheckDigit(body: string): number {
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    // Double every second digit counting from the right of the full number.
    let d = body.charCodeAt(body.length - 1 - i) - 48;
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return (10 - (sum % 10)) % 10;
}

export function luhnValid(num: string): boolean {
  return /^\d{12,19}$/.test(num) && luhnCheckDigit(num.slice(0, -1)) === Number(num.at(-1));
}

/** Visa (4…, 16 digits), Mastercard (51–55…, 16) or Amex (34/37…, 15), Luhn-valid. */
export function cardNumber(r: Prng): string {
  const kind = r.int(0, 2);
  const prefix = kind === 0 ? "4" : kind === 1 ? `5${r.int(1, 5)}` : r.pick(["34", "37"]);
  const length = kind === 2 ? 15 : 16;
  const body = prefix + r.digits(length - prefix.length - 1);
  return body + String(luhnCheckDigit(body));
}

function note(r: Prng, c: Omit<FakeCustomer, "notes">): string {
  const first = c.name.split(" ")[0];
  const templates = [
    () => `Prefers email contact.`,
    () => `Called from ${phone(r)} about a late delivery; asked us to use ${c.email} from now on.`,
    () => `${first} read their SSN ${c.ssn} over the phone for verification (should not have been written down).`,
    () => `Refund issued to card ending ${c.card_number.slice(-4)}.`,
    () => `Customer disputed a charge on card ${c.card_number}; escalated to billing.`,
    () => `VIP since 2021. Spouse's number: ${phone(r)}.`,
    () => `Requested account deletion under GDPR; pending review.`,
    () => `Address change requested; confirmation sent to ${c.email}.`,
    () => ``,
  ];
  return r.pick(templates)();
}

export function customer(r: Prng, i: number): FakeCustomer {
  const first = r.pick(FIRST);
  const last = r.pick(LAST);
  const base = {
    name: `${first} ${last}`,
    email: `${first.toLowerCase()}.${last.toLowerCase()}${i}@${r.pick(MAIL_DOMAINS)}`,
    phone: phone(r),
    ssn: ssn(r),
    card_number: cardNumber(r),
  };
  return { ...base, notes: note(r, base) };
}

const STATUSES = ["pending", "paid", "paid", "paid", "shipped", "shipped", "delivered", "delivered", "refunded", "cancelled"] as const;

export interface FakeOrder {
  customer_id: number;
  total: string;
  status: string;
  created_at: string;
}

const EPOCH = Date.UTC(2025, 0, 1);

export function order(r: Prng, customers: number): FakeOrder {
  const cents = r.int(500, 99_999);
  const created = new Date(EPOCH + r.int(0, 365 * 24 * 3600) * 1000);
  return {
    customer_id: r.int(1, customers),
    total: `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, "0")}`,
    status: r.pick(STATUSES),
    created_at: created.toISOString(),
  };
}
