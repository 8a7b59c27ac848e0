//! The key file's format: a header line, then frames of `Made` records.
//!
//! ```text
//! header  "rezef-keys 1\n"                       the format version in decimal
//! frame   length   u32 LE                        bytes of the records, a positive multiple of 80
//!         crc      u32 LE                        CRC32C of the length's 4 bytes and the records
//!         records  length / 80 × Made
//! Made    id [16] | subject hash [32] | key [32] the subject hash: BLAKE3(tenant, 0, name)
//! ```
//!
//! One append (one `keys_for`) is one frame, so a crash keeps all of its keys or none. A frame
//! that fails its checks with no valid frame after it is a torn tail, cut away on opening; one
//! followed by a valid frame is damage, and opening refuses. Destroyed keys are not marked:
//! the file is rewritten without them, so it only ever holds live keys.

use crate::{DataKey, KeyId};

/// The header's text before the version.
const MAGIC: &[u8] = b"rezef-keys ";
/// The version this build writes and reads.
pub(super) const VERSION: u32 = 1;
/// Bytes of one `Made` record.
const MADE_LEN: usize = 16 + 32 + 32;
/// Bytes before a frame's records.
const FRAME_HEADER_LEN: usize = 8;
/// Records in one frame at most, so that a length always fits (5 MiB a frame).
const FRAME_RECORDS_MAX: usize = 65_536;
/// The header's longest form: the magic, ten digits, the newline.
const HEADER_MAX: usize = MAGIC.len() + 10 + 1;

/// A key as the file holds it.
pub(super) use crate::store::Made;

/// The header of a file of this version.
pub(super) fn header() -> Vec<u8> {
    format!("rezef-keys {VERSION}\n").into_bytes()
}

/// What is wrong with a file's header.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum BadHeader {
    /// Not a key file, or a header cut or changed.
    Malformed,
    /// A version this build does not read.
    Version(u32),
}

/// The header's length, once it says this version.
pub(super) fn read_header(file: &[u8]) -> Result<usize, BadHeader> {
    let end = file
        .iter()
        .take(HEADER_MAX)
        .position(|&b| b == b'\n')
        .ok_or(BadHeader::Malformed)?;
    let version = file[..end]
        .strip_prefix(MAGIC)
        .filter(|digits| !digits.is_empty() && digits.iter().all(u8::is_ascii_digit))
        .and_then(|digits| std::str::from_utf8(digits).ok()?.parse::<u32>().ok())
        .ok_or(BadHeader::Malformed)?;
    if version != VERSION {
        return Err(BadHeader::Version(version));
    }
    Ok(end + 1)
}

/// Appends `records` to `out` as frames.
pub(super) fn encode<'a>(out: &mut Vec<u8>, records: impl ExactSizeIterator<Item = &'a Made>) {
    let mut records = records.peekable();
    while records.peek().is_some() {
        let start = out.len();
        out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
        for made in records.by_ref().take(FRAME_RECORDS_MAX) {
            out.extend_from_slice(made.id.as_bytes());
            out.extend_from_slice(&made.subject);
            out.extend_from_slice(made.key.as_bytes());
        }
        let len = u32::try_from(out.len() - start - FRAME_HEADER_LEN)
            .expect("a frame of at most FRAME_RECORDS_MAX records");
        out[start..start + 4].copy_from_slice(&len.to_le_bytes());
        let crc = frame_crc(&out[start..start + 4], &out[start + FRAME_HEADER_LEN..]);
        out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    }
}

fn frame_crc(len: &[u8], records: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(len), records)
}

/// The records of the valid frame at `at`, and where it ends; `None` for anything else.
fn frame_at(file: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let head = file.get(at..at.checked_add(FRAME_HEADER_LEN)?)?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    let len = usize::try_from(len).ok()?;
    if len == 0 || len % MADE_LEN != 0 {
        return None;
    }
    let start = at + FRAME_HEADER_LEN;
    let records = file.get(start..start.checked_add(len)?)?;
    (frame_crc(&head[..4], records) == crc).then_some((records, start + len))
}

/// What reading the frames found.
#[derive(Debug)]
pub(super) struct Scan {
    /// Every record with its byte position, in file order.
    pub records: Vec<(usize, Made)>,
    /// Where the valid frames end: the file's length, or where a torn tail starts.
    pub end: usize,
}

/// Reads the frames from `from` (after the header). `Err(offset)`: a frame there is bad and a
/// valid one follows it, which a crash does not leave.
pub(super) fn scan(file: &[u8], from: usize) -> Result<Scan, usize> {
    let mut records = Vec::new();
    let mut at = from;
    while at < file.len() {
        let Some((frame, next)) = frame_at(file, at) else {
            if (at + 1..file.len()).any(|later| frame_at(file, later).is_some()) {
                return Err(at);
            }
            break;
        };
        let start = at + FRAME_HEADER_LEN;
        let made = frame.chunks_exact(MADE_LEN).map(parse);
        records.extend(made.enumerate().map(|(n, m)| (start + n * MADE_LEN, m)));
        at = next;
    }
    Ok(Scan { records, end: at })
}

fn parse(record: &[u8]) -> Made {
    let (id, rest) = record.split_at(16);
    let (subject, key) = rest.split_at(32);
    Made {
        id: KeyId(id.try_into().expect("16 bytes")),
        subject: subject.try_into().expect("32 bytes"),
        key: DataKey::from_bytes(key.try_into().expect("32 bytes")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn made(n: u8) -> Made {
        Made {
            id: KeyId([n; 16]),
            subject: [n.wrapping_add(1); 32],
            key: DataKey::from_bytes(&[n.wrapping_add(2); 32]),
        }
    }

    #[test]
    fn header_round_trip_and_refusals() {
        let mut file = header();
        assert_eq!(read_header(&file), Ok(file.len()));
        file.extend_from_slice(b"anything after");
        assert_eq!(read_header(&file), Ok(13));
        assert_eq!(read_header(b"rezef-keys 2\n"), Err(BadHeader::Version(2)));
        for bad in [
            &b""[..],
            b"rezef-keys 1",
            b"rezef-keys \n",
            b"rezef-keys x\n",
            b"rezef-log 1\n",
            b"rezef-keys 99999999999\n",
        ] {
            assert_eq!(read_header(bad), Err(BadHeader::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn frames_read_back_in_order() {
        let records: Vec<Made> = (0..5).map(made).collect();
        let mut file = header();
        encode(&mut file, records[..2].iter());
        encode(&mut file, records[2..].iter());
        let scan = scan(&file, 13).expect("intact");
        assert_eq!(scan.end, file.len());
        let ids: Vec<KeyId> = scan.records.iter().map(|(_, m)| m.id).collect();
        assert_eq!(ids, records.iter().map(|m| m.id).collect::<Vec<_>>());
        let (at, last) = &scan.records[4];
        assert_eq!(*at, 13 + 2 * FRAME_HEADER_LEN + 4 * MADE_LEN);
        assert_eq!(last.subject, [5; 32]);
        assert_eq!(last.key.as_bytes(), &[6; 32]);
    }

    #[test]
    fn a_large_append_is_split_into_frames() {
        let records: Vec<Made> = (0..FRAME_RECORDS_MAX + 1).map(|n| made(n as u8)).collect();
        let mut file = Vec::new();
        encode(&mut file, records.iter());
        assert_eq!(file.len(), records.len() * MADE_LEN + 2 * FRAME_HEADER_LEN);
        assert_eq!(scan(&file, 0).expect("intact").records.len(), records.len());
    }
}
