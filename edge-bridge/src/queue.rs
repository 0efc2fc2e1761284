//! The disk-backed queue every reading goes through before it leaves the
//! lab: store first, forward later, remove only what the cloud acknowledged.
//!
//! - **Segments.** Records are appended to files `<first sequence>.seg` in
//!   one directory; a segment is closed once it passes `segment_bytes` and
//!   deleted once every record in it is acknowledged.
//! - **Records.** `length u32 | crc32 u32 | sequence u64 | unix ms u64 |
//!   payload`, little-endian; the CRC covers sequence, time and payload.
//!   Sequences increase by one across the whole queue, so the order of every
//!   instrument's readings is kept.
//! - **Durability.** [`Queue::append`] returns only after the record is
//!   written and `fsync`ed: a reading acknowledged to its instrument
//!   survives a crash or power loss. A record torn by a crash mid-write was
//!   never acknowledged; on open the tail of the last segment is checked and
//!   cut back to the last whole record. Damage anywhere else is reported,
//!   never skipped silently.
//! - **Acknowledgements** are cumulative ([`Queue::ack`]) and persisted in
//!   `acked` (written to a temporary file, synced, renamed).
//! - **Stream.** The queue's records form one stream, named by a random id
//!   made with the queue (`stream`): the cloud deduplicates on (bridge,
//!   stream, sequence), so a queue made afresh never collides with the
//!   sequences of an older one.
//! - **Bounded.** Past `max_bytes` an append is refused with
//!   [`QueueError::Full`]; the caller raises the alarm and the instrument
//!   keeps its data. Nothing is ever dropped to make room.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Bytes before the payload.
pub const HEADER_BYTES: u64 = 24;
/// Largest payload accepted.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;

const ACKED: &str = "acked";
const STREAM: &str = "stream";
const SUFFIX: &str = ".seg";

/// Sizes of the queue.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A segment is closed once it holds this many bytes.
    pub segment_bytes: u64,
    /// Most bytes of unacknowledged records on disk.
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            segment_bytes: 8 << 20,
            max_bytes: 1 << 30,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The queue holds `max_bytes`: the record was not stored.
    #[error("the queue is full ({used} of {max} bytes); the record was not stored")]
    Full { used: u64, max: u64 },
    #[error("a payload is at most {MAX_PAYLOAD_BYTES} bytes")]
    TooLarge,
    /// A segment other than the last is damaged: it needs a person.
    #[error("segment {path} is damaged at byte {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: &'static str,
    },
    #[error("queue i/o: {0}")]
    Io(#[from] io::Error),
}

/// One stored, unacknowledged record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub sequence: u64,
    pub recorded_at_ms: u64,
    pub payload: Vec<u8>,
}

/// Where a record is.
#[derive(Debug, Clone, Copy)]
struct Entry {
    sequence: u64,
    recorded_at_ms: u64,
    segment: u64,
    offset: u64,
    len: u32,
}

impl Entry {
    fn bytes(&self) -> u64 {
        HEADER_BYTES + u64::from(self.len)
    }
}

/// The queue. Not shared between processes; one writer.
pub struct Queue {
    dir: PathBuf,
    limits: Limits,
    /// Unacknowledged records, oldest first.
    pending: VecDeque<Entry>,
    /// Bytes of the unacknowledged records.
    pending_bytes: u64,
    /// Segments on disk (by first sequence), oldest first.
    segments: VecDeque<u64>,
    /// The open segment and its length.
    current: Option<(u64, File, u64)>,
    next_sequence: u64,
    acked: u64,
    stream: uuid::Uuid,
    /// Bytes cut from a torn tail when the queue was opened.
    pub repaired_bytes: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}{SUFFIX}"))
}

fn checksum(sequence: u64, at: u64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&sequence.to_le_bytes());
    hasher.update(&at.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// Syncs a directory so that created, renamed and deleted files persist.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Reads the records of one segment; returns them and the length of its
/// valid prefix (shorter than the file when its tail is torn or damaged).
fn scan(path: &Path, segment: u64) -> Result<(Vec<Entry>, u64, Option<&'static str>), QueueError> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    let mut entries = Vec::new();
    let mut at = 0usize;
    let problem = loop {
        if at == bytes.len() {
            break None;
        }
        if bytes.len() - at < HEADER_BYTES as usize {
            break Some("a record header is cut short");
        }
        let field = |from: usize, to: usize| &bytes[at + from..at + to];
        let len = u32::from_le_bytes(field(0, 4).try_into().unwrap_or_default());
        let crc = u32::from_le_bytes(field(4, 8).try_into().unwrap_or_default());
        let sequence = u64::from_le_bytes(field(8, 16).try_into().unwrap_or_default());
        let recorded_at_ms = u64::from_le_bytes(field(16, 24).try_into().unwrap_or_default());
        if len as usize > MAX_PAYLOAD_BYTES {
            break Some("a record length is impossible");
        }
        let end = at + HEADER_BYTES as usize + len as usize;
        if end > bytes.len() {
            break Some("a record is cut short");
        }
        if checksum(
            sequence,
            recorded_at_ms,
            &bytes[at + HEADER_BYTES as usize..end],
        ) != crc
        {
            break Some("a record fails its checksum");
        }
        entries.push(Entry {
            sequence,
            recorded_at_ms,
            segment,
            offset: at as u64,
            len,
        });
        at = end;
    };
    Ok((entries, at as u64, problem))
}

impl Queue {
    /// Opens (or creates) the queue in `dir`, cutting a torn tail.
    pub fn open(dir: impl Into<PathBuf>, limits: Limits) -> Result<Queue, QueueError> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        let acked = match fs::read_to_string(dir.join(ACKED)) {
            Ok(text) => text.trim().parse().unwrap_or(0),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e.into()),
        };
        let mut firsts: Vec<u64> = fs::read_dir(&dir)?
            .filter_map(|entry| {
                let name = entry.ok()?.file_name();
                name.to_str()?.strip_suffix(SUFFIX)?.parse().ok()
            })
            .collect();
        firsts.sort_unstable();
        let stream = match fs::read_to_string(dir.join(STREAM)) {
            Ok(text) => text.trim().parse().map_err(|_| QueueError::Corrupt {
                path: dir.join(STREAM),
                offset: 0,
                reason: "the stream id is not a UUID",
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let stream = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
                write_atomically(&dir, STREAM, stream.to_string().as_bytes())?;
                stream
            }
            Err(e) => return Err(e.into()),
        };
        let mut queue = Queue {
            dir,
            limits,
            pending: VecDeque::new(),
            pending_bytes: 0,
            segments: VecDeque::new(),
            current: None,
            next_sequence: acked + 1,
            acked,
            stream,
            repaired_bytes: 0,
        };
        let count = firsts.len();
        for (i, first) in firsts.into_iter().enumerate() {
            let path = segment_path(&queue.dir, first);
            let (entries, valid, problem) = scan(&path, first)?;
            let is_last = i + 1 == count;
            if let Some(reason) = problem {
                if !is_last {
                    return Err(QueueError::Corrupt {
                        path,
                        offset: valid,
                        reason,
                    });
                }
                // A torn tail: the record being written when the process
                // died, never acknowledged to its instrument.
                let file = OpenOptions::new().write(true).open(&path)?;
                let before = file.metadata()?.len();
                file.set_len(valid)?;
                file.sync_all()?;
                queue.repaired_bytes = before - valid;
            }
            for entry in entries {
                if entry.sequence != queue.next_sequence && entry.sequence > queue.acked {
                    return Err(QueueError::Corrupt {
                        path: path.clone(),
                        offset: entry.offset,
                        reason: "a sequence number is out of order",
                    });
                }
                queue.next_sequence = queue.next_sequence.max(entry.sequence + 1);
                if entry.sequence > queue.acked {
                    queue.pending_bytes += entry.bytes();
                    queue.pending.push_back(entry);
                }
            }
            queue.segments.push_back(first);
        }
        queue.drop_acked_segments()?;
        Ok(queue)
    }

    /// Stores `payload`; returns its sequence once it is on disk.
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, QueueError> {
        Ok(self.append_all(&[payload])?.start)
    }

    /// Stores every payload, in order, with one `fsync` (group commit);
    /// returns their sequences once all are on disk. All or nothing: if
    /// they do not all fit, none is stored.
    pub fn append_all<T: AsRef<[u8]>>(
        &mut self,
        payloads: &[T],
    ) -> Result<std::ops::Range<u64>, QueueError> {
        if payloads
            .iter()
            .any(|p| p.as_ref().len() > MAX_PAYLOAD_BYTES)
        {
            return Err(QueueError::TooLarge);
        }
        let bytes: u64 = payloads
            .iter()
            .map(|p| HEADER_BYTES + p.as_ref().len() as u64)
            .sum();
        if self.pending_bytes + bytes > self.limits.max_bytes {
            return Err(QueueError::Full {
                used: self.pending_bytes,
                max: self.limits.max_bytes,
            });
        }
        let first = self.next_sequence;
        let at = now_ms();
        for payload in payloads {
            let payload = payload.as_ref();
            let sequence = self.next_sequence;
            let record = encode(sequence, at, payload);
            let (segment, file, len) = self.writable(sequence)?;
            file.write_all(&record)?;
            let entry = Entry {
                sequence,
                recorded_at_ms: at,
                segment: *segment,
                offset: *len,
                len: payload.len() as u32,
            };
            *len += record.len() as u64;
            self.pending.push_back(entry);
            self.pending_bytes += record.len() as u64;
            self.next_sequence += 1;
        }
        if let Some((_, file, _)) = &self.current {
            file.sync_data()?;
        }
        Ok(first..self.next_sequence)
    }

    /// The open segment, rolled over when full.
    fn writable(&mut self, sequence: u64) -> Result<(&mut u64, &mut File, &mut u64), QueueError> {
        let roll = match &self.current {
            Some((_, _, len)) => *len >= self.limits.segment_bytes,
            None => true,
        };
        if roll {
            // A segment being closed is synced first: a group commit may
            // span two segments.
            if let Some((_, file, _)) = &self.current {
                file.sync_data()?;
            }
            // Reopen the last segment if it still has room (after a restart).
            let reuse = self.segments.back().copied().filter(|first| {
                self.current.is_none()
                    && fs::metadata(segment_path(&self.dir, *first))
                        .is_ok_and(|m| m.len() < self.limits.segment_bytes)
            });
            let (first, file) = match reuse {
                Some(first) => {
                    let file = OpenOptions::new()
                        .append(true)
                        .open(segment_path(&self.dir, first))?;
                    (first, file)
                }
                None => {
                    let file = OpenOptions::new()
                        .create_new(true)
                        .append(true)
                        .open(segment_path(&self.dir, sequence))?;
                    sync_dir(&self.dir)?;
                    self.segments.push_back(sequence);
                    (sequence, file)
                }
            };
            let len = file.metadata()?.len();
            self.current = Some((first, file, len));
        }
        match &mut self.current {
            Some((first, file, len)) => Ok((first, file, len)),
            None => Err(QueueError::Io(io::Error::other("no open segment"))),
        }
    }

    /// Up to `max_records` unacknowledged records after `after` (a sequence;
    /// 0 for the oldest), oldest first, within `max_bytes` of payload (at
    /// least one record).
    pub fn read(
        &self,
        after: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<Record>, QueueError> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut open: Option<(u64, File)> = None;
        for entry in self.pending.iter().filter(|e| e.sequence > after) {
            if out.len() >= max_records
                || (!out.is_empty() && bytes + entry.len as usize > max_bytes)
            {
                break;
            }
            if open.as_ref().is_none_or(|(s, _)| *s != entry.segment) {
                open = Some((
                    entry.segment,
                    File::open(segment_path(&self.dir, entry.segment))?,
                ));
            }
            let Some((_, file)) = open.as_mut() else {
                continue;
            };
            file.seek(SeekFrom::Start(entry.offset + HEADER_BYTES))?;
            let mut payload = vec![0u8; entry.len as usize];
            file.read_exact(&mut payload)?;
            bytes += payload.len();
            out.push(Record {
                sequence: entry.sequence,
                recorded_at_ms: entry.recorded_at_ms,
                payload,
            });
        }
        Ok(out)
    }

    /// The cloud has every record up to `sequence`: they may go.
    pub fn ack(&mut self, sequence: u64) -> Result<(), QueueError> {
        let upto = sequence.min(self.next_sequence - 1);
        if upto <= self.acked {
            return Ok(());
        }
        write_atomically(&self.dir, ACKED, upto.to_string().as_bytes())?;
        self.acked = upto;
        while self.pending.front().is_some_and(|e| e.sequence <= upto) {
            if let Some(entry) = self.pending.pop_front() {
                self.pending_bytes -= entry.bytes();
            }
        }
        self.drop_acked_segments()
    }

    /// Deletes closed segments whose records are all acknowledged.
    fn drop_acked_segments(&mut self) -> Result<(), QueueError> {
        let mut removed = false;
        while self.segments.len() > 1 {
            let (first, next) = (self.segments[0], self.segments[1]);
            // Every record of `first` is below `next`'s first sequence.
            if next - 1 > self.acked {
                break;
            }
            fs::remove_file(segment_path(&self.dir, first))?;
            self.segments.pop_front();
            removed = true;
        }
        // The last segment too, when it is closed and fully acknowledged.
        if self.current.is_none()
            && self.pending.is_empty()
            && let Some(&last) = self.segments.back()
            && fs::metadata(segment_path(&self.dir, last))
                .is_ok_and(|m| m.len() >= self.limits.segment_bytes)
        {
            fs::remove_file(segment_path(&self.dir, last))?;
            self.segments.pop_back();
            removed = true;
        }
        if removed {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Unacknowledged records.
    pub fn depth(&self) -> usize {
        self.pending.len()
    }

    /// Bytes of unacknowledged records.
    pub fn bytes(&self) -> u64 {
        self.pending_bytes
    }

    /// When the oldest unacknowledged record was stored (unix ms).
    pub fn oldest_ms(&self) -> Option<u64> {
        self.pending.front().map(|e| e.recorded_at_ms)
    }

    /// The highest acknowledged sequence.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// The stream these records belong to.
    pub fn stream(&self) -> uuid::Uuid {
        self.stream
    }

    /// Starts a new stream from the next record on: for when the cloud's
    /// copy of the stream was lost (a restored database) and can no longer
    /// continue where this queue is.
    pub fn new_stream(&mut self) -> Result<uuid::Uuid, QueueError> {
        let stream = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        write_atomically(&self.dir, STREAM, stream.to_string().as_bytes())?;
        self.stream = stream;
        Ok(stream)
    }

    /// The sequence the next record gets.
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    /// Segments on disk.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
}

/// Replaces `dir/name` with `contents`: a temporary file, synced, renamed,
/// the directory synced.
fn write_atomically(dir: &Path, name: &str, contents: &[u8]) -> Result<(), QueueError> {
    let temporary = dir.join(format!("{name}.tmp"));
    {
        let mut file = File::create(&temporary)?;
        file.write_all(contents)?;
        file.sync_all()?;
    }
    fs::rename(&temporary, dir.join(name))?;
    sync_dir(dir)?;
    Ok(())
}

fn encode(sequence: u64, at: u64, payload: &[u8]) -> Vec<u8> {
    let mut record = Vec::with_capacity(HEADER_BYTES as usize + payload.len());
    record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    record.extend_from_slice(&checksum(sequence, at, payload).to_le_bytes());
    record.extend_from_slice(&sequence.to_le_bytes());
    record.extend_from_slice(&at.to_le_bytes());
    record.extend_from_slice(payload);
    record
}

#[cfg(test)]
mod tests;
