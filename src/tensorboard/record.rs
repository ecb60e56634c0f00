//! TFRecord framing of event files: `u64 len (LE) | u32 masked crc32c(len) | data |
//! u32 masked crc32c(data)`. The mask keeps a CRC of data that itself holds CRCs from
//! looking like a valid checksum.

/// TFRecord's checksum: crc32c rotated right by 15 bits plus a constant.
pub fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Appends one framed record holding `data` to `out`.
pub fn append_frame(out: &mut Vec<u8>, data: &[u8]) {
    let len = (data.len() as u64).to_le_bytes();
    out.reserve(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
}

/// Why reading frames stopped before the end of the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The bytes end inside a record (a write cut short, e.g. by a kill).
    Truncated { offset: usize },
    /// A checksum does not match; nothing after it can be trusted.
    Corrupt { offset: usize, what: &'static str },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Truncated { offset } => write!(f, "truncated record at byte {offset}"),
            FrameError::Corrupt { offset, what } => {
                write!(f, "corrupt record at byte {offset}: {what} checksum mismatch")
            }
        }
    }
}

/// Splits `bytes` into record payloads, stopping at the first truncated or corrupt record.
/// Returns the payloads read and, if it stopped early, why.
pub fn split_frames(bytes: &[u8]) -> (Vec<&[u8]>, Option<FrameError>) {
    let mut frames = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let offset = pos;
        let Some(header) = bytes.get(pos..pos + 12) else {
            return (frames, Some(FrameError::Truncated { offset }));
        };
        let (len_bytes, len_crc) = header.split_at(8);
        if masked_crc(len_bytes).to_le_bytes() != len_crc {
            return (frames, Some(FrameError::Corrupt { offset, what: "length" }));
        }
        let mut len8 = [0u8; 8];
        len8.copy_from_slice(len_bytes);
        let len = u64::from_le_bytes(len8);
        let start = pos + 12;
        // The length is checksummed, so a huge value here means a real (truncated) record.
        let Some(end) = usize::try_from(len).ok().and_then(|l| start.checked_add(l)) else {
            return (frames, Some(FrameError::Truncated { offset }));
        };
        let (Some(data), Some(crc)) = (bytes.get(start..end), bytes.get(end..end + 4)) else {
            return (frames, Some(FrameError::Truncated { offset }));
        };
        if masked_crc(data).to_le_bytes() != crc {
            return (frames, Some(FrameError::Corrupt { offset, what: "data" }));
        }
        frames.push(data);
        pos = end + 4;
    }
    (frames, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_crc_matches_tensorflow_reference() {
        // crc32c("123456789") = 0xe3069283 is the standard check value.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        let expected = 0xe306_9283u32.rotate_right(15).wrapping_add(0xa282_ead8);
        assert_eq!(masked_crc(b"123456789"), expected);
    }

    #[test]
    fn frames_round_trip_and_damage_is_reported() {
        let mut buf = Vec::new();
        append_frame(&mut buf, b"first");
        append_frame(&mut buf, b"");
        append_frame(&mut buf, b"third record");
        let (frames, err) = split_frames(&buf);
        assert_eq!(frames, vec![&b"first"[..], b"", b"third record"]);
        assert_eq!(err, None);

        // Cut inside the last record: the first two survive.
        let cut = &buf[..buf.len() - 3];
        let (frames, err) = split_frames(cut);
        assert_eq!(frames.len(), 2);
        let third_offset = 2 * 16 + 5;
        assert_eq!(err, Some(FrameError::Truncated { offset: third_offset }));

        // Flip a data byte of the second-to-last record.
        let mut bad = buf.clone();
        bad[12] ^= 0x40;
        let (frames, err) = split_frames(&bad);
        assert!(frames.is_empty());
        assert_eq!(err, Some(FrameError::Corrupt { offset: 0, what: "data" }));

        // Flip a length byte.
        let mut bad = buf;
        bad[third_offset] ^= 1;
        let (frames, err) = split_frames(&bad);
        assert_eq!(frames.len(), 2);
        assert_eq!(err, Some(FrameError::Corrupt { offset: third_offset, what: "length" }));
    }
}
