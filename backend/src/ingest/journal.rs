//! The ingest journal (SQLite only): batches acknowledged before their commit, kept in
//! append-only files beside the database until the writer has committed them.
//!
//! A reporter with more to send asks for an early answer (`Prefer: respond-async`); a batch
//! whose every name the server knows already (so no limit can refuse it) is appended to the
//! journal, queued for the writer, and answered `202 Accepted` at once, so the reporter's
//! next batch is on its way while this one commits, and groups grow as they do for a fleet.
//! The append is one `write` to a file (the page cache, which outlives a killed process, as
//! SQLite's log does with `synchronous=NORMAL`); a server that starts again queues what its
//! journal holds before it takes new requests, and the batches already committed are claimed
//! once, so they count as duplicates and nothing is written twice.
//!
//! Files (segments) are numbered; each begins with [`MAGIC`] and the version of the compact
//! form its records are in, and a record is its length and CRC-32 (both little-endian `u32`)
//! and the batch in that form ([`protocol::compact`]). A segment is deleted once it is not the
//! one appended to and the writer has committed all of its batches. A record cut short or
//! damaged (a crash during its write: its batch was never answered) ends its segment's
//! reading; a segment in a version this server does not read, or a record intact but not a
//! batch, stops the server from starting rather than lose what it holds.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use protocol::IngestBatch;

/// A segment takes no more appends once it holds this many bytes.
const SEGMENT_BYTES: u64 = 16 << 20;

/// A record's header: its length and CRC-32.
const HEADER: usize = 8;

/// What a segment begins with, before the compact form's version (a little-endian `u32`).
const MAGIC: &[u8; 4] = b"FBJ\0";

/// A segment's header: [`MAGIC`] and the version.
const SEGMENT_HEADER: usize = 8;

/// The journal of one database; cheap to clone.
#[derive(Clone)]
pub struct Journal {
    inner: Arc<Mutex<Segments>>,
}

struct Segments {
    /// Bytes past which a segment takes no more appends ([`SEGMENT_BYTES`]).
    limit: u64,
    file: File,
    current: u64,
    size: u64,
    /// Per segment, its batches not committed yet.
    outstanding: BTreeMap<u64, usize>,
    /// A write failed and its partial record could not be cut off: the next append starts a
    /// new segment first.
    broken: bool,
    dir: PathBuf,
}

impl Drop for Segments {
    /// The journal gone (the server stopped) with every batch committed: its last segment
    /// goes too, so the next start does not read those batches again.
    fn drop(&mut self) {
        if self.outstanding.is_empty() {
            remove_quietly(&segment_path(&self.dir, self.current));
        }
    }
}

impl Segments {
    /// Starts the next segment; the one finished goes if nothing of it is left to commit.
    fn rotate(&mut self) -> io::Result<()> {
        let next = self.current + 1;
        self.file = new_segment(&self.dir, next)?;
        let finished = std::mem::replace(&mut self.current, next);
        self.size = SEGMENT_HEADER as u64;
        self.broken = false;
        if !self.outstanding.contains_key(&finished) {
            // Every batch of it committed already.
            remove_quietly(&segment_path(&self.dir, finished));
        }
        Ok(())
    }
}

/// A journaled batch's place, until the writer says it is committed ([`Ticket::done`]). One
/// dropped instead (the server stopping first) leaves the batch to the next start.
pub struct Ticket {
    journal: Journal,
    segment: u64,
}

impl Ticket {
    /// The batch is committed (or was before): its segment goes once it is not appended to
    /// and holds no batch left to commit.
    pub fn done(self) {
        self.journal.done(self.segment);
    }
}

/// The journal's folder for a SQLite database URL (`<file>.ingest-journal`, beside it), none
/// for an in-memory database or PostgreSQL.
pub fn dir_for(database_url: &str) -> Option<PathBuf> {
    use std::str::FromStr;
    if crate::store::is_postgres_url(database_url) {
        return None;
    }
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(database_url).ok()?;
    let file = options.get_filename();
    let name = file.file_name()?.to_str()?;
    // sqlx names an in-memory database `:memory:` or `file:sqlx-in-memory-N`.
    let in_memory = name.starts_with(':') || name.starts_with("file:");
    if name.is_empty() || in_memory || database_url.contains("mode=memory") {
        return None;
    }
    Some(file.with_file_name(format!("{name}.ingest-journal")))
}

impl Journal {
    /// Opens the journal in `dir` (made when missing): the batches its segments hold, in the
    /// order they were appended, each with its ticket, and a new segment to append to.
    pub fn open(dir: &Path) -> io::Result<(Journal, Vec<(IngestBatch, Ticket)>)> {
        Journal::open_with(dir, SEGMENT_BYTES)
    }

    fn open_with(dir: &Path, limit: u64) -> io::Result<(Journal, Vec<(IngestBatch, Ticket)>)> {
        create_private_dir(dir)?;
        let numbers = segment_numbers(dir)?;
        let mut outstanding = BTreeMap::new();
        let mut held = Vec::new();
        for &segment in &numbers {
            let path = segment_path(dir, segment);
            let batches = read_segment(&path)?;
            if batches.is_empty() {
                std::fs::remove_file(&path)?;
                continue;
            }
            outstanding.insert(segment, batches.len());
            held.extend(batches.into_iter().map(|b| (b, segment)));
        }
        let current = numbers.last().map_or(1, |last| last + 1);
        let file = new_segment(dir, current)?;
        let journal = Journal {
            inner: Arc::new(Mutex::new(Segments {
                limit,
                file,
                current,
                size: SEGMENT_HEADER as u64,
                outstanding,
                broken: false,
                dir: dir.to_path_buf(),
            })),
        };
        let held = (held.into_iter())
            .map(|(batch, segment)| {
                let journal = journal.clone();
                (batch, Ticket { journal, segment })
            })
            .collect();
        Ok((journal, held))
    }

    /// Appends `batch`; its ticket once the record is written.
    pub fn append(&self, batch: &IngestBatch) -> io::Result<Ticket> {
        let payload = protocol::compact::encode(batch);
        let mut record = Vec::with_capacity(HEADER + payload.len());
        let len = u32::try_from(payload.len()).map_err(io::Error::other)?;
        record.extend_from_slice(&len.to_le_bytes());
        record.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        record.extend_from_slice(&payload);
        let mut segments = self.lock();
        if segments.broken || segments.size >= segments.limit {
            segments.rotate()?;
        }
        if let Err(err) = segments.file.write_all(&record) {
            // A partial record would end the segment's reading at the next start, and the
            // records after it with it: cut off (appends go to the new end), else the next
            // append starts a new segment.
            if segments.file.set_len(segments.size).is_err() {
                segments.broken = true;
            }
            return Err(err);
        }
        segments.size += record.len() as u64;
        let segment = segments.current;
        *segments.outstanding.entry(segment).or_insert(0) += 1;
        drop(segments);
        let journal = self.clone();
        Ok(Ticket { journal, segment })
    }

    fn done(&self, segment: u64) {
        let mut segments = self.lock();
        let Some(left) = segments.outstanding.get_mut(&segment) else {
            return;
        };
        *left -= 1;
        if *left == 0 {
            segments.outstanding.remove(&segment);
            if segment != segments.current {
                remove_quietly(&segment_path(&segments.dir, segment));
            }
        }
    }

    /// Batches journaled and not committed yet.
    pub fn outstanding(&self) -> usize {
        self.lock().outstanding.values().sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Segments> {
        self.inner.lock().expect("journal lock poisoned")
    }
}

/// How many batches the journal in `dir` holds (none when there is no such folder), read
/// without changing it: committed ones among them too, when their segment was still appended
/// to (a server that starts on the database commits the others and empties it).
pub fn held(dir: &Path) -> io::Result<usize> {
    let numbers = match segment_numbers(dir) {
        Ok(numbers) => numbers,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(err),
    };
    let mut n = 0;
    for segment in numbers {
        n += read_segment(&segment_path(dir, segment))?.len();
    }
    Ok(n)
}

/// The numbers of the segments in `dir`, in order.
fn segment_numbers(dir: &Path) -> io::Result<Vec<u64>> {
    let mut numbers: Vec<u64> = std::fs::read_dir(dir)?
        .filter_map(|entry| {
            let name = entry.ok()?.file_name();
            name.to_str()?.strip_suffix(".log")?.parse().ok()
        })
        .collect();
    numbers.sort_unstable();
    Ok(numbers)
}

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{segment:020}.log"))
}

/// A new segment, empty but for its header (one begun before, its header cut short by a
/// crash, begins again).
fn new_segment(dir: &Path, segment: u64) -> io::Result<File> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(segment_path(dir, segment))?;
    file.set_len(0)?;
    let mut header = [0u8; SEGMENT_HEADER];
    header[..4].copy_from_slice(MAGIC);
    header[4..].copy_from_slice(&protocol::compact::VERSION.to_le_bytes());
    file.write_all(&header)?;
    Ok(file)
}

/// The journal's folder, readable by the server's user only (it holds what services report).
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn remove_quietly(path: &Path) {
    if let Err(err) = std::fs::remove_file(path)
        && err.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %err, "cannot remove a journal segment");
    }
}

/// The batches of a segment, up to its first record cut short or damaged; an error (naming
/// the file) for a segment in another version or a record intact but not a batch.
fn read_segment(path: &Path) -> io::Result<Vec<IngestBatch>> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    let refuse = |what: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: {what}; this server cannot read the batches it holds (move it aside to \
                 start without them)",
                path.display()
            ),
        )
    };
    let Some(header) = bytes.get(..SEGMENT_HEADER) else {
        // A segment whose header a crash cut short holds nothing.
        return Ok(Vec::new());
    };
    if &header[..4] != MAGIC {
        return Err(refuse("not an ingest journal segment".into()));
    }
    let version = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    if version != protocol::compact::VERSION {
        return Err(refuse(format!(
            "written in version {version} of the compact form, not {}",
            protocol::compact::VERSION
        )));
    }
    let mut batches = Vec::new();
    let mut rest = &bytes[SEGMENT_HEADER..];
    while rest.len() >= HEADER {
        let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        let Some(payload) = rest.get(HEADER..HEADER + len) else {
            break;
        };
        if crc32fast::hash(payload) != crc {
            break;
        }
        let batch = protocol::compact::decode(payload)
            .map_err(|err| refuse(format!("record {} is not a batch: {err}", batches.len())))?;
        batches.push(batch);
        rest = &rest[HEADER + len..];
    }
    if !rest.is_empty() {
        tracing::warn!(
            path = %path.display(),
            bytes = rest.len(),
            "a journal segment ends in a record cut short or damaged; the batches before it are kept"
        );
    }
    Ok(batches)
}

#[cfg(test)]
mod tests;
