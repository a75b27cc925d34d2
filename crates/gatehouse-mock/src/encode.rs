//! Small pure helpers: word counting and splitting, base64, hashing.

/// Number of whitespace-separated words in `s`.
pub(crate) fn word_count(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

/// Splits `text` into at most `n` consecutive pieces at word starts, spreading
/// the words evenly. The pieces concatenate back to `text` exactly (leading and
/// inner whitespace is kept). No words: one piece if `text` is not empty.
pub(crate) fn split_words(text: &str, n: usize) -> Vec<&str> {
    let mut starts = Vec::new();
    let mut prev_space = true;
    for (i, c) in text.char_indices() {
        let space = c.is_whitespace();
        if !space && prev_space {
            starts.push(i);
        }
        prev_space = space;
    }
    if let Some(first) = starts.first_mut() {
        // The first piece also carries any leading whitespace.
        *first = 0;
    }
    split_at_starts(text, &starts, n)
}

/// Splits `text` into at most `n` pieces of about the same number of chars.
pub(crate) fn split_chars(text: &str, n: usize) -> Vec<&str> {
    let starts: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    split_at_starts(text, &starts, n)
}

/// Splits `text` at `n` of the candidate piece starts (`starts[0]` must be 0),
/// choosing them evenly.
fn split_at_starts<'a>(text: &'a str, starts: &[usize], n: usize) -> Vec<&'a str> {
    let w = starts.len();
    if w == 0 {
        return if text.is_empty() {
            Vec::new()
        } else {
            vec![text]
        };
    }
    let n = n.clamp(1, w);
    let mut pieces = Vec::with_capacity(n);
    let mut from = 0;
    for i in 1..n {
        let at = starts.get(i * w / n).copied().unwrap_or(text.len());
        pieces.push(text.get(from..at).unwrap_or(""));
        from = at;
    }
    pieces.push(text.get(from..).unwrap_or(""));
    pieces
}

const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (RFC 4648, with padding).
pub(crate) fn base64_encode(input: &[u8]) -> String {
    let sym = |v: u32| char::from(BASE64_ALPHABET[(v & 63) as usize]);
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let (b, len) = match *chunk {
            [a, b, c] => ((u32::from(a) << 16) | (u32::from(b) << 8) | u32::from(c), 3),
            [a, b] => ((u32::from(a) << 16) | (u32::from(b) << 8), 2),
            [a] => (u32::from(a) << 16, 1),
            _ => continue,
        };
        out.push(sym(b >> 18));
        out.push(sym(b >> 12));
        out.push(if len > 1 { sym(b >> 6) } else { '=' });
        out.push(if len > 2 { sym(b) } else { '=' });
    }
    out
}

/// FNV-1a, 64 bit.
pub(crate) struct Fnv(u64);

impl Fnv {
    pub(crate) fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub(crate) fn finish(&self) -> u64 {
        self.0
    }
}

/// SplitMix64 output for `seed` and stream position `i`.
fn splitmix(seed: u64, i: u64) -> u64 {
    let mut z = seed.wrapping_add(i.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A deterministic unit-length vector of `dim` floats in [-1, 1] derived from `seed`.
pub(crate) fn vector(seed: u64, dim: usize) -> Vec<f32> {
    const SCALE: f32 = 1.0 / (1u32 << 24) as f32;
    let mut v: Vec<f32> = (0..dim as u64)
        .map(|i| (splitmix(seed, i) >> 40) as f32 * SCALE * 2.0 - 1.0)
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in &mut v {
            *x = (*x / norm).clamp(-1.0, 1.0);
        }
    }
    v
}

#[cfg(test)]
pub(crate) fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| BASE64_ALPHABET.iter().position(|&a| a == c).unwrap() as u32;
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::new();
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c) << (18 - 6 * i);
        }
        let n = chunk.len() * 6 / 8;
        for i in 0..n {
            out.push((acc >> (16 - 8 * i)) as u8);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(word_count(""), 0);
        assert_eq!(word_count("  a  b\tc\n"), 3);
    }

    #[test]
    fn split_words_even_and_lossless() {
        let t = "Hello from mock: one two three";
        let p = split_words(t, 3);
        assert_eq!(p, vec!["Hello from ", "mock: one ", "two three"]);
        assert_eq!(p.concat(), t);

        assert_eq!(split_words("  a b", 5), vec!["  a ", "b"]);
        assert_eq!(split_words("single", 3), vec!["single"]);
        assert_eq!(split_words("", 3), Vec::<&str>::new());
        assert_eq!(split_words("   ", 3), vec!["   "]);
        assert_eq!(split_words("a b c", 0), vec!["a b c"]);
        let t = "héllo wörld ünïcode x y z w";
        for n in 1..10 {
            assert_eq!(split_words(t, n).concat(), t);
        }
    }

    #[test]
    fn split_chars_pieces() {
        assert_eq!(split_chars("{\"a\":1}", 3), vec!["{\"", "a\"", ":1}"]);
        assert_eq!(split_chars("{}", 3), vec!["{", "}"]);
        assert_eq!(split_chars("", 3), Vec::<&str>::new());
        assert_eq!(split_chars("ééé", 2).concat(), "ééé");
    }

    #[test]
    fn base64_known_vectors() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"foob"), "Zm9vYg==");
        assert_eq!(base64_encode(b"fooba"), "Zm9vYmE=");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(&[0xff, 0xfe, 0xfd]), "//79");
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(base64_decode(&base64_encode(&all)), all);
    }

    #[test]
    fn vectors_deterministic_and_bounded() {
        let a = vector(42, 16);
        assert_eq!(a, vector(42, 16));
        assert_ne!(a, vector(43, 16));
        assert!(a.iter().all(|x| (-1.0..=1.0).contains(x)));
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
        assert_eq!(vector(1, 1).len(), 1);
    }

    #[test]
    fn fnv_known() {
        let mut h = Fnv::new();
        h.write(b"a");
        assert_eq!(h.finish(), 0xaf63dc4c8601ec8c);
    }
}
