// Validates an AsyncAPI document with the official parser: node validate_asyncapi.mjs FILE.
// Prints every diagnostic as JSON lines; exits 1 when any is an error or a warning.
import { readFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";

const text = readFileSync(process.argv[2], "utf8");
const { document, diagnostics } = await new Parser().parse(text);
let bad = document === undefined;
for (const d of diagnostics) {
  // severity: 0 error, 1 warning, 2 info, 3 hint
  if (d.severity <= 1) bad = true;
  console.log(JSON.stringify({ severity: d.severity, code: d.code, message: d.message, path: d.path }));
}
console.log(bad ? "INVALID" : `VALID asyncapi ${document.version()}`);
process.exit(bad ? 1 : 0);
