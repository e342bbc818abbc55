// `make web`: rebuild web/vendor/ from the exact npm versions in package-lock.json.
// The bundles are committed, so `make serve` and `make test` never need node.
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const out = new URL("./vendor/", import.meta.url);
const bundles = [
  { pkg: "@noble/ciphers", entry: "entry-noble-ciphers.js", file: "noble-ciphers.js", license: "node_modules/@noble/ciphers/LICENSE", licenseOut: "LICENSE.noble-ciphers" },
  { pkg: "qrcode-generator", entry: "entry-qrcode.js", file: "qrcode-generator.js", license: null, licenseOut: "LICENSE.qrcode-generator" },
];
// Only what the client uses: tree-shaking keeps the bundles small and reviewable.
const entries = mkdtempSync(join(tmpdir(), "nt2-vendor-"));
writeFileSync(join(entries, "entry-noble-ciphers.js"), 'export { xchacha20poly1305 } from "@noble/ciphers/chacha.js";\n');
writeFileSync(join(entries, "entry-qrcode.js"), 'export { qrcode } from "qrcode-generator";\n');
const lock = JSON.parse(readFileSync(new URL("package-lock.json", import.meta.url)));
const QR_LICENSE = `MIT License (qrcode-generator, https://github.com/kazuhikoarase/qrcode-generator)

Copyright (c) 2009 Kazuhiko Arase

Permission is hereby granted, free of charge, to any person obtaining a copy of this software
and associated documentation files (the "Software"), to deal in the Software without
restriction, including without limitation the rights to use, copy, modify, merge, publish,
distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING
BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
`;

const lines = ["# Vendored ES modules (built by `make web` from web/package-lock.json; do not edit)", ""];
for (const b of bundles) {
  await build({
    entryPoints: [join(entries, b.entry)],
    bundle: true,
    format: "esm",
    target: "es2022",
    minify: false,
    legalComments: "inline",
    outfile: new URL(b.file, out).pathname,
    absWorkingDir: new URL(".", import.meta.url).pathname,
    nodePaths: [new URL("node_modules", import.meta.url).pathname],
  });
  const meta = JSON.parse(readFileSync(new URL(`node_modules/${b.pkg}/package.json`, import.meta.url)));
  if (b.license) copyFileSync(new URL(b.license, import.meta.url), new URL(b.licenseOut, out));
  else writeFileSync(new URL(b.licenseOut, out), QR_LICENSE);
  const tarball = lock.packages[`node_modules/${b.pkg}`].integrity;
  const sha = createHash("sha256").update(readFileSync(new URL(b.file, out))).digest("hex");
  lines.push(`${b.file}: ${b.pkg} ${meta.version} (${meta.license}), npm tarball ${tarball}, bundle sha256 ${sha}`);
}
const esbuildVersion = JSON.parse(readFileSync(new URL("node_modules/esbuild/package.json", import.meta.url))).version;
lines.push("", `built with esbuild ${esbuildVersion}; licences in LICENSE.*`);
writeFileSync(new URL("VERSIONS", out), lines.join("\n") + "\n");
