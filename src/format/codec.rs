//! Compression codecs for data files.

use std::io::{self, Read, Write};

/// How data files are compressed.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// Plain text, loadable as it is.
    None,
    /// gzip (readable with `zcat`).
    Gzip,
    /// zstd (readable with `zstdcat`).
    Zstd,
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Zstd => "zstd",
        })
    }
}

impl Codec {
    /// File-name suffix after `.tsv`.
    pub fn extension(self) -> &'static str {
        match self {
            Codec::None => "",
            Codec::Gzip => ".gz",
            Codec::Zstd => ".zst",
        }
    }

    /// The level used when none is given.
    pub fn default_level(self) -> i32 {
        match self {
            Codec::None => 0,
            Codec::Gzip => 6,
            Codec::Zstd => 1,
        }
    }

    /// Checks a level against the codec's range.
    pub fn check_level(self, level: i32) -> crate::Result<()> {
        let ok = match self {
            Codec::None => true,
            Codec::Gzip => (0..=9).contains(&level),
            Codec::Zstd => (1..=19).contains(&level),
        };
        if ok {
            Ok(())
        } else {
            Err(crate::Error::Invalid(format!(
                "--compress-level {level} is out of range for {self} (gzip 0-9, zstd 1-19)"
            )))
        }
    }

    /// Wraps `out` in a compressor.
    pub fn encoder<W: Write + Send + 'static>(
        self,
        level: i32,
        out: W,
    ) -> io::Result<Box<dyn FinishWrite + Send>> {
        Ok(match self {
            Codec::None => Box::new(Plain(out)),
            Codec::Gzip => Box::new(flate2::write::GzEncoder::new(
                out,
                flate2::Compression::new(level as u32),
            )),
            Codec::Zstd => Box::new(zstd::stream::write::Encoder::new(out, level)?),
        })
    }

    /// Wraps `input` in a decompressor.
    pub fn decoder<R: Read + Send + 'static>(self, input: R) -> io::Result<Box<dyn Read + Send>> {
        Ok(match self {
            Codec::None => Box::new(input),
            Codec::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
            Codec::Zstd => Box::new(zstd::stream::read::Decoder::new(input)?),
        })
    }
}

/// A writer whose stream must be closed explicitly (a compressor's trailer).
pub trait FinishWrite: Write {
    /// Writes any trailer and flushes.
    fn finish_stream(self: Box<Self>) -> io::Result<()>;
}

struct Plain<W: Write>(W);

impl<W: Write> Write for Plain<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write> FinishWrite for Plain<W> {
    fn finish_stream(mut self: Box<Self>) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write> FinishWrite for flate2::write::GzEncoder<W> {
    fn finish_stream(self: Box<Self>) -> io::Result<()> {
        self.finish()?.flush()
    }
}

impl<W: Write> FinishWrite for zstd::stream::write::Encoder<'static, W> {
    fn finish_stream(self: Box<Self>) -> io::Result<()> {
        self.finish()?.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_codec_round_trips_all_byte_values() {
        let data: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
        for codec in [Codec::None, Codec::Gzip, Codec::Zstd] {
            let sink = Shared::default();
            let mut enc = codec.encoder(codec.default_level(), sink.clone()).unwrap();
            enc.write_all(&data).unwrap();
            enc.finish_stream().unwrap();
            let stored = sink.0.lock().unwrap().clone();
            let mut back = Vec::new();
            codec
                .decoder(std::io::Cursor::new(stored))
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data, "{codec}");
        }
    }

    #[test]
    fn levels_out_of_range_are_refused() {
        assert!(Codec::Gzip.check_level(10).is_err());
        assert!(Codec::Zstd.check_level(0).is_err());
        assert!(Codec::Zstd.check_level(3).is_ok());
    }
}
