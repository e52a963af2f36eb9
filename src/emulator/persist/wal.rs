//! The write-ahead log's framing: length- and checksum-prefixed records, so a torn tail is detected.
//!
//! A frame is `length: u32 LE`, `crc32(payload): u32 LE`, `payload` (never empty). The log file is
//! preallocated with zeros (overwriting written blocks syncs far faster than growing a file, which
//! also has to sync its size), so a zero length marks the end. A crash during a write leaves at most
//! one incomplete or garbled frame after the last intact one; [`decode`] stops before it, and the
//! loader then starts a new generation, so nothing is ever written after garbage.

/// Bytes before each payload.
const HEADER: usize = 8;

/// The CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) lookup table, built at compile time.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[n] = c;
        n += 1;
    }
    table
};

/// CRC-32 of `bytes` (the checksum zlib and gzip use).
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc = TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// One frame around `payload`.
///
/// # Errors
/// An empty payload (a zero length marks the end of the log) or one over 4 GiB, which the length
/// field cannot carry.
pub fn encode(payload: &[u8]) -> Result<Vec<u8>, String> {
    let len = u32::try_from(payload.len())
        .map_err(|e| format!("a state log record of {} bytes: {e}", payload.len()))?;
    if len == 0 {
        return Err("an empty state log record".to_string());
    }
    let mut frame = Vec::with_capacity(HEADER + payload.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&crc32(payload).to_le_bytes());
    frame.extend_from_slice(payload);
    Ok(frame)
}

/// The frames of a log.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// The payloads of the complete, intact frames, in order.
    pub payloads: Vec<&'a [u8]>,
    /// Where the intact frames end: the next frame is written here.
    pub end: usize,
    /// Bytes after the intact frames that are not preallocated zeros (a torn or garbled tail).
    pub dropped: usize,
}

/// Splits a log into its intact frames, stopping at the end mark (a zero length) or at the first
/// incomplete or garbled frame.
pub fn decode(log: &[u8]) -> Decoded<'_> {
    let mut payloads = Vec::new();
    let mut at = 0;
    while let Some(header) = log.get(at..at + HEADER) {
        let (len, sum) = header.split_at(4);
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let sum = u32::from_le_bytes([sum[0], sum[1], sum[2], sum[3]]);
        if len == 0 {
            break;
        }
        let Some(payload) = log.get(at + HEADER..at + HEADER + len) else {
            break;
        };
        if crc32(payload) != sum {
            break;
        }
        payloads.push(payload);
        at += HEADER + len;
    }
    let tail = &log[at..];
    Decoded {
        payloads,
        end: at,
        dropped: if tail.iter().all(|b| *b == 0) {
            0
        } else {
            tail.len()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    fn log_of(payloads: &[&[u8]]) -> Vec<u8> {
        payloads.iter().flat_map(|p| encode(p).expect("small")).collect()
    }

    #[test]
    fn decodes_what_it_encoded() {
        let mut log = log_of(&[b"one", b"two", b"three"]);
        let d = decode(&log);
        assert_eq!(d.payloads, vec![&b"one"[..], b"two", b"three"]);
        assert_eq!((d.end, d.dropped), (log.len(), 0));
        // The preallocated zeros after the frames are the end mark, not a torn tail.
        let end = log.len();
        log.resize(end + 100, 0);
        let d = decode(&log);
        assert_eq!(d.payloads.len(), 3);
        assert_eq!((d.end, d.dropped), (end, 0));
        assert!(encode(b"").is_err(), "an empty record would read as the end");
    }

    /// Every possible cut of the last frame: the intact ones before it are kept, the rest dropped.
    #[test]
    fn a_torn_tail_is_dropped_at_every_cut() {
        let log = log_of(&[b"first", b"second record"]);
        let first = HEADER + 5;
        for cut in first..log.len() {
            let d = decode(&log[..cut]);
            assert_eq!(d.payloads, vec![&b"first"[..]], "cut at {cut}");
            assert_eq!(d.dropped, cut - first);
            // The same cut inside a preallocated file: zeros follow the torn frame.
            let mut padded = log[..cut].to_vec();
            padded.resize(log.len() + 64, 0);
            let d = decode(&padded);
            assert_eq!(d.payloads, vec![&b"first"[..]], "cut at {cut}, padded");
            assert_eq!(d.end, first);
            assert!(
                cut == first || d.dropped > 0,
                "cut at {cut}: the torn frame is noticed"
            );
        }
        for cut in 0..first {
            assert!(decode(&log[..cut]).payloads.is_empty(), "cut at {cut}");
        }
    }

    #[test]
    fn a_garbled_frame_and_everything_after_it_are_dropped() {
        let mut log = log_of(&[b"good", b"flipped", b"after"]);
        let flipped = HEADER + 4 + HEADER + 2;
        log[flipped] ^= 0x40;
        let d = decode(&log);
        assert_eq!(d.payloads, vec![&b"good"[..]]);
        assert_eq!(d.dropped, log.len() - (HEADER + 4));
        // A length that runs past the end (a garbled length field) is a torn tail too.
        let mut log = log_of(&[b"good"]);
        log.extend_from_slice(&u32::MAX.to_le_bytes());
        log.extend_from_slice(&[0; 12]);
        assert_eq!(decode(&log).payloads, vec![&b"good"[..]]);
    }
}
