// Play an uploaded archive's members: read the zip or tar (plain or gzip-compressed, or a single .gz file) that the
// page already holds and give each member's bytes for its player and spectrogram, with the names the server gives
// them ("archive!member"). Other archives (bz2, xz, zip64, encrypted members) get no player. Nothing here is
// trusted: a member is read only up to its declared size, a gzip stream only up to MAX_INFLATED_BYTES.
"use strict";

const MAX_INFLATED_BYTES = 1024 ** 3;

async function inflate(blob, format, limit) {
  const reader = blob.stream().pipeThrough(new DecompressionStream(format)).getReader();
  const parts = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return new Blob(parts);
    total += value.length;
    if (total > limit) {
      reader.cancel();
      throw new Error("more data than the archive declares");
    }
    parts.push(value);
  }
}

const isTar = (head) => new TextDecoder().decode(head.subarray(257, 262)) === "ustar";

// The archive's members, by name, each as a function giving its bytes (a Blob); empty when it cannot be read here.
async function archiveMembers(file) {
  const head = new Uint8Array(await file.slice(0, 512).arrayBuffer());
  if (head[0] === 0x50 && head[1] === 0x4b && head[2] === 3 && head[3] === 4) return zipMembers(file);
  if (isTar(head)) return tarMembers(file);
  if (head[0] === 0x1f && head[1] === 0x8b && window.DecompressionStream) {
    const inner = await inflate(file, "gzip", MAX_INFLATED_BYTES);
    if (isTar(new Uint8Array(await inner.slice(0, 512).arrayBuffer()))) return tarMembers(inner);
    const name = file.name.replace(/\/+$/, "").split("/").pop().replace(/\.gz$/i, ""); // as the server names it
    return new Map([[name, async () => inner]]);
  }
  return new Map();
}

async function zipMembers(file) {
  const members = new Map();
  const tailStart = Math.max(0, file.size - 65557); // the end record and its comment (at most 64 KiB)
  const tail = new DataView(await file.slice(tailStart).arrayBuffer());
  let end = -1;
  for (let i = tail.byteLength - 22; i >= 0 && end < 0; i--) if (tail.getUint32(i, true) === 0x06054b50) end = i;
  if (end < 0) return members;
  const size = tail.getUint32(end + 12, true), start = tail.getUint32(end + 16, true);
  if (start + size > file.size) return members; // zip64, or not a zip after all
  const directory = new DataView(await file.slice(start, start + size).arrayBuffer());
  const names = new TextDecoder();
  for (let at = 0; at + 46 <= directory.byteLength && directory.getUint32(at, true) === 0x02014b50;) {
    const flags = directory.getUint16(at + 8, true), method = directory.getUint16(at + 10, true);
    const packed = directory.getUint32(at + 20, true), unpacked = directory.getUint32(at + 24, true);
    const nameLength = directory.getUint16(at + 28, true);
    const local = directory.getUint32(at + 42, true);
    const name = names.decode(new Uint8Array(directory.buffer, at + 46, Math.min(nameLength, directory.byteLength - at - 46)));
    if (!(flags & 1) && (method === 0 || (method === 8 && window.DecompressionStream))) {
      members.set(name, async () => {
        const header = new DataView(await file.slice(local, local + 30).arrayBuffer());
        const data = local + 30 + header.getUint16(26, true) + header.getUint16(28, true);
        const bytes = file.slice(data, data + packed);
        return method === 0 ? bytes : inflate(bytes, "deflate-raw", unpacked);
      });
    }
    at += 46 + nameLength + directory.getUint16(at + 30, true) + directory.getUint16(at + 32, true);
  }
  return members;
}

async function tarMembers(blob) {
  const members = new Map();
  const bytes = new Uint8Array(await blob.arrayBuffer());
  const text = (from, length) => {
    let end = from;
    while (end < from + length && bytes[end]) end++;
    return new TextDecoder().decode(bytes.subarray(from, end));
  };
  let longName = null; // from a GNU long-name or a pax header, for the next member
  for (let offset = 0; offset + 512 <= bytes.length && bytes[offset];) {
    const size = parseInt(text(offset + 124, 12).trim() || "0", 8);
    const data = offset + 512;
    if (!Number.isSafeInteger(size) || size < 0 || data + size > bytes.length) break;
    const type = bytes[offset + 156] ? String.fromCharCode(bytes[offset + 156]) : "0";
    if (type === "L") longName = text(data, size);
    else if (type === "x") longName = (/(?:^|\n)\d+ path=([^\n]*)\n/.exec(text(data, size)) || [])[1] || longName;
    else {
      const prefix = text(offset + 345, 155);
      const name = longName || (prefix ? `${prefix}/${text(offset, 100)}` : text(offset, 100));
      if (type === "0" || type === "7") members.set(name, async () => new Blob([bytes.subarray(data, data + size)]));
      longName = null;
    }
    offset = data + Math.ceil(size / 512) * 512;
  }
  return members;
}
