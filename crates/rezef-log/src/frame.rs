//! The on-disk frame: one appended batch, encoded as a single checksummed unit.
//!
//! Whole-frame granularity is what makes batches atomic: a frame is either entirely valid
//! (magic, length and CRC32C all check out) or it is treated as never written. Version 2
//! frames also carry their link of the hash chain (`chain.rs`): the previous frame's hash and
//! their own. See `FORMAT.md` for the byte-by-byte layout; this module is its single
//! implementation. Version 1 frames (no chain) are still read.

use bytes::Bytes;

use crate::Offset;
use crate::chain::ChainHash;
use crate::error::Corruption;

/// First four bytes of every frame.
pub(crate) const MAGIC: [u8; 4] = *b"RZLG";
/// The format version this build writes: frames with the hash chain.
pub(crate) const VERSION: u8 = 2;
/// The first format version, without the chain: still read.
pub(crate) const VERSION_1: u8 = 1;
/// The header fields every version shares (the whole header of version 1).
pub(crate) const FIXED_LEN: usize = 36;
/// Size of the version 2 header: the shared fields, the previous chain and the frame's own.
pub(crate) const HEADER_LEN: usize = 100;
/// Per-record overhead: the little-endian `u32` payload length.
pub(crate) const RECORD_OVERHEAD: usize = 4;
/// Largest frame the length field can describe.
pub(crate) const MAX_FRAME_LEN: u64 = u32::MAX as u64;
/// Bytes before the region covered by the CRC (magic + CRC field).
const CRC_START: usize = 8;
/// Where a version 2 frame keeps its predecessor's chain hash...
const PREVIOUS_AT: usize = 36;
/// ...and its own.
const CHAIN_AT: usize = 68;

/// The header length of a frame of `version` (an unknown version is read as far as the
/// shared fields, then refused by [`verify`] once its CRC has been checked).
pub(crate) fn header_len(version: u8) -> usize {
    if version == VERSION {
        HEADER_LEN
    } else {
        FIXED_LEN
    }
}

/// A version 2 frame's place in the hash chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Links {
    /// The chain hash of the frame before (as stored in this frame).
    pub previous: ChainHash,
    /// This frame's chain hash (as stored).
    pub chain: ChainHash,
}

/// The decoded fixed header of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    /// Stored CRC32C of bytes `[8, frame_len)`.
    pub crc: u32,
    /// Format version byte.
    pub version: u8,
    /// The three reserved bytes after the version (must be zero).
    pub reserved: [u8; 3],
    /// Total frame length, header included.
    pub frame_len: u32,
    /// Offset of the frame's first record.
    pub base_offset: Offset,
    /// Number of records in the frame.
    pub count: u32,
    /// Append timestamp shared by all records of the frame (ms since the Unix epoch).
    pub timestamp_ms: i64,
    /// The chain fields (version 2; `None` for version 1).
    pub links: Option<Links>,
}

impl FrameHeader {
    /// Offset one past the frame's last record.
    pub(crate) fn next_offset(&self) -> Offset {
        self.base_offset + u64::from(self.count)
    }

    /// Frame length as a `u64`, for file-position arithmetic.
    pub(crate) fn len(&self) -> u64 {
        u64::from(self.frame_len)
    }

    /// Length of this frame's header: where its records start.
    pub(crate) fn header_len(&self) -> usize {
        header_len(self.version)
    }

    /// The chain hash after this frame: its own for version 2, the genesis value after a
    /// version 1 frame (version 1 frames are not chained; `FORMAT.md`).
    pub(crate) fn chain_after(&self) -> ChainHash {
        self.links.map_or(ChainHash::GENESIS, |l| l.chain)
    }
}

/// The chain hash of a whole version 2 `frame` (`frame.len() >= HEADER_LEN`), computed from
/// its bytes and the predecessor value it stores.
pub(crate) fn compute_chain(frame: &[u8]) -> ChainHash {
    let mut previous = [0u8; 32];
    previous.copy_from_slice(&frame[PREVIOUS_AT..CHAIN_AT]);
    ChainHash::link(
        &ChainHash(previous),
        &frame[..4],
        &frame[CRC_START..FIXED_LEN],
        &frame[HEADER_LEN..],
    )
}

/// Size in bytes of the frame that would hold `payloads`.
pub(crate) fn encoded_len(payloads: &[Bytes]) -> u64 {
    payloads.iter().fold(HEADER_LEN as u64, |acc, p| {
        acc + (RECORD_OVERHEAD as u64) + p.len() as u64
    })
}

/// Appends the frame for `payloads`, chained after `previous`, to `out` and returns its
/// chain hash.
///
/// The caller must have checked `encoded_len(payloads) <= MAX_FRAME_LEN` (the writer only
/// receives batches that passed `max_batch_bytes`, which is clamped to that bound); lengths are
/// saturated rather than wrapped so a violated precondition yields a frame that fails
/// validation instead of a silently wrong one.
pub(crate) fn encode(
    out: &mut Vec<u8>,
    base_offset: Offset,
    timestamp_ms: i64,
    payloads: &[Bytes],
    previous: &ChainHash,
) -> ChainHash {
    let start = out.len();
    let frame_len = u32::try_from(encoded_len(payloads)).unwrap_or(u32::MAX);
    let count = u32::try_from(payloads.len()).unwrap_or(u32::MAX);
    out.reserve(frame_len as usize);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[0; 4]); // CRC, patched below
    out.push(VERSION);
    out.extend_from_slice(&[0; 3]);
    out.extend_from_slice(&frame_len.to_le_bytes());
    out.extend_from_slice(&base_offset.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&timestamp_ms.to_le_bytes());
    out.extend_from_slice(&previous.0);
    out.extend_from_slice(&[0; 32]); // chain, patched below
    for payload in payloads {
        let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(payload);
    }
    let chain = compute_chain(&out[start..]);
    out[start + CHAIN_AT..start + HEADER_LEN].copy_from_slice(&chain.0);
    let crc = crc32c::crc32c(&out[start + CRC_START..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    chain
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(b)
}

fn hash_at(buf: &[u8], at: usize) -> ChainHash {
    let mut b = [0u8; 32];
    b.copy_from_slice(&buf[at..at + 32]);
    ChainHash(b)
}

/// Parses the header at the start of `buf`, which must hold the whole header
/// ([`header_len`] of the version byte at position 8).
///
/// Checks only what can be checked without the rest of the frame: the magic and that the
/// length field can hold at least a header. The version is checked by [`verify`], after the
/// CRC, so that a torn header is reported as a checksum problem rather than as a "newer
/// format".
pub(crate) fn parse_header(buf: &[u8]) -> Result<FrameHeader, Corruption> {
    let need = header_len(buf.get(8).copied().unwrap_or(VERSION_1));
    if buf.len() < need {
        return Err(Corruption::BadFrameLength {
            len: need as u64,
            available: buf.len() as u64,
        });
    }
    if buf[0..4] != MAGIC {
        return Err(Corruption::BadMagic);
    }
    let version = buf[8];
    let header = FrameHeader {
        crc: u32_at(buf, 4),
        version,
        reserved: [buf[9], buf[10], buf[11]],
        frame_len: u32_at(buf, 12),
        base_offset: u64_at(buf, 16),
        count: u32_at(buf, 24),
        timestamp_ms: i64::from_le_bytes(u64_at(buf, 28).to_le_bytes()),
        links: (version == VERSION).then(|| Links {
            previous: hash_at(buf, PREVIOUS_AT),
            chain: hash_at(buf, CHAIN_AT),
        }),
    };
    if (header.frame_len as usize) < need {
        return Err(Corruption::BadFrameLength {
            len: header.len(),
            available: buf.len() as u64,
        });
    }
    Ok(header)
}

/// Verifies a complete frame (`frame.len() == header.frame_len`): CRC first, then version,
/// reserved bytes and the record section's structure.
pub(crate) fn verify(header: &FrameHeader, frame: &[u8]) -> Result<(), Corruption> {
    if frame.len() as u64 != header.len() {
        return Err(Corruption::BadFrameLength {
            len: header.len(),
            available: frame.len() as u64,
        });
    }
    let computed = crc32c::crc32c(&frame[CRC_START..]);
    if computed != header.crc {
        return Err(Corruption::ChecksumMismatch {
            stored: header.crc,
            computed,
        });
    }
    if header.version != VERSION && header.version != VERSION_1 {
        return Err(Corruption::UnsupportedVersion(header.version));
    }
    if header.reserved != [0; 3] {
        return Err(Corruption::Malformed("reserved header bytes are not zero"));
    }
    if header.count == 0 {
        return Err(Corruption::Malformed("frame holds no records"));
    }
    let mut records = Records::new(frame, header);
    for _ in records.by_ref() {}
    match records.error {
        Some(e) => Err(e),
        None if records.pos != frame.len() => Err(Corruption::Malformed(
            "record lengths do not add up to the frame length",
        )),
        None => Ok(()),
    }
}

/// Iterates the payloads of a frame. Stops (recording an error) at the first record that does
/// not fit; use after [`verify`] to get every payload.
pub(crate) struct Records<'a> {
    frame: &'a [u8],
    pos: usize,
    remaining: u32,
    error: Option<Corruption>,
}

impl<'a> Records<'a> {
    pub(crate) fn new(frame: &'a [u8], header: &FrameHeader) -> Self {
        Records {
            frame,
            pos: header.header_len().min(frame.len()),
            remaining: header.count,
            error: None,
        }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 || self.error.is_some() {
            return None;
        }
        if self.frame.len() - self.pos < RECORD_OVERHEAD {
            self.error = Some(Corruption::Malformed("record length runs past the frame"));
            return None;
        }
        let len = u32_at(self.frame, self.pos) as usize;
        let start = self.pos + RECORD_OVERHEAD;
        if self.frame.len() - start < len {
            self.error = Some(Corruption::Malformed("record payload runs past the frame"));
            return None;
        }
        self.pos = start + len;
        self.remaining -= 1;
        Some(&self.frame[start..start + len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(base: Offset, ts: i64, payloads: &[&[u8]]) -> Vec<u8> {
        let payloads: Vec<Bytes> = payloads.iter().map(|p| Bytes::copy_from_slice(p)).collect();
        let mut out = Vec::new();
        encode(&mut out, base, ts, &payloads, &ChainHash::GENESIS);
        assert_eq!(out.len() as u64, encoded_len(&payloads));
        out
    }

    /// A version 1 frame, built by hand from FORMAT.md's table.
    fn frame_v1(base: Offset, ts: i64, payloads: &[&[u8]]) -> Vec<u8> {
        let len: usize = FIXED_LEN + payloads.iter().map(|p| 4 + p.len()).sum::<usize>();
        let mut out = Vec::new();
        out.extend_from_slice(b"RZLG");
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&[1, 0, 0, 0]);
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(&base.to_le_bytes());
        out.extend_from_slice(&(payloads.len() as u32).to_le_bytes());
        out.extend_from_slice(&ts.to_le_bytes());
        for p in payloads {
            out.extend_from_slice(&(p.len() as u32).to_le_bytes());
            out.extend_from_slice(p);
        }
        let crc = crc32c::crc32c(&out[8..]);
        out[4..8].copy_from_slice(&crc.to_le_bytes());
        out
    }

    #[test]
    fn round_trip() {
        let buf = frame(42, -7, &[b"hello", b"", b"world!"]);
        let header = parse_header(&buf).expect("header");
        assert_eq!(header.base_offset, 42);
        assert_eq!(header.count, 3);
        assert_eq!(header.timestamp_ms, -7);
        assert_eq!(header.frame_len as usize, buf.len());
        assert_eq!(header.next_offset(), 45);
        verify(&header, &buf).expect("valid frame");
        let payloads: Vec<&[u8]> = Records::new(&buf, &header).collect();
        assert_eq!(payloads, vec![&b"hello"[..], &b""[..], &b"world!"[..]]);
    }

    #[test]
    fn version_1_frames_are_still_read() {
        let buf = frame_v1(7, 1_000, &[b"old", b"frame"]);
        let header = parse_header(&buf).expect("header");
        assert_eq!((header.version, header.links), (VERSION_1, None));
        assert_eq!(header.chain_after(), ChainHash::GENESIS);
        verify(&header, &buf).expect("valid frame");
        let payloads: Vec<&[u8]> = Records::new(&buf, &header).collect();
        assert_eq!(payloads, vec![&b"old"[..], &b"frame"[..]]);
    }

    #[test]
    fn the_chain_fields_link_to_the_previous_frame() {
        let payloads = [Bytes::from_static(b"a")];
        let mut out = Vec::new();
        let first = encode(&mut out, 0, 1, &payloads, &ChainHash::GENESIS);
        let split = out.len();
        let second = encode(&mut out, 1, 1, &payloads, &first);
        let (a, b) = (
            parse_header(&out).expect("a"),
            parse_header(&out[split..]).expect("b"),
        );
        assert_eq!(
            a.links.map(|l| (l.previous, l.chain)),
            Some((ChainHash::GENESIS, first))
        );
        assert_eq!(
            b.links.map(|l| (l.previous, l.chain)),
            Some((first, second))
        );
        assert_eq!(compute_chain(&out[split..]), second);
        // Same bytes after another predecessor: another link.
        assert_ne!(first, second);
    }

    #[test]
    fn layout_is_little_endian_and_fixed() {
        let buf = frame(0x0102_0304_0506_0708, 0x1122, &[b"ab"]);
        assert_eq!(&buf[0..4], b"RZLG");
        assert_eq!(buf[8], VERSION);
        assert_eq!(&buf[9..12], &[0, 0, 0]);
        assert_eq!(u32_at(&buf, 12) as usize, HEADER_LEN + 4 + 2);
        assert_eq!(&buf[16..24], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(u32_at(&buf, 24), 1);
        assert_eq!(&buf[28..36], &[0x22, 0x11, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&buf[36..68], &[0; 32]);
        let mut hasher = blake3::Hasher::new();
        hasher.update(&[0; 32]);
        hasher.update(&buf[0..4]);
        hasher.update(&buf[8..36]);
        hasher.update(&buf[100..]);
        assert_eq!(&buf[68..100], hasher.finalize().as_bytes());
        assert_eq!(&buf[100..104], &[2, 0, 0, 0]);
        assert_eq!(&buf[104..], b"ab");
        assert_eq!(u32_at(&buf, 4), crc32c::crc32c(&buf[8..]));
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        for buf in [
            frame(5, 1_700_000_000_000, &[b"abc", b"defgh"]),
            frame_v1(5, 1_700_000_000_000, &[b"abc", b"defgh"]),
        ] {
            for byte in 0..buf.len() {
                for bit in 0..8 {
                    let mut bad = buf.clone();
                    bad[byte] ^= 1 << bit;
                    let outcome = parse_header(&bad).and_then(|h| {
                        if h.len() != bad.len() as u64 {
                            Err(Corruption::BadFrameLength {
                                len: h.len(),
                                available: bad.len() as u64,
                            })
                        } else {
                            verify(&h, &bad)
                        }
                    });
                    assert!(
                        outcome.is_err(),
                        "flip of bit {bit} in byte {byte} undetected"
                    );
                }
            }
        }
    }

    #[test]
    fn crc_mismatch_is_reported_as_such() {
        let mut buf = frame(0, 0, &[b"payload"]);
        let last = buf.len() - 1;
        buf[last] ^= 0xff;
        let header = parse_header(&buf).expect("header still parses");
        assert!(matches!(
            verify(&header, &buf),
            Err(Corruption::ChecksumMismatch { .. })
        ));
    }

    #[test]
    fn bad_magic_and_short_length_are_rejected() {
        let buf = frame(0, 0, &[b"x"]);
        let mut bad = buf.clone();
        bad[0] = b'X';
        assert_eq!(parse_header(&bad), Err(Corruption::BadMagic));
        let mut short = buf.clone();
        short[12..16].copy_from_slice(&40u32.to_le_bytes());
        assert!(matches!(
            parse_header(&short),
            Err(Corruption::BadFrameLength { len: 40, .. })
        ));
        assert!(parse_header(&buf[..HEADER_LEN - 1]).is_err());
        assert!(parse_header(&[0u8; HEADER_LEN]).is_err());
    }

    #[test]
    fn checksummed_but_inconsistent_frames_are_malformed() {
        // A frame whose CRC is valid but whose record section lies about lengths.
        let mut buf = frame(0, 0, &[b"abcd"]);
        buf[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&3u32.to_le_bytes());
        let crc = crc32c::crc32c(&buf[8..]);
        buf[4..8].copy_from_slice(&crc.to_le_bytes());
        let header = parse_header(&buf).expect("header");
        assert!(matches!(
            verify(&header, &buf),
            Err(Corruption::Malformed(_))
        ));

        // A valid CRC over an unknown version.
        let mut buf = frame(0, 0, &[b"abcd"]);
        buf[8] = 9;
        let crc = crc32c::crc32c(&buf[8..]);
        buf[4..8].copy_from_slice(&crc.to_le_bytes());
        let header = parse_header(&buf).expect("header");
        assert_eq!(
            verify(&header, &buf),
            Err(Corruption::UnsupportedVersion(9))
        );
    }
}
