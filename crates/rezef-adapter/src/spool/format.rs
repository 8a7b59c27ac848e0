//! A spool segment's format: a header line, then one frame per event.
//!
//! ```text
//! header  "rezef-spool 1\n"          the format version in decimal
//! frame   length   u32 LE            bytes of the record, 1..=MAX_RECORD
//!         crc      u32 LE            CRC32C of the length's 4 bytes and the record
//!         record   length bytes      the event, protobuf-encoded (rezef.v1.Event)
//! ```
//!
//! A crash can tear only the last frames of the segment being written (each append is
//! fsynced before it is acknowledged): a frame that fails its checks ends the segment's valid
//! records, and opening cuts the file there. The head file holds the sequence number of the
//! first event not yet acknowledged by the server, with its CRC32C:
//!
//! ```text
//! head    seq u64 LE | crc u32 LE
//! ```

/// The header's text.
pub(super) const HEADER: &[u8] = b"rezef-spool 1\n";
/// Bytes before a frame's record.
pub(super) const FRAME_HEADER_LEN: usize = 8;
/// The largest event a spool takes, encoded: 64 MiB, far above any event a server takes (256 KiB by default).
pub const MAX_RECORD: usize = 64 << 20;
/// Bytes of the head file.
pub(super) const HEAD_LEN: usize = 12;

/// Appends `record` to `out` as one frame.
pub(super) fn encode(out: &mut Vec<u8>, record: &[u8]) {
    debug_assert!(!record.is_empty() && record.len() <= MAX_RECORD);
    let len = (record.len() as u32).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc(&len, record).to_le_bytes());
    out.extend_from_slice(record);
}

fn crc(len: &[u8], record: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(len), record)
}

/// The record of the valid frame at `at` in `file`, and where the frame ends; `None` for a
/// torn or damaged frame, or the end.
pub(super) fn frame_at(file: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let head = file.get(at..at.checked_add(FRAME_HEADER_LEN)?)?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let crc_read = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if len == 0 || len > MAX_RECORD {
        return None;
    }
    let start = at + FRAME_HEADER_LEN;
    let record = file.get(start..start.checked_add(len)?)?;
    (crc(&head[..4], record) == crc_read).then_some((record, start + len))
}

/// The head file's bytes for `seq`.
pub(super) fn encode_head(seq: u64) -> [u8; HEAD_LEN] {
    let mut out = [0; HEAD_LEN];
    out[..8].copy_from_slice(&seq.to_le_bytes());
    let crc = crc32c::crc32c(&out[..8]);
    out[8..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The sequence number a head file holds; `None` when it is torn or missing.
pub(super) fn decode_head(bytes: &[u8]) -> Option<u64> {
    let bytes: &[u8; HEAD_LEN] = bytes.try_into().ok()?;
    let seq = u64::from_le_bytes(bytes[..8].try_into().ok()?);
    let crc_read = u32::from_le_bytes(bytes[8..].try_into().ok()?);
    (crc32c::crc32c(&bytes[..8]) == crc_read).then_some(seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_read_back_and_a_torn_one_reads_as_the_end() {
        let mut file = HEADER.to_vec();
        encode(&mut file, b"first");
        encode(&mut file, b"second");
        let (first, next) = frame_at(&file, HEADER.len()).expect("first");
        assert_eq!(first, b"first");
        let (second, end) = frame_at(&file, next).expect("second");
        assert_eq!((second, end), (&b"second"[..], file.len()));
        assert_eq!(frame_at(&file, end), None);
        for cut in next..file.len() {
            assert_eq!(frame_at(&file[..cut], next), None, "cut at {cut}");
        }
        let mut flipped = file.clone();
        *flipped.last_mut().expect("bytes") ^= 1;
        assert_eq!(frame_at(&flipped, next), None);
    }

    #[test]
    fn the_head_round_trips_and_a_torn_one_is_refused() {
        let head = encode_head(42);
        assert_eq!(decode_head(&head), Some(42));
        assert_eq!(decode_head(&head[..11]), None);
        let mut flipped = head;
        flipped[0] ^= 1;
        assert_eq!(decode_head(&flipped), None);
    }
}
