//! Finding the first byte of a kind eight bytes at a time (SWAR: a `u64`
//! as eight lanes), for the short fields of log lines, where a call of
//! `memchr` costs more than the scan. The log parser here and the JSON
//! writer of `haproxide logs` share it, and [`StatReader`]'s split of
//! chosen cells finds the commas of `show stat` rows with it.
//!
//! [`StatReader`]: crate::StatReader
//!
//! A *flags* function gives, for a word read little-endian, the high bit
//! of each byte it flags. The helpers below are exact for the lowest
//! flagged byte and may flag bytes above it wrongly (a subtraction's
//! borrow), so only the lowest one may be used, which is all [`first`]
//! does. [`every_equal`] is exact for every byte, at a few more
//! operations, for a scan that takes every flagged byte of a word.
//!
//! ```
//! use haproxy::scan;
//!
//! let quote_or_space = |word| scan::equal(word, b'"') | scan::equal(word, b' ');
//! let at = scan::first(b"name=\"a value\"", quote_or_space, |byte| byte == b'"' || byte == b' ');
//! assert_eq!(at, 5);
//! ```

/// `0x01` in every byte.
pub const ONES: u64 = 0x0101_0101_0101_0101;
/// `0x80` in every byte: the high bits.
pub const HIGH: u64 = 0x8080_8080_8080_8080;

/// Flags the bytes of `word` equal to `byte`.
#[inline(always)]
pub const fn equal(word: u64, byte: u8) -> u64 {
    let zeroed = word ^ (ONES * byte as u64);
    zeroed.wrapping_sub(ONES) & !zeroed & HIGH
}

/// Flags exactly the bytes of `word` equal to `byte`, each of them:
/// no borrow or carry crosses from one byte to the next.
#[inline(always)]
pub const fn every_equal(word: u64, byte: u8) -> u64 {
    let zero_where_equal = word ^ (ONES * byte as u64);
    // A byte's high bit is set when any of its bits is.
    let nonzero = ((zero_where_equal & !HIGH) + !HIGH) | zero_where_equal;
    !nonzero & HIGH
}

/// Flags the bytes of `word` below `limit` (at most 0x80) and those of
/// 0x80 and above.
#[inline(always)]
pub const fn below_or_high(word: u64, limit: u8) -> u64 {
    (word & HIGH) | (word.wrapping_sub(ONES * limit as u64) & !word & HIGH)
}

/// Where the first byte of `bytes` that `flags` (a word at a time) and
/// `flagged` (a byte at a time, the same test) flag is, or `bytes.len()`.
/// Eight bytes at a time, the last eight overlapping those before when the
/// length is not a multiple of eight; byte by byte only under eight bytes.
#[inline(always)]
pub fn first(bytes: &[u8], flags: impl Fn(u64) -> u64, flagged: impl Fn(u8) -> bool) -> usize {
    let word = |at: usize| {
        let mut eight = [0; 8];
        eight.copy_from_slice(&bytes[at..at + 8]);
        flags(u64::from_le_bytes(eight))
    };
    let lowest = |found: u64| (found.trailing_zeros() / 8) as usize;
    if bytes.len() < 8 {
        return bytes.iter().position(|&byte| flagged(byte)).unwrap_or(bytes.len());
    }
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let found = word(at);
        if found != 0 {
            return at + lowest(found);
        }
        at += 8;
    }
    if at < bytes.len() {
        // The bytes before `at` in this word are clean: the lowest flagged
        // one is past them.
        let last = bytes.len() - 8;
        let found = word(last);
        if found != 0 {
            return last + lowest(found);
        }
    }
    bytes.len()
}

/// A word-at-a-time test and the same test a byte at a time.
#[cfg(test)]
pub(crate) type Scan = (fn(u64) -> u64, fn(u8) -> bool);

/// Asserts that, for every byte at every place of strings of 1 to 20
/// bytes, behind bytes that borrow and bytes that do not, [`first`] with
/// `scan` finds what a byte loop finds.
#[cfg(test)]
pub(crate) fn assert_agrees_with_a_byte_loop((flags, flagged): Scan) {
    for length in 1..=20 {
        for at in 0..length {
            for byte in 0..=255u8 {
                for before in [b'a', b'"', 0x00, 0x1f, 0x80, 0xff] {
                    let mut bytes = vec![b'a'; length];
                    bytes[at] = byte;
                    if at > 0 {
                        bytes[at - 1] = before;
                    }
                    let expected = bytes.iter().position(|&byte| flagged(byte)).unwrap_or(length);
                    assert_eq!(first(&bytes, flags, flagged), expected, "{bytes:?}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_equal_flags_exactly_the_equal_bytes() {
        for byte in 0..=255u8 {
            for sought in [b',', 0x00, 0x7f, 0x80, 0xff] {
                for at in 0..8 {
                    // Beside bytes that would borrow or carry into it.
                    for around in [b'a', sought.wrapping_add(1), sought.wrapping_sub(1), 0x00, 0xff] {
                        let mut word = [around; 8];
                        word[at] = byte;
                        let expected = word
                            .iter()
                            .enumerate()
                            .filter(|(_, each)| **each == sought)
                            .fold(0, |flags, (index, _)| flags | 0x80 << (8 * index));
                        assert_eq!(
                            every_equal(u64::from_le_bytes(word), sought),
                            expected,
                            "{word:?} {sought}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn first_agrees_with_a_byte_loop() {
        let scans: [Scan; 3] = [
            (
                |word| equal(word, b'"') | equal(word, b'\\'),
                |byte| byte == b'"' || byte == b'\\',
            ),
            (
                |word| below_or_high(word, 0x21) | equal(word, b'='),
                |byte| !(0x21..0x80).contains(&byte) || byte == b'=',
            ),
            (|word| below_or_high(word, 0x20), |byte| !(0x20..0x80).contains(&byte)),
        ];
        for scan in scans {
            assert_agrees_with_a_byte_loop(scan);
        }
    }
}
