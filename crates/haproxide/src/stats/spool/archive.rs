//! A round as bytes, for shipping it whole (`[kafka-rounds]`): its files
//! (`*_info`, `*_stat`, `manifest.json`) packed in one stream, compressed
//! with zstd, and cut into parts small enough for a Kafka message; and the
//! way back, parts joined, decompressed and checked, into a round directory.
//!
//! The packed stream, before compression: `HXR1`, then for every file its
//! name's length (u16, big-endian), the name, the data's length (u64,
//! big-endian) and the data. Names are those [`super::list_round`] takes:
//! plain file names ending in `_info` or `_stat`, or `manifest.json`; no
//! `/`, no NUL, not `.` or `..`. What arrives from Kafka is untrusted: a
//! stream that breaks any rule, or that decompresses to more than the
//! caller's limit, is refused with the reason, and nothing is written.

use std::io::{Read, Write};
use std::path::Path;

use super::{INFO_SUFFIX, MANIFEST_FILE, NO_ROUND_FILE, STAT_SUFFIX, list_round};

/// The first bytes of a packed round.
const MAGIC: &[u8; 4] = b"HXR1";

/// zstd's level: 1 packs the benchmark generator's 28.1 MB round into 12.0 MB
/// in 0.17 s of CPU; its `--fast` levels save half that CPU but keep 89 % of
/// the bytes (measured with the zstd 1.5 command line).
const LEVEL: i32 = 1;

/// A round's files packed and compressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedRound {
    /// The compressed stream.
    pub bytes: Vec<u8>,
    /// The bytes of the files it holds, before compression.
    pub raw_bytes: u64,
    /// How many files.
    pub files: usize,
}

impl PackedRound {
    /// The compressed stream cut into parts of at most `part_bytes` (at least one part).
    pub fn parts(&self, part_bytes: usize) -> impl ExactSizeIterator<Item = &[u8]> {
        let size = part_bytes.max(1);
        let count = self.bytes.len().div_ceil(size).max(1);
        (0..count).map(move |index| {
            &self.bytes[(index * size).min(self.bytes.len())..((index + 1) * size).min(self.bytes.len())]
        })
    }
}

/// Packs and compresses the round files of `dir`, as [`list_round`] finds
/// them (regular files only; the error names what could not be read).
pub fn pack_round(dir: &Path) -> Result<PackedRound, String> {
    let listing = list_round(dir).map_err(|error| format!("cannot list {}: {error}", dir.display()))?;
    if !listing.has_round_files() {
        return Err(format!("{}: {NO_ROUND_FILE}", dir.display()));
    }
    let mut paths: Vec<(String, std::path::PathBuf)> = listing
        .infos
        .into_iter()
        .map(|(target, path)| (format!("{target}{INFO_SUFFIX}"), path))
        .chain(
            listing
                .stats
                .into_iter()
                .map(|(target, path)| (format!("{target}{STAT_SUFFIX}"), path)),
        )
        .collect();
    if let Some(manifest) = listing.manifest {
        paths.push((MANIFEST_FILE.to_owned(), manifest));
    }
    let mut encoder = zstd::stream::Encoder::new(Vec::new(), LEVEL).map_err(|error| format!("zstd: {error}"))?;
    encoder.write_all(MAGIC).map_err(|error| format!("zstd: {error}"))?;
    let mut raw_bytes = 0;
    for (name, path) in &paths {
        let mut file = std::fs::File::open(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        let length = file
            .metadata()
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?
            .len();
        let name_length = u16::try_from(name.len()).map_err(|_| format!("{name}: a file name over 65535 bytes"))?;
        encoder
            .write_all(&name_length.to_be_bytes())
            .and_then(|()| encoder.write_all(name.as_bytes()))
            .and_then(|()| encoder.write_all(&length.to_be_bytes()))
            .map_err(|error| format!("zstd: {error}"))?;
        // Exactly the length announced, even if the file grew meanwhile.
        let copied = std::io::copy(&mut (&mut file).take(length), &mut encoder)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        if copied != length {
            return Err(format!("{}: shrank while it was read", path.display()));
        }
        raw_bytes += length;
    }
    let bytes = encoder.finish().map_err(|error| format!("zstd: {error}"))?;
    Ok(PackedRound {
        bytes,
        raw_bytes,
        files: paths.len(),
    })
}

/// The files of a packed round, by name, in the order packed.
pub type RoundFiles = Vec<(String, Vec<u8>)>;

/// Decompresses and reads a packed round, refusing one over `limit` bytes
/// decompressed or that breaks a rule of the format.
pub fn unpack_round(compressed: &[u8], limit: u64) -> Result<RoundFiles, String> {
    let decoder = zstd::stream::Decoder::new(compressed).map_err(|error| format!("zstd: {error}"))?;
    let mut raw = Vec::new();
    decoder
        .take(limit.saturating_add(1))
        .read_to_end(&mut raw)
        .map_err(|error| format!("not a zstd stream: {error}"))?;
    if raw.len() as u64 > limit {
        return Err(format!("decompresses to more than {limit} bytes"));
    }
    read_packed(&raw)
}

/// Reads the packed stream (decompressed).
pub fn read_packed(mut raw: &[u8]) -> Result<RoundFiles, String> {
    if !raw.starts_with(MAGIC) {
        return Err("not a packed round: no HXR1 header".into());
    }
    raw = &raw[MAGIC.len()..];
    let mut files: RoundFiles = Vec::new();
    while !raw.is_empty() {
        let at = files.len() + 1;
        let (name_length, rest) = split_number::<2>(raw).ok_or(format!("file {at}: truncated name length"))?;
        let name_length = usize::try_from(name_length).map_err(|_| format!("file {at}: name too long"))?;
        if rest.len() < name_length {
            return Err(format!("file {at}: truncated name"));
        }
        let (name, rest) = rest.split_at(name_length);
        let name = std::str::from_utf8(name).map_err(|_| format!("file {at}: the name is not UTF-8"))?;
        check_name(name).map_err(|problem| format!("file {at} ({name:?}): {problem}"))?;
        if files.iter().any(|(seen, _)| seen == name) {
            return Err(format!("file {at} ({name:?}): named twice"));
        }
        let (length, rest) = split_number::<8>(rest).ok_or(format!("file {at} ({name}): truncated length"))?;
        let length = usize::try_from(length)
            .ok()
            .filter(|length| *length <= rest.len())
            .ok_or(format!(
                "file {at} ({name}): {length} bytes announced, {} left",
                rest.len()
            ))?;
        let (data, rest) = rest.split_at(length);
        files.push((name.to_owned(), data.to_vec()));
        raw = rest;
    }
    if !files
        .iter()
        .any(|(name, _)| name.ends_with(INFO_SUFFIX) || name.ends_with(STAT_SUFFIX))
    {
        return Err(NO_ROUND_FILE.into());
    }
    Ok(files)
}

/// A big-endian number of `N` bytes at the start of `bytes`, and the rest.
fn split_number<const N: usize>(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let head: [u8; N] = bytes.get(..N)?.try_into().ok()?;
    let number = head.iter().fold(0u64, |number, byte| (number << 8) | u64::from(*byte));
    Some((number, &bytes[N..]))
}

/// A name a round file may have, and nothing that leaves its directory.
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err("not a plain file name");
    }
    let target = name
        .strip_suffix(INFO_SUFFIX)
        .or_else(|| name.strip_suffix(STAT_SUFFIX));
    match target {
        Some(target) if !target.is_empty() => Ok(()),
        _ if name == MANIFEST_FILE => Ok(()),
        _ => Err("not a round file (*_info, *_stat, manifest.json)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut raw = MAGIC.to_vec();
        for (name, data) in files {
            raw.extend_from_slice(&(name.len() as u16).to_be_bytes());
            raw.extend_from_slice(name.as_bytes());
            raw.extend_from_slice(&(data.len() as u64).to_be_bytes());
            raw.extend_from_slice(data);
        }
        raw
    }

    #[test]
    fn a_round_directory_comes_back_file_for_file_through_parts() {
        let dir = tempfile::tempdir().unwrap();
        let stat: Vec<u8> = (0..20_000)
            .flat_map(|row| format!("be_{row},srv,{row},0,,\n").into_bytes())
            .collect();
        std::fs::write(dir.path().join("a.sock_stat"), &stat).unwrap();
        std::fs::write(dir.path().join("a.sock_info"), "Name: HAProxy\n").unwrap();
        std::fs::write(dir.path().join("manifest.json"), "{\"failed\":[]}\n").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a round file").unwrap();
        let round = pack_round(dir.path()).unwrap();
        assert_eq!(round.files, 3);
        assert_eq!(round.raw_bytes, stat.len() as u64 + 14 + 14);
        assert!(round.bytes.len() < stat.len() / 4, "{} bytes", round.bytes.len());
        let parts: Vec<&[u8]> = round.parts(1000).collect();
        assert_eq!(parts.len(), round.bytes.len().div_ceil(1000));
        assert!(parts.iter().all(|part| part.len() <= 1000 && !part.is_empty()));
        let joined = parts.concat();
        let files = unpack_round(&joined, 1 << 30).unwrap();
        assert_eq!(
            files,
            [
                ("a.sock_info".to_owned(), b"Name: HAProxy\n".to_vec()),
                ("a.sock_stat".to_owned(), stat),
                ("manifest.json".to_owned(), b"{\"failed\":[]}\n".to_vec()),
            ]
        );
        assert_eq!(
            unpack_round(&joined, 1000).unwrap_err(),
            "decompresses to more than 1000 bytes"
        );
    }

    #[test]
    fn the_fixture_written_from_the_documented_format_reads_compressed_and_not() {
        let raw = include_bytes!("../../../../../fixtures/kafka-rounds/synthetic-1700000000.hxr");
        let compressed = include_bytes!("../../../../../fixtures/kafka-rounds/synthetic-1700000000.hxr.zst");
        let files = read_packed(raw).unwrap();
        let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(names, ["admin1.sock_info", "admin1.sock_stat", "manifest.json"]);
        assert_eq!(
            files[2].1,
            b"{\"round\": \"1700000000\", \"host\": \"lb1\", \"failed\": []}\n"
        );
        assert_eq!(unpack_round(compressed, 1 << 20).unwrap(), files);
    }

    #[test]
    fn an_empty_round_has_one_empty_part_and_is_refused_to_pack() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("manifest.json"), "{}").unwrap();
        assert!(
            pack_round(dir.path())
                .unwrap_err()
                .ends_with(": no *_info or *_stat file")
        );
        let empty = PackedRound {
            bytes: Vec::new(),
            raw_bytes: 0,
            files: 0,
        };
        assert_eq!(empty.parts(10).collect::<Vec<_>>(), [&[] as &[u8]]);
    }

    #[test]
    fn names_that_leave_the_directory_and_broken_streams_are_refused() {
        let cases: [(Vec<u8>, &str); 8] = [
            (b"PK\x03\x04".to_vec(), "not a packed round: no HXR1 header"),
            (
                packed(&[("../x_stat", b"")]),
                "file 1 (\"../x_stat\"): not a plain file name",
            ),
            (
                packed(&[("_stat", b"")]),
                "file 1 (\"_stat\"): not a round file (*_info, *_stat, manifest.json)",
            ),
            (
                packed(&[("run.sh", b"")]),
                "file 1 (\"run.sh\"): not a round file (*_info, *_stat, manifest.json)",
            ),
            (
                packed(&[("a_stat", b"1"), ("a_stat", b"2")]),
                "file 2 (\"a_stat\"): named twice",
            ),
            (packed(&[("manifest.json", b"{}")]), "no *_info or *_stat file"),
            (
                packed(&[("a_stat", b"12345")])[..22].to_vec(),
                "file 1 (a_stat): 5 bytes announced, 2 left",
            ),
            (
                MAGIC.iter().copied().chain([0]).collect(),
                "file 1: truncated name length",
            ),
        ];
        for (raw, reason) in cases {
            assert_eq!(read_packed(&raw).unwrap_err(), reason);
        }
        assert!(
            unpack_round(b"not zstd at all", 100)
                .unwrap_err()
                .starts_with("not a zstd stream: ")
        );
    }
}
