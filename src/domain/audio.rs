//! Received audio as a file a browser or player can open.

/// PCM16 little-endian mono at `sample_rate` as a WAV file.
pub fn wav(pcm: &[u8], sample_rate: i64) -> Vec<u8> {
    let rate = u32::try_from(sample_rate).unwrap_or(16_000);
    let data_len = u32::try_from(pcm.len()).unwrap_or(u32::MAX - 44);
    let mut out = Vec::with_capacity(44 + pcm.len());
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes()); // bytes per second
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend_from_slice(pcm);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_describes_the_samples() {
        let wav = wav(&[1, 0, 2, 0], 16_000);
        assert_eq!(&wav[..4], b"RIFF");
        assert_eq!(wav.len(), 48);
        assert_eq!(u32::from_le_bytes(wav[24..28].try_into().unwrap()), 16_000);
        assert_eq!(&wav[44..], &[1, 0, 2, 0]);
    }
}
