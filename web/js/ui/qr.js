// The recovery kit as a QR code: an SVG of <path> modules, coloured by CSS classes (the CSP's
// style-src 'self' blocks inline style attributes). Encoding is the vendored qrcode-generator.
import { qrcode } from "../../vendor/qrcode-generator.js";

const SVG = "http://www.w3.org/2000/svg";
const QUIET = 4; // modules of white border a scanner needs

/** An <svg> QR code of `text` (UTF-8, byte mode, error correction M). */
export function qrSvg(text, label) {
  const qr = qrcode(0, "M");
  // qrcode-generator's byte mode keeps the low 8 bits of each UTF-16 unit: hand it UTF-8.
  const utf8 = Array.from(new TextEncoder().encode(text), (b) => String.fromCharCode(b)).join("");
  qr.addData(utf8, "Byte");
  qr.make();
  const n = qr.getModuleCount();
  const size = n + QUIET * 2;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${size} ${size}`);
  svg.setAttribute("class", "qr");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.setAttribute("shape-rendering", "crispEdges");
  const bg = document.createElementNS(SVG, "rect");
  bg.setAttribute("class", "qr-light");
  bg.setAttribute("width", String(size));
  bg.setAttribute("height", String(size));
  let d = "";
  for (let r = 0; r < n; r += 1) {
    for (let c = 0; c < n; c += 1) {
      if (qr.isDark(r, c)) d += `M${c + QUIET} ${r + QUIET}h1v1h-1z`;
    }
  }
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("class", "qr-dark");
  path.setAttribute("d", d);
  svg.append(bg, path);
  svg.dataset.modules = String(n);
  return svg;
}
