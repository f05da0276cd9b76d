//! A minimal JSON writer into a reused byte buffer: one pass, no per-value allocation.

use std::fmt;

/// Appends `s` as a JSON string literal (with quotes).
pub fn write_str(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    write_escaped(buf, s);
    buf.push(b'"');
}

/// Appends the escaped contents of a JSON string (without quotes).
///
/// Runs of bytes that need no escaping (almost all of them) are found eight at a time and
/// copied in one piece.
pub fn write_escaped(buf: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        i += plain_prefix(&bytes[i..]);
        if i >= bytes.len() {
            break;
        }
        let b = bytes[i];
        buf.extend_from_slice(&bytes[start..i]);
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                buf.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 0xf) as usize],
                ]);
                i += 1;
                start = i;
                continue;
            }
        };
        buf.extend_from_slice(escape);
        i += 1;
        start = i;
    }
    buf.extend_from_slice(&bytes[start..]);
}

/// Whether a byte must be escaped in a JSON string: quote, backslash and control characters.
#[inline(always)]
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// How many leading bytes of `bytes` need no escaping.
#[inline(always)]
fn plain_prefix(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while i + 8 <= bytes.len() {
        let x = u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap());
        // A high bit in a lane marks a byte < 0x20, == '"' or == '\\' (bytes >= 0x80 are
        // masked out by `!x`, so UTF-8 never matches).
        let quote = x ^ (ONES * u64::from(b'"'));
        let backslash = x ^ (ONES * u64::from(b'\\'));
        let hit =
            (x.wrapping_sub(ONES * 0x20) | quote.wrapping_sub(ONES) | backslash.wrapping_sub(ONES))
                & !x
                & HIGH;
        if hit != 0 {
            // The lowest marked lane is exact (borrows only run upwards from a real hit).
            return i + (hit.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < bytes.len() && !needs_escape(bytes[i]) {
        i += 1;
    }
    i
}

pub fn write_u64(buf: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
}

/// `fmt::Write` that escapes everything written, for formatted string values.
pub struct Escaping<'a>(pub &'a mut Vec<u8>);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_escaped(self.0, s);
        Ok(())
    }
}

/// Writes an object's members, handling the commas.
pub struct Object<'a> {
    buf: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Object<'a> {
    pub fn begin(buf: &'a mut Vec<u8>) -> Self {
        buf.push(b'{');
        Object { buf, first: true }
    }

    /// Starts a member and returns the buffer to write its value into.
    pub fn key(&mut self, key: &str) -> &mut Vec<u8> {
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
        self.buf.push(b'"');
        if plain_prefix(key.as_bytes()) == key.len() {
            self.buf.extend_from_slice(key.as_bytes());
        } else {
            write_escaped(self.buf, key);
        }
        self.buf.extend_from_slice(b"\":");
        self.buf
    }

    pub fn str(&mut self, key: &str, value: &str) {
        let buf = self.key(key);
        write_str(buf, value);
    }

    pub fn opt_str(&mut self, key: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.str(key, v);
        }
    }

    pub fn u64(&mut self, key: &str, value: u64) {
        let buf = self.key(key);
        write_u64(buf, value);
    }

    pub fn bool(&mut self, key: &str, value: bool) {
        let buf = self.key(key);
        buf.extend_from_slice(if value { b"true" } else { b"false" });
    }

    pub fn str_list<S: AsRef<str>>(&mut self, key: &str, values: &[S]) {
        let buf = self.key(key);
        buf.push(b'[');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            write_str(buf, v.as_ref());
        }
        buf.push(b']');
    }

    pub fn end(self) {
        self.buf.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_serde_json() {
        let s = "quote \" backslash \\ nl \n tab \t ctl \u{1} é 中 🙂";
        let mut buf = Vec::new();
        write_str(&mut buf, s);
        let back: String = serde_json::from_slice(&buf).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn escapes_every_byte_at_every_position() {
        for b in 0u8..0x80 {
            for pos in 0..20 {
                let mut s = "abcdefghijklmnopqrs".to_string();
                s.insert(pos, b as char);
                let mut buf = Vec::new();
                write_str(&mut buf, &s);
                assert_eq!(buf, serde_json::to_vec(&s).unwrap(), "byte {b:#x} at {pos}");
            }
        }
        let mut buf = Vec::new();
        write_str(&mut buf, "élan 中文 🙂 \u{7f}\u{80}\u{ff}");
        assert_eq!(
            buf,
            serde_json::to_vec("élan 中文 🙂 \u{7f}\u{80}\u{ff}").unwrap()
        );
    }

    #[test]
    fn numbers() {
        for n in [0u64, 7, 10, 1500, u64::MAX] {
            let mut buf = Vec::new();
            write_u64(&mut buf, n);
            assert_eq!(String::from_utf8(buf).unwrap(), n.to_string());
        }
    }
}
