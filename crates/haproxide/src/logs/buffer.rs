//! The disk buffer: where messages go when Kafka does not take them
//! (librdkafka's queue full, a delivery that failed, what is still queued at
//! a stop), so that an outage loses nothing until the buffer is full.
//!
//! Append-only segment files (`00000000000000000001.seg`, …) in `dir`, each
//! record `[u32 length][u8 kind][u16 reason length][reason][payload]`
//! (little-endian), synced to disk once per appended batch. Segments are
//! replayed oldest first and removed once every record of theirs was handed
//! to librdkafka again; while the buffer holds anything, new messages are
//! appended behind it, so order is kept. A record cut by a crash at the end
//! of a segment is skipped and counted. Delivery is at least once: records
//! of a segment replayed partly before a crash are sent again.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Which topic a buffered message is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The JSON messages' topic.
    Valid,
    /// The dead-letter topic (the record keeps the reason).
    DeadLetter,
}

/// One buffered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buffered {
    /// Its topic.
    pub kind: Kind,
    /// The reason, for a dead letter.
    pub reason: String,
    /// The message's bytes.
    pub payload: Vec<u8>,
}

const HEADER: usize = 4 + 1 + 2;

/// The buffer's segments on disk.
#[derive(Debug)]
pub struct DiskBuffer {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    /// Segment numbers on disk, oldest first; the last is the one written.
    segments: Vec<u64>,
    /// The open segment being appended to.
    writer: Option<(u64, File)>,
    /// Bytes of all segments.
    bytes: u64,
    /// Records cut short (a crash while writing), skipped on replay.
    pub torn: u64,
}

fn segment_name(number: u64) -> String {
    format!("{number:020}.seg")
}

impl DiskBuffer {
    /// Opens (creating) `dir` and finds the segments a previous run left.
    pub fn open(dir: &Path, max_bytes: u64, segment_bytes: u64) -> io::Result<DiskBuffer> {
        fs::create_dir_all(dir)?;
        let mut segments = Vec::new();
        let mut bytes = 0;
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(number) = name
                .to_str()
                .and_then(|name| name.strip_suffix(".seg"))
                .and_then(|stem| stem.parse::<u64>().ok())
            else {
                continue;
            };
            bytes += entry.metadata()?.len();
            segments.push(number);
        }
        segments.sort_unstable();
        Ok(DiskBuffer {
            dir: dir.to_owned(),
            max_bytes,
            segment_bytes: segment_bytes.max(4096),
            segments,
            writer: None,
            bytes,
            torn: 0,
        })
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    fn path(&self, number: u64) -> PathBuf {
        self.dir.join(segment_name(number))
    }

    /// Appends `messages` and syncs them; returns how many fit (the rest
    /// would pass `max-size`: the caller drops and counts them).
    pub fn append<'a>(&mut self, messages: impl IntoIterator<Item = (Kind, &'a str, &'a [u8])>) -> io::Result<usize> {
        let mut written = 0;
        let mut pending = Vec::new();
        for (kind, reason, payload) in messages {
            let length = HEADER + reason.len().min(usize::from(u16::MAX)) + payload.len();
            if self.bytes + (pending.len() + length) as u64 > self.max_bytes {
                break;
            }
            let reason = &reason.as_bytes()[..reason.len().min(usize::from(u16::MAX))];
            pending.extend_from_slice(&u32::try_from(length).unwrap_or(u32::MAX).to_le_bytes());
            pending.push(match kind {
                Kind::Valid => 0,
                Kind::DeadLetter => 1,
            });
            pending.extend_from_slice(&u16::try_from(reason.len()).unwrap_or(u16::MAX).to_le_bytes());
            pending.extend_from_slice(reason);
            pending.extend_from_slice(payload);
            written += 1;
            if pending.len() as u64 >= self.segment_bytes {
                self.write(&pending)?;
                pending.clear();
            }
        }
        if !pending.is_empty() {
            self.write(&pending)?;
        }
        if let Some((_, file)) = &self.writer {
            file.sync_data()?;
        }
        Ok(written)
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let full = match &self.writer {
            Some((number, _)) => fs::metadata(self.path(*number))?.len() >= self.segment_bytes,
            None => true,
        };
        if full {
            if let Some((_, file)) = self.writer.take() {
                file.sync_data()?;
            }
            let number = self.segments.last().map_or(1, |last| last + 1);
            let file = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(self.path(number))?;
            // The directory entry must survive a crash as well as the data.
            File::open(&self.dir)?.sync_all()?;
            self.segments.push(number);
            self.writer = Some((number, file));
        }
        if let Some((_, file)) = &mut self.writer {
            file.write_all(bytes)?;
        }
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    /// The oldest segment, read back (closing it first when it is the one
    /// being written); [`DiskBuffer::remove`] it once its records are handed
    /// on.
    pub fn oldest(&mut self) -> io::Result<Option<Segment>> {
        let Some(&number) = self.segments.first() else {
            return Ok(None);
        };
        if self.writer.as_ref().is_some_and(|(open, _)| *open == number) {
            self.writer = None;
        }
        // Read at its size: a growing buffer would hold up to twice it.
        let mut bytes = fs::read(self.path(number))?;
        // Where the whole records end: what follows was cut by a crash.
        let mut end = 0;
        while end < bytes.len() {
            match read_record(&bytes[end..]) {
                Some((_, length)) => end += length,
                None => {
                    self.torn += 1;
                    break;
                }
            }
        }
        bytes.truncate(end);
        Ok(Some(Segment {
            number,
            bytes,
            handed: 0,
        }))
    }

    /// Removes segment `number`, all of whose messages were handed on.
    pub fn remove(&mut self, number: u64) -> io::Result<()> {
        let path = self.path(number);
        let length = fs::metadata(&path).map(|metadata| metadata.len()).unwrap_or_default();
        fs::remove_file(&path)?;
        self.segments.retain(|known| *known != number);
        self.bytes = self.bytes.saturating_sub(length);
        Ok(())
    }
}

/// A segment read back: its bytes as they are on disk (no copy per
/// record), and how far its records were handed on.
#[derive(Debug)]
pub struct Segment {
    /// Its number, for [`DiskBuffer::remove`].
    pub number: u64,
    bytes: Vec<u8>,
    handed: usize,
}

/// One record of a [`Segment`], borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Its topic.
    pub kind: Kind,
    /// The reason, for a dead letter.
    pub reason: &'a [u8],
    /// The message's bytes.
    pub payload: &'a [u8],
}

impl Segment {
    /// The records not handed on yet, in order, each with where it ends
    /// (for [`Segment::handed_to`]).
    pub fn rest(&self) -> impl Iterator<Item = (Record<'_>, usize)> {
        let mut at = self.handed;
        std::iter::from_fn(move || {
            let (record, length) = read_record(&self.bytes[at..])?;
            at += length;
            Some((record, at))
        })
    }

    /// Notes that the records up to `end` were handed on.
    pub fn handed_to(&mut self, end: usize) {
        self.handed = end.min(self.bytes.len());
    }

    /// Whether every record was handed on.
    pub fn done(&self) -> bool {
        self.handed == self.bytes.len()
    }
}

/// One record from the front of `bytes`, and its length; `None` when it is
/// cut short or malformed.
fn read_record(bytes: &[u8]) -> Option<(Record<'_>, usize)> {
    let length = usize::try_from(u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?)).ok()?;
    let record = bytes.get(..length)?;
    let kind = match record.get(4)? {
        0 => Kind::Valid,
        1 => Kind::DeadLetter,
        _ => return None,
    };
    let reason_length = usize::from(u16::from_le_bytes(record.get(5..7)?.try_into().ok()?));
    let reason = record.get(HEADER..HEADER + reason_length)?;
    let payload = &record[HEADER + reason_length..];
    Some((Record { kind, reason, payload }, length))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    impl Record<'_> {
        fn to_owned(self) -> Buffered {
            Buffered {
                kind: self.kind,
                reason: String::from_utf8_lossy(self.reason).into_owned(),
                payload: self.payload.to_vec(),
            }
        }
    }

    #[test]
    fn messages_come_back_oldest_first_across_segments_and_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let mut buffer = DiskBuffer::open(dir.path(), 1 << 20, 4096).unwrap();
        let payloads: Vec<Vec<u8>> = (0..100).map(|index| format!("{index:0>100}").into_bytes()).collect();
        let written = buffer
            .append(payloads.iter().map(|payload| (Kind::Valid, "", payload.as_slice())))
            .unwrap();
        assert_eq!(written, 100);
        assert_eq!(
            buffer.append([(Kind::DeadLetter, "no SD", &b"\xe9raw"[..])]).unwrap(),
            1
        );
        assert_eq!(buffer.bytes(), 100 * (7 + 100) + 7 + 5 + 4);
        drop(buffer);
        let mut buffer = DiskBuffer::open(dir.path(), 1 << 20, 4096).unwrap();
        assert_eq!(buffer.bytes(), 100 * 107 + 16);
        let mut read = Vec::new();
        while let Some(mut segment) = buffer.oldest().unwrap() {
            // Handed on in two goes, as a replay stopped by a full queue is.
            for go in [10, usize::MAX] {
                let mut end = None;
                for (record, at) in segment.rest().take(go) {
                    read.push(record.to_owned());
                    end = Some(at);
                }
                segment.handed_to(end.unwrap());
                assert_eq!(segment.done(), go == usize::MAX);
            }
            buffer.remove(segment.number).unwrap();
        }
        assert!(buffer.is_empty());
        assert_eq!(read.len(), 101);
        for (message, payload) in read.iter().zip(&payloads) {
            assert_eq!((message.kind, &message.payload), (Kind::Valid, payload));
        }
        assert_eq!(
            read[100],
            Buffered {
                kind: Kind::DeadLetter,
                reason: "no SD".into(),
                payload: b"\xe9raw".to_vec()
            }
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_full_buffer_takes_what_fits_and_a_torn_record_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut buffer = DiskBuffer::open(dir.path(), 1000, 1 << 20).unwrap();
        let payload = [b'x'; 93];
        assert_eq!(
            buffer.append((0..20).map(|_| (Kind::Valid, "", &payload[..]))).unwrap(),
            10
        );
        assert_eq!(buffer.append([(Kind::Valid, "", &payload[..])]).unwrap(), 0);
        let segment = dir.path().join(segment_name(1));
        let mut file = OpenOptions::new().append(true).open(&segment).unwrap();
        file.write_all(&[50, 0, 0, 0, 0, 0]).unwrap();
        drop(file);
        let mut buffer = DiskBuffer::open(dir.path(), 1000, 1 << 20).unwrap();
        let segment = buffer.oldest().unwrap().unwrap();
        assert_eq!((segment.rest().count(), buffer.torn), (10, 1));
    }
}
