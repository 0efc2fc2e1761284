import { useMemo } from "react";
import QRCode from "qrcode";

/**
 * `text` as a QR code, drawn as SVG paths by React (no markup string, no
 * data: URL, so the strict Content-Security-Policy holds). `qrcode`
 * computes the modules; each dark run of a row becomes one rectangle.
 */
export function QrCode({ text, label, size = 192 }: { text: string; label: string; size?: number }) {
  const { path, width } = useMemo(() => qrPath(text), [text]);
  return (
    <svg
      className="qr"
      role="img"
      aria-label={label}
      width={size}
      height={size}
      viewBox={`-4 -4 ${width + 8} ${width + 8}`}
      shapeRendering="crispEdges"
    >
      <rect x={-4} y={-4} width={width + 8} height={width + 8} fill="#fff" />
      <path d={path} fill="#000" />
    </svg>
  );
}

/** The SVG path of `text`'s QR modules (a quiet zone is the caller's). */
export function qrPath(text: string): { path: string; width: number } {
  const { modules } = QRCode.create(text, { errorCorrectionLevel: "M" });
  const width = modules.size;
  const parts: string[] = [];
  for (let row = 0; row < width; row++) {
    let start = -1;
    for (let col = 0; col <= width; col++) {
      const dark = col < width && modules.get(row, col) !== 0;
      if (dark && start < 0) start = col;
      if (!dark && start >= 0) {
        parts.push(`M${start} ${row}h${col - start}v1h${start - col}z`);
        start = -1;
      }
    }
  }
  return { path: parts.join(""), width };
}
